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
from core.spec import ModelSpec, SchemeSpec

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
    assert padded.coverage["conv_integer"] == plain.coverage["conv_integer"] == 2

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
    # s8 activations do not use the u8 kernel the padding is for.
    assert _build(model, "ort-int8-static:samples=16,activations=s8", make_ctx).coverage["channel_padded_convs"] == []
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
