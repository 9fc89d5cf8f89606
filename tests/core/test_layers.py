"""Layer analysis (core.layers) on real tiny models, quantized by the real quantizers.

The outlier CNN is the tiny CNN of conftest with one convolution output channel scaled up 1000x and the
next convolution's matching input weights scaled down 1000x: the float outputs are unchanged, but a
per-tensor int8 activation range sized for the big channel leaves the other seven channels at zero.

    input ─ conv0 (channel 3 ×1000) ─ relu ─ conv1 (input channel 3 ÷1000) ─ relu ─ flatten ─ fc ─ relu ─ fc
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import Cancelled
from core.layers import analyse_layers
from core.layers.profile import CONVERSION_OPS, conversion_share
from core.layers.stats import (
    EXACT_SQNR_DB,
    HISTOGRAM_BINS,
    StreamingHistogram,
    TensorComparison,
    compare_weights,
    dequantize,
)

OUTLIER_CHANNEL = 3
SCALE = 1000.0


# ----------------------------------------------------------------------------- builders


def _calibration_reader(x: np.ndarray, input_name: str = "input") -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{input_name: x[i:i + 1]} for i in range(len(x))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Reader()


def _quantize_static(src: Path, out: Path, calibration: np.ndarray, qoperator: bool = False,
                     input_name: str = "input", per_channel: bool = False) -> Path:
    import logging

    from onnxruntime.quantization import QuantFormat, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process
    quantize_static(str(src), str(out), _calibration_reader(calibration, input_name),
                    quant_format=QuantFormat.QOperator if qoperator else QuantFormat.QDQ, per_channel=per_channel)
    return out


def _outlier_cnn(kit: Any) -> Any:
    import torch

    model = kit.make_tiny_cnn()
    conv0, conv1 = model[0][0], model[0][2]
    with torch.no_grad():
        conv0.weight[OUTLIER_CHANNEL] *= SCALE
        conv0.bias[OUTLIER_CHANNEL] *= SCALE
        conv1.weight[:, OUTLIER_CHANNEL] /= SCALE
    return model


@pytest.fixture(scope="module")
def outlier(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("layers_outlier")
    plain, scaled = kit.make_tiny_cnn(), _outlier_cnn(kit)
    x = kit.tiny_inputs(64, seed=3)
    calibration = kit.tiny_inputs(32, seed=4)
    files = {
        "plain": kit.export_onnx(plain, folder / "plain.onnx", kit.sample_shape),
        "float": kit.export_onnx(scaled, folder / "outlier.onnx", kit.sample_shape),
    }
    files["plain_int8"] = _quantize_static(files["plain"], folder / "plain_int8.onnx", calibration)
    files["int8"] = _quantize_static(files["float"], folder / "outlier_int8.onnx", calibration)
    files["qop"] = _quantize_static(files["float"], folder / "outlier_qop.onnx", calibration, qoperator=True)
    return {"files": files, "x": x, "plain": plain, "scaled": scaled, "kit": kit}


@pytest.fixture(scope="module")
def outlier_result(outlier: dict[str, Any]) -> dict[str, Any]:
    f = outlier["files"]
    return analyse_layers(f["float"], f["int8"], "onnxruntime", outlier["x"])


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in result["layers"]}


# ----------------------------------------------------------------------------- statistics


def test_tensor_comparison_exact_figures_and_streaming() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((6, 4, 5, 5))
    test = ref * 1.1  # error energy 1 % of the signal: 20 dB, cosine 1
    whole = TensorComparison()
    whole.update(ref, test)
    streamed = TensorComparison()
    streamed.update(ref[:2], test[:2])
    streamed.update(ref[2:], test[2:])
    for stats in (whole, streamed):  # tensors are compared in float32, as the runtimes compute them
        r = stats.result()
        assert r["sqnr_db"] == pytest.approx(20.0, abs=1e-4)
        assert r["mse"] == pytest.approx(0.01, rel=1e-5)
        assert r["cosine"] == pytest.approx(1.0, abs=1e-6)
        assert r["max_abs"] == pytest.approx(0.1 * np.abs(ref).max(), rel=1e-5)
        assert r["min_channel_sqnr_db"] == pytest.approx(20.0, abs=1e-4)
        assert r["outlier_channels"] == []
        assert r["clipped_fraction"] is None
    assert streamed.count == ref.size


def test_worst_channel_outliers_and_clipping() -> None:
    ref = np.ones((2, 4, 3, 3))
    ref[:, 2] *= 50.0  # channel 2 spans 0..51, the others 0..2 (ranges hold zero)
    ref[1, :] += 1.0
    test = ref.copy()
    test[:, 0] = 0.0  # channel 0 lost entirely: 0 dB
    stats = TensorComparison(quant_range=(0.0, 10.0))
    stats.update(ref, test)
    r = stats.result()
    assert r["min_channel_sqnr_db"] == pytest.approx(0.0, abs=1e-9)
    assert r["sqnr_db"] > 30.0  # the big channel hides the lost one in the whole-tensor figure
    assert r["outlier_channels"] == [2]
    assert r["clipped_fraction"] == pytest.approx(0.25)  # channel 2 (values 50, 51) above 10


def test_channels_last_and_identical_tensors() -> None:
    ref = np.ones((2, 3, 3, 4))
    ref[..., 1] *= 100.0
    stats = TensorComparison(channels_last=True)
    stats.update(ref, ref)
    r = stats.result()
    assert r["outlier_channels"] == [1]
    assert r["sqnr_db"] == EXACT_SQNR_DB and r["max_abs"] == 0.0


def test_weight_comparison_and_dequantize() -> None:
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    q = np.round(w / 0.5).astype(np.int8)
    scale = np.array([0.5, 0.5, 0.5], dtype=np.float32)
    deq = dequantize(q, scale, np.zeros(3, dtype=np.int8), axis=0)
    np.testing.assert_allclose(deq, w)
    noisy = w.copy()
    noisy[1] += 0.5  # row 1: signal 5²+6²+7²+8² = 174, noise 4·0.25 = 1
    r = compare_weights(w, noisy, 0)
    assert r["min_channel_sqnr_db"] == pytest.approx(10 * math.log10(174.0), abs=1e-6)
    assert r["sqnr_db"] == pytest.approx(10 * math.log10(float((w ** 2).sum())), abs=1e-6)


def test_streaming_histogram_grows_by_merging_bins_exactly() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.standard_normal(500), rng.standard_normal(300) * 8.0 + 20.0, rng.standard_normal(200) * 3.0 - 40.0]
    streamed = StreamingHistogram()
    for part in parts:
        streamed.update(part)
    everything = np.concatenate(parts)
    assert streamed.low <= everything.min() and streamed.high >= everything.max()
    assert streamed.total == everything.size == int(streamed.counts.sum())
    # The grown bins hold exactly what one histogram of all values over the same edges holds, but for the first
    # batch's largest value: it closed the first range (its top bin), and that edge is now inside the range.
    expected, _ = np.histogram(everything, bins=HISTOGRAM_BINS, range=(streamed.low, streamed.high))
    edge = round((parts[0].max() - streamed.low) / streamed.width)
    expected[edge] -= 1
    expected[edge - 1] += 1
    np.testing.assert_array_equal(streamed.counts, expected)
    # Its width doubled from the first batch's (the range only ever grows by powers of two).
    first = StreamingHistogram()
    first.update(parts[0])
    assert math.log2(streamed.width / first.width) == pytest.approx(round(math.log2(streamed.width / first.width)))
    with pytest.raises(ValueError):
        StreamingHistogram(bins=7)


def test_activation_histogram_streams_with_the_quantization_range() -> None:
    ref = np.linspace(-2.0, 12.0, 2 * 4 * 3 * 3).reshape(2, 4, 3, 3)
    stats = TensorComparison(quant_range=(0.0, 10.0))
    stats.update(ref[:1], ref[:1])
    stats.update(ref[1:], ref[1:])
    hist = stats.histogram_record()
    assert sum(hist["counts"]) == ref.size
    assert hist["low"] <= -2.0 and hist["high"] >= 12.0
    assert hist["quant_range"] == [0.0, 10.0]
    below, above = int((ref < 0.0).sum()), int((ref > 10.0).sum())
    assert hist["clipped_fraction"] == pytest.approx((below + above) / ref.size)
    assert hist["clipped_fraction"] == stats.result()["clipped_fraction"]


# ----------------------------------------------------------------------------- ONNX Runtime


def test_outlier_model_keeps_float_outputs(outlier: dict[str, Any]) -> None:
    kit, x = outlier["kit"], outlier["x"]
    np.testing.assert_allclose(kit.torch_outputs(outlier["scaled"], x), kit.torch_outputs(outlier["plain"], x),
                               rtol=1e-3, atol=1e-3)


def test_outlier_channel_flagged_with_low_worst_channel_sqnr(outlier_result: dict[str, Any]) -> None:
    layers = outlier_result["layers"]
    first = layers[0]
    assert first["op_type"] == "Conv+Relu"  # the QDQ quantizer folds the ReLU into the convolution's output
    act = first["activation"]
    assert act["outlier_channels"] == [OUTLIER_CHANNEL]
    # The whole tensor looks healthy (the big channel carries the signal); its worst channel is destroyed.
    assert act["sqnr_db"] > 25.0
    assert act["min_channel_sqnr_db"] < 3.0
    assert act["clipped_fraction"] is not None and act["clipped_fraction"] < 0.01
    # Static int8 collapses: the logits hardly resemble the float ones.
    assert layers[-1]["tensor"] == "logits"
    assert layers[-1]["activation"]["sqnr_db"] < 10.0


def test_plain_model_has_no_outliers(outlier: dict[str, Any]) -> None:
    f = outlier["files"]
    result = analyse_layers(f["plain"], f["plain_int8"], "onnxruntime", outlier["x"], profile=False)
    first = result["layers"][0]["activation"]
    assert first["outlier_channels"] == []
    assert first["min_channel_sqnr_db"] > 15.0
    assert result["layers"][-1]["activation"]["sqnr_db"] > 15.0
    assert result["profile"] is None


def test_record_format(outlier_result: dict[str, Any]) -> None:
    for layer in outlier_result["layers"]:
        assert set(layer) == {"name", "op_type", "tensor", "activation", "weight", "ranges"}
        assert set(layer["activation"]) == {"sqnr_db", "mse", "cosine", "max_abs", "min_channel_sqnr_db",
                                            "outlier_channels", "clipped_fraction"}
        assert layer["weight"] is None or set(layer["weight"]) == {"sqnr_db", "min_channel_sqnr_db"}
    weights = [layer for layer in outlier_result["layers"] if layer["weight"]]
    assert [w["op_type"] for w in weights] == ["Conv+Relu", "Conv+Relu", "Gemm+Relu", "Gemm"]
    assert set(outlier_result["profile"]) == {"by_op_type", "by_node"}


def test_ranges_hold_the_float_histograms_and_the_quantization_ranges(outlier: dict[str, Any],
                                                                       outlier_result: dict[str, Any]) -> None:
    first = outlier_result["layers"][0]
    act = first["ranges"]["activation"]
    assert sum(act["counts"]) == len(outlier["x"]) * 8 * 8 * 8  # every value of the first Conv's output, streamed
    low, high = act["quant_range"]
    # The u8 activation range was calibrated on the outlier channel's values: 0 up to about 1000 times the rest.
    assert low == pytest.approx(0.0, abs=1e-6) and high > 100.0
    assert act["clipped_fraction"] == first["activation"]["clipped_fraction"]
    assert act["low"] <= 0.0 and act["high"] >= high * 0.5
    weight = first["ranges"]["weight"]
    assert weight["per_channel"] is False and weight["clipped_fraction"] == 0.0  # min-max weights clip nothing
    assert sum(weight["counts"]) == 8 * 1 * 3 * 3
    w_low, w_high = weight["quant_range"]
    assert w_low < 0.0 < w_high and weight["low"] >= w_low - 1e-3 * abs(w_low)
    # Per-channel weights: the range drawn is the widest channel's, said as per channel.
    f = outlier["files"]
    per_channel = _quantize_static(f["plain"], f["plain"].with_name("plain_pc.onnx"), outlier["x"][:16],
                                   per_channel=True)
    result = analyse_layers(f["plain"], per_channel, "onnxruntime", outlier["x"][:8], profile=False)
    assert result["layers"][0]["ranges"]["weight"]["per_channel"] is True


def test_one_sample_marks_the_first_layer_that_departs(outlier: dict[str, Any],
                                                       outlier_result: dict[str, Any]) -> None:
    from core.layers import analyse_sample, analyse_samples, first_departure

    f, x = outlier["files"], outlier["x"]
    records = analyse_samples(f["float"], f["int8"], "onnxruntime", x[[5, 9]], [5, 9])
    assert [r["index"] for r in records] == [5, 9]
    one = analyse_sample(f["float"], f["int8"], "onnxruntime", x[9], index=9)
    assert one == records[1]  # one sample alone or among others: the same figures
    assert [layer["name"] for layer in one["layers"]] == [layer["name"] for layer in outlier_result["layers"]]
    # The sample's own figure: the whole-set statistics of one sample.
    alone = analyse_layers(f["float"], f["int8"], "onnxruntime", x[9:10], profile=False)
    assert [layer["sqnr_db"] for layer in one["layers"]] == pytest.approx(
        [layer["activation"]["sqnr_db"] for layer in alone["layers"]])
    # The outlier conv's output keeps its big channel (whole-tensor SQNR high); the next conv departs.
    sqnr = [layer["sqnr_db"] for layer in one["layers"]]
    first_low = next(i for i, v in enumerate(sqnr) if v < 10.0)
    assert one["departs_at"] == one["layers"][first_low]["name"] and first_low > 0
    assert first_departure([{"name": "a", "sqnr_db": 30.0}, {"name": "b", "sqnr_db": None}]) is None
    # PyTorch: the same, module by module.
    variant = _fx_static(outlier["scaled"], outlier["kit"].tiny_inputs(32, seed=4))
    torch_one = analyse_sample(outlier["scaled"], variant, "pytorch", x[9], index=9)
    assert [layer["name"] for layer in torch_one["layers"]] == ["0.0", "0.2", "1.0", "1.1", "1.3"]
    assert torch_one["departs_at"] == first_departure(torch_one["layers"])
    with pytest.raises(ValueError, match="tensorrt"):
        analyse_samples("a", "b", "tensorrt", x[:1])


def test_qoperator_matches_through_quantized_names(outlier: dict[str, Any]) -> None:
    f = outlier["files"]
    result = analyse_layers(f["float"], f["qop"], "onnxruntime", outlier["x"][:16], profile=False)
    first = result["layers"][0]
    assert first["tensor"].endswith("Relu_output_0")  # QLinearConv's output stands for conv + relu
    assert first["activation"]["outlier_channels"] == [OUTLIER_CHANNEL]
    assert first["activation"]["min_channel_sqnr_db"] < 3.0
    # Per-tensor weights: the scaled-up output channel of conv0 leaves the others at zero.
    assert first["weight"]["min_channel_sqnr_db"] < 3.0
    assert first["activation"]["clipped_fraction"] is not None


def test_unshared_names_are_said_plainly(outlier: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(outlier["files"]["int8"]))
    renames = {}
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name != "logits":
                renames[name] = f"t{len(renames)}"
                node.output[i] = renames[name]
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, str(renamed))
    result = analyse_layers(outlier["files"]["float"], renamed, "onnxruntime", outlier["x"][:8], profile=False)
    assert [layer["tensor"] for layer in result["layers"]] == ["logits"]
    assert "no counterpart" in result["notes"][0] and len(result["unmatched"]) >= 4


def test_coarse_weight_has_the_lowest_weight_sqnr(tmp_path: Path, kit: Any) -> None:
    path = kit.make_mlp_onnx(tmp_path / "mlp.onnx")
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "w2":
            w = numpy_helper.to_array(init).copy()
            w[0, 0] = 100.0 * np.abs(w).max()  # one huge value: per-tensor int8 steps become coarse
            init.CopyFrom(numpy_helper.from_array(w, "w2"))
    onnx.save(model, str(path))
    x = np.random.default_rng(5).standard_normal((32, 64)).astype(np.float32)
    quantized = _quantize_static(path, tmp_path / "mlp_int8.onnx", x[:16], input_name="x")
    result = analyse_layers(path, quantized, "onnxruntime", x, profile=False)
    weights = {layer["name"]: layer["weight"]["sqnr_db"] for layer in result["layers"] if layer["weight"]}
    assert len(weights) == 2
    worst = min(weights, key=weights.get)
    assert worst == "MatMul:y"  # the second MatMul, whose weight w2 holds the huge value
    assert weights[worst] < 30.0 < 40.0 < max(weights.values())


def test_profile_shares_and_conversions(outlier_result: dict[str, Any]) -> None:
    profile = outlier_result["profile"]
    by_op = profile["by_op_type"]
    assert sum(v["share"] for v in by_op.values()) == pytest.approx(1.0, abs=1e-9)
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(by_op)
    assert any(op.startswith("QLinear") or op == "QGemm" for op in by_op)  # the integer kernels ran
    assert sum(v["ms"] for v in by_op.values()) == pytest.approx(sum(n["ms"] for n in profile["by_node"]))
    assert sum(v["count"] for v in by_op.values()) == len(profile["by_node"])
    assert 0.0 < conversion_share(profile) < 1.0
    assert set(CONVERSION_OPS) & set(by_op)
    # The float model's profile (made once, reusable) has no conversions at all.
    assert conversion_share(outlier_result["float_profile"]) == 0.0
    names = {n["name"] for n in profile["by_node"]}
    assert any(layer["name"] in names for layer in outlier_result["layers"])  # fused nodes keep their names


def test_profile_adds_up_to_the_measured_call_time(tmp_path: Path, kit: Any) -> None:
    """A model heavy enough that kernels, not the executor, take the time: node times sum to the call."""
    import time

    import onnxruntime as ort
    import torch
    from torch import nn

    torch.manual_seed(0)
    heavy = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10)).eval()
    path = kit.export_onnx(heavy, tmp_path / "heavy.onnx", (512,))
    x = np.random.default_rng(0).standard_normal((24, 512)).astype(np.float32)
    from core.runtimes.ort_runner import session_options

    session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])

    def measured_ms() -> float:
        calls = []
        for i in range(40):
            start = time.perf_counter()
            session.run(None, {"input": x[i % 24: i % 24 + 1]})
            calls.append((time.perf_counter() - start) * 1000.0)
        return float(np.median(calls[5:]))

    # A shared machine changes speed between two measurements: the profile is compared with direct timings
    # taken just before and just after it, and a pair that disagrees is measured again (up to three times).
    pairs = []
    for _ in range(3):
        before = measured_ms()
        result = analyse_layers(path, path, "onnxruntime", x, float_profile={"by_op_type": {}, "by_node": []})
        node_ms = sum(n["ms"] for n in result["profile"]["by_node"])
        pairs.append((node_ms, before, measured_ms()))
        if any(m == pytest.approx(node_ms, rel=0.2) for m in pairs[-1][1:]):
            break
    else:
        pytest.fail(f"profile sums (ms) never within 20 % of the measured call time: {pairs}")
    assert all(layer["activation"]["sqnr_db"] == EXACT_SQNR_DB for layer in result["layers"])


def test_progress_and_cancel(outlier: dict[str, Any]) -> None:
    f, x = outlier["files"], outlier["x"]
    calls: list[tuple[int, int]] = []
    analyse_layers(f["float"], f["int8"], "onnxruntime", x, progress=lambda d, t: calls.append((d, t)),
                   max_samples=20, float_profile={"by_op_type": {}, "by_node": []})
    assert calls[-1] == (36, 36)  # 20 samples compared, 16 profiled calls of the variant (float: given)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    seen: list[int] = []
    with pytest.raises(Cancelled):
        analyse_layers(f["float"], f["int8"], "onnxruntime", x, cancel=lambda: len(seen) >= 2,
                       progress=lambda d, t: seen.append(d))
    assert seen == [1, 9]  # stopped between batches (the first holds one sample, to size the others)


def test_batches_bound_the_intermediates() -> None:
    from core.layers.steps import INTERMEDIATE_BUDGET_BYTES, MAX_BATCH, next_batch

    assert next_batch(0, 0) == 1  # the first batch measures
    assert next_batch(1, INTERMEDIATE_BUDGET_BYTES // 3) == 3
    assert next_batch(1, 2 * INTERMEDIATE_BUDGET_BYTES) == 1
    assert next_batch(1, 1000) == MAX_BATCH
    assert next_batch(0, 0, fixed=4) == 4


# ----------------------------------------------------------------------------- LiteRT


def _tflite_conv_pair(folder: Path, calibration: np.ndarray) -> tuple[Path, Path, np.ndarray]:
    """A float TFLite graph and its int8 twin, written with the flatbuffer schema (no converter offline):

        float: input [1,4,4,2] ─ CONV_2D 1x1, 4 filters (filter 3 ×1000) ─ conv_out ─ RESHAPE ─ logits [1,64]
        int8:  input ─ QUANTIZE ─ CONV_2D int8 (per-channel weights, int32 bias) ─ conv_out ─ DEQUANTIZE ─ RESHAPE
               ─ logits

    Tensor names ("filter", "conv_out", "logits") are shared, as the converter's are. One per-tensor int8 range
    covers the ×1000 channel, so the other three channels of ``conv_out`` keep only a few integer steps.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as sc

    rng = np.random.default_rng(7)
    weights = rng.standard_normal((4, 1, 1, 2)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32) * 0.1
    weights[3] *= SCALE
    bias[3] *= SCALE

    def quant(scales: list[float], zps: list[int], axis: int = 0) -> Any:
        q = sc.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = scales, zps, axis
        return q

    def tensor(name: str, shape: list[int], ttype: int, buffer: int, q: Any = None) -> Any:
        t = sc.TensorT()
        t.name, t.shape, t.type, t.buffer, t.quantization = name, shape, ttype, buffer, q
        return t

    def buffer(data: np.ndarray | None) -> Any:
        b = sc.BufferT()
        b.data = None if data is None else np.frombuffer(data.tobytes(), dtype=np.uint8)
        return b

    def opcode(code: int) -> Any:
        c = sc.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, code, 3 if code == sc.BuiltinOperator.CONV_2D else 1
        return c

    def conv_op(index: int, inputs: list[int], outputs: list[int]) -> Any:
        op = sc.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        op.builtinOptionsType = sc.BuiltinOptions.Conv2DOptions
        op.builtinOptions = sc.Conv2DOptionsT()
        op.builtinOptions.padding, op.builtinOptions.strideW, op.builtinOptions.strideH = sc.Padding.VALID, 1, 1
        op.builtinOptions.dilationWFactor = op.builtinOptions.dilationHFactor = 1
        return op

    def plain_op(index: int, inputs: list[int], outputs: list[int]) -> Any:
        op = sc.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        return op

    def write(path: Path, tensors: list[Any], buffers: list[Any], ops: list[Any], codes: list[int],
              outputs: list[int]) -> Path:
        sub = sc.SubGraphT()
        sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = tensors, [0], outputs, ops, "main"
        model = sc.ModelT()
        model.version, model.description = 3, "quantbench layer test"
        model.operatorCodes, model.subgraphs, model.buffers = [opcode(c) for c in codes], [sub], buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
        return path

    f32, i8, i32 = sc.TensorType.FLOAT32, sc.TensorType.INT8, sc.TensorType.INT32
    shape = np.array([1, 64], dtype=np.int32)
    float_path = write(folder / "conv_float.tflite", [
        tensor("input", [1, 4, 4, 2], f32, 1), tensor("filter", [4, 1, 1, 2], f32, 2),
        tensor("bias", [4], f32, 3), tensor("conv_out", [1, 4, 4, 4], f32, 4),
        tensor("new_shape", [2], i32, 5), tensor("logits", [1, 64], f32, 6),
    ], [buffer(None), buffer(None), buffer(weights), buffer(bias), buffer(None), buffer(shape), buffer(None)],
        [conv_op(0, [0, 1, 2], [3]), plain_op(1, [3, 4], [5])],
        [sc.BuiltinOperator.CONV_2D, sc.BuiltinOperator.RESHAPE], [5])
    # Calibration: min-max ranges, as a converter's default calibration takes them.
    out = np.einsum("nhwc,oc->nhwo", calibration, weights[:, 0, 0, :]) + bias

    def affine(lo: float, hi: float) -> tuple[float, int]:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = (hi - lo) / 255.0
        return scale, int(round(-128 - lo / scale))

    in_scale, in_zp = affine(float(calibration.min()), float(calibration.max()))
    out_scale, out_zp = affine(float(out.min()), float(out.max()))
    w_scales = np.abs(weights).reshape(4, -1).max(axis=1) / 127.0
    q_weights = np.clip(np.round(weights / w_scales[:, None, None, None]), -127, 127).astype(np.int8)
    b_scales = in_scale * w_scales
    q_bias = np.round(bias / b_scales).astype(np.int32)
    int8_path = write(folder / "conv_int8.tflite", [
        tensor("input", [1, 4, 4, 2], f32, 1), tensor("input_int8", [1, 4, 4, 2], i8, 2, quant([in_scale], [in_zp])),
        tensor("filter", [4, 1, 1, 2], i8, 3, quant([float(v) for v in w_scales], [0] * 4)),
        tensor("bias", [4], i32, 4, quant([float(v) for v in b_scales], [0] * 4)),
        tensor("conv_out", [1, 4, 4, 4], i8, 5, quant([out_scale], [out_zp])),
        tensor("conv_real", [1, 4, 4, 4], f32, 6), tensor("new_shape", [2], i32, 7), tensor("logits", [1, 64], f32, 8),
    ], [buffer(None), buffer(None), buffer(None), buffer(q_weights), buffer(q_bias), buffer(None), buffer(None),
        buffer(shape), buffer(None)],
        [plain_op(0, [0], [1]), conv_op(1, [1, 2, 3], [4]), plain_op(2, [4], [5]), plain_op(3, [5, 6], [7])],
        [sc.BuiltinOperator.QUANTIZE, sc.BuiltinOperator.CONV_2D, sc.BuiltinOperator.DEQUANTIZE,
         sc.BuiltinOperator.RESHAPE], [7])
    return float_path, int8_path, weights


