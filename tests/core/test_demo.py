"""The bundled demo: its committed files, the script that makes them, and the architecture names."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import numpy as np
import pytest
import torch

from core.datasets.builtin import digits_split
from core.errors import BadInput
from core.models.architectures import build_architecture, default_input_shape, known_architectures
from core.study.demo import DEMO_ARCH, DEMO_DIR, DEMO_ONNX, DEMO_WEIGHTS, demo_available


@pytest.fixture(scope="module")
def digits_test() -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = digits_split()
    return x_test, y_test


@pytest.fixture(scope="module")
def demo_model() -> torch.nn.Module:
    model = build_architecture(DEMO_ARCH)
    model.load_state_dict(torch.load(DEMO_WEIGHTS, weights_only=True))
    return model.eval()


def _load_make_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo", DEMO_DIR / "make_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_files_are_present() -> None:
    assert demo_available()
    assert DEMO_WEIGHTS.parent == DEMO_ONNX.parent == DEMO_DIR


def test_committed_weights_reach_95_percent(demo_model: torch.nn.Module, digits_test) -> None:
    x_test, y_test = digits_test
    with torch.no_grad():
        predicted = demo_model(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    assert len(y_test) == 450
    assert (predicted == y_test).mean() >= 0.95


def test_committed_onnx_matches_torch(demo_model: torch.nn.Module, digits_test) -> None:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(DEMO_ONNX), load_external_data=False)
    # One self-contained file: no initializer points at external data.
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    x_test, _ = digits_test
    session = ort.InferenceSession(str(DEMO_ONNX), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": x_test})[0]
    with torch.no_grad():
        torch_logits = demo_model(torch.from_numpy(x_test)).numpy()
    assert onnx_logits.shape == (450, 10)
    np.testing.assert_array_equal(onnx_logits.argmax(axis=1), torch_logits.argmax(axis=1))
    # BatchNorm is folded into the convolutions on export, so only rounding differs.
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-4)


def test_training_is_deterministic_and_leaves_torch_as_it_found_it() -> None:
    make_demo = _load_make_demo()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng_state = torch.get_rng_state()

    first = make_demo.train(epochs=1, seed=0).state_dict()
    second = make_demo.train(epochs=1, seed=0).state_dict()
    other_seed = make_demo.train(epochs=1, seed=1).state_dict()

    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert not torch.equal(first["classifier.1.weight"], other_seed["classifier.1.weight"])
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_demo_architecture_shapes() -> None:
    model = build_architecture("demo").eval()
    with torch.no_grad():
        assert model(torch.zeros(default_input_shape("demo"))).shape == (1, 10)
        assert build_architecture("demo", num_classes=3).eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    # Large enough that weights dominate the file, which quantization then shrinks.
    assert 150_000 < sum(p.numel() for p in model.parameters()) < 400_000
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_torchvision_architectures_build_without_weights() -> None:
    names = known_architectures()
    assert names[0] == "demo"
    assert "torchvision:resnet18" in names
    assert "torchvision:fasterrcnn_resnet50_fpn" not in names

    model = build_architecture("torchvision:resnet18", num_classes=7).eval()
    assert default_input_shape("torchvision:resnet18") == (1, 3, 224, 224)
    assert default_input_shape("torchvision:inception_v3") == (1, 3, 299, 299)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


@pytest.mark.parametrize("name", ["lenet", "torchvision:no_such_net", ""])
def test_unknown_architecture_is_bad_input(name: str) -> None:
    with pytest.raises(BadInput, match=f"architecture '{name}' is unknown; use 'demo' or 'torchvision:NAME'"):
        build_architecture(name)
    with pytest.raises(BadInput):
        default_input_shape(name)


def test_torchvision_non_classifier_is_bad_input() -> None:
    with pytest.raises(BadInput, match="is not a classification model"):
        build_architecture("torchvision:fasterrcnn_resnet50_fpn")
