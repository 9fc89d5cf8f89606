"""The search as a study: its candidates recorded in the history, and the winner saved with its sidecar.

A search is told to the history as the engine tells a study, on the same event stream:
``StudyStarted`` once the model and the dataset are loaded, one ``VariantFinished`` (or
``VariantFailed``) per candidate as it finishes, graded against the float baseline as a study grades,
and ``StudyFinished`` at the end, whatever the status (met, missed or cancelled: what was measured
stays). The events go to any sink, usually ``core.history.recorder.StudyRecording.handle``, so the
History panel lists the search, ``quantbench show`` prints it, and it reopens like any study. The
stored spec lists every candidate's scheme string, so "Run again" measures them as a study.

``save_best`` keeps the winner: its built file (still in the search's work folder) and the sidecar
``quantbench run --save-variants`` writes (``core.history.saved_variants``), one format for both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.study.events import Event, StudyFinished, StudyStarted, VariantFailed, VariantFinished
from core.study.result import StudyResult, VariantResult, find_baseline
from core.study.spec import SchemeSpec, StudySpec, VariantSpec

#: The name the history gives a search, e.g. "search: at most 0.5 pt, by latency".
NAME_FORMAT = "search: at most {max_drop:g} pt, by {objective}"


def study_name(max_drop_pt: float, objective: str) -> str:
    """How the search is named in the history."""
    return NAME_FORMAT.format(max_drop=max_drop_pt, objective=objective)


class SearchStudy:
    """Turns one search into a study's events, handed to ``sink`` as they happen.

    ``spec`` is the study the search is recorded as (its model, dataset, timing threads and seed);
    ``loaded`` and ``dataset`` the model and dataset the search runs on. Call ``start`` before the
    search, ``variant`` for each ``VariantResult`` it reports (``tune(..., on_variant=...)``) and
    ``finish`` with its ``kind: "tune"`` dict.
    """

    def __init__(self, spec: StudySpec, sink: Callable[[Event], None]) -> None:
        self.spec = spec
        self.sink = sink
        self.results: list[VariantResult] = []
        self._created = datetime.now(UTC).isoformat(timespec="seconds")
        self._started = time.perf_counter()
        self._model: dict[str, Any] = {"path": spec.model.path}
        self._dataset: dict[str, Any] = {"spec": spec.dataset.describe()}
        self._environment: dict[str, Any] = {}
        self._timing: dict[str, Any] = {}

    @property
    def study_id(self) -> str:
        return self.spec.study_id

    def start(self, loaded: Any, dataset: Any, threads: int, budget: dict[str, Any]) -> None:
        """The search is about to measure its first candidate (the float baseline)."""
        import os

        from core.runtimes.environment import environment_info

        self._model = loaded.info()
        self._dataset = dataset.info()
        self._environment = environment_info(threads)
        self._environment.update({"device": self.spec.device.value, "pid": os.getpid()})
        self._timing = {"threads": threads, "mode": "search", "batch_size": 1, "device": self.spec.device.value,
                        "search": dict(budget)}
        self.sink(StudyStarted(self.study_id, self._model, self._dataset, ["fp32"], self._environment,
                               timing=dict(self._timing)))

    def variant(self, result: VariantResult) -> None:
        """One candidate finished (or failed): graded against the baseline and told."""
        from core.engine.verdicts import grade_variant

        if result.ok:
            grade_variant(self.spec, self._task(), find_baseline(self.results), result)
            self.results.append(result)
            self.sink(VariantFinished(self.study_id, result))
        else:
            self.results.append(result)
            self.sink(VariantFailed(self.study_id, result.label, result.error_stage or "building",
                                    result.error or "it failed", result))

    def finish(self, tuned: dict[str, Any]) -> StudyResult:
        """The search ended: the study's final result (verdicts against the fastest float, as a study's)."""
        from core.engine.verdicts import final_verdicts

        final_verdicts(self.results, self.spec, self._task())
        variants = tuple(
            VariantSpec(scheme=SchemeSpec.parse(_scheme_string(r))) for r in self.results if not r.is_baseline
        )
        spec = replace(self.spec, variants=variants)
        timing = dict(self._timing)
        timing["search"] = {**timing.get("search", {}), "status": tuned.get("status"),
                            "best": (tuned.get("best") or {}).get("scheme")}
        study = StudyResult(
            study_id=self.study_id, created=self._created,
            status="cancelled" if tuned.get("status") == "cancelled" else "finished",
            model=self._model, dataset=self._dataset, environment=self._environment, timing=timing,
            spec=spec.to_dict(), results=list(self.results),
            duration_s=round(time.perf_counter() - self._started, 3),
        )
        self.sink(StudyFinished(self.study_id, study, cancelled=tuned.get("status") == "cancelled"))
        return study

    def result_of(self, label: str) -> VariantResult:
        """The candidate called ``label`` as a study's variant."""
        return next(r for r in self.results if r.label == label)

    def sidecar_info(self) -> dict[str, Any]:
        """What ``save_best`` records about the study the variant came from."""
        return {"study_id": self.study_id, "model": self._model, "dataset": self._dataset,
                "environment": self._environment}

    def _task(self) -> Any:
        from core.study.spec import Task

        return Task(self._dataset.get("task") or "classification")


def _scheme_string(result: VariantResult) -> str:
    return SchemeSpec(result.scheme, tuple(result.params.items())).label


def save_best(best: VariantResult, dest: Path | str, study: dict[str, Any] | None = None) -> Path:
    """Copy the best candidate's built file to ``dest`` (its format's own suffix) with its sidecar beside it
    (``NAME.quantbench.json``, as ``--save-variants`` writes); return the saved file.

    ``best`` comes from ``tune(..., on_variant=...)`` while the search's work folder still holds its file;
    ``study`` is the StudyStarted's model/dataset/id the sidecar records (``{"study_id", "model", "dataset",
    "environment"}``). BadInput (one sentence naming ``dest``) when it cannot be saved.
    """
    from core.history.saved_variants import VariantSaver

    dest = Path(dest).expanduser()
    source = Path(best.source_path) if best.source_path else None
    if best.is_baseline or source is None or not source.is_file():
        raise BadInput(f"{dest}: the best candidate left no built file to save (the search's folder is gone).")
    if dest.is_dir():
        raise BadInput(f"{dest} is a folder; give the file to save the best variant as (e.g. best.onnx).")
    saver = VariantSaver(dest.parent)
    saver.close()  # its own empty work folder: the search's folder holds the built file
    saver.workdir = source.parent
    info = study or {}
    saver.handle(StudyStarted(info.get("study_id", ""), info.get("model") or {}, info.get("dataset") or {},
                              [], info.get("environment") or {}))
    name = dest.name[: -len(dest.suffix)] if dest.suffix else dest.name
    found = f"the best candidate ({best.label}) of the search recorded as study {info.get('study_id', '?')}"
    saver.handle(VariantFinished(info.get("study_id", ""), replace(best, label=name, notes=[*best.notes, found])))
    if saver.failed:
        raise BadInput(next(iter(saver.failed.values())))
    if name not in saver.saved:
        raise BadInput(f"{dest}: the best variant was not saved ({saver.skipped.get(name, 'no file')}).")
    return saver.saved[name]
