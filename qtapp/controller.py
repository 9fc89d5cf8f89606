"""Starts, cancels and shuts down studies; the only owner of the worker thread.

Each study gets a fresh id. Events are forwarded only while their study id is
the current one, so a late event from a replaced study can never reach the
charts.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import replace

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.cancel import CancelToken
from core.events import Event
from core.spec import StudySpec
from qtapp.worker import RunStudy, StudyWorker, engine_run_study

#: Every QThread a controller started and that has not finished yet (the tests check it is empty).
_live_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def live_threads() -> list[QThread]:
    return [t for t in list(_live_threads) if shiboken6.isValid(t) and t.isRunning()]


class StudyController(QObject):
    #: An event of the current study, delivered in the GUI thread.
    event_received = Signal(object)
    #: The current study stopped with an error (one sentence).
    study_failed = Signal(str)
    #: True when a study starts, False once its thread has finished.
    running_changed = Signal(bool)

    def __init__(self, run_study: RunStudy = engine_run_study, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run_study = run_study
        self._thread: QThread | None = None
        self._worker: StudyWorker | None = None
        self._cancel: CancelToken | None = None
        self._study_id: str | None = None
        self.dropped_events = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def study_id(self) -> str | None:
        return self._study_id

    @property
    def cancel_requested(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled

    def start(self, spec: StudySpec, run_study: RunStudy | None = None) -> str:
        """Run ``spec`` in a new worker thread; returns the study id its events carry.

        ``run_study`` replaces the controller's engine for this study (e.g. in-process or isolated).
        """
        if self.running:
            raise RuntimeError("a study is already running; cancel it first")
        spec = replace(spec, study_id=uuid.uuid4().hex[:12])
        self._study_id = spec.study_id
        self._cancel = CancelToken()
        thread = QThread()
        thread.setObjectName(f"study-{spec.study_id}")
        worker = StudyWorker(spec, self._cancel, run_study or self._run_study)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event_emitted.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        worker.study_failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)
        self._thread, self._worker = thread, worker
        _live_threads.add(thread)
        thread.start()
        self.running_changed.emit(True)
        return spec.study_id

    def cancel(self) -> None:
        """Ask the engine to stop at its next check; finished variants stay on screen."""
        if self._cancel is not None:
            self._cancel.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and block until the thread has finished (for quitting); True if it did."""
        thread = self._thread
        if thread is None:
            return True
        self.cancel()
        finished = thread.wait(timeout_ms)
        if finished:
            self._on_thread_finished()
        return finished

    @Slot(object)
    def _on_event(self, event: Event) -> None:
        if event.study_id != self._study_id:
            self.dropped_events += 1
            return
        self.event_received.emit(event)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.study_failed.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return  # already handled by shutdown()
        thread, worker = self._thread, self._worker
        self._thread, self._worker = None, None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.running_changed.emit(False)
