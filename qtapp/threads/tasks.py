"""Short blocking jobs (loading a model or a dataset) run off the GUI thread.

A job is a plain function; its return value or its error comes back to the GUI
thread through a queued signal. Loading can take seconds (torch and ONNX
Runtime imports, session creation) and holds the GIL in places, so it must
never run in a slot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from core.errors import QuantBenchError

log = logging.getLogger(__name__)

BACKGROUND_NICE = 5  # gently: a busy machine must not starve the loading altogether

_runners: weakref.WeakSet[TaskRunner] = weakref.WeakSet()


def busy_runners() -> list[TaskRunner]:
    # A runner whose window was deleted has no pool left to be busy.
    return [r for r in list(_runners) if shiboken6.isValid(r) and r.active()]


class _Relay(QObject):
    done = Signal(int, bool, object)  # job id, ok, result or message


class _Job(QRunnable):
    def __init__(self, job_id: int, fn: Callable[[], Any], relay: _Relay,
                 superseded: threading.Event | None = None) -> None:
        super().__init__()
        self._job_id, self._fn, self._relay, self._superseded = job_id, fn, relay, superseded
        self.setAutoDelete(True)

    def run(self) -> None:
        if self._superseded is not None and self._superseded.is_set():
            return  # a newer job of the same name was submitted before this one started
        _lower_priority()
        try:
            result = self._fn()
        except QuantBenchError as exc:
            self._relay.done.emit(self._job_id, False, str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of dying in a pool thread
            log.exception("background job failed")
            self._relay.done.emit(self._job_id, False, f"{type(exc).__name__}: {exc}")
        else:
            self._relay.done.emit(self._job_id, True, result)


def _lower_priority() -> None:
    """Nice this pool thread: loading for display must not steal CPU from a study being timed."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class TaskRunner(QObject):
    """A private pool; ``submit`` returns a job id, the callbacks run in the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._callbacks: dict[int, tuple[Callable[[Any], None], Callable[[str], None]]] = {}
        self._next_id = 0
        self._held: list[_Job] | None = None  # jobs waiting for ``release`` (None: not holding)
        self._sealed = False  # holding, but no longer adding to what is held
        #: name -> (job id, its "superseded" flag) of the latest job submitted under that name
        self._latest: dict[str, tuple[int, threading.Event]] = {}
        _runners.add(self)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[str], None],
               replaces: str | None = None) -> int:
        """Run ``fn`` in the pool; ``on_done(result)`` or ``on_error(message)`` follow in the GUI thread.

        ``replaces`` names what the job computes (say "model"): a job submitted earlier under the
        same name is superseded. It is skipped if it has not started yet, and its callbacks are
        never called. Without it, a user clicking about queues every superseded load behind the
        one they want, seconds each with two pool threads.
        """
        self._next_id += 1
        self._callbacks[self._next_id] = (on_done, on_error)
        superseded = None
        if replaces is not None:
            previous = self._latest.get(replaces)
            if previous is not None:
                previous[1].set()
                self._callbacks.pop(previous[0], None)
            superseded = threading.Event()
            self._latest[replaces] = (self._next_id, superseded)
        job = _Job(self._next_id, fn, self._relay, superseded)
        if self._held is not None and not self._sealed:
            self._held.append(job)
        else:
            self._pool.start(job)
        return self._next_id

    def hold(self) -> None:
        """Queue the jobs submitted from now on until ``release`` (e.g. while a study is timed:
        loading torch for a panel on the other core would share the machine with the timing)."""
        if self._held is None:
            self._held, self._sealed = [], False

    def seal(self) -> None:
        """Keep what is held for ``release``, but run jobs submitted from now on at once (what the
        user asks for next, say opening another model, must not wait for the study to end)."""
        if self._held is not None:
            self._sealed = True

    def release(self) -> None:
        """Start the held jobs, in the order they were submitted."""
        held, self._held, self._sealed = self._held or [], None, False
        for job in held:
            self._pool.start(job)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def active(self) -> int:
        return self._pool.activeThreadCount()

    def pending(self) -> int:
        """Jobs whose result has not been delivered yet."""
        return len(self._callbacks)

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until every job has run (used when quitting)."""
        return self._pool.waitForDone(timeout_ms)

    @Slot(int, bool, object)
    def _deliver(self, job_id: int, ok: bool, payload: object) -> None:
        callbacks = self._callbacks.pop(job_id, None)
        if callbacks is None:
            return
        on_done, on_error = callbacks
        if ok:
            on_done(payload)
        else:
            on_error(str(payload))
