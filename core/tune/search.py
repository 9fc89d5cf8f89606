"""The accuracy-aware search: the fastest (or smallest) variant that loses at most ``max_drop_pt`` points.

Candidates come cheapest knob first: plain static int8, per-tensor weights, the other calibration methods,
other calibration sample counts (on the most accurate setting so far), then static int8 with the layers the
sensitivity ranking blames kept in float (1, 2, 4, ... of them, on the most accurate static setting so far),
float16, mixes by op type (for a model with both convolutions and MatMul/Gemm: int8 convolutions with
MatMul/Gemm in float, and the other way round), and for MatMul/Gemm-heavy models the weight-only family:
dynamic int8 (int8 weights, per-tensor and per-channel) and int4 weight-only (blocks of 32 and 128, and
int8 compute). Every candidate is built by its scheme (the same build as ``quantbench run --scheme S``),
evaluated on the evaluation samples (never the calibration ones) and timed with the study's harness;
nothing is estimated. The search stops at the first candidate within the budget that beats float on the
objective, at the time limit, or when cancelled; the candidates finished by then are always kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, Cancelled
from core.files.scratch import Scratch
from core.study.cancel import CancelToken
from core.study.result import VariantResult
from core.study.spec import SchemeSpec
from core.tune.frontier import OBJECTIVES, best_candidate, mark_frontier, meets_budget
from core.tune.measure import StopToken

STATIC = "ort-int8-static"
TORCH_STATIC = "torch-int8-static"
#: ``ort-int8-static``'s default calibration sample count; the search says ``samples=N`` when it has fewer.
STATIC_SAMPLES = 200
#: Calibration sample counts tried on the most accurate static setting (those the dataset can give, and that
#: differ from the count used so far).
SAMPLE_COUNTS = (64, 512)
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
    #: Calibration samples; None: the count ``scheme()`` is given (the scheme's default when that is None too).
    samples: int | None = None

    def scheme(self, samples: int | None = None) -> str:
        samples = self.samples if self.samples is not None else samples
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
    on_variant: Callable[[VariantResult], None] | None = None,
) -> dict[str, Any]:
    """Search for the best variant within ``max_drop_pt`` accuracy points; return the ``kind: "tune"`` JSON.

    ``calib_x`` is an array of calibration samples or, as in a study, a function n -> samples (e.g.
    ``lambda n: dataset.calibration_samples(n, seed)``), which makes every scheme string reproduce the
    candidate under ``quantbench run`` on the same dataset. ``eval_y`` gives accuracy; without it, agreement
    with the float model's predictions. ``on_candidate`` receives each finished candidate (the float baseline
    first). ``model`` is an already loaded ``LoadedModel`` of ``model_path``, if the caller has one.
    ``sensitivity_parts`` picks what the sensitivity stage measures per layer (leave-one-out alone is the
    cheapest: one evaluation per layer). ``on_variant`` receives each finished candidate as a study's
    ``VariantResult`` (full latency statistics and samples, task metrics, fidelity, coverage and its built file
    in ``source_path``, which stays on disk until the search's ``workdir`` is removed): what
    ``core.tune.record`` records in the history and what ``save_best`` saves.
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
    with Scratch("tune") as tmp:
        search = _Search(
            Path(model_path), np.asarray(eval_x), eval_y, calib_x, max_drop_pt, objective, stop,
            threads or default_threads(), timing_s, Path(workdir).resolve() if workdir else Path(tmp), on_candidate,
            sensitivity_parts, on_variant,
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
        on_variant: Callable[[VariantResult], None] | None = None,
    ) -> None:
        self.model_path, self.eval_x, self.eval_y = model_path, eval_x, eval_y
        self.calib = calib if callable(calib) else _slicer(np.asarray(calib, dtype=np.float32))
        self.max_drop_pt, self.objective, self.stop = max_drop_pt, objective, stop
        self.threads, self.timing_s, self.folder = threads, timing_s, folder
        self.on_candidate = on_candidate
        self.on_variant = on_variant
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
        yield from self._sample_count_plan(samples)
        yield from self._exclusion_plan(samples)
        yield from self._torch_static_plan(samples)
        yield "float16", "ort-fp16"
        yield from self._op_type_mixes(samples)
        if self._weight_heavy():
            yield "dynamic int8 (int8 weights)", "ort-int8-dynamic"
            yield "dynamic int8, per-channel weights", "ort-int8-dynamic:per_channel=true"
            yield "int4 weight-only", "ort-int4-weight"
            yield "int4 weight-only, blocks of 128", "ort-int4-weight:block_size=128"
            yield "int4 weight-only, int8 compute", "ort-int4-weight:accuracy_level=4"

    def _torch_static_plan(self, samples: int | None) -> Iterator[tuple[str, str]]:
        """For an eager PyTorch model: ``torch-int8-static``, then with the modules its own sensitivity ranking
        (``core.tune.torch_sensitivity``, one calibration) blames kept in float, 1, 2, 4, ... of them."""
        from core.schemes.registry import get_scheme

        if get_scheme(TORCH_STATIC).applicability(self.loaded) is not None:
            return
        suffix = f":samples={samples}" if samples is not None else ""
        yield "torch static int8", TORCH_STATIC + suffix
        try:
            rows = self._torch_sensitivity()
        except Cancelled:
            raise
        except Exception as exc:  # FX could not trace the float model as a whole: no module exclusions
            self.notes.append(f"PyTorch sensitivity failed ({_first_line(exc)}); no modules were kept in float")
            return
        self.sensitivity_rows.extend(rows)
        for label, nodes in _spared_sets([r for r in rows if r["impact_pt"] >= 0]):
            params = "exclude=" + ";".join(nodes) + (f",samples={samples}" if samples is not None else "")
            yield f"torch static int8, {label} ({len(nodes)} modules)", f"{TORCH_STATIC}:{params}"

    def _torch_sensitivity(self) -> list[dict[str, Any]]:
        from core.tune.torch_sensitivity import torch_layer_sensitivity

        run = torch_layer_sensitivity(
            self.loaded.handle, self.eval_x, self.eval_y, self.calib(samples_or_default(self._samples_param())),
            parts=self.sensitivity_parts, threads=self.threads, cancel=self.stop,
        )
        return run.rows

    def _sample_count_plan(self, samples: int | None) -> Iterator[tuple[str, str]]:
        """The most accurate static setting so far, calibrated on other sample counts the dataset can give."""
        knobs = self._best_static()
        used = knobs.samples or samples or STATIC_SAMPLES
        for count in SAMPLE_COUNTS:
            if count == used or len(self.calib(count)) < count:
                continue
            counted = replace(knobs, samples=count)
            self.static[counted.scheme()] = counted
            yield f"static int8, {count} calibration samples", counted.scheme()

    def _op_type_mixes(self, samples: int | None) -> Iterator[tuple[str, str]]:
        """Int8 for one kind of layer, float for the other, on the most accurate static setting so far."""
        kinds = self._weighted_op_types()
        if "Conv" not in kinds or not kinds & {"MatMul", "Gemm"}:
            return
        knobs = self._best_static()
        matmuls = tuple(k for k in ("MatMul", "Gemm") if k in kinds)
        yield "static int8 convolutions, MatMul/Gemm in float", replace(knobs, exclude=matmuls).scheme(samples)
        yield "static int8 MatMul/Gemm, convolutions in float", replace(knobs, exclude=("Conv",)).scheme(samples)

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
        for label, nodes in _spared_sets([r for r in self.sensitivity_rows if r["impact_pt"] >= 0]):
            yield f"static int8, {label} ({len(nodes)} nodes)", replace(knobs, exclude=tuple(nodes)).scheme(samples)

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
        from core.measures.peak_memory import PeakMemory
        from core.schemes.ort_schemes import onnx_file_size
        from core.tune.measure import accuracy, brief, open_runner, predict, timed

        assert self.onnx_path is not None
        started = time.monotonic()
        memory = PeakMemory()
        memory.start()
        runner = open_runner(self.onnx_path, self.threads)
        try:
            self.base_out = predict(runner, self.eval_x, self.stop)
            self.float_accuracy = accuracy(self.base_out, self.base_out, self.eval_y)
            stats, samples = timed(runner, self.eval_x, self.threads, self.timing_s, self.stop)
        finally:
            runner.close()
        size = onnx_file_size(self.onnx_path)
        row = _row("fp32", "fp32", self.float_accuracy, 0.0, brief(stats), size, 200.0, time.monotonic() - started)
        self._tell(row, "fp32", stats, samples, self.base_out, size, str(self.onnx_path), {}, [],
                   memory=memory.result())
        return row

    def _tell(
        self, row: dict[str, Any], scheme: str, stats: Any, samples: list[float], out: np.ndarray, size: int,
        source: str | None, coverage: dict[str, Any], notes: list[str], runtime: str = "onnxruntime",
        memory: dict[str, Any] | None = None,
    ) -> None:
        """Hand ``on_variant`` the candidate as a study's variant (metrics and fidelity as a study scores them)."""
        if self.on_variant is None:
            return
        from core.measures.fidelity import fidelity
        from core.measures.latency_stats import throughput_per_s
        from core.measures.task_metrics import classification_metrics
        from core.study.result import VariantResult, VariantStatus

        assert self.base_out is not None
        spec = SchemeSpec.parse(scheme)
        labels = self.eval_y is not None
        variant = VariantResult(
            label=row["label"], scheme=spec.id, status=VariantStatus.OK, runtime=runtime,
            params=dict(spec.params), size_bytes=size, latency=stats,
            throughput_per_s=throughput_per_s(stats.p50, 1) if stats.p50 > 0 else None,
            metrics=classification_metrics(np.asarray(self.eval_y).reshape(-1), out) if labels else None,
            fidelity=None if scheme == "fp32" else fidelity(self.base_out, out, classification=True),
            coverage=coverage, notes=list(notes), build_s=row["elapsed_s"], source_path=source,
            is_float=scheme in ("fp32", "ort-fp16"), samples_ms=samples, is_baseline=scheme == "fp32",
            memory=memory,
        )
        self.on_variant(variant)

    def _measure(self, label: str, scheme: str) -> dict[str, Any]:
        """Build ``scheme``, evaluate and time it; a failure becomes a failed candidate, never the search's end."""
        from core.measures.peak_memory import PeakMemory
        from core.schemes.registry import get_scheme
        from core.tune.measure import accuracy, brief, predict, sqnr_db, timed

        assert self.base_out is not None
        started = time.monotonic()
        memory = PeakMemory()
        memory.start()  # the candidate's own peak: building, evaluating and timing it
        spec = SchemeSpec.parse(scheme)
        try:
            built = get_scheme(spec.id).build(self.loaded, spec, self._context(label))
        except Cancelled:
            raise
        except Exception as exc:  # one failed candidate never sinks the search
            failed = _failed(label, scheme, exc, time.monotonic() - started)
            self._tell_failed(failed, spec)
            return failed
        try:
            out = predict(built.runner, self.eval_x, self.stop)
            acc = accuracy(out, self.base_out, self.eval_y)
            stats, samples = timed(built.runner, self.eval_x, self.threads, self.timing_s, self.stop)
        finally:
            built.runner.close()
        drop = 100.0 * (self.float_accuracy - acc)
        row = _row(label, scheme, acc, drop, brief(stats), built.size_bytes, sqnr_db(out, self.base_out),
                   time.monotonic() - started)
        source = str(built.artifact) if built.artifact is not None else None
        self._tell(row, scheme, stats, samples, out, built.size_bytes, source, built.coverage, built.notes,
                   getattr(built.runner, "runtime", "onnxruntime"), memory.result())
        return row

    def _tell_failed(self, failed: dict[str, Any], spec: SchemeSpec) -> None:
        if self.on_variant is not None:
            from core.schemes.registry import get_scheme
            from core.study.result import VariantResult, VariantStatus

            try:
                runtime = get_scheme(spec.id).info.runtime
            except Exception:  # noqa: BLE001 - an unknown scheme id is what failed
                runtime = ""
            self.on_variant(VariantResult(
                label=failed["label"], scheme=spec.id, status=VariantStatus.FAILED, runtime=runtime,
                params=dict(spec.params), error=failed["error"], error_stage="building",
            ))

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
            self.onnx_path, self.eval_x, self.eval_y, self.calib(knobs.samples or STATIC_SAMPLES),
            parts=self.sensitivity_parts, calibration=knobs.calibration, per_channel=knobs.per_channel,
            threads=self.threads,
            workdir=self.folder / "sensitivity_run", cancel=self.stop, shared=self.shared,
        )
        return run.rows

    def _weighted_op_types(self) -> set[str]:
        """The op types among Conv, MatMul and Gemm that read a constant weight in the float graph."""
        import onnx

        assert self.onnx_path is not None
        graph = onnx.load(str(self.onnx_path), load_external_data=False).graph
        inits = {t.name for t in graph.initializer}
        return {n.op_type for n in graph.node
                if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits}

    def _weight_heavy(self) -> bool:
        from core.schemes.ort_int4 import matmul_weight_share

        share = matmul_weight_share(self.loaded)
        return share is not None and share >= WEIGHT_HEAVY_SHARE


def samples_or_default(samples: int | None) -> int:
    return STATIC_SAMPLES if samples is None else samples


def _spared_sets(blamed: list[dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """("N most sensitive in float", the names to exclude) for the top 1, 2, 4, ... ranked rows, each set once."""
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
        yield f"{len(top)} most sensitive in float", nodes


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
