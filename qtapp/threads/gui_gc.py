"""Cyclic garbage collection only in the GUI thread, in small steps.

Python runs its cycle collector in whichever thread happens to allocate. When
that is the study's worker thread and the garbage holds Qt objects (chart items
of the previous study, say), Qt objects get destroyed from the wrong thread,
which Qt reports as warnings or punishes with a crash. So automatic collection
is switched off and a GUI-thread timer collects instead.

A full (oldest-generation) pass over the objects torch and ONNX Runtime create
can take a few hundred milliseconds, which would freeze the window while a study
streams; so the timer only collects the young generations, and the owner asks
for a full pass (``collect_all``) at a quiet moment, such as the end of a study.
The survivors of a full pass are frozen out of later ones (``gc.freeze``).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

YOUNG_INTERVAL_MS = 250


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(YOUNG_INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        self._threshold = gc.get_threshold()
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    def collect(self) -> None:
        young, middle, _ = gc.get_count()
        if young > self._threshold[0]:
            gc.collect(0)
            if middle > self._threshold[1]:
                gc.collect(1)

    def collect_all(self) -> None:
        """A full pass, then freeze the survivors so later full passes stay short."""
        gc.collect()
        gc.freeze()
