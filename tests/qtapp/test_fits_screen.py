"""At 1280x800 nothing important is cut short and Run stays reachable (issue 14, item 14)."""

from __future__ import annotations

from dataclasses import asdict

from helpers import close_window
from PySide6.QtCore import QPoint

from core.study.spec import Thresholds
from qtapp.models.summary_columns import thresholds_text
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


def test_the_drift_warning_wraps_and_the_legend_is_whole_in_its_tooltip(qtbot):
    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    table = window.results.table
    legend = thresholds_text(asdict(Thresholds()))
    # The legend keeps one line under the table; every word of it is in its tooltip.
    assert table.thresholds.full_text() == legend and table.thresholds.toolTip() == legend
    assert window.results.drift.wordWrap()
    close_window(qtbot, window)


def test_run_and_cancel_are_inside_a_1280x800_window(qtbot):
    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    for button in (window.run_panel.run_button, window.run_panel.cancel_button):
        corner = button.mapTo(window, QPoint(button.width(), button.height()))
        assert button.isVisible() and 0 < corner.x() <= window.width() and 0 < corner.y() <= window.height()
    close_window(qtbot, window)
