"""Run a study in a spawned child process and stream its events back.

A segfault, abort, out-of-memory kill or hang inside a runtime then ends only the
child: the driver (the window's QThread or the command line) gets every event the
child sent before it died, then a ``VariantFailed`` for the variant that was
running with the reason, and a ``StudyFinished`` holding the variants already
finished. ``run_study_isolated`` has the same shape as ``core.engine.run.run_study``,
so a driver can use either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.engine.study_child import MEMORY_EXIT_CODE
from core.engine.study_process import StudyProcess
from core.errors import BadInput, Cancelled
from core.printable import printable
from core.study.cancel import CancelToken
from core.study.events import (
    Event,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.result import StudyResult, VariantResult, VariantStatus
from core.study.spec import StudySpec

#: ``run_study_isolated``'s default memory ceiling: ``core.memory_limit.default_limit_bytes()``.
DEFAULT_MEMORY = object()
#: After Cancel, the child gets this long to stop on its own before it is killed.
KILL_AFTER_S = 3.0
#: Before its first event the child imports torch/onnxruntime and loads the model: allow at least this.
STARTUP_ALLOWANCE_S = 60.0
#: The drivers' default ``hang_timeout_s`` (--hang-timeout): a step of a study (one inference, a build step,
#: a calibration batch) that reports nothing for this long is stopped.
DEFAULT_HANG_TIMEOUT_S = 60.0
_POLL_S = 0.02


class ChildCrashed(BadInput):
    """The child process died before the study could start (e.g. loading the model crashed it)."""


def run_study_isolated(
    spec: StudySpec,
    cancel: CancelToken | None = None,
    *,
    hang_timeout_s: float | None = None,
    kill_after_s: float = KILL_AFTER_S,
    log_dir: Path | None = None,
    workdir: Path | None = None,
    prewarm_next: bool = False,
    max_memory_bytes: int | None | object = DEFAULT_MEMORY,
) -> Iterator[Event]:
    """Like ``run_study``, but the engine runs in a spawned child process.

    ``hang_timeout_s``: one step of the study (one inference, one build step, one
    calibration batch) that reports nothing for this long is treated as hung and
    its process is stopped (None: wait for ever; the user can cancel).
    ``max_memory_bytes``: the child's memory ceiling (default: ``core.memory_limit``'s
    share of physical memory; None: none). Past it the variant that asked fails
    with "needed more than N GB"; this process is never limited.
    ``prewarm_next``: once this study's process has ended, start the next one
    (the window does; a one-shot command line does not need it).
    """
    from core.memory_limit import default_limit_bytes

    cancel = cancel or CancelToken()
    limit = default_limit_bytes() if max_memory_bytes is DEFAULT_MEMORY else max_memory_bytes
    log_path = str(log_dir / "child-faults.log") if log_dir else None
    child = _take_warm_child(log_path) or StudyProcess.spawn(log_path)
    # If the child died while waiting, it is handled below like any other death.
    with contextlib.suppress(BrokenPipeError, OSError):
        child.control.send(("run", absolute_paths(spec), workdir, limit))

    tracker = _Tracker(spec)
    try:
        end_reason = yield from _relay(child, tracker, cancel, hang_timeout_s, kill_after_s)
        if tracker.finished:
            return
    finally:
        child.end(kill_after_s)
        if prewarm_next:
            prewarm(log_dir)

    reason = end_reason or "the study process " + _exit_reason(child.proc.exitcode, limit)
    if tracker.started is None:
        if cancel.cancelled:
            raise Cancelled("the study was cancelled before it started")
        raise ChildCrashed(f"{printable(spec.model.path)} could not be opened: {reason}.")
    yield from tracker.finish(reason, cancelled=cancel.cancelled)


def _relay(
    child: StudyProcess, tracker: _Tracker, cancel: CancelToken, hang_timeout_s: float | None, kill_after_s: float
) -> Generator[Event, None, str | None]:
    """Pass the child's events on until its StudyFinished, its end, a hang or Cancel's deadline.

    Returns why the process was ended from here (None: it finished, or ended by itself)."""
    proc, receiver = child.proc, child.receiver
    cancel_at: float | None = None
    last_message = time.monotonic()
    end_reason: str | None = None
    while True:
        if cancel.cancelled and cancel_at is None:
            child.request_stop()
            cancel_at = time.monotonic()
        if cancel_at is not None and time.monotonic() - cancel_at > kill_after_s and proc.is_alive():
            proc.kill()
            end_reason = f"the study process did not stop within {kill_after_s:g} s of Cancel and was ended"
        if receiver.poll(_POLL_S):
            try:
                kind, payload = receiver.recv()
            except (EOFError, OSError):
                return end_reason
            last_message = time.monotonic()
            event = _event_from(kind, payload)
            if event is not None:
                tracker.see(event)
                yield event
                if tracker.finished:
                    return None
            continue
        if not proc.is_alive():
            if receiver.poll(0):
                continue  # drain what the child sent just before it exited
            return end_reason
        hang_limit = _hang_limit(hang_timeout_s, tracker)
        if hang_limit is not None and time.monotonic() - last_message > hang_limit:
            proc.kill()
            return tracker.hung(hang_limit)


def _event_from(kind: str, payload: Any) -> Event | None:
    """The event in a message from the child; BadInput or RuntimeError for a failure it reported;
    None for any other message."""
    if kind == "event":
        return payload
    if kind == "bad_input":
        raise BadInput(payload)
    if kind == "error":
        raise RuntimeError(payload)
    return None


def _hang_limit(hang_timeout_s: float | None, tracker: _Tracker) -> float | None:
    """How long the child may stay silent before it counts as hung: longer before the study has started."""
    if hang_timeout_s is not None and tracker.started is None:
        return max(hang_timeout_s, STARTUP_ALLOWANCE_S)
    return hang_timeout_s


def absolute_paths(spec: StudySpec) -> StudySpec:
    """``spec`` with relative file paths made absolute, since the child works in a folder of its own.

    Only paths that exist here are touched: ``torchvision:resnet18`` or a missing file stays as
    written, and the loader names it as the user wrote it."""
    from dataclasses import replace

    def absolute(path: str | None) -> str | None:
        if not path:
            return path
        p = Path(path).expanduser()
        return str(Path(os.path.abspath(p))) if not p.is_absolute() and p.exists() else path

    model = replace(spec.model, path=absolute(spec.model.path) or spec.model.path)
    variants = tuple(replace(v, path=absolute(v.path)) if v.path else v for v in spec.variants)
    dataset = spec.dataset
    if dataset.location and Path(dataset.location).expanduser().exists():
        dataset = replace(dataset, location=absolute(dataset.location) or dataset.location)
    return replace(spec, model=model, variants=variants, dataset=dataset)


def _exit_reason(code: int | None, memory_limit: int | None = None) -> str:
    """How the study process ended, as a clause ("crashed (segmentation fault)")."""
    if code is None:
        return "stopped answering"
    if code == MEMORY_EXIT_CODE:
        from core.memory_limit import needed_more_than

        return needed_more_than(memory_limit)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {
            "SIGSEGV": "crashed (segmentation fault)",
            "SIGABRT": "aborted",
            "SIGKILL": "was killed (out of memory, or ended by the system)",
            "SIGBUS": "crashed (bus error)",
            "SIGFPE": "crashed (arithmetic fault)",
            "SIGILL": "crashed (illegal instruction: the library may need a newer CPU)",
        }.get(name, f"ended by {name}")
        return f"{why}"
    return f"exited with code {code}"







_warm: StudyProcess | None = None
_warm_lock = threading.Lock()


def prewarm(log_dir: Path | None = None, allow_fork: bool = False) -> None:
    """Start a study process now, so that it has imported the runtimes before the next study.

    The window calls this at start-up and after each study: the next Run then skips the
    seconds a fresh process spends importing torch and onnxruntime.
    """
    global _warm
    log_path = str(log_dir / "child-faults.log") if log_dir else None
    with _warm_lock:
        if _warm is not None and _warm.proc.is_alive():
            return
        _warm = StudyProcess.spawn(log_path, allow_fork=allow_fork)


def discard_prewarmed() -> None:
    """End the prewarmed process, if any (on shutdown)."""
    global _warm
    with _warm_lock:
        child, _warm = _warm, None
    if child is not None:
        child.discard()


def _take_warm_child(log_path: str | None) -> StudyProcess | None:
    global _warm
    with _warm_lock:
        child, _warm = _warm, None
    if child is None:
        return None
    if child.proc.is_alive() and child.log_path == log_path:
        return child
    child.discard()
    return None


class _Tracker:
    """Remembers what the child reported, to close the study honestly if it dies."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self.started: StudyStarted | None = None
        self.current: VariantStarted | None = None
        #: The stage the running variant last reported ("building", "evaluating", "timing"...).
        self.stage: str | None = None
        self.results: list[VariantResult] = []
        self.t0 = time.perf_counter()
        self.created = datetime.now(UTC).isoformat(timespec="seconds")
        #: The child's own StudyFinished arrived: the study ended normally.
        self.finished = False

    def see(self, event: Event) -> None:
        if isinstance(event, StudyStarted):
            self.started = event
        elif isinstance(event, VariantStarted):
            self.current, self.stage = event, None
        elif isinstance(event, Progress):
            self.stage = event.stage
        elif isinstance(event, (VariantFinished, VariantFailed)):
            self.results.append(event.result)
            self.current = None
        elif isinstance(event, StudyFinished):
            self.finished = True

    def hung(self, limit_s: float) -> str:
        """Why the process was stopped after ``limit_s`` seconds without a word, as a clause."""
        if self.started is None:
            what = "loading the model and the dataset"
        elif self.current is None:
            what = "the end-of-study re-check"
        else:
            what = f"{self.stage or 'running'} {self.current.label}"
        return (f"one step ({what}) did not finish within {limit_s:g} s, so the study process was stopped "
                "(--hang-timeout changes this limit)")

    def finish(self, reason: str, cancelled: bool) -> Iterator[Event]:
        started = self.started
        assert started is not None
        if self.current is not None:
            label = self.current.label
            where = "" if f" {label})" in reason else " while this variant was running"
            message = f"{printable(label)}: {reason}{where}."
            failed = VariantResult(
                label=label, scheme=self.current.scheme, status=VariantStatus.FAILED,
                error=message, error_stage="running",
            )
            self.results.append(failed)
            yield VariantFailed(self.spec.study_id, label, "running", message, failed)
        status = "cancelled" if cancelled else "failed"
        study = StudyResult(
            study_id=self.spec.study_id,
            created=self.created,
            status=status,
            model=started.model,
            dataset=started.dataset,
            environment=started.environment,
            timing={"threads": started.environment.get("threads")},
            spec=self.spec.to_dict(),
            results=self.results,
            duration_s=round(time.perf_counter() - self.t0, 3),
        )
        yield StudyFinished(self.spec.study_id, study, cancelled=cancelled)






