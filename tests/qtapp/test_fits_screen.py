"""At 1280x800 nothing important is cut short and Run stays reachable (issue 14, item 14)."""

from __future__ import annotations

from dataclasses import asdict

from fake_study import DEFAULT_VARIANTS, FakeVariant, fake_run_study, with_paired_rounds
from helpers import close_window, fake_spec
from PySide6.QtCore import QPoint, Qt

from core.measures.drift_notes import PAIRED_MARK
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


def test_run_and_cancel_are_inside_a_1280x800_window(qtbot, app_look):
    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    for button in (window.run_panel.run_button, window.run_panel.cancel_button):
        corner = button.mapTo(window, QPoint(button.width(), button.height()))
        assert button.isVisible() and 0 < corner.x() <= window.width() and 0 < corner.y() <= window.height()
    close_window(qtbot, window)


def test_a_1280x800_window_is_1280_wide_and_its_table_shows_verdict_speed_and_size(qtbot, app_look):
    """The setup column and every results tab fit beside each other at 1280 px (a wider minimum would
    push the window past a laptop's screen), and a finished study's table, with a long scheme label, an
    accuracy interval and the paired rounds' extra column, shows what each verdict weighs without scrolling."""
    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    assert window.minimumSizeHint().width() <= 1280 and window.width() == 1280
    variants = (*DEFAULT_VARIANTS[:5], FakeVariant("prune-channels:ratio=0.35", 0.2, 0.43, 0.13))
    events = list(fake_run_study(fake_spec(), variants=variants))
    final, _ = with_paired_rounds(events[-1])
    pruned = final.result.results[-1]
    pruned.metrics["accuracy_delta_ci95"] = (-0.162, -0.098)
    results = window.results
    results.apply_events([*events[:-1], final])
    results.run_pending()
    qtbot.wait(50)
    model, view = results.table.model, results.table.view
    assert results.drift.isVisible()
    titles = [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in range(model.columnCount())]
    for title in ("Variant", "Verdict", "Acc.", "Δ acc.", f"Speed {PAIRED_MARK}", "Size"):
        column = titles.index(title)
        right = view.columnViewportPosition(column) + view.columnWidth(column)
        assert view.horizontalScrollBar().value() == 0 and right <= view.viewport().width(), title
    row = results.state.labels.index(pruned.label)
    assert "[−16.2, −9.8]" in model.text(row, titles.index("Δ acc."))
    # A label too long for its column keeps both ends: the scheme and its parameters.
    assert view.textElideMode() == Qt.TextElideMode.ElideMiddle
    close_window(qtbot, window)