def test_litert_int8_twin_compared_tensor_by_tensor(tmp_path: Path) -> None:
    from core.runtimes.litert_runner import LiteRTRunner

    x = np.random.default_rng(8).standard_normal((12, 4, 4, 2)).astype(np.float32)
    float_path, int8_path, weights = _tflite_conv_pair(tmp_path, x)  # calibrated on the samples compared
    # The pair is faithful: the int8 file's output follows the float one within its output step.
    int8_out = LiteRTRunner(int8_path, 1).predict(x)
    float_out = LiteRTRunner(float_path, 1).predict(x)
    assert np.abs(int8_out - float_out).max() < 0.05 * np.abs(float_out).max()
    result = analyse_layers(float_path, int8_path, "litert", x)
    layer, logits = result["layers"]
    assert logits["name"] == "logits" and logits["op_type"] == "RESHAPE"
    assert logits["activation"]["sqnr_db"] == pytest.approx(layer["activation"]["sqnr_db"], abs=1e-3)
    assert layer["name"] == layer["tensor"] == "conv_out" and layer["op_type"] == "CONV_2D"
    act = layer["activation"]
    # NHWC: the channel axis is the last one; the ×1000 filter's channel is the outlier, the others are crushed.
    assert act["outlier_channels"] == [OUTLIER_CHANNEL]
    assert act["sqnr_db"] > 30.0 and act["min_channel_sqnr_db"] < 15.0
    assert act["clipped_fraction"] is not None and 0.0 <= act["clipped_fraction"] < 0.05
    # Weights dequantized per channel (quantized_dimension 0): close to the float ones, every channel.
    assert layer["weight"]["min_channel_sqnr_db"] > 35.0
    assert layer["ranges"]["weight"]["per_channel"] is True
    assert sum(layer["ranges"]["activation"]["counts"]) == x.size // 2 * 4
    # No time per layer, and the result says why.
    assert result["profile"] is None and any("no per-op profiler" in note for note in result["notes"])
    # One sample's own figures, as for the other runtimes.
    from core.layers import analyse_sample

    one = analyse_sample(float_path, int8_path, "litert", x[3], index=3)
    alone = analyse_layers(float_path, int8_path, "litert", x[3:4])
    assert one["layers"][0]["sqnr_db"] == pytest.approx(alone["layers"][0]["activation"]["sqnr_db"])
    with pytest.raises(ValueError, match="tensorrt"):
        analyse_layers("a", "b", "tensorrt", np.zeros((1, 4), np.float32))


