"""The study engine: the only place that sequences build -> evaluate -> time.

``run_study`` is a generator of events (core/events.py). It never calls back into
a GUI; a driver iterates it in a worker thread or a child process, and stops it
with the CancelToken. One failing variant becomes a ``VariantFailed`` event and
the study goes on.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, Cancelled, QuantBenchError
from core.printable import printable
from core.study.cancel import CancelToken
from core.study.events import (
    Event,
    LatencySamples,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.result import StudyResult, VariantResult, VariantStatus
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, Task, TimingSpec, VariantSpec

#: The schemes of the bundled demo study, in table order (fp32 baseline first).
DEMO_SCHEMES = ("fp32", "onnx-fp32", "torch-int8-dynamic", "ort-int8-dynamic", "ort-int8-static", "ort-fp16")
_EVAL_CHUNK = 64
#: An evaluation chunk grows while it takes less than this, and shrinks past four times it.
_EVAL_CHUNK_S = 0.5


def demo_study_spec(timing: TimingSpec | None = None) -> StudySpec:
    """The bundled demo: the digits CNN on its test split with every foundation scheme."""
    from core.study import demo
    return StudySpec(
        model=ModelSpec(path=str(demo.DEMO_WEIGHTS), arch=demo.DEMO_ARCH),
        dataset=DatasetSpec.parse(demo.DEMO_DATASET),
        variants=tuple(VariantSpec(scheme=SchemeSpec(s)) for s in DEMO_SCHEMES[1:]),
        timing=timing or TimingSpec(),
    )


@dataclass
class _Planned:
    label: str
    scheme_id: str
    scheme: Any | None  # a core.schemes.Scheme, or None for a file variant
    scheme_spec: SchemeSpec | None
    variant: VariantSpec | None
    skip_reason: str | None = None


def run_study(
    spec: StudySpec, cancel: CancelToken | None = None, workdir: Path | None = None
) -> Iterator[Event]:
    """Run ``spec``, yielding events; BadInput escapes only for problems found before any variant runs."""
    cancel = cancel or CancelToken()
    try:
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            yield from _run(spec, cancel, workdir)
            return
        with tempfile.TemporaryDirectory(prefix="quantbench-") as tmp:
            yield from _run(spec, cancel, Path(tmp))
    except Cancelled:
        # Cancelled while the model or dataset was still loading: nothing ran, say so plainly.
        yield StudyFinished(spec.study_id, _empty_result(spec, "cancelled"), cancelled=True)


def _empty_result(spec: StudySpec, status: str) -> StudyResult:
    return StudyResult(
        study_id=spec.study_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        status=status,
        model={"path": spec.model.path},
        dataset={"spec": spec.dataset.describe()},
        environment={},
        timing={},
        spec=spec.to_dict(),
    )


def _run(spec: StudySpec, cancel: CancelToken, workdir: Path) -> Iterator[Event]:
    from core.datasets import load_dataset
    from core.datasets.check import check_dataset_fits
    from core.models import load_model
    from core.runtimes.environment import environment_info

    t_start = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    threads = spec.timing.resolved_threads
    t_load = time.perf_counter()
    model = load_model(spec.model)
    model_load_s = time.perf_counter() - t_load
    cancel.raise_if_cancelled()
    t_load = time.perf_counter()
    dataset = load_dataset(spec.dataset, model.input, seed=spec.seed)
    dataset_load_s = time.perf_counter() - t_load
    check_dataset_fits(dataset, model.inputs, model.outputs)
    if len(dataset) < spec.timing.batch_size:
        raise BadInput(
            f"{spec.dataset.describe()}: the dataset has {len(dataset)} samples, "
            f"fewer than the timing batch size {spec.timing.batch_size}."
        )
    task = _resolve_task(spec, dataset.task, dataset.y, model)
    dataset.task = task
    env = environment_info(threads)
    env["device"] = spec.device.value
    env["timing_mode"] = spec.timing.mode.value
    env["pid"] = os.getpid()  # the process that measures (a child when isolated)
    plan = _plan(spec, model)
    advice = {
        p.label: p.scheme.advice_for(model, env, p.scheme_spec)
        for p in plan
        if p.scheme is not None and p.scheme_spec is not None and not p.skip_reason
    }

    model_info = model.info()
    dataset_info = dataset.info()
    timing_info = {
        "threads": threads,
        "mode": spec.timing.mode.value,
        "batch_size": spec.timing.batch_size,
        "max_time_s": spec.timing.max_time_s,
        "min_samples": spec.timing.min_samples,
        "max_samples": spec.timing.max_samples,
        "device": spec.device.value,
        # Where the time before the first variant went (item 5 of the measurement goals).
        "model_load_s": round(model_load_s, 4),
        "dataset_load_s": round(dataset_load_s, 4),
    }
    yield StudyStarted(
        spec.study_id, model_info, dataset_info, [p.label for p in plan], env,
        {k: v for k, v in advice.items() if v}, dict(timing_info),
    )

    results: list[VariantResult] = []
    state = _StudyState(spec=spec, model=model, dataset=dataset, task=task, cancel=cancel, workdir=workdir)
    cancelled = False
    try:
        for index, planned in enumerate(plan):
            if cancel.cancelled:
                cancelled = True
                break
            yield VariantStarted(spec.study_id, index, planned.label, planned.scheme_id)
            try:
                result = yield from _run_variant(state, planned, advice.get(planned.label, []))
            except Cancelled:
                cancelled = True
                break
            results.append(result)
            if result.status is VariantStatus.OK:
                yield VariantFinished(spec.study_id, result)
            else:
                yield VariantFailed(spec.study_id, result.label, result.error_stage or "", result.error or "", result)
            if index == 0 and result.status is VariantStatus.FAILED:
                break  # the model itself does not run: nothing can be compared with it
        paired = None
        if not cancelled:
            from core.engine.drift import guard_against_drift

            try:
                x = dataset.x[: spec.timing.batch_size]
                paired = yield from guard_against_drift(
                    spec, state.baseline, results, state.runners, x, cancel, timing_info
                )
            except Cancelled:
                cancelled = True  # whatever guard_against_drift finished is already in timing_info
    finally:
        for runner in state.runners.values():
            runner.close()
        state.runners.clear()

    _final_verdicts(results, spec, task, paired)
    baseline_failed = bool(results) and results[0].status is VariantStatus.FAILED
    study = StudyResult(
        study_id=spec.study_id,
        created=created,
        status="cancelled" if cancelled else "failed" if baseline_failed else "finished",
        model=model_info,
        dataset=dataset_info,
        environment=env,
        timing=timing_info,
        spec=spec.to_dict(),
        results=results,
        duration_s=round(time.perf_counter() - t_start, 3),
    )
    yield StudyFinished(spec.study_id, study, cancelled=cancelled)


@dataclass
class _StudyState:
    spec: StudySpec
    model: Any
    dataset: Any
    task: Task
    cancel: CancelToken
    workdir: Path
    baseline_out: np.ndarray | None = None
    baseline: VariantResult | None = None
    #: Every timed variant's runner, kept until the end of the study: the baseline is re-timed
    #: then, and all of them again if the machine's speed changed (see core.engine.drift).
    runners: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] | None = None


def _plan(spec: StudySpec, model: Any) -> list[_Planned]:
    from core.schemes import get_scheme

    plan = [_Planned("fp32", "fp32", get_scheme("fp32"), SchemeSpec("fp32"), None)]
    seen = {"fp32"}
    seen_files: set[str] = set()
    for variant in spec.variants:
        label = variant.label
        if variant.path is not None:
            resolved = str(Path(variant.path).expanduser().resolve())
            if resolved in seen_files:
                continue  # the same file twice is one row
            seen_files.add(resolved)
            n = 2
            while label in seen:  # same file name in another folder: keep both rows, told apart
                label, n = f"{variant.label} ({n})", n + 1
        elif label in seen:
            continue
        seen.add(label)
        if variant.scheme is not None:
            scheme = get_scheme(variant.scheme.id)
            reason = scheme.applicability(model)
            plan.append(_Planned(label, scheme.info.id, scheme, variant.scheme, variant, reason))
        else:
            plan.append(_Planned(label, "file", None, None, variant))
    return plan


def _resolve_task(spec: StudySpec, data_task: Task, y: np.ndarray | None, model: Any) -> Task:
    if spec.dataset.task is not Task.AUTO:
        return spec.dataset.task
    if y is None:
        return Task.UNLABELLED
    out_dim = model.output.shape[-1] if model.output.shape else None
    if data_task is Task.CLASSIFICATION and out_dim == 1:
        return Task.REGRESSION  # a single output scores a value, not ten classes
    return data_task


def _run_variant(
    state: _StudyState, planned: _Planned, advice: list[str]
) -> Generator[Event, None, VariantResult]:
    spec = state.spec
    result = VariantResult(
        label=planned.label,
        scheme=planned.scheme_id,
        status=VariantStatus.OK,
        params=dict(planned.scheme_spec.params) if planned.scheme_spec else {},
        advice=list(advice),
        is_float=bool(planned.scheme and planned.scheme.info.is_float),
    )
    if planned.skip_reason:
        result.status = VariantStatus.SKIPPED
        result.error = f"{planned.label} does not apply: {planned.skip_reason}."
        result.error_stage = "planning"
        return result

    stage = "building"
    built = None
    try:
        t0 = time.perf_counter()
        built = yield from _build(state, planned)
        result.build_s = round(time.perf_counter() - t0, 3)
        result.size_bytes = built.size_bytes
        result.coverage = built.coverage
        result.runtime = built.runner.runtime
        result.notes.extend(built.notes)
        result.source_path = str(built.artifact) if built.artifact else None
        if planned.scheme is None:
            result.is_float = bool(
                built.coverage.get("integer_compute_ops", 0) == 0 and built.coverage.get("quantized_layers", 0) == 0
            )
        yield VariantBuilt(
            spec.study_id,
            planned.label,
            built.size_bytes,
            built.coverage,
            result.build_s,
            result.runtime,
            list(built.notes),
        )

        stage = "evaluating"
        out = yield from _evaluate(state, planned.label, built.runner)
        _score(state, result, out)

        stage = "timing"
        yield from _time(state, planned.label, built.runner, result)
        _verdict(state, result)
        if state.baseline is not None and state.baseline.ok and planned.label != "fp32":
            from core.engine.explain import explain_slowdown

            result.explanation = explain_slowdown(result, state.baseline)
        if planned.label == "fp32":
            state.baseline = result
    except Cancelled:
        raise
    except QuantBenchError as exc:
        _fail(result, stage, str(exc))
    except Exception as exc:  # a runtime's own error: keep the study going, say what broke
        _fail(result, stage, _describe_exception(exc))
    finally:
        if built is not None:
            if result.ok and result.latency is not None and planned.label not in state.runners:
                state.runners[planned.label] = built.runner  # closed at the end of the study
            else:
                built.runner.close()
    return result


def _fail(result: VariantResult, stage: str, message: str) -> None:
    result.status = VariantStatus.FAILED
    result.error_stage = stage
    message = printable(message.strip().rstrip("."))  # a runtime's words may quote the file
    result.error = f"{result.label} failed while {stage}: {message}."


def _describe_exception(exc: BaseException) -> str:
    from core.memory_limit import current_limit_bytes, is_allocation_failure, needed_more_than

    if is_allocation_failure(exc):
        return needed_more_than(current_limit_bytes())
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _build(state: _StudyState, planned: _Planned) -> Generator[Event, None, Any]:
    """Build in a helper thread so calibration progress streams out as events."""
    from core.schemes.base import BuildContext

    spec = state.spec
    events: queue.Queue[Progress] = queue.Queue()
    vdir = state.workdir / _safe_name(planned.label)
    vdir.mkdir(parents=True, exist_ok=True)
    if state.shared is None:
        state.shared = {}

    def progress(stage: str, done: int, total: int, message: str) -> None:
        events.put(Progress(spec.study_id, planned.label, stage, done, total, message))

    ctx = BuildContext(
        workdir=vdir,
        threads=spec.timing.resolved_threads,
        device=spec.device,
        cancel=state.cancel,
        calibration=lambda n: state.dataset.calibration_samples(n, seed=spec.seed),
        progress=progress,
        shared=state.shared,
        seed=spec.seed,
    )
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            if planned.scheme is not None:
                box["built"] = planned.scheme.build(state.model, planned.scheme_spec, ctx)
            else:
                box["built"] = _build_file_variant(state, planned.variant, ctx)
        except BaseException as exc:  # handed to the generator's thread below
            box["error"] = exc

    progress("building", 0, 1, f"building {planned.label}")
    thread = threading.Thread(target=work, name=f"build-{planned.label}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        while not events.empty():
            yield events.get()
    while not events.empty():
        yield events.get()
    if "error" in box:
        raise box["error"]
    return box["built"]


def _build_file_variant(state: _StudyState, variant: VariantSpec, ctx: Any) -> Any:
    from core.models import load_model
    from core.models.loaded import ModelFormat
    from core.schemes.base import BuiltVariant
    from core.schemes.baseline import runner_for_loaded

    base = state.spec.model
    loaded = load_model(
        ModelSpec(path=variant.path or "", arch=base.arch, trusted=variant.trusted, input_shape=base.input_shape)
    )
    if loaded.format is ModelFormat.ONNX:
        from core.schemes.coverage import ort_graph_coverage

        coverage = ort_graph_coverage(loaded.path, ctx.threads, ctx.workdir)
    else:
        from core.schemes.baseline import loaded_coverage

        coverage = loaded_coverage(loaded)
    return BuiltVariant(
        runner=runner_for_loaded(loaded, ctx), size_bytes=loaded.file_bytes, artifact=loaded.path, coverage=coverage
    )


def _evaluate(state: _StudyState, label: str, runner: Any) -> Generator[Event, None, np.ndarray]:
    x = state.dataset.x
    total = len(x)
    chunks = []
    # Chunks start at one sample and double while they stay short: a slow model still reports
    # after every few calls, which is how the driver tells a slow study from a hung one.
    size, start = 1, 0
    while start < total:
        state.cancel.raise_if_cancelled()
        t0 = time.perf_counter()
        chunks.append(runner.predict(x[start : start + size]))
        elapsed = time.perf_counter() - t0
        start = min(total, start + size)
        yield Progress(state.spec.study_id, label, "evaluating", start, total, f"evaluating {label} {start}/{total}")
        if elapsed < _EVAL_CHUNK_S:
            size = min(size * 2, _EVAL_CHUNK)
        elif elapsed > 4 * _EVAL_CHUNK_S:
            size = max(1, size // 2)
    out = np.concatenate(chunks, axis=0)
    if out.shape[0] != total:
        raise BadInput(f"the model returned {out.shape[0]} outputs for {total} inputs.")
    return out


def _score(state: _StudyState, result: VariantResult, out: np.ndarray) -> None:
    from core.measures.metrics import classification_metrics, fidelity, regression_metrics

    y = state.dataset.y
    task = state.task
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        result.notes.append(f"{bad} output values are NaN or infinite")
    if y is not None and task is Task.CLASSIFICATION:
        n_classes = out.shape[-1] if out.ndim == 2 and out.shape[-1] > 1 else int(np.max(y)) + 1
        result.metrics = classification_metrics(y, out, n_classes)
    elif y is not None and task is Task.REGRESSION:
        result.metrics = regression_metrics(y, out)
    if result.label == "fp32":
        state.baseline_out = out
    elif state.baseline_out is not None:
        classification = task is Task.CLASSIFICATION or (
            task is Task.UNLABELLED and out.ndim == 2 and out.shape[-1] > 1
        )
        result.fidelity = fidelity(state.baseline_out, out, classification)


def _time(state: _StudyState, label: str, runner: Any, result: VariantResult) -> Generator[Event, None, None]:
    from core.engine.timing import LatencyHarness
    from core.measures.metrics import latency_stats, throughput_per_s

    timing = state.spec.timing
    x = state.dataset.x[: timing.batch_size]
    if len(x) < timing.batch_size:
        raise BadInput(f"the dataset has {len(x)} samples, fewer than the timing batch size {timing.batch_size}.")
    yield Progress(state.spec.study_id, label, "timing", 0, timing.min_samples, f"timing {label}")
    harness = LatencyHarness(runner.prepare_call(x), timing, cancel=state.cancel)
    total = 0
    for batch in harness.batches():
        total += len(batch)
        yield LatencySamples(state.spec.study_id, label, batch, total)
    run = harness.run
    if run.stop_reason == "cancelled":
        raise Cancelled("the study was cancelled")
    result.samples_ms = list(run.samples_ms)
    result.latency = latency_stats(
        run.samples_ms,
        block_size=run.block_size,
        first_ms=run.first_ms,
        batch_size=timing.batch_size,
        seed=state.spec.seed,
    )
    result.latency.warmup_runs = run.warmup_runs
    result.latency.warmup_ms = round(run.warmup_ms, 4)
    result.latency.stop_reason = run.stop_reason
    result.throughput_per_s = throughput_per_s(result.latency.p50, timing.batch_size)
    if result.latency.noisy:
        result.notes.append(
            f"noisy timing: interquartile range is {result.latency.iqr_rel:.0%} of the median (over 10 %)"
        )


def _fastest_float_p50(results: list[VariantResult]) -> float | None:
    p50s = [r.latency.p50 for r in results if r.ok and r.is_float and r.latency is not None]
    return min(p50s) if p50s else None


def _verdict(
    state: _StudyState,
    result: VariantResult,
    fastest: float | None = None,
    *,
    paired_speedup: float | None = None,
    paired_rounds: int | None = None,
    fastest_paired: float | None = None,
) -> None:
    from core.measures.metrics import baseline_verdict, verdict

    thresholds = state.spec.thresholds
    if result.label == "fp32":
        result.verdict = baseline_verdict(thresholds)
        return
    base = state.baseline
    if base is None or not base.ok:
        return
    result.verdict = verdict(
        task=state.task,
        baseline_metrics=base.metrics,
        metrics=result.metrics,
        baseline_size=base.size_bytes,
        size=result.size_bytes,
        baseline_p50=base.latency.p50 if base.latency else None,
        p50=result.latency.p50 if result.latency else None,
        fastest_float_p50=fastest if fastest is not None else _fastest_float_p50([base, result]),
        agreement=(result.fidelity or {}).get("agreement"),
        thresholds=thresholds,
        paired_speedup=paired_speedup,
        paired_rounds=paired_rounds,
        paired_vs_fastest_float=(paired_speedup / fastest_paired) if paired_speedup and fastest_paired else None,
    )


def _final_verdicts(
    results: list[VariantResult], spec: StudySpec, task: Task, paired: dict[str, Any] | None = None
) -> None:
    """Recompute verdicts once every float variant is known (speed-up vs the fastest float); with
    ``paired`` (the machine changed speed), speeds come from the interleaved rounds."""
    if not results or not results[0].ok or results[0].label != "fp32":
        return
    fastest = _fastest_float_p50(results)
    state = _StudyState(spec=spec, model=None, dataset=None, task=task, cancel=CancelToken(), workdir=Path("."))
    state.baseline = results[0]
    rounds = (paired or {}).get("speedup") or {}
    speedups = {label: s["median"] for label, s in rounds.items()}
    floats = [speedups[r.label] for r in results if r.ok and r.is_float and r.label in speedups] + [1.0]
    for r in results:
        if r.ok:
            _verdict(
                state,
                r,
                fastest,
                paired_speedup=speedups.get(r.label),
                paired_rounds=(paired or {}).get("rounds"),
                fastest_paired=max(floats),
            )
    if speedups:
        from core.engine.explain import explain_slowdown

        # The first explanations compared two stretches of time the machine ran at different speeds.
        for r in results[1:]:
            if r.ok and r.label in rounds:
                r.explanation = explain_slowdown(r, results[0], rounds[r.label])
    base = results[0]
    if base.verdict is not None and base.latency is not None and fastest:
        # Eager PyTorch float is often a weak baseline: show how it compares with the fastest float too.
        base.verdict.speedup_vs_fastest_float = (
            1.0 / max(floats) if speedups else fastest / base.latency.p50
        )


def _safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:80]
