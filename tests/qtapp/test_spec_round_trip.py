"""Issue 13, symptoms 3 and 5: every panel reads and writes its own part of the StudySpec, so a
spec opened in the window comes back out of it field for field (batch size and device included);
and errors about a project file name the file and the field, never a command-line flag."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import close_window

from core.study.project import load_spec, save_spec
from core.study.spec import (
    DatasetKind,
    DatasetSpec,
    Device,
    ModelSpec,
    SchemeSpec,
    StudySpec,
    Task,
    Thresholds,
    TimingMode,
    TimingSpec,
    VariantSpec,
)
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path / "home"))
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _linear_onnx(path: Path, seed: int) -> Path:
    """x[batch, 4] -> MatMul(W[4, 3]) -> Add(b[3]) -> y[batch, 3]: weights for the int8 schemes to quantize."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(3,)).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(120, 4)).astype(np.float32), y=rng.integers(0, 3, size=120))
    return path


def _unusual_spec(folder: Path) -> StudySpec:
    """A spec with a value other than the default in every field the window keeps."""
    return StudySpec(
        # The architecture and input shape matter to state dicts and TorchScript; an ONNX file
        # ignores them, but a spec opened and run again must still carry them.
        model=ModelSpec(path=str(_linear_onnx(folder / "model.onnx", 0)), arch="demo", input_shape=(2, 4)),
        dataset=DatasetSpec(DatasetKind.NPZ, str(_npz(folder / "data.npz")), task=Task.CLASSIFICATION, limit=90),
        variants=(
            VariantSpec(scheme=SchemeSpec("ort-int8-dynamic", (("per_channel", "true"),))),
            VariantSpec(scheme=SchemeSpec("ort-int8-static", (("samples", "64"), ("calibration", "entropy")))),
            VariantSpec(path=str(_linear_onnx(folder / "elsewhere.onnx", 1))),
        ),
        timing=TimingSpec(
            threads=os.cpu_count() or 1, mode=TimingMode.THOROUGH, batch_size=8, warmup_runs=2, warmup_s=0.05,
            min_samples=40, max_samples=900, max_time_s=0.75, report_every_ms=25.0, eval_batch_size=8,
        ),
        thresholds=Thresholds(
            accuracy_drop_good=0.02, accuracy_drop_bad=0.08, size_reduction_good=0.4,
            latency_reduction_good=0.2, latency_increase_bad=0.15,
        ),
        device=Device.CUDA,
        seed=7,
        layer_samples=32,
    )


def _wait_until_loaded(qtbot, window: MainWindow, schemes: int) -> None:
    qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.model_panel.loaded is not None, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.dataset_panel.loaded is not None, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(window.model_panel.variant_specs()) == 1, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(window.schemes_panel.selected()) == schemes, timeout=LOAD_TIMEOUT_MS)
    window.tasks.wait(30_000)


def test_spec_to_panels_to_spec_is_identical_in_every_field(qtbot, window, tmp_path):
    spec = _unusual_spec(tmp_path.resolve())
    window.show_spec(spec)
    _wait_until_loaded(qtbot, window, schemes=2)

    assert window.blocker() is None
    back = window.study_spec()
    assert back.timing.batch_size == 8 and back.device is Device.CUDA  # the two the window used to drop
    assert back == replace(spec, study_id=back.study_id)


def test_a_project_file_opened_in_the_window_runs_as_saved(qtbot, window, tmp_path):
    spec = _unusual_spec(tmp_path.resolve())
    project = tmp_path / "study.quantbench.json"
    save_spec(spec, project)
    window.history.open_spec(str(project))
    _wait_until_loaded(qtbot, window, schemes=2)

    back = window.study_spec()
    assert back == replace(load_spec(project), study_id=back.study_id)
    assert back == replace(spec, study_id=back.study_id)
    # Saved again from the window, the project file says what it said before.
    again = tmp_path / "again.quantbench.json"
    save_spec(back, again)
    assert json.loads(again.read_text()) == json.loads(project.read_text())


def test_a_changed_control_is_read_back_not_the_spec_it_was_set_from(qtbot, window):
    panel = window.run_panel
    panel.set_spec(TimingSpec(threads=2, batch_size=4), Thresholds(accuracy_drop_good=0.0125), Device.CUDA, 3)
    assert panel.thresholds().accuracy_drop_good == 0.0125  # shown as 1.3 pt, kept exactly
    panel.batch_size.setValue(16)
    panel.drop_good.setValue(2.5)
    panel.device_box.setCurrentIndex(panel.device_box.findData(Device.CPU.value))
    panel.seed_box.setValue(11)
    assert panel.timing_spec() == TimingSpec(threads=2, batch_size=16)
    assert panel.thresholds().accuracy_drop_good == pytest.approx(0.025)
    assert (panel.device(), panel.seed()) == (Device.CPU, 11)


def _broken_json(path: Path) -> str:
    path.write_text('{"spec": {"model": ')
    return "not valid JSON"


def _wrong_device(path: Path) -> str:
    spec = StudySpec(ModelSpec(str(path.parent / "m.onnx")), DatasetSpec(DatasetKind.SYNTHETIC, "4"))
    save_spec(spec, path)
    payload = json.loads(path.read_text())
    payload["spec"]["device"] = "tpu"
    path.write_text(json.dumps(payload))
    return "the field 'device' has the wrong value"


def _missing_model_path(path: Path) -> str:
    path.write_text(json.dumps({"quantbench_project": 1, "spec": {"model": {}, "dataset": {"kind": "synthetic"}}}))
    return "the field 'path' is missing from 'model'"


@pytest.mark.parametrize("write", [_broken_json, _wrong_device, _missing_model_path])
def test_a_project_file_error_names_the_file_and_field_not_a_flag(qtbot, window, tmp_path, write):
    project = tmp_path / "broken.quantbench.json"
    expected = write(project)
    window.history.open_spec(str(project))
    qtbot.waitUntil(lambda: str(project) in window.statusBar().currentMessage(), timeout=LOAD_TIMEOUT_MS)

    message = window.statusBar().currentMessage()
    assert message.startswith(f"{project}: ") and expected in message
    assert "--" not in message  # no command-line flag: the window has none


def test_the_command_line_still_names_its_flag(tmp_path):
    from core.errors import BadInput

    project = tmp_path / "broken.json"
    _broken_json(project)
    with pytest.raises(BadInput, match=r"^--spec broken\.json: not valid JSON"):
        load_spec(project, source="--spec broken.json")


def test_a_bad_scheme_parameter_names_the_scheme_not_a_flag():
    from core.errors import BadInput
    from core.schemes import get_scheme
    from core.schemes.params import check_params, number_param

    spec = SchemeSpec("ort-int8-static", (("samples", "lots"),))
    with pytest.raises(BadInput) as caught:
        number_param(spec, get_scheme("ort-int8-static").info, "samples")
    assert str(caught.value) == "scheme ort-int8-static:samples=lots: samples must be a whole number, not 'lots'."
    with pytest.raises(BadInput, match=r"^scheme ort-int8-static:colour=blue: unknown parameter 'colour'"):
        check_params(SchemeSpec("ort-int8-static", (("colour", "blue"),)), get_scheme("ort-int8-static").info)
    with pytest.raises(BadInput, match=r"^scheme 'int3-magic' is not a known scheme"):
        get_scheme("int3-magic")
