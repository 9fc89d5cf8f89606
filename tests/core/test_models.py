"""Model loading by content: ONNX (with external data), state dicts, TorchScript, torch.export, and refusals."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.errors import BadInput
from core.models import FileKind, ModelFormat, detect_file, load_model
from core.study.demo import DEMO_WEIGHTS
from core.study.spec import ModelSpec


def _param_count(module: Any) -> int:
    return sum(int(p.numel()) for p in module.parameters())


def _load(path: Path, **kwargs: Any) -> Any:
    return load_model(ModelSpec(path=str(path), **kwargs))


def _refusal(path: Path, **kwargs: Any) -> str:
    with pytest.raises(BadInput) as info:
        _load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


# ----------------------------------------------------------------------------- ONNX


def test_onnx_single_file_reports_its_signature(tiny_onnx: Path, tiny_cnn: Any) -> None:
    model = _load(tiny_onnx)

    assert model.format is ModelFormat.ONNX
    assert [t.name for t in model.inputs] == ["input"]
    assert [t.name for t in model.outputs] == ["logits"]
    assert model.input.shape == ("batch", 1, 8, 8)
    assert isinstance(model.input.shape[0], str), "a symbolic batch dimension is reported by its name"
    assert model.output.shape == ("batch", 10)
    assert model.input.dtype == model.output.dtype == "float32"
    assert model.params == _param_count(tiny_cnn)
    assert model.file_bytes == tiny_onnx.stat().st_size
    assert model.info()["params"] == model.params
    assert model.info()["inputs"][0]["shape"] == ["batch", 1, 8, 8]


def test_onnx_external_data_counts_in_params_and_bytes(tmp_path: Path, kit: SimpleNamespace) -> None:
    path = kit.make_mlp_onnx(tmp_path / "mlp.onnx", external_data="weights.bin")
    weights = tmp_path / "weights.bin"
    assert weights.is_file() and weights.stat().st_size == (64 * 32 + 32 + 32 * 10) * 4

    model = _load(path)

    assert model.params == 64 * 32 + 32 + 32 * 10
    assert model.file_bytes == path.stat().st_size + weights.stat().st_size
    assert model.input.shape == ("batch", 64)
    assert any("external data" in note for note in model.notes)


def _relocated(path: Path, location: str, name: str = "moved.onnx") -> Path:
    """A copy of the ONNX file at ``path`` whose tensors point at ``location`` instead."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    out = path.parent / name
    onnx.save(model, str(out))
    return out


@pytest.fixture
def external_mlp(tmp_path: Path, kit: SimpleNamespace) -> Path:
    """model/mlp.onnx with its weights in model/weights.bin, and a copy of them at outside.bin."""
    path = kit.make_mlp_onnx(tmp_path / "model" / "mlp.onnx", external_data="weights.bin")
    shutil.copyfile(tmp_path / "model" / "weights.bin", tmp_path / "outside.bin")
    return path


def test_external_data_outside_the_folder_is_refused(external_mlp: Path) -> None:
    message = _refusal(_relocated(external_mlp, "../outside.bin"))
    assert "'../outside.bin'" in message and "inside the model's folder" in message


def test_external_data_at_an_absolute_path_is_refused(external_mlp: Path) -> None:
    absolute = str(external_mlp.parent.parent / "outside.bin")
    message = _refusal(_relocated(external_mlp, absolute))
    assert repr(absolute) in message and "inside the model's folder" in message


def test_external_data_through_a_symlink_is_refused(external_mlp: Path) -> None:
    os.symlink(external_mlp.parent.parent / "outside.bin", external_mlp.parent / "link.bin")
    message = _refusal(_relocated(external_mlp, "link.bin"))
    assert "symbolic link" in message


def test_external_data_in_a_linked_subfolder_is_refused(external_mlp: Path) -> None:
    # model/sub -> .. : the file name itself is no link, but it resolves outside model/.
    os.symlink(external_mlp.parent.parent, external_mlp.parent / "sub")
    message = _refusal(_relocated(external_mlp, "sub/outside.bin"))
    assert "outside the model's folder" in message


def test_missing_external_data_is_refused(external_mlp: Path) -> None:
    (external_mlp.parent / "weights.bin").unlink()
    message = _refusal(external_mlp)
    assert "'weights.bin'" in message and "missing" in message


def test_too_short_external_data_is_refused(external_mlp: Path) -> None:
    weights = external_mlp.parent / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    message = _refusal(external_mlp)
    assert "100 bytes" in message and "needs" in message


# ----------------------------------------------------------------------------- PyTorch state dicts


def test_state_dict_with_the_demo_architecture() -> None:
    from core.models.architectures import build_architecture

    model = _load(DEMO_WEIGHTS, arch="demo")

    assert model.format is ModelFormat.TORCH_STATE_DICT
    assert model.arch == "demo"
    assert model.params == _param_count(build_architecture("demo"))
    assert model.input.shape == ("batch", 1, 8, 8)
    assert model.output.shape == ("batch", 10)
    assert model.file_bytes == DEMO_WEIGHTS.stat().st_size
    assert not model.handle.training, "loaded for inference"


