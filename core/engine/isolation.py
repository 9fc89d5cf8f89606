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
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

#: The child exits with this code when loading the study ran into its memory ceiling.
MEMORY_EXIT_CODE = 75
#: ``run_study_isolated``'s default memory ceiling: ``core.memory_limit.default_limit_bytes()``.
DEFAULT_MEMORY = object()
#: After Cancel, the child gets this long to stop on its own before it is killed.
KILL_AFTER_S = 3.0
#: Before its first event the child imports torch/onnxruntime and loads the model: allow at least this.
STARTUP_ALLOWANCE_S = 60.0
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
    child = _take_warm_child(log_path) or _Child.spawn(log_path)
    proc, receiver = child.proc, child.receiver
    # If the child died while waiting, it is handled below like any other death.
    with contextlib.suppress(BrokenPipeError, OSError):
        child.control.send(("run", absolute_paths(spec), workdir, limit))

    tracker = _Tracker(spec)
    cancel_at: float | None = None
    last_message = time.monotonic()
    end_reason: str | None = None
    try:
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
                    break
                last_message = time.monotonic()
                event = _event_from(kind, payload)
                if event is not None:
                    tracker.see(event)
                    yield event
                    if isinstance(event, StudyFinished):
                        return
                continue
            if not proc.is_alive():
                # Drain what the child sent just before it exited.
                if receiver.poll(0):
                    continue
                break
            hang_limit = _hang_limit(hang_timeout_s, tracker)
            if hang_limit is not None and time.monotonic() - last_message > hang_limit:
                proc.kill()
                end_reason = tracker.hung(hang_limit)
                break
    finally:
        child.end(kill_after_s)
        if prewarm_next:
            prewarm(log_dir)

    reason = end_reason or "the study process " + _exit_reason(proc.exitcode, limit)
    if tracker.started is None:
        if cancel.cancelled:
            raise Cancelled("the study was cancelled before it started")
        raise ChildCrashed(f"{printable(spec.model.path)} could not be opened: {reason}.")
    yield from tracker.finish(reason, cancelled=cancel.cancelled)


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


