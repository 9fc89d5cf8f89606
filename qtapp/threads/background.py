"""The one background job a dialog runs at a time (the budget search, a sweep of studies, the calibration and
batch-size sweeps): a worker QObject on a QThread of its own, kept referenced while it runs and joined on close.

The worker has a ``run`` slot that does the whole job and emits one of its ``ends`` signals when it returns; the
thread's event loop stops there and the worker is deleted on its own thread. Closing a dialog cancels its job
(through the CancelToken the dialog gave the worker) and waits for the thread, so no job outlives its window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread

#: How long closing a dialog waits for its cancelled job (a search or sweep stops within about a second).
SHUTDOWN_WAIT_MS = 30_000


class BackgroundJob:
    """The dialog's current worker and its thread (None between jobs)."""

    def __init__(self) -> None:
        self.thread: QThread | None = None
        self.worker: QObject | None = None

    def attach(self, name: str, worker: QObject, ends: Iterable[Any]) -> QThread:
        """Move ``worker`` to a new thread named ``name`` whose loop stops on any of the ``ends`` signals; the
        caller connects the worker's other signals, then calls ``start()``."""
        self.join()  # the previous job has ended; its thread may still be winding down
        thread = QThread()
        thread.setObjectName(name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        for signal in ends:
            signal.connect(thread.quit)
        thread.finished.connect(worker.deleteLater)
        # Both kept: an unreferenced worker or thread would be collected while it runs.
        self.thread, self.worker = thread, worker
        return thread

    def start(self) -> None:
        if self.thread is not None:
            self.thread.start()

    @property
    def alive(self) -> bool:
        """Whether the job's thread is still running."""
        return self.thread is not None and shiboken6.isValid(self.thread) and not self.thread.isFinished()

    def join(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Wait for the job's thread to end; True when no thread is left running."""
        thread = self.thread
        if thread is None or not shiboken6.isValid(thread):
            return True
        # Called here, not queued: the GUI thread is about to block in wait(). It takes effect once the job
        # returns to the thread's loop.
        thread.quit()
        finished = thread.wait(timeout_ms)
        if finished:
            self.thread = self.worker = None
        return finished
