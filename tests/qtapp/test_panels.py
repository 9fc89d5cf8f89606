"""The setup panels with real files: model info, scheme availability and options, variant files,
recent models, drag and drop, themes."""

from __future__ import annotations

import pytest
from helpers import close_window
from PySide6.QtCore import Qt

from core.study.demo import DEMO_ONNX, DEMO_WEIGHTS
from core.study.spec import DatasetSpec, SchemeSpec
from qtapp.window import recent_files
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import DARK, LIGHT


@pytest.fixture
def window(qtbot):
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _loaded(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not (window.model_panel.busy or window.dataset_panel.busy), timeout=60_000)
    qtbot.waitUntil(lambda: bool(window.schemes_panel.rows), timeout=60_000)


def test_onnx_model_shows_its_signature_and_disables_torch_schemes(qtbot, window):
    window.model_panel.open_path(str(DEMO_ONNX))
    _loaded(qtbot, window)
    info = window.model_panel.info.text()
    for part in ("onnx", "input [batch×1×8×8] float32", "logits [batch×10] float32", "226,570", "909 kB"):
        assert part in info
    rows = window.schemes_panel.rows
    torch_row = rows["torch-int8-dynamic"]
    assert not torch_row.check.isEnabled()
    assert torch_row.reason.isVisible() and "PyTorch" in torch_row.reason.text()
    assert rows["ort-int8-static"].check.isEnabled()
    assert rows["fp32"].check.isChecked() and not rows["fp32"].check.isEnabled()  # always run
    assert rows["ort-int8-static"].description.toolTip().startswith("ort-int8-static: ")


def test_scheme_options_become_spec_parameters(qtbot, window):
    window.model_panel.open_path(str(DEMO_ONNX))
    window.dataset_panel.set_spec(DatasetSpec.parse("builtin:digits"))
    _loaded(qtbot, window)
    row = window.schemes_panel.rows["ort-int8-static"]
    row.check.setChecked(True)
    assert row.options.isVisible()
    row.editors["calibration"].setCurrentText("entropy")
    row.editors["samples"].setText("64")
    wanted = SchemeSpec("ort-int8-static", (("samples", "64"), ("calibration", "entropy")))
    assert window.schemes_panel.selected() == [wanted]
    window.model_panel.variant_files.add(str(DEMO_ONNX))
    spec = window.study_spec()
    labels = [v.label for v in spec.variants]
    assert labels == ["ort-int8-static:samples=64,calibration=entropy", "file:digits_cnn.onnx"]
    assert spec.dataset == DatasetSpec.parse("builtin:digits")
    # The panels can show a spec again (the demo uses this).
    window.schemes_panel.set_selected([SchemeSpec("ort-fp16")])
    assert [s.id for s in window.schemes_panel.selected()] == ["ort-fp16"]


def test_an_option_the_scheme_cannot_take_is_marked_and_keeps_run_disabled(qtbot, window):
    window.model_panel.open_path(str(DEMO_ONNX))
    window.dataset_panel.set_spec(DatasetSpec.parse("builtin:digits"))
    _loaded(qtbot, window)
    run = window.run_panel.run_button
    window.schemes_panel.rows["ort-fp16"].check.setChecked(True)
    row = window.schemes_panel.rows["ort-int8-static"]
    row.check.setChecked(True)
    assert window.blocker() is None and run.isEnabled()
    samples = row.editors["samples"]
    samples.setText("lots")
    assert samples.property("invalid") is True
    assert row.option_error.isVisible()
    assert row.option_error.text() == "Samples must be a whole number, not 'lots'."
    assert window.blocker() == "ort-int8-static: samples must be a whole number, not 'lots'"
    assert not run.isEnabled() and "samples must be a whole number" in run.toolTip()
    row.check.setChecked(False)  # an unticked scheme's options do not matter
    assert window.blocker() is None and run.isEnabled()
    row.check.setChecked(True)
    samples.setText("64")
    assert samples.property("invalid") is False and not row.option_error.isVisible()
    assert window.blocker() is None and run.isEnabled()
    # A hand-edited project: a made-up choice is shown as it is and marked, an unknown option is said and left
    # out; picking a real choice takes the made-up one out of the list.
    window.schemes_panel.set_selected([SchemeSpec("ort-int8-static", (("calibration", "median"), ("colour", "blue")))])
    calibration = row.editors["calibration"]
    assert calibration.currentText() == "median" and calibration.property("invalid") is True
    assert "calibration must be one of minmax, entropy, percentile, not 'median'" in (window.blocker() or "")
    assert "left out: colour=blue" in row.option_error.text()
    calibration.setCurrentText("entropy")
    assert window.blocker() is None and run.isEnabled()
    assert [calibration.itemText(i) for i in range(calibration.count())] == ["minmax", "entropy", "percentile"]
    assert window.schemes_panel.selected() == [SchemeSpec("ort-int8-static", (("calibration", "entropy"),))]
    assert "left out: colour=blue" in row.option_error.text()  # still said: that option is not in the study


