"""Past studies are named by model and date, and opening one sets up the panels (issue 14, item 17)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import datetime

import pytest
from fake_study import fake_run_study
from helpers import FAST_TIMING, close_window

from core.engine.run import demo_study_spec
from core.reports.names import study_date
from core.study.demo import DEMO_WEIGHTS
from core.study.events import StudyFinished
from core.study.result import StudyResult
from core.study.spec import ModelSpec, SchemeSpec, VariantSpec
from qtapp.models.stored_study import compare
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

LOAD_MS = 60_000
YEAR = datetime.now().year


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Local time is UTC, so a stored time stamp reads the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _study(study_id: str, model: str, created: str) -> StudyResult:
    events = list(fake_run_study(replace(demo_study_spec(FAST_TIMING), study_id=study_id)))
    finished = next(e for e in events if isinstance(e, StudyFinished))
    return replace(finished.result, study_id=study_id, created=created, model={"path": f"/models/{model}"})


def _engine(spec, cancel=None):
    """The fake study, ending as the real engine's does: with its spec and its model's path."""
    for event in fake_run_study(spec, cancel):
        if isinstance(event, StudyFinished):
            event = replace(event, result=replace(event.result, spec=spec.to_dict(), model={"path": spec.model.path}))
        yield event


def _window(qtbot) -> MainWindow:
    window = MainWindow(LIGHT, run_study=_engine)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_a_study_date_is_day_month_and_time_with_the_year_only_when_not_this_one():
    assert study_date(f"{YEAR}-12-07T14:02:31+00:00") == "7 Dec 14:02"
    assert study_date("2019-03-01T09:05:00Z") == "1 Mar 2019 09:05"
    assert study_date("not a time") == "not a time"


def test_compared_studies_are_labelled_by_date_under_their_model_everywhere(qtbot):
    a = _study("a1b2c3d4e5f6", "digits_cnn.pt", f"{YEAR}-12-07T14:02:00+00:00")
    b = _study("0f9e8d7c6b5a", "digits_cnn.pt", f"{YEAR}-12-08T09:10:00+00:00")
    window = _window(qtbot)
    try:
        window.history._show_comparison(compare([a, b]))
        results = window.results
        expected = [f"7 Dec 14:02 / {r.label}" for r in a.results] + [f"8 Dec 09:10 / {r.label}" for r in b.results]
        assert results.state.labels == expected
        assert [results.table.model.text(row, 0) for row in range(len(expected))] == expected  # table rows
        assert set(results.sizes.values()) == set(expected)  # the charts' labels
        names = "of digits_cnn.pt (7 Dec 14:02 and 8 Dec 09:10)"
        assert results.header.text().startswith(f"Comparing 2 studies {names}: ")
        assert window.windowTitle() == f"QuantBench — comparing 2 studies {names}"
        assert names in window.statusBar().currentMessage()
        for text in (results.header.text(), window.windowTitle(), *expected):
            assert "a1b2c3d4" not in text and "0f9e8d7c" not in text  # no hash ids
    finally:
        close_window(qtbot, window)


def test_studies_of_different_models_carry_model_and_date_and_a_short_id_only_on_a_tie():
    a = _study("a1b2c3d4e5f6", "digits_cnn.pt", f"{YEAR}-12-07T14:02:00+00:00")
    b = _study("0f9e8d7c6b5a", "lenet.onnx", f"{YEAR}-12-07T14:02:40+00:00")
    both = compare([a, b])
    assert both.result.results[0].label == "digits_cnn.pt · 7 Dec 14:02 / fp32"
    assert both.result.results[len(a.results)].label == "lenet.onnx · 7 Dec 14:02 / fp32"
    assert "(digits_cnn.pt · 7 Dec 14:02 and lenet.onnx · 7 Dec 14:02)" in both.header()

    twin = replace(b, model=dict(a.model))  # same model, same minute: the seconds tell them apart
    tied = compare([a, twin])
    assert tied.result.results[0].label == "14:02:00 / fp32"  # the same day: the time alone
    assert tied.result.results[len(a.results)].label == "14:02:40 / fp32"
    assert "of digits_cnn.pt on 7 Dec (14:02:00 and 14:02:40)" in tied.header()
    same = compare([a, replace(twin, created=a.created)])  # the same second: only the id tells them apart
    assert same.result.results[0].label == "14:02 (a1b2c3d4) / fp32"
    # A name given in the history is the study's name.
    named = compare([a, b], {a.study_id: "before pruning"})
    assert named.result.results[0].label == "before pruning / fp32"


def _record(qtbot, window: MainWindow, model_path: str) -> str:
    spec = replace(
        demo_study_spec(FAST_TIMING),
        model=ModelSpec(model_path, arch="demo"),
        variants=(VariantSpec(scheme=SchemeSpec("onnx-fp32")), VariantSpec(scheme=SchemeSpec("ort-int8-dynamic"))),
    )
    study_id = window.start_study(spec)
    assert study_id is not None
    qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=30_000)
    return study_id


def test_opening_a_past_study_sets_up_its_model_dataset_and_schemes_without_running(qtbot, home, tmp_path):
    model = tmp_path / "digits_cnn.pt"
    shutil.copy(DEMO_WEIGHTS, model)
    window = _window(qtbot)
    try:
        study_id = _record(qtbot, window, str(model))
        assert window.model_panel.model_spec() is None  # the panels were empty while it ran
        window.history.open_study(study_id)
        panel = window.model_panel
        qtbot.waitUntil(lambda: panel.loaded is not None and not window.schemes_panel.loading, timeout=LOAD_MS)
        qtbot.waitUntil(lambda: len(window.schemes_panel.selected()) == 2, timeout=LOAD_MS)
        assert panel.model_spec().path == str(model) and panel.model_spec().arch == "demo"
        assert window.dataset_panel.dataset_spec() == demo_study_spec(FAST_TIMING).dataset
        assert [s.id for s in window.schemes_panel.selected()] == ["onnx-fp32", "ort-int8-dynamic"]
        assert window.results.state.study_id == study_id and not window.controller.running  # shown, not run
        assert window.windowTitle() == "QuantBench — digits_cnn.pt · 1 Jan 2025 00:00"
        qtbot.waitUntil(lambda: not window.dataset_panel.busy, timeout=LOAD_MS)
        assert window.blocker() is None and window.run_panel.run_button.isEnabled()  # ready for Run
    finally:
        close_window(qtbot, window)


def test_a_past_study_whose_model_is_gone_says_so_in_the_model_panel(qtbot, home, tmp_path):
    model = tmp_path / "moved_away.pt"
    shutil.copy(DEMO_WEIGHTS, model)
    window = _window(qtbot)
    try:
        study_id = _record(qtbot, window, str(model))
        model.unlink()
        window.history.open_study(study_id)
        panel = window.model_panel
        qtbot.waitUntil(lambda: panel.error.isVisible(), timeout=LOAD_MS)
        assert panel.error.text() == (
            f"This study's model moved_away.pt no longer exists in {tmp_path}: "
            "open it where it is now to run the study again."
        )
        assert panel.loaded is None and not panel.busy and not window.controller.running
        assert window.results.state.study_id == study_id  # its numbers are still shown
        assert panel.arch.currentText() == "demo"  # the rest of its setup is shown
        assert window.dataset_panel.dataset_spec() == demo_study_spec(FAST_TIMING).dataset
        assert not window.run_panel.run_button.isEnabled()
        assert window.blocker() == "the study's model file no longer exists (see the Model panel)"
    finally:
        close_window(qtbot, window)
