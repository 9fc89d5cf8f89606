"""ort-int8-static pads 3-channel convolutions for ONNX Runtime's fused int8 kernel, without changing a result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.models import load_model
from core.schemes import get_scheme
from core.study.spec import ModelSpec, SchemeSpec

SHAPE = (3, 16, 16)


def _rgb_net(two_stems: bool = False) -> Any:
    """An RGB image network: a 3->16 stride-2 stem (two, reading the same input, if ``two_stems``), then 16->16."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.stem2 = nn.Conv2d(3, 16, 3, stride=2, padding=1) if two_stems else None
            self.body = nn.Conv2d(16, 16, 3, padding=1)
            self.head = nn.Linear(16 * 8 * 8, 10)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.stem(x))
            if self.stem2 is not None:
                y = y + torch.relu(self.stem2(x))
            return self.head(torch.relu(self.body(y)).flatten(1))

    return Net().eval()


@pytest.fixture
def rgb(tmp_path: Path, kit: SimpleNamespace) -> Callable[..., Any]:
    def make(two_stems: bool = False) -> Any:
        path = kit.export_onnx(_rgb_net(two_stems), tmp_path / f"rgb{int(two_stems)}.onnx", SHAPE)
        return load_model(ModelSpec(path=str(path)))

    return make


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(np.float32)


def _build(model: Any, text: str, make_ctx: Callable[..., Any], rgb: bool = True) -> Any:
    spec = SchemeSpec.parse(text)
    return get_scheme(spec.id).build(model, spec, make_ctx(spec.label, calibration=_inputs(16, 1) if rgb else None))


def _op_types(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _stem_reads_a_pad(path: Path) -> tuple[list[int], bool]:
    """(the stem's weight shape, whether its activation comes from a Pad) in the written file."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    conv = next(n for n in graph.node if n.op_type in ("Conv", "QLinearConv"))
    x, w = (conv.input[0], conv.input[1]) if conv.op_type == "Conv" else (conv.input[0], conv.input[3])
    if conv.op_type == "Conv":  # QDQ: both arrive through DequantizeLinear
        x, w = producer[x].input[0], producer[w].input[0]
    return list(numpy_helper.to_array(inits[w]).shape), producer[x].op_type == "Pad"


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_the_stem_is_padded_and_every_output_is_unchanged(
    rgb: Callable[..., Any], make_ctx: Callable[..., Any], fmt: str
) -> None:
    model = rgb()
    padded = _build(model, f"ort-int8-static:samples=16,format={fmt}", make_ctx)
    plain = _build(model, f"ort-int8-static:samples=16,format={fmt},align_channels=false", make_ctx)

    assert padded.coverage["channel_padded_convs"] == [
        {"node": padded.coverage["channel_padded_convs"][0]["node"], "input_channels": 3, "padded_to": 4}
    ]
    assert plain.coverage["channel_padded_convs"] == []
    assert "1 Conv padded 3→4 input channels" in padded.coverage["summary"]
    assert _op_types(padded.artifact).count("Pad") == 1 and "Pad" not in _op_types(plain.artifact)
    assert _stem_reads_a_pad(padded.artifact) == ([16, 4, 3, 3], True)
    assert _stem_reads_a_pad(plain.artifact) == ([16, 3, 3, 3], False)
    assert padded.coverage["conv_integer"] == plain.coverage["conv_integer"] == 2
    assert padded.coverage["conversions"] == plain.coverage["conversions"]  # no new Q/DQ at run time

    x = _inputs(24, 2)
    a, b = padded.runner.predict(x), plain.runner.predict(x)
    assert np.abs(a).max() > 0.1  # a real signal, not a network of zeros
    # The extra channel holds the zero point and meets zero weights: it adds exactly nothing.
    np.testing.assert_array_equal(a, b)


def test_a_shared_input_gets_a_padded_copy_per_convolution(
    rgb: Callable[..., Any], make_ctx: Callable[..., Any]
) -> None:
    model = rgb(two_stems=True)
    padded = _build(model, "ort-int8-static:samples=16", make_ctx)
    plain = _build(model, "ort-int8-static:samples=16,align_channels=false", make_ctx)

    assert [c["input_channels"] for c in padded.coverage["channel_padded_convs"]] == [3, 3]
    # Each stem reads its own padded copy; the input's shared DequantizeLinear, now unread, is gone.
    assert padded.coverage["conversions"] == plain.coverage["conversions"]
    x = _inputs(8, 3)
    np.testing.assert_array_equal(padded.runner.predict(x), plain.runner.predict(x))


def test_narrow_outputs_are_left_alone(onnx_loaded_tiny: Any, make_ctx: Callable[..., Any]) -> None:
    # The tiny CNN's first convolution has 1 input channel but only 8 outputs: the fused kernel
    # needs 16, so padding would not help it.
    built = _build(onnx_loaded_tiny, "ort-int8-static:samples=16", make_ctx, rgb=False)
    assert built.coverage["channel_padded_convs"] == [] and "padded" not in built.coverage["summary"]


def test_signed_activations_and_other_cpus_are_left_alone(
    rgb: Callable[..., Any], make_ctx: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = rgb()
    # s8 activations and u8 weights do not use the u8 x s8 kernel the padding is for.
    assert _build(model, "ort-int8-static:samples=16,activations=s8", make_ctx).coverage["channel_padded_convs"] == []
    assert _build(model, "ort-int8-static:samples=16,weights=u8", make_ctx).coverage["channel_padded_convs"] == []
    # ARM's symmetric kernels want 64 input channels or more: nothing to gain there.
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert _build(model, "ort-int8-static:samples=16", make_ctx).coverage["channel_padded_convs"] == []


def test_bad_align_value_is_bad_input(rgb: Callable[..., Any], make_ctx: Callable[..., Any]) -> None:
    from core.errors import BadInput

    with pytest.raises(BadInput, match="align_channels must be"):
        _build(rgb(), "ort-int8-static:samples=16,align_channels=perhaps", make_ctx)


@pytest.fixture
def onnx_loaded_tiny(tiny_onnx: Path) -> Any:
    return load_model(ModelSpec(path=str(tiny_onnx)))


def test_a_tensor_that_is_also_a_graph_output_keeps_its_shape(tmp_path: Path) -> None:
    """input -> Mul -> t -> Conv(3->16); t is an output of the model too, so the Conv gets a padded copy."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from core.schemes.ort_align import align_conv_channels

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "k"], ["t"]),
            helper.make_node("Conv", ["t", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *SHAPE])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "t")],
        [numpy_helper.from_array(np.array(0.5, np.float32), "k"),
         numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src, plain, padded = tmp_path / "f.onnx", tmp_path / "q.onnx", tmp_path / "qa.onnx"
    onnx.save(model, str(src))

    class Reader:
        def __init__(self) -> None:
            self.left = list(_inputs(8, 1)[:, None])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return {"x": self.left.pop()} if self.left else None

    quantize_static(str(src), str(plain), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    padded.write_bytes(plain.read_bytes())
    assert [c["padded_to"] for c in align_conv_channels(padded)] == [4]

    x = _inputs(1, 5)
    run = {
        p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x}) for p in (plain, padded)
    }
    assert run[padded][1].shape == (1, *SHAPE)  # t, as the model promises
    for a, b in zip(run[plain], run[padded], strict=True):
        np.testing.assert_array_equal(a, b)
