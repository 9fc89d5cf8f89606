"""Building a variant: a scheme's build, or an already-optimized file loaded, off the generator's thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import Any

from core.engine.state import PlannedVariant, StudyState
from core.study.events import Event, Progress
from core.study.spec import ModelSpec, VariantSpec


def build_variant(state: StudyState, planned: PlannedVariant) -> Generator[Event, None, Any]:
    """Build in a helper thread so calibration progress streams out as events; returns the BuiltVariant."""
    spec = state.spec
    events: queue.Queue[Progress] = queue.Queue()

    def progress(stage: str, done: int, total: int, message: str) -> None:
        events.put(Progress(spec.study_id, planned.label, stage, done, total, message))

    ctx = _context(state, planned, progress)
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
    yield from in_thread(work, events, f"build-{planned.label}")
    if "error" in box:
        raise box["error"]
    return box["built"]


def in_thread(work: Any, events: queue.Queue, name: str) -> Generator[Event, None, None]:
    """Run ``work()`` in a helper thread, passing on the events it puts in ``events`` as they come (a step
    that reports progress through callbacks still streams it, and the study's watchdog sees it alive)."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        while not events.empty():
            yield events.get()
    while not events.empty():
        yield events.get()


def rebuilder(state: StudyState, planned: PlannedVariant) -> Any:
    """What builds ``planned`` again (in this thread, silently) and returns its runner: how the end-of-study
    re-check gets back a variant whose runner cannot reopen a file (a PyTorch module built in memory) once that
    runner was closed to give its memory back. Builds are deterministic (the study's seed), so it is the same
    model; the function holds the study state and the plan row, not the first runner."""

    def rebuild() -> Any:
        ctx = _context(state, planned, lambda *_: None)
        try:
            return planned.scheme.build(state.model, planned.scheme_spec, ctx).runner
        finally:
            if state.dataset.calibration_recipe is not None:  # made again for this build: not kept after it
                state.dataset.forget_calibration_draws()

    return rebuild


def _context(state: StudyState, planned: PlannedVariant, progress: Any) -> Any:
    """The scheme's BuildContext: its own folder, the study's threads, device, cancel token and data."""
    from core.schemes.base import BuildContext

    spec = state.spec
    vdir = state.workdir / safe_name(planned.label)
    vdir.mkdir(parents=True, exist_ok=True)
    if state.shared is None:
        state.shared = {}
    return BuildContext(
        workdir=vdir,
        threads=spec.timing.resolved_threads,
        device=spec.device,
        cancel=state.cancel,
        calibration=lambda n: state.dataset.calibration_samples(n, seed=spec.seed),
        progress=progress,
        shared=state.shared,
        seed=spec.seed,
        example_input=lambda: state.dataset.x[:1],
    )


def _build_file_variant(state: StudyState, variant: VariantSpec, ctx: Any) -> Any:
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


def safe_name(label: str) -> str:
    """``label`` as a folder name: letters, digits, - and _ only, at most 80 characters."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:80]
