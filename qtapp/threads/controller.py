"""Starts, cancels and shuts down studies; the only owner of the worker threads.

Each study gets a fresh id. Events are forwarded only while their study id is
the current one, so a late event from a replaced study can never reach the
charts.

A study *ends* when its StudyFinished (or its failure) arrives; its thread may
live on for a moment after that, closing the engine's child process. The
window is free again at the end of the study, and a new study may start while
the old thread winds down; ``shutdown`` and the ``threads_finished`` signal wait
for every thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.study.cancel import CancelToken
from core.study.events import Event, StudyFinished
from core.study.spec import StudySpec
from qtapp.threads.worker import RunStudy, StudyWorker, engine_run_study
from qtapp.window.errors import first_line, log_study_failure

#: Strong references to every thread a controller started, until it has finished. A QThread
#: whose Python object is collected while it runs aborts the process; with this, a controller
#: dropped too early leaves a thread that the tests can see and wait for instead.
_started_threads: dict[QThread, StudyWorker] = {}


def live_threads() -> list[QThread]:
    """Threads started by any controller that are still running (finished ones are let go)."""
    for thread in list(_started_threads):
        if not shiboken6.isValid(thread) or thread.isFinished():
            del _started_threads[thread]
    return [t for t in _started_threads if t.isRunning()]


@dataclass
class _Run:
    study_id: str
    thread: QThread
    worker: StudyWorker
    cancel: CancelToken
    ended: bool = False


class StudyController(QObject):
    #: An event of the current study, delivered in the GUI thread.
    event_received = Signal(object)
    #: The current study stopped with an error (one sentence).
    study_failed = Signal(str)
    #: True when a study starts; False when it has ended (finished, cancelled or failed).
    running_changed = Signal(bool)
    #: The last worker thread has finished (nothing left to wait for).
    threads_finished = Signal()

    def __init__(self, run_study: RunStudy = engine_run_study, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run_study = run_study
        self._current: _Run | None = None
        self._runs: dict[str, _Run] = {}  # every run whose thread has not finished
        self.dropped_events = 0

    @property
    def running(self) -> bool:
        """A study is under way (its end has not arrived yet)."""
        return self._current is not None and not self._current.ended

    @property
    def threads_alive(self) -> bool:
        """Some worker thread, current or winding down, has not finished."""
        return bool(self._runs)

    @property
    def study_id(self) -> str | None:
        return None if self._current is None else self._current.study_id

    @property
    def cancel_requested(self) -> bool:
        return self._current is not None and self._current.cancel.cancelled

    def start(self, spec: StudySpec, run_study: RunStudy | None = None) -> str:
        """Run ``spec`` in a new worker thread; returns the study id its events carry.

        ``run_study`` replaces the controller's engine for this study (e.g. in-process or isolated).
        """
        if self.running:
            raise RuntimeError("a study is already running; cancel it first")
        spec = replace(spec, study_id=uuid.uuid4().hex[:12])
        cancel = CancelToken()
        thread = QThread()
        thread.setObjectName(f"study-{spec.study_id}")
        worker = StudyWorker(spec, cancel, run_study or self._run_study)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event_emitted.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        worker.study_failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)
        run = _Run(spec.study_id, thread, worker, cancel)
        self._current = self._runs[spec.study_id] = run
        _started_threads[thread] = worker
        thread.start()
        self.running_changed.emit(True)
        return spec.study_id

    def cancel(self) -> None:
        """Ask the engine to stop at its next check; finished variants stay on screen."""
        if self._current is not None:
            self._current.cancel.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and block until every thread has finished (for quitting); True if they did."""
        for run in self._runs.values():
            run.cancel.cancel()
        finished = all(run.thread.wait(timeout_ms) for run in list(self._runs.values()))
        self._on_thread_finished()
        return finished

    @Slot(object)
    def _on_event(self, event: Event) -> None:
        if self._current is None or event.study_id != self._current.study_id:
            self.dropped_events += 1
            return
        self.event_received.emit(event)
        if isinstance(event, StudyFinished):
            self._end_current()

    @Slot(str, str)
    def _on_failed(self, study_id: str, message: str) -> None:
        if self._current is None or study_id != self._current.study_id:
            return
        # Logged whatever the cause; an error from the child process carries its traceback,
        # which belongs in the log, not in the one line the window shows.
        log_path = log_study_failure(study_id, message)
        shown = first_line(message)
        if shown != message.strip():
            shown = f"{shown} (the details are in {log_path})"
        self.study_failed.emit(shown)
        self._end_current()

    def _end_current(self) -> None:
        if self._current is not None and not self._current.ended:
            self._current.ended = True
            self.running_changed.emit(False)

    @Slot()
    def _on_thread_finished(self) -> None:
        for study_id, run in list(self._runs.items()):
            if run.thread.isRunning():
                continue
            del self._runs[study_id]
            _started_threads.pop(run.thread, None)
            run.worker.deleteLater()
            run.thread.deleteLater()
            if run is self._current:
                self._end_current()  # the thread ended without a StudyFinished (e.g. the engine crashed)
        if not self._runs:
            self.threads_finished.emit()
