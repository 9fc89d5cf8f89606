"""A read-only probe for timing the bundled window: when the latency histogram first paints with counts.

``packaging/time_first_histogram.py`` sets ``QUANTBENCH_FIRST_HISTOGRAM_FILE`` and starts the bundle;
the entry point then calls ``install``, which notes ``time.monotonic()`` (system-wide on Linux, so the
starting process can subtract its own start) at that first paint, writes it to the file and closes the
window. Without the variable nothing of this runs. It watches as ``tests/perf/first_result_child.py``
does for the installed package, so the two figures compare.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def install(path: str) -> None:
    """Watch the next main window's histogram; at its first paint with counts, write the time to ``path``.

    The watch goes in once the launcher has started its study process: importing Qt before would make
    that start spawn instead of fork, later than a user's ``quantbench --demo`` does."""
    import core.engine.isolation

    real_prewarm = core.engine.isolation.prewarm

    def prewarm(*args: Any, **kwargs: Any) -> None:
        real_prewarm(*args, **kwargs)
        core.engine.isolation.prewarm = real_prewarm
        _watch(path)

    core.engine.isolation.prewarm = prewarm


def _watch(path: str) -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer

    from qtapp.window.main_window import MainWindow

    original_init = MainWindow.__init__

    class PaintWatch(QObject):
        def __init__(self, window: Any) -> None:
            super().__init__(window)
            self.window, self.done = window, False

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
            histogram = self.window.results.histogram
            if (not self.done and event.type() == QEvent.Type.Paint
                    and any(histogram.counts(label).sum() > 0 for label in histogram.labels())):
                self.done = True
                Path(path).write_text(f"{time.monotonic()}\n")
                QTimer.singleShot(0, self.window.close)
            return False

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.results.histogram.viewport().installEventFilter(PaintWatch(self))

    MainWindow.__init__ = init  # type: ignore[method-assign]
