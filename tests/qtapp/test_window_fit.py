"""At 1280x800 every setup control can be reached, Run and Cancel stay put, and the window
remembers its theme and the History dock's height (issue 14, items 14 and 16)."""

from __future__ import annotations

import pytest
from helpers import close_window
from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLineEdit, QWidget

from core.study.events import Progress, StudyStarted
from qtapp.window import window_memory
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT, theme_named

LOAD_MS = 60_000
LONG_LABEL = "prune-channels:ratio=0.35,int8=yes,samples=256 · mnist_cnn_float32_exported_from_keras_v2.onnx"


def _window(qtbot, size: tuple[int, int] = (1280, 800)) -> MainWindow:
    window = MainWindow(LIGHT)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


def _controls(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QAbstractScrollArea)
    return [w for w in root.findChildren(QWidget) if isinstance(w, kinds) and w.isVisibleTo(root)
            and not isinstance(w.parentWidget(), (QComboBox, QAbstractSpinBox))]  # a box's own line edit


def _bottom_right(widget: QWidget, window: MainWindow) -> QPoint:
    return widget.mapTo(window, QPoint(widget.width(), widget.height()))


def test_every_setup_control_scrolls_into_view_whole_at_1280x800(qtbot, app_look):
    window = _window(qtbot)
    try:
        qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_MS)
        for row in window.schemes_panel.rows.values():  # every scheme's options on show: the longest column
            if row.check.isEnabled():
                row.check.setChecked(True)
        qtbot.wait(50)
        area = window.setup_area
        viewport = area.viewport().rect()
        controls = _controls(area.widget())
        assert len(controls) > 30
        for control in controls:
            # Scrolled as far as the column scrolls (ensureWidgetVisible shows a line edit's cursor only).
            top = control.mapTo(area.widget(), QPoint(0, 0)).y()
            area.verticalScrollBar().setValue(min(top, area.verticalScrollBar().maximum()))
            shown = QRect(control.mapTo(area.viewport(), QPoint(0, 0)), control.size())
            assert viewport.contains(shown), f"{type(control).__name__} {control.toolTip()[:50]!r} is cut: {shown}"
        # Run and Cancel below the scrolling column, whole, inside the window.
        for button in (window.run_panel.run_button, window.run_panel.cancel_button):
            corner = _bottom_right(button, window)
            assert button.isVisible() and corner.x() <= window.width() and corner.y() <= window.height()
    finally:
        close_window(qtbot, window)


def test_a_long_variant_label_keeps_one_line_and_run_where_it_was(qtbot):
    window = _window(qtbot)
    try:
        panel = window.run_panel
        panel.set_running(True)
        qtbot.wait(20)
        run_before = _bottom_right(panel.run_button, window)
        step_height = panel.step.height()
        started = StudyStarted("s1", model={}, dataset={}, variants=["fp32", LONG_LABEL], environment={})
        panel.apply_events([started, Progress("s1", LONG_LABEL, "calibrating", 120, 256, "")])
        qtbot.wait(100)
        assert _bottom_right(panel.run_button, window) == run_before  # Run and Cancel did not move
        assert panel.step.height() == step_height  # one line, not three
        assert LONG_LABEL in panel.step.text() and LONG_LABEL in panel.step.toolTip()
        shown = panel.step.shown_text()
        assert "…" in shown and shown.startswith("calibrating") and shown.endswith("120/256")
        panel.set_running(False)
    finally:
        close_window(qtbot, window)


def test_a_long_variant_file_name_is_elided_in_the_middle(qtbot, tmp_path):
    from core.study.demo import DEMO_WEIGHTS

    window = _window(qtbot)
    try:
        name = "digits_cnn_float32_exported_then_pruned_channels_ratio_0.35_and_quantized_int8_v2.pt"
        (tmp_path / name).write_bytes(DEMO_WEIGHTS.read_bytes())
        window.model_panel.variant_files.add(str(tmp_path / name))  # no model open: nothing to check it against
        listed = window.model_panel.variant_files.list
        assert listed.count() == 1 and listed.item(0).toolTip() == str(tmp_path / name)
        # One line, '…' in the middle: both the start of the name and its ending stay in sight.
        assert listed.textElideMode() == Qt.TextElideMode.ElideMiddle and not listed.wordWrap()
        row = listed.visualItemRect(listed.item(0))
        assert row.width() <= listed.viewport().width() < listed.fontMetrics().horizontalAdvance(name)
        assert listed.horizontalScrollBar().maximum() == 0  # elided, not scrolled sideways
    finally:
        close_window(qtbot, window)


