"""The accuracy-aware search: the fastest (or smallest) variant that loses at most ``max_drop_pt`` points.

Candidates come cheapest knob first: plain static int8, per-tensor weights, the other calibration methods,
then static int8 with the layers the sensitivity ranking blames kept in float (1, 2, 4, ... of them, on the
most accurate static setting so far), float16, and for MatMul/Gemm-heavy models dynamic int8 and int4
weight-only. Every candidate is built by its scheme (the same build as ``quantbench run --scheme S``),
evaluated on the evaluation samples (never the calibration ones) and timed with the study's harness;
nothing is estimated. The search stops at the first candidate within the budget that beats float on the
objective, at the time limit, or when cancelled; the candidates finished by then are always kept.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, Cancelled
from core.study.cancel import CancelToken
from core.tune.frontier import OBJECTIVES, best_candidate, mark_frontier, meets_budget
from core.tune.measure import StopToken

STATIC = "ort-int8-static"
#: ``ort-int8-static``'s default calibration sample count; the search says ``samples=N`` when it has fewer.
STATIC_SAMPLES = 200
#: Weight-only schemes are tried when at least this share of the Conv/MatMul/Gemm weights sit in MatMul/Gemm.
WEIGHT_HEAVY_SHARE = 0.5
#: Characters that cannot appear in a node name written into ``exclude=`` (the scheme string's separators).
_SEPARATORS = (",", ";")

Calibration = np.ndarray | Callable[[int], np.ndarray]


@dataclass(frozen=True)
class StaticKnobs:
    """One setting of ``ort-int8-static``; ``scheme()`` writes it as a reproducible scheme string."""

    calibration: str = "minmax"
    per_channel: bool = True
    exclude: tuple[str, ...] = ()

    def scheme(self, samples: int | None) -> str:
        params = []
        if self.exclude:
            params.append("exclude=" + ";".join(self.exclude))
        if self.calibration != "minmax":
            params.append(f"calibration={self.calibration}")
        if not self.per_channel:
            params.append("per_channel=false")
        if samples is not None:
            params.append(f"samples={samples}")
        return STATIC + (":" + ",".join(params) if params else "")


def tune(
    model_path: Path | str,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None,
    calib_x: Calibration,
    max_drop_pt: float,
    objective: str = "latency",
    time_limit_s: float = 600.0,
    cancel: CancelToken | None = None,
    on_candidate: Callable[[dict[str, Any]], None] | None = None,
    *,
    threads: int | None = None,
    timing_s: float = 0.5,
    workdir: Path | None = None,
    model: Any = None,
    sensitivity_parts: tuple[str, ...] = ("weights", "activation", "leave_one_out"),
) -> dict[str, Any]:
    """Search for the best variant within ``max_drop_pt`` accuracy points; return the ``kind: "tune"`` JSON.

    ``calib_x`` is an array of calibration samples or, as in a study, a function n -> samples (e.g.
    ``lambda n: dataset.calibration_samples(n, seed)``), which makes every scheme string reproduce the
    candidate under ``quantbench run`` on the same dataset. ``eval_y`` gives accuracy; without it, agreement
    with the float model's predictions. ``on_candidate`` receives each finished candidate (the float baseline
    first). ``model`` is an already loaded ``LoadedModel`` of ``model_path``, if the caller has one.
    ``sensitivity_parts`` picks what the sensitivity stage measures per layer (leave-one-out alone is the
    cheapest: one evaluation per layer).
    """
    if objective not in OBJECTIVES:
        raise BadInput(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}.")
    if not max_drop_pt >= 0:
        raise BadInput(f"the accuracy budget must be zero or more points, not {max_drop_pt}.")
    if len(eval_x) == 0:
        raise BadInput("the search needs evaluation samples; the dataset gave none.")
    from core.study.spec import default_threads

    start = time.monotonic()
    stop = StopToken(cancel, deadline=start + time_limit_s)
    with tempfile.TemporaryDirectory(prefix="quantbench-tune-") as tmp:
        search = _Search(
            Path(model_path), np.asarray(eval_x), eval_y, calib_x, max_drop_pt, objective, stop,
            threads or default_threads(), timing_s, Path(workdir).resolve() if workdir else Path(tmp), on_candidate,
            sensitivity_parts,
        )
        status = search.run(model)
    best = best_candidate(search.candidates, max_drop_pt, objective)
    return {
        "schema_version": 1,
        "kind": "tune",
        "model": str(model_path),
        "budget": {"max_drop": max_drop_pt, "objective": objective},
        "status": status,
        "sensitivity": search.sensitivity_rows,
        "candidates": search.candidates,
        "best": None if best is None else dict(best),
        "elapsed_s": round(time.monotonic() - start, 3),
        "notes": search.notes,
    }


class _Search:
    def __init__(
        self, model_path: Path, eval_x: np.ndarray, eval_y: np.ndarray | None, calib: Calibration,
        max_drop_pt: float, objective: str, stop: StopToken, threads: int, timing_s: float, folder: Path,
        on_candidate: Callable[[dict[str, Any]], None] | None, sensitivity_parts: tuple[str, ...],
    ) -> None:
        self.model_path, self.eval_x, self.eval_y = model_path, eval_x, eval_y
        self.calib = calib if callable(calib) else _slicer(np.asarray(calib, dtype=np.float32))
        self.max_drop_pt, self.objective, self.stop = max_drop_pt, objective, stop
        self.threads, self.timing_s, self.folder = threads, timing_s, folder
        self.on_candidate = on_candidate
        self.candidates: list[dict[str, Any]] = []
        self.sensitivity_rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.sensitivity_parts = sensitivity_parts
        self.shared: dict[str, Any] = {}
        self.static: dict[str, StaticKnobs] = {}  # scheme string -> its knobs, for the exclusion stage
        self.loaded: Any = None
        self.onnx_path: Path | None = None
        self.base_out: np.ndarray | None = None
        self.float_accuracy = 0.0

    # ------------------------------------------------------------------ the loop

    def run(self, model: Any) -> str:
        """"met", "missed" (time limit or candidates exhausted) or "cancelled"."""
        try:
            self._load(model)
            self._add(self._measure_float())
            for label, scheme in self._plan():
                candidate = self._measure(label, scheme)
                self._add(candidate)
                if candidate["within_budget"]:
                    return "met"
            return "missed"
        except Cancelled:
            return "cancelled" if self.stop.by_caller else "missed"

    def _add(self, candidate: dict[str, Any]) -> None:
        baseline = self.candidates[0] if self.candidates else candidate
        candidate["within_budget"] = meets_budget(candidate, baseline, self.max_drop_pt, self.objective)
        self.candidates.append(candidate)
        mark_frontier(self.candidates, self.objective)
        if self.on_candidate is not None:
            self.on_candidate(dict(candidate))

    def _plan(self) -> Iterator[tuple[str, str]]:
        """(label, scheme string) of each candidate, cheapest first; later ones depend on earlier results."""
        samples = self._samples_param()
        for label, knobs in (
            ("static int8", StaticKnobs()),
            ("static int8, per-tensor weights", StaticKnobs(per_channel=False)),
            ("static int8, entropy calibration", StaticKnobs(calibration="entropy")),
            ("static int8, percentile calibration", StaticKnobs(calibration="percentile")),
        ):
            self.static[knobs.scheme(samples)] = knobs
            yield label, knobs.scheme(samples)
        yield from self._exclusion_plan(samples)
        yield "float16", "ort-fp16"
        if self._weight_heavy():
            yield "dynamic int8 (int8 weights)", "ort-int8-dynamic"
            yield "int4 weight-only", "ort-int4-weight"

    def _exclusion_plan(self, samples: int | None) -> Iterator[tuple[str, str]]:
        """Static int8 on the most accurate setting so far, with the top 1, 2, 4, ... sensitive parts in float."""
        knobs = self._best_static()
        try:
            self.sensitivity_rows = self._sensitivity(knobs)
        except Cancelled:
            raise
        except Exception as exc:  # the graph defeats the layer edits: go on without exclusions
            self.notes.append(f"sensitivity failed ({_first_line(exc)}); no layers were kept in float")
        # Ranked rows, those to blame for lost points first; a part whose quantization helps is never spared.
        blamed = [r for r in self.sensitivity_rows if r["impact_pt"] >= 0]
        tried: set[tuple[str, ...]] = set()
        k = 1
        while blamed and k < 2 * len(blamed):
            top, k = blamed[:k], k * 2
            nodes: list[str] = []
            for row in top:
                nodes.extend(n for n in row["exclude"] if n not in nodes)
            if tuple(nodes) in tried or any(s in n for n in nodes for s in _SEPARATORS):
                continue
            tried.add(tuple(nodes))
            label = f"static int8, {len(top)} most sensitive in float ({len(nodes)} nodes)"
            yield label, replace(knobs, exclude=tuple(nodes)).scheme(samples)

    # ------------------------------------------------------------------ pieces

    def _load(self, model: Any) -> None:
        from core.schemes.onnx_export import ensure_onnx

        if model is None:
            from core.models import load_model
            from core.study.spec import ModelSpec

            model = load_model(ModelSpec(path=str(self.model_path)))
        # The schemes prepare the graph from their own working folder: the model's path must be absolute.
        self.loaded = replace(model, path=Path(model.path).resolve())
        self.onnx_path = Path(ensure_onnx(model, self._context("float"))).resolve()

    def _context(self, label: str) -> Any:
        from core.engine.build import safe_name
        from core.schemes.base import BuildContext
        from core.study.spec import Device

        vdir = self.folder / safe_name(label)
        vdir.mkdir(parents=True, exist_ok=True)
        return BuildContext(
            workdir=vdir, threads=self.threads, device=Device.CPU, cancel=self.stop,
            calibration=self.calib, progress=lambda *_: None, shared=self.shared,
        )

    def _samples_param(self) -> int | None:
        have = len(self.calib(STATIC_SAMPLES))
        return have if have < STATIC_SAMPLES else None

    def _measure_float(self) -> dict[str, Any]:
        from core.schemes.ort_schemes import _file_size
        from core.tune.measure import accuracy, latency_ms, open_runner, predict

        assert self.onnx_path is not None
        started = time.monotonic()
        runner = open_runner(self.onnx_path, self.threads)
        try:
            self.base_out = predict(runner, self.eval_x, self.stop)
            self.float_accuracy = accuracy(self.base_out, self.base_out, self.eval_y)
            latency = latency_ms(runner, self.eval_x, self.threads, self.timing_s, self.stop)
        finally:
            runner.close()
        return _row("fp32", "fp32", self.float_accuracy, 0.0, latency, _file_size(self.onnx_path),
                    200.0, time.monotonic() - started)

    def _measure(self, label: str, scheme: str) -> dict[str, Any]:
        """Build ``scheme``, evaluate and time it; a failure becomes a failed candidate, never the search's end."""
        from core.schemes.registry import get_scheme
        from core.study.spec import SchemeSpec
        from core.tune.measure import accuracy, latency_ms, predict, sqnr_db

        assert self.base_out is not None
        started = time.monotonic()
        spec = SchemeSpec.parse(scheme)
        try:
            built = get_scheme(spec.id).build(self.loaded, spec, self._context(label))
        except Cancelled:
            raise
        except Exception as exc:  # one failed candidate never sinks the search
            return _failed(label, scheme, exc, time.monotonic() - started)
        try:
            out = predict(built.runner, self.eval_x, self.stop)
            acc = accuracy(out, self.base_out, self.eval_y)
            latency = latency_ms(built.runner, self.eval_x, self.threads, self.timing_s, self.stop)
        finally:
            built.runner.close()
        drop = 100.0 * (self.float_accuracy - acc)
        return _row(label, scheme, acc, drop, latency, built.size_bytes, sqnr_db(out, self.base_out),
                    time.monotonic() - started)

    def _best_static(self) -> StaticKnobs:
        """The knobs of the most accurate plain static candidate (ties: the earliest, i.e. the cheapest)."""
        measured = [c for c in self.candidates if c["scheme"] in self.static and c.get("accuracy") is not None]
        if not measured:
            return StaticKnobs()
        return self.static[max(measured, key=lambda c: c["accuracy"])["scheme"]]

    def _sensitivity(self, knobs: StaticKnobs) -> list[dict[str, Any]]:
        from core.tune.sensitivity import layer_sensitivity

        assert self.onnx_path is not None
        run = layer_sensitivity(
            self.onnx_path, self.eval_x, self.eval_y, self.calib(STATIC_SAMPLES),
            parts=self.sensitivity_parts, calibration=knobs.calibration, per_channel=knobs.per_channel,
            threads=self.threads,
            workdir=self.folder / "sensitivity_run", cancel=self.stop, shared=self.shared,
        )
        return run.rows

    def _weight_heavy(self) -> bool:
        from core.schemes.ort_int4 import matmul_weight_share

        share = matmul_weight_share(self.loaded)
        return share is not None and share >= WEIGHT_HEAVY_SHARE


def _slicer(samples: np.ndarray) -> Callable[[int], np.ndarray]:
    def first(n: int) -> np.ndarray:
        return samples[:n]

    return first


def _row(
    label: str, scheme: str, accuracy: float, drop_pt: float, latency: dict[str, float], size: int,
    sqnr: float | None, elapsed_s: float,
) -> dict[str, Any]:
    return {
        "label": label,
        "scheme": scheme,
        "status": "ok",
        "accuracy": round(accuracy, 6),
        "accuracy_drop_pt": round(drop_pt, 3) + 0.0,
        "latency_ms": latency,
        "size_bytes": int(size),
        "sqnr_db": None if sqnr is None else round(sqnr, 2),
        "on_frontier": False,
        "elapsed_s": round(elapsed_s, 3),
    }


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _failed(label: str, scheme: str, exc: BaseException, elapsed_s: float) -> dict[str, Any]:
    return {
        "label": label, "scheme": scheme, "status": "failed", "error": _first_line(exc), "accuracy": None,
        "accuracy_drop_pt": None, "latency_ms": None, "size_bytes": None, "sqnr_db": None, "on_frontier": False,
        "elapsed_s": round(elapsed_s, 3),
    }
