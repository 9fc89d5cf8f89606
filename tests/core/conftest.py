"""Tiny real models and data for the engine, model, scheme and command-line tests.

Everything is built in the test session's temporary folders: a small CNN in PyTorch
(exported to ONNX once per session), an MLP graph written with ``onnx.helper``, and
``.npz`` datasets labelled by the float model itself so that "accuracy" and
"agreement" mean something. torch and onnx are imported inside the fixtures, so
collecting a test file that does not use them stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.study.cancel import CancelToken
from core.study.spec import Device

#: One sample of the tiny CNN: a grey 8x8 image.
TINY_SAMPLE_SHAPE = (1, 8, 8)
TINY_CLASSES = 10
#: Samples in the tiny .npz dataset (enough for a few evaluation chunks, fast to time).
TINY_SAMPLES = 96


def make_tiny_cnn(num_classes: int = TINY_CLASSES, seed: int = 0) -> Any:
    """A weight-dominated CNN + Linear network for 8x8 images, in eval mode.

        (1, 8, 8) ─ conv 8 ─ relu ─ conv 16 ─ relu ─▶ (16, 8, 8)
                  ─ flatten 1024 ─ linear 128 ─ relu ─ linear num_classes

    The first Linear holds 131 000 of its 134 000 parameters, so an int8 file is
    about a quarter of the float one, as with real weight-heavy models.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    features = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()
    )
    head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, num_classes))
    return nn.Sequential(features, head).eval()


def export_onnx(module: Any, path: Path, sample_shape: tuple[int, ...], output_name: str = "logits") -> Path:
    """Export ``module`` to one self-contained ONNX file with a symbolic batch axis."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            module,
            (torch.zeros((1, *sample_shape)),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=[output_name],
            dynamic_axes={"input": {0: "batch"}, output_name: {0: "batch"}},
        )
    return path


def torch_outputs(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def tiny_inputs(n: int = TINY_SAMPLES, seed: int = 0) -> np.ndarray:
    """Zero-mean inputs: they spread the random network's predictions over many classes."""
    return np.random.default_rng(seed).standard_normal((n, *TINY_SAMPLE_SHAPE)).astype(np.float32)


def make_mlp_onnx(path: Path, external_data: str | None = None, seed: int = 0) -> Path:
    """An MLP graph written by hand; with ``external_data`` its weights go to that file.

        x [batch, 64] ─ MatMul w1 [64, 32] ─ Add b1 ─ Relu ─ MatMul w2 [32, 10] ─▶ y [batch, 10]
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((32, 10)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["h_biased"]),
        helper.make_node("Relu", ["h_biased"], ["h_relu"]),
        helper.make_node("MatMul", ["h_relu", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project supports
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        onnx.save(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
            location=external_data, size_threshold=0,
        )
    else:
        onnx.save(model, str(path))
    return path


def save_npz(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    if y is None:
        np.savez(path, x=x)
    else:
        np.savez(path, x=x, y=y)
    return path


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The builders above, for tests that make their own variations (test files do not import conftest)."""
    return SimpleNamespace(
        make_tiny_cnn=make_tiny_cnn,
        export_onnx=export_onnx,
        torch_outputs=torch_outputs,
        tiny_inputs=tiny_inputs,
        make_mlp_onnx=make_mlp_onnx,
        save_npz=save_npz,
        sample_shape=TINY_SAMPLE_SHAPE,
    )


@pytest.fixture(scope="session")
def tiny_cnn() -> Any:
    """The tiny CNN (do not modify it: it is shared by the session)."""
    return make_tiny_cnn()


@pytest.fixture(scope="session")
def tiny_x() -> np.ndarray:
    return tiny_inputs()


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_cnn: Any) -> Path:
    """The tiny CNN as ONNX (input 'input' [batch,1,8,8], output 'logits' [batch,10]); copy before changing it."""
    return export_onnx(tiny_cnn, tmp_path_factory.mktemp("tiny_onnx") / "tiny_cnn.onnx", TINY_SAMPLE_SHAPE)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory, tiny_cnn: Any, tiny_x: np.ndarray) -> Path:
    """x (96, 1, 8, 8) float32 and y = the float model's own predicted class (int64)."""
    y = torch_outputs(tiny_cnn, tiny_x).argmax(axis=1).astype(np.int64)
    return save_npz(tmp_path_factory.mktemp("tiny_npz") / "tiny.npz", tiny_x, y)


@pytest.fixture(scope="session")
def state_dict_file(tmp_path_factory: pytest.TempPathFactory, tiny_cnn: Any) -> Path:
    import torch

    path = tmp_path_factory.mktemp("tiny_sd") / "tiny_cnn_state.pt"
    torch.save(tiny_cnn.state_dict(), str(path))
    return path


@pytest.fixture
def tiny_torch_loaded(tiny_cnn: Any, state_dict_file: Path) -> Any:
    """The tiny CNN as an eager PyTorch LoadedModel (built directly: 'demo' is the only bundled arch)."""
    from core.models.loaded import LoadedModel, ModelFormat, TensorInfo

    return LoadedModel(
        path=state_dict_file,
        format=ModelFormat.TORCH_STATE_DICT,
        inputs=[TensorInfo("input", ("batch", *TINY_SAMPLE_SHAPE), "float32")],
        outputs=[TensorInfo("output", ("batch", TINY_CLASSES), "float32")],
        params=sum(int(p.numel()) for p in tiny_cnn.parameters()),
        file_bytes=state_dict_file.stat().st_size,
        handle=tiny_cnn,
        arch="tiny",
    )


class ProgressLog:
    """Collects a scheme's progress(stage, done, total, message) calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, str]] = []

    def __call__(self, stage: str, done: int, total: int, message: str) -> None:
        self.calls.append((stage, done, total, message))

    @property
    def stages(self) -> set[str]:
        return {c[0] for c in self.calls}


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., Any]:
    """make_ctx(name, calibration=None) -> a BuildContext writing under tmp_path/study/name.

    ``ctx.progress`` is a ProgressLog; ``ctx.calibration_requests`` lists the n asked for.
    Contexts made by one test share their ``shared`` cache, as the variants of one study do.
    """
    from core.schemes.base import BuildContext

    shared: dict[str, Any] = {}

    def make(name: str, calibration: np.ndarray | None = None, cancel: CancelToken | None = None) -> Any:
        workdir = tmp_path / "study" / name
        workdir.mkdir(parents=True, exist_ok=True)
        requests: list[int] = []
        pool = calibration if calibration is not None else tiny_inputs(64, seed=1)

        def calibrate(n: int) -> np.ndarray:
            requests.append(n)
            return pool[:n]

        ctx = BuildContext(
            workdir=workdir,
            threads=1,
            device=Device.CPU,
            cancel=cancel or CancelToken(),
            calibration=calibrate,
            progress=ProgressLog(),
            shared=shared,
        )
        ctx.calibration_requests = requests  # type: ignore[attr-defined]
        return ctx

    return make