@pytest.fixture
def memory(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "memory.ini"), QSettings.Format.IniFormat)


def test_the_theme_chosen_in_view_comes_back_unless_the_command_line_names_one(qtbot, memory):
    first = _window(qtbot, (800, 700))
    try:
        assert window_memory.start_theme(None, memory) == "light"  # nothing remembered: light
        first.dark_action.trigger()  # View ▸ Dark theme
        assert first.theme.name == "dark"
        window_memory.remember(first, memory)
    finally:
        first.set_theme("light")  # the application's palette back for the other tests
        close_window(qtbot, first)

    assert window_memory.start_theme(None, memory) == "dark"
    assert window_memory.start_theme("light", memory) == "light"  # --theme light wins for this start
    second = MainWindow(theme_named(window_memory.start_theme(None, memory)))
    try:
        assert second.theme.name == "dark" and second.dark_action.isChecked()
    finally:
        close_window(qtbot, second)


def test_the_history_dock_reopens_as_tall_as_it_was_left(qtbot, memory, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path / "home"))
    first = _window(qtbot, (800, 760))
    try:
        first.history.dock.show()
        qtbot.waitUntil(lambda: first.history.dock.height() > 0)
        first.resizeDocks([first.history.dock], [320], Qt.Orientation.Vertical)
        qtbot.waitUntil(lambda: abs(first.history.dock.height() - 320) <= 2)
        window_memory.remember(first, memory)
    finally:
        close_window(qtbot, first)

    second = MainWindow(LIGHT)
    try:
        assert window_memory.restore(second, (800, 760), memory)
        second.show()
        qtbot.waitExposed(second)
        qtbot.waitUntil(lambda: second.history.dock.isVisible())
        qtbot.wait(50)
        assert abs(second.history.dock.height() - 320) <= 2  # not back to the first-time strip
        # Hidden and shown again (Ctrl+H), it keeps the user's height too.
        second.history.dock.hide()
        second.history.dock.show()
        qtbot.wait(50)
        assert abs(second.history.dock.height() - 320) <= 2
    finally:
        close_window(qtbot, second)



def test_no_results_tab_widens_the_window(qtbot):
    """The Flipped samples tab put its one-line summary beside the variant box: 1,059 px of minimum width,
    and the window grew from 1280 to 1477 px when the tab was opened, past the edge of a 1280-px screen."""
    from dataclasses import replace

    from fake_study import DEFAULT_VARIANTS, fake_run_study
    from helpers import fake_spec

    window = _window(qtbot)
    try:
        # A variant that flips nothing: its summary names it ("… predicts the same class as the baseline …").
        long_named = (DEFAULT_VARIANTS[0], replace(DEFAULT_VARIANTS[1], label=LONG_LABEL), *DEFAULT_VARIANTS[2:])
        window.results.apply_events(list(fake_run_study(fake_spec(), variants=long_named)))
        tabs = window.results.tabs
        for index in range(tabs.count()):
            tabs.setCurrentIndex(index)
            window.results.run_pending()
            flipped = window.results.flipped
            flipped.variant.setCurrentIndex(max(0, flipped.variant.findData(LONG_LABEL)))
            qtbot.wait(50)
            assert window.width() == 1280, f"the {tabs.tabText(index)} tab widened the window"
            assert window.minimumSizeHint().width() <= 1280
    finally:
        close_window(qtbot, window)


def test_the_verdict_legend_never_covers_the_tables_last_row(qtbot):
    """With the drift warning wrapped to more lines in a narrower window, the results' top part was squeezed and
    the one-line verdict legend was drawn over the last row (the BAD one, in the demo)."""
    from fake_study import fake_run_study, with_paired_rounds
    from helpers import fake_spec

    window = _window(qtbot)
    try:
        events = list(fake_run_study(fake_spec()))
        drifted, _ = with_paired_rounds(events[-1])
        window.results.apply_events([*events[:-1], drifted])
        window.results.run_pending()
        table = window.results.table
        window.history.dock.show()  # the History dock takes its height from the results
        for size in ((1280, 800), (1000, 640), (900, 600)):
            window.resize(*size)
            qtbot.wait(50)
            assert window.results.drift.isVisible()
            view_bottom = table.view.mapTo(window, QPoint(0, table.view.height())).y()
            assert table.thresholds.mapTo(window, QPoint(0, 0)).y() >= view_bottom, size
    finally:
        close_window(qtbot, window)