class _Child:
    """A spawned study process, possibly started ahead of time (see ``prewarm``).

    It works in a private folder of its own (its current directory and TMPDIR), made here and
    removed here once it has ended, however it ended: a runtime that drops a temporary file in
    the current directory (ONNX Runtime's shape inference does) leaves nothing behind."""

    def __init__(self, proc: Any, receiver: Any, control: Any, log_path: str | None, folder: str) -> None:
        self.proc, self.receiver, self.control, self.log_path = proc, receiver, control, log_path
        self.folder = folder

    @classmethod
    def spawn(cls, log_path: str | None, allow_fork: bool = False) -> _Child:
        import multiprocessing as mp
        import tempfile

        ctx = mp.get_context(_start_method() if allow_fork else "spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        # Commands and Cancel travel down their own pipe, not a multiprocessing.Event: an Event whose
        # waiter died can block set() for ever, and a closed pipe also tells the child its parent is gone.
        control_in, control_out = ctx.Pipe(duplex=False)
        folder = tempfile.mkdtemp(prefix="quantbench-study-")
        proc = ctx.Process(
            target=_child_main, args=(sender, control_in, log_path, folder), name="quantbench-study", daemon=True
        )
        proc.start()
        sender.close()
        control_in.close()
        return cls(proc, receiver, control_out, log_path, folder)

    def request_stop(self) -> None:
        """Ask the child to stop the study (as Cancel does)."""
        with contextlib.suppress(BrokenPipeError, OSError):  # the child may already be gone
            self.control.send("stop")

    def end(self, kill_after_s: float) -> None:
        """Once a study is over: stop the child if it still runs (killing it after ``kill_after_s``),
        close its pipes and remove its private folder."""
        proc = self.proc
        if proc.is_alive():
            self.request_stop()
            proc.join(kill_after_s)
            if proc.is_alive():
                proc.kill()
        proc.join(1.0)
        self.receiver.close()
        self.control.close()
        self.remove_private_folder()

    def remove_private_folder(self) -> None:
        """Delete the child's folder and whatever it left there (call once the child has ended)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)

    def discard(self) -> None:
        """End an unused process: closing its pipe ends it once it has imported its runtimes; one still
        importing (the window quit right after a study started the next) is killed, since it holds nothing."""
        with contextlib.suppress(OSError):  # already closed: nothing to tell the process
            self.control.close()
        self.proc.join(DISCARD_WAIT_S)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1.0)
        self.remove_private_folder()


def _start_method() -> str:
    """"spawn": a fresh interpreter, safe whatever this process holds. Forking is only safe before
    this process has started a second thread (Qt, a thread pool) or loaded a library with threads
    of its own (numpy's BLAS, torch, onnxruntime), so only the launcher's first prewarm asks for it
    (``prewarm(allow_fork=True)``): on Linux, as the very first thing the window does, it saves the
    new interpreter's start-up, a few tenths of a second on the way to the demo's first result."""
    import sys

    heavy = {"numpy", "torch", "onnxruntime", "PySide6"}
    if sys.platform == "linux" and threading.active_count() == 1 and not heavy & set(sys.modules):
        return "fork"
    return "spawn"


#: How long an unused study process may take to end by itself before it is killed (see _Child.discard).
DISCARD_WAIT_S = 0.3

_warm: _Child | None = None
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
        _warm = _Child.spawn(log_path, allow_fork=allow_fork)


def discard_prewarmed() -> None:
    """End the prewarmed process, if any (on shutdown)."""
    global _warm
    with _warm_lock:
        child, _warm = _warm, None
    if child is not None:
        child.discard()


def _take_warm_child(log_path: str | None) -> _Child | None:
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


def _child_main(conn: Any, control: Any, log_path: str | None, folder: str | None = None) -> None:
    """Entry point of the spawned process: import the runtimes, wait for a study, run it, send every event."""
    import faulthandler

    if folder:
        _work_in(folder)

    if log_path:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        log = open(log_path, "a")  # noqa: SIM115 - must stay open until the process dies
        faulthandler.enable(log)
        # What runtimes print on their own (warnings, colour-coded log lines) goes to the log, not
        # to the user's terminal: the driver reports everything that matters in its own words.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    else:
        faulthandler.enable()
    # The parent decides about Ctrl-C; the child stops through the cancel event.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from core.engine.run import run_study

    _import_runtimes(stop_early=control.poll)
    try:
        command = control.recv()
    except (EOFError, OSError):
        return  # the parent went away before asking for a study
    if not (isinstance(command, tuple) and command and command[0] == "run"):
        return
    _, spec, workdir, memory_limit = command
    from core.memory_limit import apply_limit, is_allocation_failure

    apply_limit(memory_limit)
    token = CancelToken()

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):  # the parent closed the pipe or died: stop as well
            control.recv()
        token.cancel()

    threading.Thread(target=watch, daemon=True).start()
    try:
        for event in run_study(spec, token, workdir=workdir):
            conn.send(("event", event))
    except BadInput as exc:
        conn.send(("bad_input", str(exc)))
    except Cancelled:
        pass  # the driver asked for the stop: it expects no further message
    except Exception as exc:  # reported to the driver with its traceback
        if is_allocation_failure(exc):
            conn.close()
            os._exit(MEMORY_EXIT_CODE)  # loading the model or data ran into the ceiling: the driver says so
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _work_in(folder: str) -> None:
    """Make ``folder`` this process's current directory and its place for temporary files."""
    import tempfile

    os.chdir(folder)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder


def _import_runtimes(stop_early: Any = None) -> None:
    """What every study needs, imported while the process still waits for its study.

    ``stop_early()`` is asked between two modules: once a study has arrived, it starts at once
    and imports the rest as it needs them (a study handed over right at launch, as the demo's
    is, would otherwise wait a second for modules its first variant does not use)."""
    import importlib

    for name in ("numpy", "torch", "core.measures.metrics", "core.engine.timing", "core.runtimes.torch_runner", "onnx",
                 "onnxruntime", "core.runtimes.ort_runner", "core.schemes.ort_schemes"):
        if stop_early is not None and stop_early():
            return
        with contextlib.suppress(Exception):  # a missing optional runtime shows up later, with its own message
            importlib.import_module(name)