def test_litert_converter_made_pair_matches_by_tensor_name() -> None:
    """The TFLite Micro sine models (a converter's float file and a full-int8 file), when the shared data has
    them: every fused dense layer's output is matched by name and dequantized with its own parameters."""
    from tests.shared_data import SHARED_DATA

    float_path, int8_path = SHARED_DATA / "hello_world_float.tflite", SHARED_DATA / "hello_world_int8.tflite"
    if not int8_path.exists():
        pytest.skip("the shared TFLite sine models are not present")
    x = np.linspace(0.0, 2 * math.pi, 24, dtype=np.float32).reshape(-1, 1)
    result = analyse_layers(float_path, int8_path, "litert", x)
    assert [layer["op_type"] for layer in result["layers"]] == ["FULLY_CONNECTED"] * 3
    assert result["layers"][-1]["tensor"] == "StatefulPartitionedCall:0"
    # Both files approximate the sine: the outputs agree. They were trained apart, though (their weights differ,
    # about 0 dB), and the analysis says so instead of blaming the quantization alone.
    assert result["layers"][-1]["activation"]["sqnr_db"] > 15.0
    assert all(layer["weight"]["sqnr_db"] < 3.0 for layer in result["layers"])


# ----------------------------------------------------------------------------- PyTorch


def _fx_static(model: Any, calibration: np.ndarray) -> Any:
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"),
                              (torch.zeros((1, *calibration.shape[1:])),))
        with torch.inference_mode():
            prepared(torch.from_numpy(calibration))
        return convert_fx(prepared)


