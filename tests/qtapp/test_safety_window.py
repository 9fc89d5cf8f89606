"""Issue #12 in the window: a project file cannot grant trust, a model that cannot run is said in
one sentence (the command line's), and names from files are shown with control characters
written out."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from helpers import close_window

from core.files.trust import TrustList
from core.study.project import save_spec
from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingSpec
from qtapp.threads.worker import engine_run_study
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

QUICK = TimingSpec(threads=1, max_time_s=0.05, min_samples=3, max_samples=50, warmup_runs=1, warmup_s=0.0)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path / "home"))
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _torchscript(path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(torch.nn.Linear(4, 2).eval(), torch.zeros(1, 4)), str(path))
    return path


def _onnx(path: Path, reshape_to: int | None = None) -> Path:
    """x[1,4] -> Relu -> y; with ``reshape_to``, a Reshape to that many values (which cannot run)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    out = [1, 4]
    if reshape_to is not None:
        shape = helper.make_tensor("to", TensorProto.INT64, [1], [reshape_to])
        nodes = [helper.make_node("Constant", [], ["to"], value=shape), helper.make_node("Reshape", ["x", "to"], ["y"])]
        out = [reshape_to]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_project_file_marked_trusted_still_asks(qtbot, window, tmp_path):
    model = _torchscript(tmp_path / "scripted.pt")
    project = tmp_path / "study.json"
    save_spec(StudySpec(model=ModelSpec(path=str(model), input_shape=(1, 4)),
                        dataset=DatasetSpec.parse("synthetic:4")), project)
    payload = json.loads(project.read_text())
    payload["spec"]["model"]["trusted"] = True  # what a stranger's project file claims
    project.write_text(json.dumps(payload))
    asked = []
    window.model_panel.ask_trust = lambda parent, request, answer: asked.append((request, answer))

    window.history.open_spec(str(project))
    qtbot.waitUntil(lambda: bool(asked), timeout=30_000)
    assert asked[0][0].path == str(model) and window.model_panel.loaded is None
    assert not TrustList().is_trusted(model)
    asked[0][1](False)  # the user says no: nothing is loaded, nothing is trusted
    qtbot.waitUntil(lambda: bool(window.model_panel.error.text()), timeout=10_000)
    assert window.model_panel.loaded is None and not TrustList().is_trusted(model)
    window.tasks.wait(30_000)


def test_a_model_that_cannot_run_is_said_as_the_command_line_says_it(qtbot, window, tmp_path):
    model = _onnx(tmp_path / "reshape.onnx", reshape_to=3)
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK)
    window._run_study = engine_run_study
    window.start_study(spec)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=60_000)
    failure = window.last_failure
    assert failure is not None and failure.startswith(f"{model}: the model does not run here")
    assert "Reshape" in failure
    assert failure in window.run_panel.step.text() and failure in window.statusBar().currentMessage()


def test_names_from_files_are_shown_with_control_characters_written_out(qtbot, window, tmp_path):
    hostile = tmp_path / "evil\x1b[2J\x07.onnx"
    hostile.write_bytes(b"")  # refused: its name reaches the error line
    panel = window.model_panel
    panel.open_path(str(hostile))
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
    assert "evil\\x1b[2J\\x07.onnx" in panel.error.text() and "\x1b" not in panel.error.text()
    assert "\x1b" not in panel.path_label.text()

    good = _onnx(tmp_path / "v\x1b[5m.onnx")
    panel.variant_files.add(str(good))
    files = panel.variant_files
    qtbot.waitUntil(lambda: files.list.count() == 1 or files.error.isVisible(), timeout=30_000)
    texts = [panel.variant_files.list.item(i).text() for i in range(panel.variant_files.list.count())]
    texts.append(panel.variant_files.error.text())
    assert all("\x1b" not in t for t in texts)
    window.tasks.wait(30_000)