def test_more_threads_than_cores_keeps_run_disabled_and_the_seed_is_never_negative(qtbot, window):
    import os

    window.open_demo(start=False)
    _loaded(qtbot, window)
    run = window.run_panel.run_button
    assert window.blocker() is None and run.isEnabled()
    cores = os.cpu_count() or 1
    window.run_panel.threads.setValue(cores + 1)
    assert window.blocker() == f"{cores + 1} threads are more than the {cores} logical cores of this machine " \
                               f"(at most {cores})"
    assert not run.isEnabled()
    window.run_panel.threads.setValue(cores)
    assert window.blocker() is None and run.isEnabled()
    window.run_panel.seed_box.setValue(-5)
    assert window.run_panel.seed() == 0  # numpy's generators take no negative seed


def test_recent_models_and_dropped_files(qtbot, window):
    window.open_dropped([str(DEMO_WEIGHTS), str(DEMO_ONNX)])
    assert window.model_panel.busy
    _loaded(qtbot, window)
    # A bare state dict needs its architecture: the panel reports it instead of guessing.
    assert window.model_panel.problem() is not None
    window.model_panel.arch.setCurrentText("demo")
    window.model_panel.arch.lineEdit().editingFinished.emit()
    _loaded(qtbot, window)
    assert window.model_panel.problem() is None
    assert [v.path for v in window.model_panel.variant_specs()] == [str(DEMO_ONNX)]
    assert recent_files.recent_models()[0] == (str(DEMO_WEIGHTS), "demo")
    window.model_panel._fill_recent()
    actions = window.model_panel.recent_menu.actions()
    assert actions[0].text() == "digits_cnn.pt  (demo)"


def test_dark_theme_reaches_the_charts(qtbot, window):
    window.set_theme("dark")
    assert window.dark_action.isChecked()
    assert window.results.sizes.backgroundBrush().color().name() == DARK.plot_bg
    assert window.results.histogram.backgroundBrush().color().name() == DARK.plot_bg
    window.set_theme("light")
    assert window.results.sizes.backgroundBrush().color().name() == LIGHT.plot_bg


def test_a_study_that_cannot_start_says_why(qtbot, window):
    refused = []
    window.start_refused.connect(refused.append)
    window.start_when_ready()  # no model opened
    qtbot.waitUntil(lambda: bool(refused), timeout=60_000)
    assert refused == ["open a model first"]
    assert not window.controller.running


def test_open_demo_button_sets_up_the_demo_study(qtbot, window):
    from core.engine.run import DEMO_SCHEMES

    qtbot.mouseClick(window.model_panel.demo_button, Qt.MouseButton.LeftButton)
    _loaded(qtbot, window)
    assert window.model_panel.loaded is not None
    assert window.dataset_panel.dataset_spec() == DatasetSpec.parse("builtin:digits")
    wanted = [SchemeSpec.parse(s) for s in DEMO_SCHEMES[1:]]
    assert sorted(window.schemes_panel.selected(), key=str) == sorted(wanted, key=str)
    assert window.run_panel.run_button.isEnabled()


def test_held_jobs_wait_for_release_and_run_in_order(qtbot):
    from qtapp.threads.tasks import TaskRunner

    tasks = TaskRunner(max_threads=1)
    ran: list[str] = []
    done: list[str] = []
    tasks.hold()
    for name in ("model", "dataset"):
        tasks.submit(lambda name=name: ran.append(name) or name, done.append, done.append)
    qtbot.wait(100)
    assert ran == [] and tasks.pending() == 2 and tasks.holding  # nothing runs while held
    tasks.release()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=5_000)
    assert ran == ["model", "dataset"] == done and not tasks.holding and tasks.pending() == 0
    tasks.submit(lambda: "later", done.append, done.append)  # not held any more: runs at once
    qtbot.waitUntil(lambda: done[-1] == "later", timeout=5_000)
    # Sealed: what is held keeps waiting, what comes next runs.
    tasks.hold()
    tasks.submit(lambda: "held", done.append, done.append)
    tasks.seal()
    tasks.submit(lambda: "user", done.append, done.append)
    qtbot.waitUntil(lambda: done[-1] == "user", timeout=5_000)
    qtbot.wait(100)
    assert "held" not in done and tasks.holding
    tasks.release()
    qtbot.waitUntil(lambda: done[-1] == "held", timeout=5_000)
    tasks.wait()
