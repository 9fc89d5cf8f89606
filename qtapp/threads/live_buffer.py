"""Collects events between redraws and hands them over at most ~15 times a second.

Applying an event to the study state is cheap; redrawing a chart is not. The
buffer turns a stream of events into a few batched redraws, started by a
single-shot timer so nothing runs while no events arrive. The end of a study
is handed over at once so the final view never waits for the timer.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core.study.events import Event, StudyFinished, StudyStarted

REDRAW_INTERVAL_MS = 80  # 12.5 redraws a second at most


class LiveBuffer(QObject):
    drained = Signal(list)

    def __init__(self, interval_ms: int = REDRAW_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[Event] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)

    @Slot(object)
    def push(self, event: Event) -> None:
        self._pending.append(event)
        if isinstance(event, (StudyStarted, StudyFinished)):
            self.flush()
        elif not self._timer.isActive():
            self._timer.start()

    @Slot()
    def flush(self) -> None:
        self._timer.stop()
        if self._pending:
            events, self._pending = self._pending, []
            self.drained.emit(events)

    def clear(self) -> None:
        self._timer.stop()
        self._pending = []