def test_state_dict_without_arch_asks_for_it() -> None:
    message = _refusal(DEMO_WEIGHTS)
    assert "--arch" in message and "state dict" in message


def test_state_dict_with_wrong_keys_is_refused(state_dict_file: Path) -> None:
    # The tiny CNN's weights do not belong to the demo network.
    message = _refusal(state_dict_file, arch="demo")
    assert "does not fit architecture 'demo'" in message


def test_state_dict_with_wrong_shapes_is_refused(tmp_path: Path) -> None:
    import torch

    state = torch.load(DEMO_WEIGHTS, weights_only=True)
    state["classifier.4.weight"] = torch.zeros(5, 256)  # 5 classes where the demo has 10
    state["classifier.4.bias"] = torch.zeros(5)
    path = tmp_path / "five_classes.pt"
    torch.save(state, str(path))

    message = _refusal(path, arch="demo")
    assert "classifier.4.weight" in message


# ----------------------------------------------------------------------------- code-carrying formats


@pytest.fixture
def small_module() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).eval()


def test_torchscript_needs_trust(tmp_path: Path, small_module: Any) -> None:
    import torch

    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit announces its deprecation
        torch.jit.save(torch.jit.trace(small_module, torch.zeros(1, 1, 8, 8)), str(path))

    assert "--trust" in _refusal(path, input_shape=(1, 1, 8, 8))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _load(path, trusted=True, input_shape=(1, 1, 8, 8))
    assert model.format is ModelFormat.TORCHSCRIPT
    assert model.params == _param_count(small_module)
    assert model.input.shape == ("batch", 1, 8, 8)
    assert model.output.shape == ("batch", 10)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(model.handle(torch.from_numpy(x)).numpy(), small_module(torch.from_numpy(x)).numpy())


def test_torch_export_needs_trust(tmp_path: Path, small_module: Any) -> None:
    import torch

    path = tmp_path / "program.pt2"
    torch.export.save(torch.export.export(small_module, (torch.zeros(1, 1, 8, 8),)), str(path))

    assert "--trust" in _refusal(path)

    model = _load(path, trusted=True)
    assert model.format is ModelFormat.TORCH_EXPORT
    assert model.params == _param_count(small_module)
    assert model.input.shape == ("batch", 1, 8, 8), "the shape comes from the program's example inputs"
    assert model.output.shape == ("batch", 10)


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    import torch

    canary = tmp_path / "canary"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return os.system, (f"touch {canary}",)

    bare = tmp_path / "payload.pkl"
    bare.write_bytes(pickle.dumps(Payload(), protocol=2))
    zipped = tmp_path / "payload.pt"
    torch.save({"weight": torch.zeros(2), "extra": Payload()}, str(zipped))

    for path in (bare, zipped):
        message = _refusal(path, arch="demo")
        assert "refused" in message and "system" in message
    assert not canary.exists()


# ----------------------------------------------------------------------------- detection by bytes


def test_format_comes_from_the_bytes_not_the_extension(tmp_path: Path, tiny_onnx: Path) -> None:
    onnx_as_bin = tmp_path / "weights.bin"
    shutil.copyfile(tiny_onnx, onnx_as_bin)
    state_dict_as_onnx = tmp_path / "model.onnx"
    shutil.copyfile(DEMO_WEIGHTS, state_dict_as_onnx)

    assert detect_file(onnx_as_bin) is FileKind.ONNX
    assert _load(onnx_as_bin).format is ModelFormat.ONNX
    assert detect_file(state_dict_as_onnx) is FileKind.TORCH_ZIP
    assert _load(state_dict_as_onnx, arch="demo").format is ModelFormat.TORCH_STATE_DICT


LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 912345\n"
)
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.onnx", b"", "empty (0 bytes)"),
        ("lfs.onnx", LFS_POINTER.encode(), "Git LFS pointer"),
        ("page.onnx", HTML_PAGE.encode(), "HTML"),
        ("notes.pt", b"these are my training notes, not a model\n" * 4, "text file"),
        ("tiny.onnx", b"\x00\x01\x02", "too short"),
        ("noise.bin", np.random.default_rng(0).bytes(4096), "not a model format"),
    ],
)
def test_files_that_are_not_models_say_what_they_are(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert expected in _refusal(path, arch="demo")


def test_a_truncated_pytorch_zip_is_refused(tmp_path: Path) -> None:
    data = DEMO_WEIGHTS.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _refusal(path, arch="demo")


def test_a_truncated_onnx_file_is_refused(tmp_path: Path, tiny_onnx: Path) -> None:
    data = tiny_onnx.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 3])
    assert "ONNX" in _refusal(path)


def test_a_missing_file_and_a_folder_are_refused(tmp_path: Path) -> None:
    assert "no such file" in _refusal(tmp_path / "absent.onnx")
    assert "folder" in _refusal(tmp_path)
