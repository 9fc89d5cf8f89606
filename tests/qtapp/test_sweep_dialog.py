"""Study ▸ Run a sweep…: the Sweep view on real sweeps run here (two tiny studies, each in its own process).

Checked: the table fills in with the terminal's row texts as studies finish, a double-click opens the finished
study from the history, the same file again shows the studies skipped, Cancel stops a sweep midway, a bad sweep
file and a missing Ray are one sentence each, and the main window's Study menu opens the view.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.history.store import StudyStore
from core.sweep.outcome import TABLE_HEADERS, table_row
from qtapp.window.theme import LIGHT
from tests.core.test_sweep import sweep_specs, write_sweep

SWEEP_TIMEOUT_MS = 120_000
STATUS = TABLE_HEADERS.index("Status")


@pytest.fixture
def dialog(qtbot):
    from qtapp.window.sweep_dialog import SweepDialog

    d = SweepDialog(LIGHT)
    qtbot.addWidget(d)
    d.show()
    yield d
    assert d.shutdown()


def test_the_table_fills_in_and_a_finished_study_opens(qtbot, dialog, tmp_path: Path) -> None:
    dialog.file_edit.setText(str(write_sweep(tmp_path, sweep_specs(tmp_path))))
    recorded: list[str] = []
    dialog.study_recorded.connect(recorded.append)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        assert dialog.start()
        assert dialog.table.rowCount() == 2 and dialog.table.item(0, STATUS).text() == "queued"
    assert ended.args == ["finished"]
    assert [dialog.table.item(r, STATUS).text() for r in range(2)] == ["done", "done"]
    for row, outcome in dialog.outcomes.items():
        assert dialog.table.row_text(row) == table_row(outcome)  # the terminal's row, word for word
        assert outcome.placement["node"] == "here"
    assert sorted(recorded) == sorted(o.study_id for o in dialog.outcomes.values())
    assert {s.id for s in StudyStore().list_studies()} >= set(recorded)
    assert "2 studies: 2 done." in dialog.status.text()
    opens: list[str] = []
    dialog.study_opened.connect(opens.append)
    spot = dialog.table.visualItemRect(dialog.table.item(1, 0)).center()
    with qtbot.waitSignal(dialog.study_opened) as opened:
        qtbot.mouseClick(dialog.table.viewport(), _left_button(), pos=spot)  # a double-click as Qt sees one
        qtbot.mouseDClick(dialog.table.viewport(), _left_button(), pos=spot)
    assert opened.args == [dialog.outcomes[1].study_id]
    assert len(opens) == 1  # once per double-click

    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS):
        assert dialog.start()  # the same file again: both already in the history
    assert [dialog.table.item(r, STATUS).text() for r in range(2)] == ["skipped", "skipped"]
    dialog.table.selectRow(0)
    assert dialog.open_button.isEnabled()


def test_cancel_stops_the_sweep_midway(qtbot, dialog, tmp_path: Path) -> None:
    from tests.qtapp.helpers import SLOW_TIMING

    specs = [replace(s, timing=SLOW_TIMING) for s in sweep_specs(tmp_path)]
    dialog.file_edit.setText(str(write_sweep(tmp_path, specs)))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.table.item(0, STATUS).text() == "running", timeout=SWEEP_TIMEOUT_MS)
    with qtbot.waitSignal(dialog.sweep_ended, timeout=30_000) as ended:
        dialog.cancel_button.click()
    assert ended.args == ["cancelled"]
    assert dialog.table.item(1, STATUS).text() == "cancelled"
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_a_bad_file_and_a_missing_ray_are_one_sentence(qtbot, dialog, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "sweep.json"
    bad.write_text('{"studies": []}')
    dialog.file_edit.setText(str(bad))
    assert not dialog.start()
    assert dialog.status.text() == f'{bad}: the "studies" list is empty.'
    import core.sweep.where as where

    monkeypatch.setattr(where.importlib.util, "find_spec", lambda name, *a: None)
    dialog.place.setCurrentIndex(1)  # a local Ray instance
    assert dialog.status.text() == "Ray is not installed; install it with: pip install 'quantbench[cluster]'."
    assert not dialog.start()
    assert dialog.table.rowCount() == 0


def test_the_study_menu_opens_the_sweep_view(qtbot) -> None:
    from helpers import close_window

    from qtapp.window.main_window import MainWindow
    from qtapp.window.sweep_dialog import SweepDialog

    window = MainWindow(LIGHT)
    window.show()
    try:
        window.sweep_action.trigger()
        assert isinstance(window.sweep_dialog, SweepDialog) and window.sweep_dialog.isVisible()
        window.sweep_dialog.close()
    finally:
        close_window(qtbot, window)


def _left_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_the_run_panel_offers_targets_only_once_a_cluster_listed_some(qtbot) -> None:
    from core.sweep import Where
    from qtapp.panels.run_panel import RunPanel

    panel = RunPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.target_box.isHidden() and panel.target_where() is None
    cluster = Where(ray=True, address="10.0.0.5:6379")
    panel.set_targets(cluster, ["edge", "rpi5"])
    assert not panel.target_box.isHidden()
    assert [panel.target_box.itemText(i) for i in range(3)] == ["this machine", "target edge", "target rpi5"]
    assert panel.target_where() is None  # "this machine" stays the choice until the user picks a target
    panel.target_box.setCurrentIndex(2)
    assert panel.target_where() == Where(ray=True, address="10.0.0.5:6379", target="rpi5")
    panel.set_targets(cluster, [])  # a cluster without devices: no row
    assert panel.target_box.isHidden() and panel.target_where() is None
