"""Model formats beyond state dicts and ONNX: TFLite/LiteRT, torch.export, old ONNX opsets, torchvision by name.

The TFLite tests use two real third-party models (a float and an int8 sine regressor,
../shared/data beside the checkout, or $QUANTBENCH_SHARED_DATA) and small graphs written here with the
TFLite flatbuffer schema that ships with ai-edge-litert.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import ModelFormat
from core.study.spec import ModelSpec
from tests.shared_data import SHARED_DATA

SINE_FLOAT = SHARED_DATA / "hello_world_float.tflite"
SINE_INT8 = SHARED_DATA / "hello_world_int8.tflite"
needs_sine = pytest.mark.skipif(not SINE_INT8.exists(), reason="the shared TFLite sine models are not present")

#: The int8 sine model's own interface, from its README.
INT8_INPUT = (0.024480, -128)
INT8_OUTPUT = (0.008291, 5)


def sine_x(n: int = 1000) -> np.ndarray:
    return np.linspace(0.0, 2 * np.pi, n, dtype=np.float32)[:, None]


def mse(pred: np.ndarray, x: np.ndarray) -> float:
    return float(np.mean((pred[:, 0] - np.sin(x[:, 0])) ** 2))


# --------------------------------------------------------------------------- TFLite: the sine regressors


@needs_sine
def test_float_and_int8_sine_models_give_close_mse() -> None:
    from core.runtimes.litert_runner import LiteRTRunner

    x = sine_x()
    float_mse = mse(LiteRTRunner(SINE_FLOAT, 1).predict(x), x)
    int8_mse = mse(LiteRTRunner(SINE_INT8, 1).predict(x), x)
    # README: about 2.3e-4 and 1.0e-3 on these 1000 points.
    assert float_mse == pytest.approx(2.3e-4, rel=0.1)
    assert int8_mse == pytest.approx(1.0e-3, rel=0.15)
    assert abs(int8_mse - float_mse) < 1.5e-3


@needs_sine
def test_int8_runner_uses_the_models_own_scale_and_zero_point() -> None:
    from ai_edge_litert.interpreter import Interpreter

    from core.runtimes.litert_runner import LiteRTRunner

    runner = LiteRTRunner(SINE_INT8, 1)
    assert runner.input_quantization[0] == pytest.approx(INT8_INPUT[0], rel=1e-4)
    assert runner.input_quantization[1] == INT8_INPUT[1]
    assert runner.output_quantization[0] == pytest.approx(INT8_OUTPUT[0], rel=1e-4)
    assert runner.output_quantization[1] == INT8_OUTPUT[1]

    x = sine_x(50)
    q = runner.to_model_input(x)
    assert q.dtype == np.int8
    scale, zero = INT8_INPUT
    by_hand = np.clip(np.round(x / scale) + zero, -128, 127)  # 2*pi / scale overflows int8: clipped
    assert np.abs(q.astype(np.int32) - by_hand).max() <= 1  # ties may round either way
    assert q.min() == -128 and q.max() == 127  # x = 0 sits on the zero point

    # The same numbers by hand, one sample at a time through a bare interpreter.
    bare = Interpreter(model_path=str(SINE_INT8), num_threads=1)
    bare.allocate_tensors()
    inp, out = bare.get_input_details()[0], bare.get_output_details()[0]
    expected = []
    for sample in q:
        bare.set_tensor(inp["index"], sample[None])
        bare.invoke()
        o_scale, o_zero = out["quantization"]
        expected.append((bare.get_tensor(out["index"]).astype(np.float32) - o_zero) * o_scale)
    np.testing.assert_allclose(runner.predict(x), np.concatenate(expected), rtol=1e-6)


@needs_sine
def test_load_tflite_reports_a_real_valued_interface_and_its_quantization() -> None:
    from core.models import load_model

    loaded = load_model(ModelSpec(path=str(SINE_INT8)))
    assert loaded.format is ModelFormat.TFLITE
    assert loaded.input.dtype == "float32" and loaded.output.dtype == "float32"
    assert loaded.input.shape == ("batch", 1)
    assert loaded.params == 321  # 1-16-16-1 dense layers
    notes = " ".join(loaded.notes)
    assert "scale 0.0244801 and zero point -128" in notes
    assert "scale 0.00829096 and zero point 5" in notes


@needs_sine
def test_tflite_coverage_counts_integer_and_float_kernels() -> None:
    from core.models.tflite_model import tflite_coverage

    int8 = tflite_coverage(SINE_INT8)
    assert (int8["integer_compute_ops"], int8["float_compute_ops"]) == (3, 0)
    assert int8["summary"] == "3 of 3 FULLY_CONNECTED as integer kernels"
    flt = tflite_coverage(SINE_FLOAT)
    assert (flt["integer_compute_ops"], flt["float_compute_ops"]) == (0, 3)
    assert flt["integer_fraction"] == 0.0


@needs_sine
def test_study_compares_the_float_sine_model_with_its_int8_twin(tmp_path: Path) -> None:
    from core.engine.run import run_study
    from core.study.events import StudyFinished
    from core.study.spec import DatasetSpec, StudySpec, TimingSpec, VariantSpec

    x = sine_x(400)
    np.savez(tmp_path / "sine.npz", x=x, y=np.sin(x[:, 0]))
    spec = StudySpec(
        model=ModelSpec(path=str(SINE_FLOAT)),
        dataset=DatasetSpec.parse(f"npz:{tmp_path / 'sine.npz'}"),
        variants=(VariantSpec(path=str(SINE_INT8)),),
        timing=TimingSpec(threads=1, warmup_runs=1, warmup_s=0.0, min_samples=5, max_samples=50, max_time_s=0.1),
    )
    finished = next(e for e in run_study(spec, workdir=tmp_path / "work") if isinstance(e, StudyFinished))
    base, int8 = finished.result.results
    assert base.ok and int8.ok, (base.error, int8.error)
    assert base.runtime == int8.runtime == "litert"
    assert finished.result.dataset["task"] == "regression"
    assert base.metrics["mse"] < 5e-4 and int8.metrics["mse"] < 2e-3
    assert abs(int8.metrics["mse"] - base.metrics["mse"]) < 1.5e-3
    assert int8.size_bytes == SINE_INT8.stat().st_size < base.size_bytes


# --------------------------------------------------------------------------- TFLite: graphs written here


def write_conv_tflite(path: Path, weights: np.ndarray, bias: np.ndarray, flat_batch: int) -> Path:
    """A float NHWC graph: input [1, 4, 4, 2] ─ CONV_2D 1x1 (3 filters) ─ RESHAPE [flat_batch, 48] ─▶ output.

    With ``flat_batch`` 1 the RESHAPE pins the batch, so the input cannot be resized; with -1
    it follows the input. The input's own batch is fixed at 1 either way, as converters write it.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def tensor(name: str, shape: list[int], ttype: int, buffer: int) -> Any:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buffer
        return t

    def buffer(data: np.ndarray | None) -> Any:
        b = s.BufferT()
        b.data = None if data is None else np.frombuffer(data.tobytes(), dtype=np.uint8)
        return b

    def opcode(code: int) -> Any:
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, code, 1
        return c

    f32, i32 = s.TensorType.FLOAT32, s.TensorType.INT32
    buffers = [buffer(None), buffer(weights.astype(np.float32)), buffer(bias.astype(np.float32)),
               buffer(np.array([flat_batch, 48], dtype=np.int32))] + [buffer(None) for _ in range(3)]
    tensors = [
        tensor("input", [1, 4, 4, 2], f32, 4),
        tensor("filter", [3, 1, 1, 2], f32, 1),
        tensor("bias", [3], f32, 2),
        tensor("conv_out", [1, 4, 4, 3], f32, 5),
        tensor("new_shape", [2], i32, 3),
        tensor("output", [1, 48], f32, 6),
    ]
    conv = s.OperatorT()
    conv.opcodeIndex, conv.inputs, conv.outputs = 0, [0, 1, 2], [3]
    conv.builtinOptionsType = s.BuiltinOptions.Conv2DOptions
    conv.builtinOptions = s.Conv2DOptionsT()
    conv.builtinOptions.padding, conv.builtinOptions.strideW, conv.builtinOptions.strideH = s.Padding.VALID, 1, 1
    conv.builtinOptions.dilationWFactor = conv.builtinOptions.dilationHFactor = 1
    reshape = s.OperatorT()
    reshape.opcodeIndex, reshape.inputs, reshape.outputs = 1, [3, 4], [5]
    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = tensors, [0], [5], [conv, reshape], "main"
    model = s.ModelT()
    model.version, model.description = 3, "quantbench test graph"
    model.operatorCodes = [opcode(s.BuiltinOperator.CONV_2D), opcode(s.BuiltinOperator.RESHAPE)]
    model.subgraphs, model.buffers = [sub], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def conv_reference(x_nhwc: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What the graph above computes: a 1x1 convolution, flattened per sample."""
    out = np.einsum("nhwc,oc->nhwo", x_nhwc, weights[:, 0, 0, :]) + bias
    return out.reshape(len(x_nhwc), -1)


@pytest.fixture
def conv_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((3, 1, 1, 2)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    x_nhwc = rng.standard_normal((7, 4, 4, 2)).astype(np.float32)
    return weights, bias, x_nhwc


def test_fixed_batch_model_that_cannot_resize_runs_sample_by_sample(tmp_path: Path, conv_parts: Any) -> None:
    from core.runtimes.litert_runner import LiteRTRunner

    weights, bias, x = conv_parts
    runner = LiteRTRunner(write_conv_tflite(tmp_path / "pinned.tflite", weights, bias, flat_batch=1), 1)
    out = runner.predict(x)
    assert runner.resizable is False
    np.testing.assert_allclose(out, conv_reference(x, weights, bias), rtol=1e-5, atol=1e-5)
    call = runner.prepare_call(x[:3])  # three samples, one call each
    assert call() is None


def test_fixed_batch_model_that_allows_it_is_resized_after_a_check(tmp_path: Path, conv_parts: Any) -> None:
    from core.runtimes.litert_runner import LiteRTRunner

    weights, bias, x = conv_parts
    runner = LiteRTRunner(write_conv_tflite(tmp_path / "free.tflite", weights, bias, flat_batch=-1), 1)
    assert runner.dynamic_batch is False and runner.resizable is None
    out = runner.predict(x)
    assert runner.resizable is True
    np.testing.assert_allclose(out, conv_reference(x, weights, bias), rtol=1e-5, atol=1e-5)
    runner.prepare_call(x)()
    np.testing.assert_allclose(runner.predict(x[:2]), out[:2], rtol=1e-6)


def test_channels_first_images_are_transposed_for_an_nhwc_model(tmp_path: Path, conv_parts: Any) -> None:
    from core.models import load_model
    from core.runtimes.litert_runner import LiteRTRunner

    weights, bias, x = conv_parts
    path = write_conv_tflite(tmp_path / "nhwc.tflite", weights, bias, flat_batch=-1)
    loaded = load_model(ModelSpec(path=str(path)))
    assert loaded.input.shape == ("batch", 4, 4, 2)
    assert loaded.params == 3 * 2 + 3  # the RESHAPE's shape constant is not a parameter
    assert any("batch dimension fixed at 1" in n for n in loaded.notes)
    runner = LiteRTRunner(path, 1)
    nchw = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(runner.predict(nchw), conv_reference(x, weights, bias), rtol=1e-5, atol=1e-5)
    with pytest.raises(BadInput, match="do not fit the model input"):
        runner.predict(np.zeros((2, 4, 2, 4), dtype=np.float32))


def test_a_damaged_tflite_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    from core.models.tflite_model import load_tflite

    bad = tmp_path / "cut.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8)
    with pytest.raises(BadInput, match=r"cut\.tflite"):
        load_tflite(bad)


# --------------------------------------------------------------------------- torch.export


def _small_net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 10)
    ).eval()


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed-batch", "dynamic-batch"])
def test_torch_export_program_loads_and_runs_any_batch(tmp_path: Path, dynamic: bool) -> None:
    import torch

    from core.models import load_model
    from core.models.torch_model import exported_graph_coverage
    from core.runtimes.torch_runner import TorchRunner

    net = _small_net()
    example = torch.zeros(2 if dynamic else 1, 1, 8, 8)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(net, (example,), dynamic_shapes=shapes)
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))

    with pytest.raises(BadInput, match="trust"):
        load_model(ModelSpec(path=str(path)))
    loaded = load_model(ModelSpec(path=str(path), trusted=True))
    assert loaded.format is ModelFormat.TORCH_EXPORT
    assert loaded.input.shape == ("batch", 1, 8, 8) and loaded.output.shape == ("batch", 10)
    assert any("fixes its batch at 1" in n for n in loaded.notes) is not dynamic
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(TorchRunner(loaded.handle, 1).predict(x), expected, rtol=1e-5, atol=1e-5)
    coverage = exported_graph_coverage(loaded.handle)
    assert (coverage["float_compute_ops"], coverage["integer_compute_ops"]) == (2, 0)
    assert coverage["summary"] == "all 2 conv/linear/matmul ops in float"


# --------------------------------------------------------------------------- ONNX opset upgrade


def _old_opset_model(path: Path, opset: int, op: str = "Conv") -> Path:
    """x [N,1,8,8] ─ Conv 4x3x3 ─ Relu ─ Flatten ─ Gemm 256x10 ─▶ y, written at an old opset."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(np.zeros(4, np.float32), "B"),
        numpy_helper.from_array((rng.standard_normal((256, 10)) * 0.1).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(10, np.float32), "B2"),
    ]
    first = (
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1])
        if op == "Conv"
        else helper.make_node("ImageScaler", ["x"], ["c"], scale=2.0)  # an op later opsets removed
    )
    nodes = [first, helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "W2", "B2"], ["y"])]
    graph = helper.make_graph(
        nodes, "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    onnx.save(model, str(path))
    return path


def test_old_opset_is_upgraded_so_per_channel_static_int8_loads(tmp_path: Path) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, quantize_static

    from core.schemes.onnx_opset import MIN_OPSET_INT8_STATIC, ensure_opset, file_opset

    src = _old_opset_model(tmp_path / "old.onnx", opset=9)
    x = np.random.default_rng(1).standard_normal((8, 1, 8, 8)).astype(np.float32)

    class Reader:
        def __init__(self) -> None:
            self.samples = iter(x)

        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(self.samples, None)
            return None if sample is None else {"x": sample[None]}

    def quantize(path: Path, out: Path) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
        return ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    # Why the upgrade exists: per-channel Q/DQ written into an opset 9 graph is invalid.
    with pytest.raises(Exception, match=r"(?i)invalid"):
        quantize(src, tmp_path / "old_int8.onnx")

    cache: dict[str, Any] = {}
    up = ensure_opset(src, MIN_OPSET_INT8_STATIC, tmp_path / "up", "ort-int8-static", cache)
    assert up != src and file_opset(up) == 13 and file_opset(src) == 9
    assert ensure_opset(src, 13, tmp_path / "up", "ort-int8-static", cache) == up  # once per study
    float_out = ort.InferenceSession(str(up), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    int8_out = quantize(up, tmp_path / "up_int8.onnx").run(None, {"x": x})[0]
    assert np.corrcoef(float_out.ravel(), int8_out.ravel())[0, 1] > 0.99


def test_new_enough_opset_is_left_alone(tmp_path: Path) -> None:
    from core.schemes.onnx_opset import ensure_opset

    src = _old_opset_model(tmp_path / "m.onnx", opset=13)
    assert ensure_opset(src, 13, tmp_path / "up", "ort-int8-static") == src
    assert not (tmp_path / "up").exists()


def test_opset_that_cannot_be_upgraded_is_refused_with_the_op_named(tmp_path: Path) -> None:
    from core.schemes.onnx_opset import ensure_opset

    src = _old_opset_model(tmp_path / "scaler.onnx", opset=8, op="ImageScaler")
    expected = r"scaler\.onnx uses opset 8 and ort-int8-static needs opset 13.*ImageScaler"
    with pytest.raises(SchemeNotApplicable, match=expected):
        ensure_opset(src, 13, tmp_path / "up", "ort-int8-static")


# --------------------------------------------------------------------------- torchvision by name

TV_NAME = "torchvision:mobilenet_v3_small"


def test_torchvision_without_weights_is_labelled_untrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models.torch_model import UNTRAINED_NOTE, load_torchvision, serialized_size

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty cache
    loaded = load_torchvision(TV_NAME, None)
    assert loaded.notes[0] == UNTRAINED_NOTE
    assert loaded.format is ModelFormat.TORCH_STATE_DICT and loaded.arch == TV_NAME
    assert loaded.input.shape == ("batch", 3, 224, 224) and loaded.output.shape == ("batch", 1000)
    assert loaded.file_bytes == serialized_size(loaded.handle.state_dict()) > 4 * loaded.params * 0.99
    again = load_torchvision(TV_NAME, None)  # the same untrained weights every time
    first = next(iter(loaded.handle.state_dict().values()))
    assert np.array_equal(first.numpy(), next(iter(again.handle.state_dict().values())).numpy())


def test_torchvision_uses_pretrained_weights_already_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import torchvision.models

    from core.models.architectures import cached_pretrained_weights
    from core.models.torch_model import UNTRAINED_NOTE, load_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    weights = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT
    target = tmp_path / "torch_home" / "hub" / "checkpoints" / Path(weights.url).name
    target.parent.mkdir(parents=True)
    torch.manual_seed(7)
    saved = torchvision.models.mobilenet_v3_small().state_dict()
    torch.save(saved, str(target))

    assert cached_pretrained_weights(TV_NAME) == (f"MobileNet_V3_Small_Weights.{weights.name}", target)
    loaded = load_torchvision(TV_NAME, None)
    assert UNTRAINED_NOTE not in loaded.notes
    assert any("pretrained weights" in n and str(target) in n for n in loaded.notes)
    assert loaded.path == target and loaded.file_bytes == target.stat().st_size
    name, tensor = next(iter(saved.items()))
    assert torch.equal(loaded.handle.state_dict()[name], tensor)
