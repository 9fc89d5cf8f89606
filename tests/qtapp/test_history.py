"""The History panel: studies the window runs are recorded, listed, reopened, compared and edited."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from fake_study import fake_run_study
from helpers import FAST_TIMING, close_window, fake_spec
from PySide6.QtWidgets import QMessageBox

from core.engine.run import demo_study_spec
from core.history.store import StudyStore
from core.study.events import StudyFinished
from core.study.spec import SchemeSpec, VariantSpec
from qtapp.panels.history_panel import BEST, MODEL, NAME, NOTE, STATUS, VARIANTS
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    monkeypatch.setenv("QUANTBENCH_HOME", str(folder))
    return folder


def _window(qtbot, **kwargs) -> MainWindow:
    win = MainWindow(LIGHT, **kwargs)
    win.resize(1280, 900)
    win.show()
    return win


def _spec(*schemes: str):
    return replace(demo_study_spec(FAST_TIMING), variants=tuple(VariantSpec(scheme=SchemeSpec(s)) for s in schemes))


def _run(qtbot, window, spec, first: bool = False) -> StudyFinished:
    seen: list = []
    window.controller.event_received.connect(seen.append)
    if first:
        window.open_demo(start=True, spec=spec)  # starts once the panels have loaded
    else:
        assert window.start_study(spec) is not None
    qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=120_000)
    qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=30_000)
    window.controller.event_received.disconnect(seen.append)
    return next(e for e in seen if isinstance(e, StudyFinished))


def _show_history(qtbot, window, count: int) -> None:
    panel = window.history.panel
    window.history.dock.show()
    qtbot.waitUntil(lambda: len(panel.rows) == count and not panel.busy, timeout=20_000)


def _cell(panel, row: int, col: int) -> str:
    return panel.table.item(row, col).text()


def test_studies_are_recorded_listed_reopened_and_compared(qtbot, home):
    window = _window(qtbot)
    try:
        a = _run(qtbot, window, _spec("onnx-fp32", "ort-int8-dynamic"), first=True).result
        b = _run(qtbot, window, _spec("ort-int8-static")).result
        panel = window.history.panel
        _show_history(qtbot, window, 2)
        # Newest first, finished, every variant counted, from the store the window wrote.
        assert [r.summary.id for r in panel.rows] == [b.study_id, a.study_id]
        assert [_cell(panel, i, STATUS) for i in range(2)] == ["finished", "finished"]
        assert _cell(panel, 1, VARIANTS) == "3/3" and _cell(panel, 0, VARIANTS) == "2/2"
        assert _cell(panel, 1, MODEL) == "digits_cnn.pt"
        graded = [r for r in a.results[1:] if r.verdict is not None]
        assert _cell(panel, 1, BEST).split(" ")[0] in {r.verdict.overall.value.upper() for r in graded}
        stored = StudyStore(home).load_study(a.study_id)
        assert [r.label for r in stored.results] == [r.label for r in a.results]

        # Open A: the results view shows the stored numbers, exactly as when A ran.
        panel.select_ids([a.study_id])
        panel.open_button.click()
        results = window.results
        qtbot.waitUntil(lambda: results.state.study_id == a.study_id, timeout=10_000)
        assert results.state.labels == [r.label for r in stored.results]
        for row, r in enumerate(stored.results):
            shown = results.histogram.counts(r.label).sum() + results.histogram.beyond(r.label)  # +N past the axis
            assert shown == len(r.samples_ms) == r.latency.n
            assert results.histogram.marks(r.label) == pytest.approx((r.latency.p50, r.latency.p99))
            assert results.sizes.values()[r.label] == r.size_bytes
            np.testing.assert_array_equal(results.matrices.cells(r.label), np.asarray(r.metrics["confusion_matrix"]))
            assert results.table.model.text(row, 2) == f"{r.metrics['accuracy'] * 100:.1f} %"
        assert window.history.shown_ids == [a.study_id]

        # Compare A and B: every variant of both, labelled "study / variant", each its own colour.
        panel.select_ids([a.study_id, b.study_id])
        assert panel.compare_button.isEnabled()
        panel.compare_button.click()
        qtbot.waitUntil(lambda: len(results.state.labels) == 5, timeout=10_000)
        from core.reports.names import row_prefixes

        prefixes = row_prefixes([a, b])
        ta, tb = prefixes[a.study_id], prefixes[b.study_id]
        assert ta != tb and not ta.startswith(a.study_id[:8])  # named by when they ran (an id only breaks a tie)
        expected = [f"{ta} / {r.label}" for r in a.results] + [f"{tb} / {r.label}" for r in b.results]
        assert results.state.labels == expected
        assert set(results.sizes.values()) == set(expected)
        assert len({window.palette_.hex(label) for label in expected}) == 5
        # The bubble sits at the latency the table shows: the paired rounds' median when B's machine moved.
        from core.measures.drift_notes import paired_p50_ms

        expected_ms = paired_p50_ms(b.timing, b.results[1].label) or b.results[1].latency.p50
        assert results.scatter.points()[f"{tb} / ort-int8-static"][0] == pytest.approx(expected_ms)
        assert "Comparing 2 studies" in results.header.text()
        # B's variant is measured against B's own baseline.
        assert results.state.baseline_for(f"{tb} / ort-int8-static").label == f"{tb} / fp32"
        assert results.table.model.text(3, 1) == "baseline" and results.table.model.text(3, 3) == ""
        assert results.sizes.bar_text(f"{tb} / fp32").endswith("baseline")

        # Re-run B: its setup goes back into the panels and runs again as a new study.
        panel.select_ids([b.study_id])
        panel.rerun_button.click()
        qtbot.waitUntil(lambda: window.controller.running, timeout=60_000)
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=120_000)
        qtbot.waitUntil(lambda: len(panel.rows) == 3 and _cell(panel, 0, STATUS) == "finished", timeout=20_000)
        again = StudyStore(home).load_study(panel.rows[0].summary.id)
        assert [r.label for r in again.results] == [r.label for r in b.results]
        assert again.spec["timing"] == b.spec["timing"]
        assert [s.id for s in window.schemes_panel.selected()] == ["ort-int8-static"]
    finally:
        close_window(qtbot, window)


def test_rename_note_and_delete_go_through_the_store(qtbot, home, monkeypatch):
    window = _window(qtbot, run_study=fake_run_study)
    try:
        first = window.start_study(fake_spec())
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        second = window.start_study(fake_spec())
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        panel = window.history.panel
        _show_history(qtbot, window, 2)
        assert _cell(panel, 0, VARIANTS) == "6/6, 1 failed"  # five measured, one failed: all six finished
        # Several variants graded best: the first is named and the others counted (it is not the best of them).
        best = _cell(panel, 0, BEST)
        assert best.startswith(("GOOD (", "ACCEPTABLE (")) and " +" in best, best
        panel.rename(first, "int8 trial")
        panel.set_note(first, "before the\nthreading fix")
        store = StudyStore(home)
        qtbot.waitUntil(lambda: store.summary(first).note != "" and not panel.busy, timeout=10_000)
        qtbot.waitUntil(lambda: _cell(panel, 1, NOTE) == "before the threading fix", timeout=10_000)
        assert store.summary(first).name == "int8 trial" and store.summary(first).note == "before the\nthreading fix"
        assert _cell(panel, 1, NAME) == "int8 trial"
        # Delete asks first; "No" keeps the study.
        panel.select_ids([second])
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
        panel.delete_button.click()
        assert not panel.busy and len(panel.rows) == 2
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        panel.delete_button.click()
        qtbot.waitUntil(lambda: len(panel.rows) == 1 and not panel.busy, timeout=10_000)
        assert [s.id for s in store.list_studies()] == [first]
    finally:
        close_window(qtbot, window)


def test_a_broken_history_warns_and_the_study_goes_on(qtbot, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("QUANTBENCH_HOME", str(not_a_folder))
    window = _window(qtbot, run_study=fake_run_study)
    try:
        window.start_study(fake_spec())
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        assert window.results.state.finished and len(window.results.state.finished_results()) == 5
        warning = window.history.store_warning
        assert warning.isVisible() and "not recorded" in warning.text()
        assert "home-is-a-file" in warning.toolTip()
    finally:
        close_window(qtbot, window)


def test_a_running_study_is_listed_as_running(qtbot, home):
    def slow(spec, cancel):
        return fake_run_study(spec, cancel, delay_s=0.05)

    window = _window(qtbot, run_study=slow)
    try:
        window.history.dock.show()
        study_id = window.start_study(fake_spec())
        panel = window.history.panel
        qtbot.waitUntil(lambda: bool(panel.rows) and panel.rows[0].summary.id == study_id, timeout=10_000)
        assert _cell(panel, 0, STATUS) == "running"
        assert not panel.open_button.isEnabled()  # the results view belongs to the live study
        window.cancel_study()
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        qtbot.waitUntil(lambda: _cell(panel, 0, STATUS) == "cancelled", timeout=10_000)
    finally:
        close_window(qtbot, window)