def test_torch_fx_static_matches_modules_by_name(kit: Any) -> None:
    float_model = _outlier_cnn(kit)
    x = kit.tiny_inputs(32, seed=3)
    variant = _fx_static(float_model, kit.tiny_inputs(32, seed=4))
    result = analyse_layers(float_model, variant, "pytorch", x)
    layers = _by_name(result)
    conv0 = layers["0.0"]
    assert conv0["op_type"] == "Conv2d+ReLU"  # fused by FX; its ReLU is listed as unmatched
    assert "0.1" in result["unmatched"]
    assert conv0["activation"]["outlier_channels"] == [OUTLIER_CHANNEL]
    assert conv0["activation"]["min_channel_sqnr_db"] < 3.0 < 20.0 < conv0["activation"]["sqnr_db"]
    assert conv0["activation"]["clipped_fraction"] is not None
    assert conv0["weight"]["sqnr_db"] > 30.0
    ranges = conv0["ranges"]
    assert sum(ranges["activation"]["counts"]) == len(x) * 8 * 8 * 8
    assert ranges["activation"]["quant_range"][1] > 100.0  # sized for the outlier channel
    assert ranges["weight"]["per_channel"] is True and ranges["weight"]["quant_range"][0] < 0.0  # x86: per channel
    assert list(layers) == ["0.0", "0.2", "1.0", "1.1", "1.3"]  # call order; ReLUs fused away
    profile = result["profile"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(profile["by_op_type"])
    assert sum(v["share"] for v in profile["by_op_type"].values()) == pytest.approx(1.0)
    assert [n["name"] for n in profile["by_node"]] == list(layers)
    assert all(n["ms"] > 0 for n in profile["by_node"])


def test_torch_dynamic_and_half(kit: Any) -> None:
    import torch
    from torch import nn

    float_model = kit.make_tiny_cnn()
    x = kit.tiny_inputs(16, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = torch.ao.quantization.quantize_dynamic(copy.deepcopy(float_model), {nn.Linear}, dtype=torch.qint8)
    result = analyse_layers(float_model, dynamic, "pytorch", x, profile=False)
    layers = _by_name(result)
    assert result["unmatched"] == [] and len(layers) == 8
    assert layers["0.0"]["activation"]["sqnr_db"] == EXACT_SQNR_DB  # convolutions stay float
    assert 25.0 < layers["1.1"]["activation"]["sqnr_db"] < 60.0  # the int8 Linear
    assert 35.0 < layers["1.1"]["weight"]["sqnr_db"] < 60.0
    half = analyse_layers(float_model, copy.deepcopy(float_model).half(), "pytorch", x, profile=False)
    assert all(60.0 < layer["activation"]["sqnr_db"] < 90.0 for layer in half["layers"])


def test_torch_weight_only_and_pruned(kit: Any) -> None:
    import torch
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    float_model = kit.make_tiny_cnn()
    x = kit.tiny_inputs(16, seed=3)
    weight_only = copy.deepcopy(float_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(weight_only, Int8WeightOnlyConfig())
    layers = _by_name(analyse_layers(float_model, weight_only, "pytorch", x, profile=False))
    assert 40.0 < layers["1.1"]["weight"]["sqnr_db"] < 60.0  # the int8 weight, dequantized by its own tensor
    assert layers["0.0"]["weight"]["sqnr_db"] == EXACT_SQNR_DB  # torchao left the convolutions alone
    pruned = copy.deepcopy(float_model)
    with torch.no_grad():
        first = pruned[0][0]
        first.weight, first.bias = torch.nn.Parameter(first.weight[:4]), torch.nn.Parameter(first.bias[:4])
        first.out_channels = 4
        second = pruned[0][2]
        second.weight = torch.nn.Parameter(second.weight[:, :4])
        second.in_channels = 4
    result = analyse_layers(float_model, pruned, "pytorch", x, profile=False)
    assert "0.0" not in _by_name(result) and "0.2" in _by_name(result)
    assert any(note.startswith("not compared: 0.0: shapes differ") for note in result["notes"])
