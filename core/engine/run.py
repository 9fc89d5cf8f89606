"""The study engine: the only place that sequences plan -> build -> evaluate -> time -> verdicts.

``run_study`` is a generator of events (core/study/events.py). It never calls back into
a GUI; a driver iterates it in a worker thread or a child process, and stops it
with the CancelToken. One failing variant becomes a ``VariantFailed`` event and
the study goes on. Each step lives in its own module: plan.py, build.py,
evaluate.py, latency.py, verdicts.py (and drift.py for the end-of-study re-check).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.engine.build import build_variant
from core.engine.evaluate import evaluate_variant, score
from core.engine.latency import time_variant
from core.engine.layer_step import analyse_variant_layers, wants_layer_analysis
from core.engine.plan import plan_variants, resolve_task
from core.engine.state import PlannedVariant, StudyState, baseline_reopens
from core.engine.verdicts import final_verdicts, grade_variant
from core.errors import BadInput, Cancelled, QuantBenchError
from core.files.scratch import Scratch
from core.memory_limit import give_memory_back
from core.printable import printable
from core.study.cancel import CancelToken
from core.study.events import (
    Event,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.result import StudyResult, VariantResult, VariantStatus, find_baseline
from core.study.spec import (
    DatasetSpec,
    Device,
    ModelSpec,
    SchemeSpec,
    StudySpec,
    TimingSpec,
    VariantSpec,
    spec_problem,
    threads_problem,
)

#: The schemes of the bundled demo study, in table order (fp32 baseline first).
#: The schemes a study runs when none are named (fp32 baseline first).
DEFAULT_SCHEMES = ("fp32", "onnx-fp32", "torch-int8-dynamic", "ort-int8-dynamic", "ort-int8-static", "ort-fp16")
#: The bundled demo's schemes, in table order: the defaults, which show a clear win (ort-int8-static) and a
#: variant that is slower with its reason (torch-int8-dynamic), plus one that visibly loses accuracy (a third of
#: the channels pruned without fine-tuning), so its confusion differences and flipped samples have a story to tell.
DEMO_SCHEMES = (*DEFAULT_SCHEMES, "prune-channels:ratio=0.35")


def demo_study_spec(timing: TimingSpec | None = None) -> StudySpec:
    """The bundled demo: the digits CNN on its test split with every foundation scheme."""
    from core.study import demo
    return StudySpec(
        model=ModelSpec(path=str(demo.DEMO_WEIGHTS), arch=demo.DEMO_ARCH),
        dataset=DatasetSpec.parse(demo.DEMO_DATASET),
        variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in DEMO_SCHEMES[1:]),
        timing=timing or TimingSpec(),
    )


def run_study(
    spec: StudySpec, cancel: CancelToken | None = None, workdir: Path | None = None
) -> Iterator[Event]:
    """Run ``spec``, yielding events; BadInput escapes only for problems found before any variant runs."""
    # Whoever made the spec: out-of-range numbers would give wrong figures; the threads, where it runs.
    problem = spec_problem(spec) or threads_problem(spec.timing.threads)
    if problem:
        raise BadInput(f"the study cannot run: {problem}.")
    cancel = cancel or CancelToken()
    try:
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            yield from _run(spec, cancel, workdir)
            return
        with Scratch("run") as tmp:
            yield from _run(spec, cancel, tmp)
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


@dataclass
class _Loaded:
    """The loaded study and the figures about it that its StudyStarted and its result carry."""

    state: StudyState
    environment: dict[str, Any]
    model_info: dict[str, Any]
    dataset_info: dict[str, Any]
    timing_info: dict[str, Any]


def _run(spec: StudySpec, cancel: CancelToken, workdir: Path) -> Iterator[Event]:
    t_start = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    from core.measures.peak_memory import reset_peak

    reset_peak()  # the baseline's peak memory counts loading the model and the dataset
    loaded = _load(spec, cancel, workdir)
    state = loaded.state
    plan = plan_variants(spec, state.model)
    advice = {
        p.label: p.scheme.advice_for(state.model, loaded.environment, p.scheme_spec)
        for p in plan
        if p.scheme is not None and p.scheme_spec is not None and not p.skip_reason
    }
    _flag_slow_variants(state, plan, advice, loaded.timing_info)
    # What loading and the advice read of the model (its parsed copy, a probe's session) goes before the build.
    give_memory_back()
    yield StudyStarted(
        spec.study_id, loaded.model_info, loaded.dataset_info, [p.label for p in plan], loaded.environment,
        {k: v for k, v in advice.items() if v}, dict(loaded.timing_info),
    )
    results: list[VariantResult] = []
    cancelled, paired = yield from _run_plan(state, plan, advice, results, loaded.timing_info)
    final_verdicts(results, spec, state.task, paired)
    base = find_baseline(results)
    baseline_failed = base is not None and base.status is VariantStatus.FAILED
    study = StudyResult(
        study_id=spec.study_id,
        created=created,
        status="cancelled" if cancelled else "failed" if baseline_failed else "finished",
        model=loaded.model_info,
        dataset=loaded.dataset_info,
        environment=loaded.environment,
        timing=loaded.timing_info,
        spec=spec.to_dict(),
        results=results,
        duration_s=round(time.perf_counter() - t_start, 3),
    )
    yield StudyFinished(spec.study_id, study, cancelled=cancelled)


def _load(spec: StudySpec, cancel: CancelToken, workdir: Path) -> _Loaded:
    """Load the model and the dataset, check they fit together, and describe the machine."""
    from core.datasets import load_dataset
    from core.datasets.check import check_dataset_fits
    from core.models import load_model
    from core.runtimes.environment import environment_info

    _refuse_unusable_device(spec)
    t_load = time.perf_counter()
    model = load_model(spec.model)
    model_load_s = time.perf_counter() - t_load
    if model.output_problem:  # several outputs and none plainly the prediction (core.models.io_spec)
        raise BadInput(f"{spec.model.path}: {model.output_problem}")
    cancel.raise_if_cancelled()
    t_load = time.perf_counter()
    dataset = load_dataset(spec.dataset, model.inputs, seed=spec.seed)
    dataset_load_s = time.perf_counter() - t_load
    check_dataset_fits(dataset, model.inputs, [model.output])
    if len(dataset) < spec.timing.batch_size:
        raise BadInput(
            f"{spec.dataset.describe()}: the dataset has {len(dataset)} samples, "
            f"fewer than the timing batch size {spec.timing.batch_size}."
        )
    task = resolve_task(spec, dataset.task, dataset.y, model)
    dataset.task = task
    env = environment_info(spec.timing.resolved_threads)
    env["device"] = spec.device.value
    env["timing_mode"] = spec.timing.mode.value
    env["pid"] = os.getpid()  # the process that measures (a child when isolated)
    timing_info = {
        "threads": spec.timing.resolved_threads,
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
    state = StudyState(spec=spec, model=model, dataset=dataset, task=task, cancel=cancel, workdir=workdir)
    from core.engine.evaluate import eval_batch_for

    timing_info["eval_batch_size"] = eval_batch_for(state)  # the user's, or the one chosen from free memory
    return _Loaded(state, env, model.info(), dataset.info(), timing_info)


def _flag_slow_variants(
    state: StudyState, plan: list[PlannedVariant], advice: dict[str, list[str]], timing_info: dict[str, Any]
) -> None:
    """Advice, before the run, for each variant a few measured calls show pathologically slow here (float16
    on a CPU without float16 arithmetic, dynamic int8 on convolutions); the factors go to
    ``timing.expected_slowdown`` (read by the progress bar's time-left estimate)."""
    from core.engine.slow_probe import probe_slowdowns, slow_advice, slow_kind_of

    # Which rows calibrate (their builds run the model over calibration samples): the time-left estimate reads it.
    calibrating = [p.label for p in plan if p.scheme is not None and not p.skip_reason
                   and p.scheme.info.needs_calibration]
    if calibrating:
        timing_info["calibrating"] = calibrating
    if state.spec.device is not Device.CPU:
        return
    labels = {p.scheme_id: p.label for p in plan if p.scheme is not None and not p.skip_reason and not p.is_baseline}
    if state.shared is None:
        state.shared = {}
    factors, call_s = probe_slowdowns(state.model, labels, state.dataset.x, state.spec.timing.resolved_threads,
                                      state.shared)
    if factors:
        timing_info["expected_slowdown"] = factors
    by_label = {label: scheme_id for scheme_id, label in labels.items()}
    for label, factor in factors.items():
        line = slow_advice(factor, slow_kind_of(by_label[label]) or "it", call_s, len(state.dataset))
        if line:
            advice[label] = [*advice.get(label, []), line]


def _refuse_unusable_device(spec: StudySpec) -> None:
    """BadInput before anything runs when the study asks for CUDA and none is usable: never a silent CPU run."""
    if spec.device is not Device.CUDA:
        return
    from core.runtimes.devices import cuda_problem

    problem = cuda_problem()
    if problem:
        raise BadInput(f"CUDA was chosen as the device, but there is {problem}; choose the CPU instead.")


def _run_plan(
    state: StudyState, plan: list[PlannedVariant], advice: dict[str, list[str]], results: list[VariantResult],
    timing_info: dict[str, Any],
) -> Generator[Event, None, tuple[bool, dict[str, Any] | None]]:
    """Every planned variant, then the drift re-check; returns (cancelled, the paired rounds or None).

    Finished variants go into ``results`` as they come, so a cancelled study keeps them."""
    from core.engine.drift import guard_against_drift

    spec = state.spec
    try:
        cancelled = yield from _run_variants(state, plan, advice, results)
        if cancelled:
            return True, None
        try:
            x = state.dataset.x[: spec.timing.batch_size]
            paired = yield from guard_against_drift(
                spec, state.baseline, results, state.runners, x, state.cancel, timing_info
            )
        except Cancelled:
            return True, None  # whatever guard_against_drift finished is already in timing_info
        return False, paired
    finally:
        state.close_runners()


def _run_variants(
    state: StudyState, plan: list[PlannedVariant], advice: dict[str, list[str]], results: list[VariantResult]
) -> Generator[Event, None, bool]:
    """Build, evaluate and time each planned variant in turn; returns whether the study was cancelled."""
    from core.measures.peak_memory import PeakMemory

    study_id = state.spec.study_id
    for index, planned in enumerate(plan):
        if state.cancel.cancelled:
            return True
        yield VariantStarted(study_id, index, planned.label, planned.scheme_id)
        memory = PeakMemory()
        memory.start(reset=index > 0)  # the first (the baseline) counts from before loading
        try:
            result = yield from _run_variant(state, planned, advice.get(planned.label, []))
        except Cancelled:
            return True
        result.memory = memory.result()
        _let_go_of_calibration(state, plan, index)
        results.append(result)
        if result.status is VariantStatus.OK:
            yield VariantFinished(study_id, result)
        else:
            yield VariantFailed(study_id, result.label, result.error_stage or "", result.error or "", result)
        if planned.is_baseline and result.status is VariantStatus.FAILED:
            break  # the model itself does not run: nothing can be compared with it
    return False


def _let_go_of_calibration(state: StudyState, plan: list[PlannedVariant], index: int) -> None:
    """After ``plan[index]``: the calibration draws are shared while variants still to build calibrate; the
    pool goes too unless a variant built again for the re-check calibrates. The draws of a pool that can be
    made again (a synthetic draw) go whenever the next variant does not calibrate, and are made when one does."""
    dataset = state.dataset
    later = plan[index + 1 :]
    if dataset.calibration_recipe is not None:
        if not (later and _calibrates(later[0])):
            dataset.forget_calibration_draws()
    elif not any(_calibrates(p) for p in later):
        rebuilt = state.runners.rebuilt()
        dataset.forget_calibration_draws(
            pool_too=not any(_calibrates(p) for p in plan[: index + 1] if p.label in rebuilt))


def _calibrates(planned: PlannedVariant) -> bool:
    """Whether building ``planned`` may draw calibration samples (static int8, or int8 on top of pruning)."""
    if planned.scheme is None or planned.skip_reason:
        return False
    return bool(planned.scheme.info.needs_calibration or (planned.scheme_spec and planned.scheme_spec.params))


def _run_variant(
    state: StudyState, planned: PlannedVariant, advice: list[str]
) -> Generator[Event, None, VariantResult]:
    """One variant through build -> evaluate -> time -> verdict; a failure is written on its result."""
    result = VariantResult(
        label=planned.label,
        scheme=planned.scheme_id,
        status=VariantStatus.OK,
        params=dict(planned.scheme_spec.params) if planned.scheme_spec else {},
        advice=list(advice),
        is_float=bool(planned.scheme and planned.scheme.info.is_float),
        is_baseline=planned.is_baseline,
    )
    if planned.skip_reason:
        result.status = VariantStatus.SKIPPED
        result.error = f"{planned.label} does not apply: {planned.skip_reason}."
        result.error_stage = "planning"
        return result
    stage = "building"
    built = None
    try:
        built = yield from _build(state, planned, result)
        stage = "evaluating"
        clock = _EvalClock(state, result)
        out = yield from evaluate_variant(
            state, planned.label, built.runner, result.notes, built.coverage, stop_after=clock.stop_after
        )
        clock.finish(len(out))
        score(state, result, out)
        if wants_layer_analysis(state, result):
            stage = "analysing layers"
            yield from analyse_variant_layers(state, planned.label, built, result)
        stage = "timing"
        yield from time_variant(state, planned.label, built.runner, result)
        _grade(state, result)
    except Cancelled:
        raise
    except QuantBenchError as exc:
        _fail(result, stage, str(exc))
    except Exception as exc:  # a runtime's own error: keep the study going, say what broke
        _fail(result, stage, _describe_exception(exc))
    finally:
        if built is not None:
            _keep_or_close(state, planned, result, built.runner)
    return result


#: A variant whose evaluation takes this many times the baseline's per sample, or more, is "slow to evaluate":
#: with ``--slow-variant-samples N`` it is evaluated on its first N samples only (float16 emulated on a CPU
#: without float16 arithmetic, dynamic int8 convolutions). The same factor as the advice before the run.
SLOW_EVAL_FACTOR = 3.0


class _EvalClock:
    """How fast each evaluation goes against the baseline's, and where a slow variant's evaluation stops."""

    def __init__(self, state: StudyState, result: VariantResult) -> None:
        self.state, self.result = state, result
        self.done, self.seconds = 0, 0.0

    def stop_after(self, done: int, seconds: float) -> bool:
        """True once ``--slow-variant-samples`` samples are done and the variant is slow to evaluate."""
        self.done, self.seconds = done, seconds
        limit = self.state.spec.timing.slow_variant_samples
        base = self.state.baseline_eval_s_per_sample
        total = len(self.state.dataset)
        if self.result.is_baseline or not limit or done < limit or done >= total or not base:
            return False
        # Samples after the first call (the one that warms the runner up) tell the speed.
        slowdown = (seconds / max(1, done - 1)) / base
        if slowdown < SLOW_EVAL_FACTOR:
            return False
        self.result.evaluated = {"samples": done, "of": total, "slowdown": round(slowdown, 1)}
        self.result.notes.append(
            f"evaluated on its first {done} of {total} samples (--slow-variant-samples {limit}): it evaluates "
            f"about {slowdown:.0f}x slower than the baseline here; its accuracy and output error compare with "
            "the baseline on those same samples"
        )
        return True

    def finish(self, evaluated: int) -> None:
        if self.result.is_baseline and evaluated > 1 and self.seconds > 0:
            self.state.baseline_eval_s_per_sample = self.seconds / (evaluated - 1)


def _build(state: StudyState, planned: PlannedVariant, result: VariantResult) -> Generator[Event, None, Any]:
    """Build the variant and write what the build tells onto ``result``; ends with VariantBuilt."""
    t0 = time.perf_counter()
    built = yield from build_variant(state, planned)
    result.build_s = round(time.perf_counter() - t0, 3)
    result.size_bytes = built.size_bytes
    result.coverage = built.coverage
    result.runtime = built.runner.runtime
    result.notes.extend(built.notes)
    result.source_path = str(built.artifact) if built.artifact else None
    if planned.scheme is None:
        # A file says nothing of its scheme: it is float when its graph computes nothing in integers.
        result.is_float = bool(
            built.coverage.get("integer_compute_ops", 0) == 0 and built.coverage.get("quantized_layers", 0) == 0
        )
    yield VariantBuilt(
        state.spec.study_id, planned.label, built.size_bytes, built.coverage, result.build_s, result.runtime,
        list(built.notes),
    )
    return built


def _grade(state: StudyState, result: VariantResult) -> None:
    """The first verdict and the slowdown's explanation; the baseline becomes the yardstick of those after it."""
    grade_variant(state.spec, state.task, state.baseline, result)
    if result.is_baseline:
        state.baseline = result
    elif state.baseline is not None and state.baseline.ok:
        from core.engine.explain import explain_slowdown

        result.explanation = explain_slowdown(result, state.baseline)


#: A variant whose runner has no file to reopen (a PyTorch module built in memory) is closed once measured, and
#: built again for the end-of-study re-check, when its build took at most this long; a slower one stays open.
REBUILD_MAX_S = 1.0


def _keep_or_close(state: StudyState, planned: PlannedVariant, result: VariantResult, runner: Any) -> None:
    """Keep a timed variant's runner for the end-of-study re-check (closed now when it can reopen its file or be
    rebuilt quickly, see RunnerPool); close any other at once."""
    from core.engine.drift import takes_part

    # A variant timed with too few samples for the re-check (seconds per call) is never re-timed: closed now.
    kept = result.is_baseline or takes_part(result, state.spec.timing)
    if kept and result.ok and result.latency is not None and result.label not in state.runners:
        rebuild = None
        if planned.scheme is not None and not result.is_baseline and (result.build_s or 0.0) <= REBUILD_MAX_S:
            from core.engine.build import rebuilder

            rebuild = rebuilder(state, planned)
        # Closed at the end of the study at the latest.
        reopen = not result.is_baseline or baseline_reopens(result)
        state.runners.keep(result.label, runner, reopen=reopen, rebuild=rebuild)
    else:
        runner.close()
    # What the variant built is unreachable now; modules with reference cycles (FX graphs) go only with a collection.
    # Only on the main thread (the study's process, the command line): run in a window's worker thread, a
    # collection there would finalise Qt objects off the GUI thread (a crash); the window collects on its own.
    if threading.current_thread() is threading.main_thread():
        gc.collect()
    give_memory_back()


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
