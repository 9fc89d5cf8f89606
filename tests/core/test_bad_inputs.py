"""Issue #5: a corpus of hostile and broken inputs, each refused with one clear sentence.

Every case is a generator that builds its input in ``tmp_path`` and says what kind of
problem it is (a model, a dataset, a study that does not fit together, or an output
path) and which words the refusal must contain. Each goes through the public API
(``load_model``, ``load_dataset``, ``run_study``, or ``core.cli.main`` for output paths)
and must raise BadInput with one sentence naming the file, run no code (the canary file
never appears) and write nothing. A representative subset also runs the real command
in a subprocess: exit code 2, one line on stderr, no traceback, no result file.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.datasets import load_dataset
from core.engine.run import run_study
from core.errors import BadInput
from core.models import load_model
from core.models.loaded import TensorInfo
from core.study.demo import DEMO_WEIGHTS
from core.study.events import StudyFinished
from core.study.result import VariantStatus
from core.study.spec import CALIBRATE_ON_SAME, DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec
from tests.shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
SHARED_TFLITE = SHARED_DATA / "hello_world_float.tflite"
QUICK = TimingSpec(threads=1, max_time_s=0.05, min_samples=3, max_samples=50, warmup_runs=1, warmup_s=0.0)
#: What the dataset cases feed: the hand-written MLP of conftest (64 values in, 10 classes out).
MLP_INPUT = TensorInfo("x", ("batch", 64), "float32")
CANARY = "canary"
#: Every model extension a user might pick; the format is read from the bytes, never from these.
EXTENSIONS = (".onnx", ".pt", ".pth", ".pt2", ".tflite")
#: Where ``os.system`` lives on this platform ("posix" here), as a refused pickle names it.
SYSTEM_GLOBAL = f"{os.system.__module__}.system"


@dataclass
class Made:
    """What a case built: the file the message must name, and how to feed it to QuantBench."""

    names: str
    #: The model file: the broken one for model cases, one the dataset fits otherwise (None: the MLP).
    model: Path | None = None
    arch: str | None = None
    dataset: str | None = None
    model_input: TensorInfo | None = MLP_INPUT
    batch_size: int = 1
    cli: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "model", "dataset", "study" or "output"
    build: Callable[[Path, SimpleNamespace], Made]
    expect: str
    marks: tuple[Any, ...] = ()


class _SystemCall:
    """Unpickling this runs ``touch canary``: what a hostile checkpoint does."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


# ----------------------------------------------------------------------------- model generators


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _model(path: Path, arch: str | None = None) -> Made:
    return Made(names=str(path), model=path, arch=arch)


def empty(ext: str) -> Callable[[Path, SimpleNamespace], Made]:
    return lambda tmp, kit: _model(_write(tmp / f"model{ext}", b""))


def random_bytes(ext: str, seed: int) -> Callable[[Path, SimpleNamespace], Made]:
    # The first byte is fixed outside every format's magic so the expected message is stable.
    return lambda tmp, kit: _model(_write(tmp / f"model{ext}", b"\xff" + np.random.default_rng(seed).bytes(4095)))


def _state_dict_bytes(tmp: Path) -> bytes:
    import torch

    torch.save({"w": torch.arange(64, dtype=torch.float32), "b": torch.ones(8)}, str(tmp / "whole.pt"))
    data = (tmp / "whole.pt").read_bytes()
    (tmp / "whole.pt").unlink()
    return data


def _legacy_bytes(tmp: Path) -> bytes:
    import torch

    torch.save({"w": torch.zeros(64)}, str(tmp / "whole.pth"), _use_new_zipfile_serialization=False)
    data = (tmp / "whole.pth").read_bytes()
    (tmp / "whole.pth").unlink()
    return data


def _torchscript(path: Path) -> Path:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit announces its deprecation
        torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 2))), str(path))
    return path


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def truncated_onnx(tmp: Path, kit: SimpleNamespace) -> Made:
    whole = kit.make_mlp_onnx(tmp / "src" / "mlp.onnx").read_bytes()
    shutil.rmtree(tmp / "src")
    return _model(_write(tmp / "cut.onnx", _half(whole)))


def truncated_zip_pt(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "cut.pt", _half(_state_dict_bytes(tmp))), arch="demo")


def truncated_legacy_pth(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "cut.pth", _half(_legacy_bytes(tmp))), arch="demo")


def truncated_torchscript_pt2(tmp: Path, kit: SimpleNamespace) -> Made:
    whole = _torchscript(tmp / "ts.pt").read_bytes()
    (tmp / "ts.pt").unlink()
    return _model(_write(tmp / "cut.pt2", _half(whole)))


def truncated_tflite(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "cut.tflite", _half(SHARED_TFLITE.read_bytes())))


def tflite_of_a_few_bytes(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "few.tflite", b"\x00\x00\x00\x00TFL3"))


def tflite_with_a_non_utf8_tensor_name(tmp: Path, kit: SimpleNamespace) -> Made:
    data = bytearray(SHARED_TFLITE.read_bytes())
    at = data.find(b"StatefulPartitionedCall:0")  # the output tensor's name
    data[at : at + 2] = b"\xff\xfe"
    return _model(_write(tmp / "badname.tflite", bytes(data)))


def lfs_pointer(tmp: Path, kit: SimpleNamespace) -> Made:
    text = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 3164\n"
    return _model(_write(tmp / "model.tflite", text.encode()))


def html_error_page(tmp: Path, kit: SimpleNamespace) -> Made:
    page = b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>Access denied</body></html>\n"
    return _model(_write(tmp / "model.pt", page), arch="demo")


def safetensors_file(tmp: Path, kit: SimpleNamespace) -> Made:
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    return _model(_write(tmp / "model.pt", struct.pack("<Q", len(header)) + header + b"\0" * 8), arch="demo")


def png_named_onnx(tmp: Path, kit: SimpleNamespace) -> Made:
    picture = _png(tmp / "picture.png", _grey(128))
    return _model(picture.rename(tmp / "model.onnx"))


def gzip_named_pt(tmp: Path, kit: SimpleNamespace) -> Made:
    import gzip

    return _model(_write(tmp / "model.pt", gzip.compress(_state_dict_bytes(tmp))), arch="demo")


def keras_h5_named_tflite(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "model.tflite", b"\x89HDF\r\n\x1a\n" + bytes(504)))


def zip_that_is_not_pytorch(tmp: Path, kit: SimpleNamespace) -> Made:
    with zipfile.ZipFile(tmp / "photos.pt", "w") as zf:
        zf.writestr("holiday/readme.txt", "not weights")
    return _model(tmp / "photos.pt", arch="demo")


def bare_pickle(protocol: int, ext: str) -> Callable[[Path, SimpleNamespace], Made]:
    def build(tmp: Path, kit: SimpleNamespace) -> Made:
        payload = pickle.dumps({"weight": _SystemCall(tmp / CANARY)}, protocol=protocol)
        return _model(_write(tmp / f"payload{ext}", payload), arch="demo")

    return build


def torch_pickle(legacy: bool) -> Callable[[Path, SimpleNamespace], Made]:
    def build(tmp: Path, kit: SimpleNamespace) -> Made:
        import torch

        path = tmp / ("legacy.pth" if legacy else "zipped.pt")
        obj = {"weight": torch.zeros(4), "extra": _SystemCall(tmp / CANARY)}
        torch.save(obj, str(path), _use_new_zipfile_serialization=not legacy)
        return _model(path, arch="demo")

    return build


def pickled_whole_module(tmp: Path, kit: SimpleNamespace) -> Made:
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2)), str(tmp / "module.pt"))
    return _model(tmp / "module.pt", arch="demo")


def torchscript_without_trust(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_torchscript(tmp / "scripted.pt"))


def state_dict_with_wrong_keys(tmp: Path, kit: SimpleNamespace) -> Made:
    _write(tmp / "keys.pt", _state_dict_bytes(tmp))
    return _model(tmp / "keys.pt", arch="demo")


def state_dict_with_wrong_shapes(tmp: Path, kit: SimpleNamespace) -> Made:
    import torch

    state = torch.load(str(DEMO_WEIGHTS), weights_only=True)
    first = next(iter(state))
    state[first] = torch.zeros(2, 2)
    torch.save(state, str(tmp / "shapes.pt"))
    return _model(tmp / "shapes.pt", arch="demo")


# ONNX graphs written by hand: x [batch, 4] -> one node -> y [batch, 4].


def _onnx(
    path: Path, nodes: list[Any], initializers: list[Any] = (), x_dims: list[Any] | None = None, **kw: Any
) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims or ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=kw.get("opsets") or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _weight(dims: list[int], raw: bytes | None = None) -> Any:
    from onnx import TensorProto

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    if raw is not None:
        tensor.raw_data = raw
    return tensor


def _matmul() -> list[Any]:
    from onnx import helper

    return [helper.make_node("MatMul", ["x", "w"], ["y"])]


def onnx_failing_the_checker(tmp: Path, kit: SimpleNamespace) -> Made:
    from onnx import helper

    return _model(_onnx(tmp / "unsorted.onnx", [helper.make_node("Relu", ["nowhere"], ["y"])]))


def onnx_custom_domain(tmp: Path, kit: SimpleNamespace) -> Made:
    from onnx import helper

    node = helper.make_node("Exfiltrate", ["x"], ["y"], domain="com.evil")
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.evil", 1)]
    return _model(_onnx(tmp / "custom.onnx", [node], opsets=opsets))


def onnx_absurd_weight_dims(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_onnx(tmp / "absurd.onnx", _matmul(), [_weight([1 << 50, 4])]))


def onnx_tiny_file_claiming_a_huge_tensor(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_onnx(tmp / "claims.onnx", _matmul(), [_weight([4, 1 << 38], raw=b"\0" * 16)]))


def onnx_weights_beyond_memory(tmp: Path, kit: SimpleNamespace) -> Made:
    # No data at all, only dims: 4 x 2**36 floats is a terabyte.
    return _model(_onnx(tmp / "terabyte.onnx", _matmul(), [_weight([4, 1 << 36])]))


def onnx_absurd_input_dims(tmp: Path, kit: SimpleNamespace) -> Made:
    from onnx import helper

    return _model(_onnx(tmp / "wide.onnx", [helper.make_node("Relu", ["x"], ["y"])], x_dims=["batch", 1 << 40]))


def onnx_negative_input_dim(tmp: Path, kit: SimpleNamespace) -> Made:
    from onnx import helper

    return _model(_onnx(tmp / "negative.onnx", [helper.make_node("Relu", ["x"], ["y"])], x_dims=["batch", -5]))


def onnx_without_a_graph(tmp: Path, kit: SimpleNamespace) -> Made:
    return _model(_write(tmp / "nograph.onnx", b"\x08\x08\x12\x04evil"))  # ir_version and producer only


def _external(tmp: Path, kit: SimpleNamespace, location: str) -> Path:
    """The MLP with its weights in ``weights.bin``, rewritten to point at ``location``."""
    import onnx

    path = kit.make_mlp_onnx(tmp / "model" / "mlp.onnx", external_data="weights.bin")
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(path))
    return path


def onnx_external_outside_folder(tmp: Path, kit: SimpleNamespace) -> Made:
    path = _external(tmp, kit, "../secret.bin")
    shutil.move(str(tmp / "model" / "weights.bin"), str(tmp / "secret.bin"))
    return _model(path)


def onnx_external_through_symlink(tmp: Path, kit: SimpleNamespace) -> Made:
    path = _external(tmp, kit, "linked.bin")
    shutil.move(str(tmp / "model" / "weights.bin"), str(tmp / "elsewhere.bin"))
    (tmp / "model" / "linked.bin").symlink_to(tmp / "elsewhere.bin")
    return _model(path)


def onnx_external_missing(tmp: Path, kit: SimpleNamespace) -> Made:
    path = _external(tmp, kit, "weights.bin")
    (tmp / "model" / "weights.bin").unlink()
    return _model(path)


def onnx_external_too_short(tmp: Path, kit: SimpleNamespace) -> Made:
    path = _external(tmp, kit, "weights.bin")
    data = (tmp / "model" / "weights.bin").read_bytes()
    (tmp / "model" / "weights.bin").write_bytes(data[:100])
    return _model(path)


# ----------------------------------------------------------------------------- dataset generators


def _data(spec: str, names: Path, model_input: TensorInfo | None = MLP_INPUT) -> Made:
    return Made(names=str(names), dataset=spec, model_input=model_input)


def npz_object_array(tmp: Path, kit: SimpleNamespace) -> Made:
    np.savez(tmp / "objects.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2, dtype=np.int64))
    return _data(f"npz:{tmp / 'objects.npz'}", tmp / "objects.npz")


def npy_pickle_calling_system(tmp: Path, kit: SimpleNamespace) -> Made:
    np.save(tmp / "payload.npy", np.array([_SystemCall(tmp / CANARY)], dtype=object), allow_pickle=True)
    return _data(f"npz:{tmp / 'payload.npy'}", tmp / "payload.npy")


def npz_missing_x(tmp: Path, kit: SimpleNamespace) -> Made:
    np.savez(tmp / "renamed.npz", inputs=np.zeros((4, 64), np.float32), labels=np.zeros(4, np.int64))
    return _data(f"npz:{tmp / 'renamed.npz'}", tmp / "renamed.npz")


def npz_length_mismatch(tmp: Path, kit: SimpleNamespace) -> Made:
    np.savez(tmp / "mismatch.npz", x=np.zeros((5, 64), np.float32), y=np.zeros(4, np.int64))
    return _data(f"npz:{tmp / 'mismatch.npz'}", tmp / "mismatch.npz")


def npz_truncated(tmp: Path, kit: SimpleNamespace) -> Made:
    np.savez(tmp / "whole.npz", x=np.ones((40, 64), np.float32), y=np.zeros(40, np.int64))
    _write(tmp / "cut.npz", _half((tmp / "whole.npz").read_bytes()))
    (tmp / "whole.npz").unlink()
    return _data(f"npz:{tmp / 'cut.npz'}", tmp / "cut.npz")


def npz_empty(tmp: Path, kit: SimpleNamespace) -> Made:
    return _data(f"npz:{_write(tmp / 'empty.npz', b'')}", tmp / "empty.npz")


def npz_random_bytes(tmp: Path, kit: SimpleNamespace) -> Made:
    return _data(f"npz:{_write(tmp / 'noise.npz', np.random.default_rng(3).bytes(2048))}", tmp / "noise.npz")


def _npy_header(shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (117 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def npz_claiming_a_petabyte(tmp: Path, kit: SimpleNamespace) -> Made:
    with zipfile.ZipFile(tmp / "claims.npz", "w") as zf:
        zf.writestr("x.npy", _npy_header((10**9, 10**6)) + b"\0" * 64)
    return _data(f"npz:{tmp / 'claims.npz'}", tmp / "claims.npz")


def _csv(name: str, content: bytes) -> Callable[[Path, SimpleNamespace], Made]:
    def build(tmp: Path, kit: SimpleNamespace) -> Made:
        path = _write(tmp / name, content)
        made = _data(f"csv:{path}", path, model_input=TensorInfo("x", ("batch", 3), "float32"))
        made.model = _three_feature_model(tmp / "fits" / "three.onnx")  # what the command line pairs it with
        return made

    return build


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _grey(value: int) -> np.ndarray:
    return np.full((8, 8), value, dtype=np.uint8)


def folder_without_classes(tmp: Path, kit: SimpleNamespace) -> Made:
    _png(tmp / "images" / "loose.png", _grey(10))
    return _data(f"folder:{tmp / 'images'}", tmp / "images")


def folder_with_an_empty_class(tmp: Path, kit: SimpleNamespace) -> Made:
    _png(tmp / "images" / "cat" / "a.png", _grey(10))
    (tmp / "images" / "dog").mkdir()
    return _data(f"folder:{tmp / 'images'}", tmp / "images")


def folder_with_a_corrupt_png(tmp: Path, kit: SimpleNamespace) -> Made:
    _png(tmp / "images" / "cat" / "a.png", _grey(10))
    whole = _png(tmp / "images" / "dog" / "b.png", np.random.default_rng(0).integers(0, 256, (32, 32), np.uint8))
    whole.write_bytes(_half(whole.read_bytes()))
    return Made(names="dog/b.png", dataset=f"folder:{tmp / 'images'}")


def folder_with_a_text_file_named_jpg(tmp: Path, kit: SimpleNamespace) -> Made:
    _png(tmp / "images" / "cat" / "a.png", _grey(10))
    _write(tmp / "images" / "cat" / "notes.jpg", b"remember to relabel the dogs\n")
    return Made(names="cat/notes.jpg", dataset=f"folder:{tmp / 'images'}")


def folder_with_a_decompression_bomb(tmp: Path, kit: SimpleNamespace) -> Made:
    import zlib

    # A valid PNG header declaring 60000 x 60000 pixels, with a few bytes of data.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    _png(tmp / "images" / "cat" / "a.png", _grey(10))
    _write(tmp / "images" / "cat" / "bomb.png", png)
    return Made(names="cat/bomb.png", dataset=f"folder:{tmp / 'images'}")


def synthetic_for_an_absurd_input(tmp: Path, kit: SimpleNamespace) -> Made:
    return Made(names="synthetic:4", dataset="synthetic:4", model_input=TensorInfo("x", ("batch", 1 << 40), "float32"))


# ----------------------------------------------------------------------------- study and output generators


def labels_out_of_range(tmp: Path, kit: SimpleNamespace) -> Made:
    mlp = kit.make_mlp_onnx(tmp / "mlp.onnx")
    x = np.random.default_rng(0).standard_normal((30, 64)).astype(np.float32)
    np.savez(tmp / "labels.npz", x=x, y=np.arange(30) % 16)
    return Made(names=str(tmp / "labels.npz"), model=mlp, dataset=f"npz:{tmp / 'labels.npz'}")


def dataset_smaller_than_a_batch(tmp: Path, kit: SimpleNamespace) -> Made:
    mlp = kit.make_mlp_onnx(tmp / "mlp.onnx")
    np.savez(tmp / "three.npz", x=np.zeros((3, 64), np.float32), y=np.array([0, 1, 2]))
    return Made(
        names=str(tmp / "three.npz"), model=mlp, dataset=f"npz:{tmp / 'three.npz'}", batch_size=8,
        cli=["--batch-size", "8"],
    )


def _output(tmp: Path, kit: SimpleNamespace, option: str, target: Path) -> Made:
    mlp = kit.make_mlp_onnx(tmp / "mlp.onnx")
    return Made(names=f"{option} {target}", model=mlp, dataset="synthetic:4", cli=[option, str(target)])


def json_into_a_file_as_folder(tmp: Path, kit: SimpleNamespace) -> Made:
    _write(tmp / "report", b"a file where a folder should be")
    return _output(tmp, kit, "--json", tmp / "report" / "out.json")


def json_onto_a_folder(tmp: Path, kit: SimpleNamespace) -> Made:
    (tmp / "results").mkdir()
    return _output(tmp, kit, "--json", tmp / "results")


def html_into_a_missing_folder(tmp: Path, kit: SimpleNamespace) -> Made:
    return _output(tmp, kit, "--html", tmp / "missing" / "report.html")


def json_into_a_read_only_folder(tmp: Path, kit: SimpleNamespace) -> Made:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders, so there is nothing to refuse")
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o500)
    return _output(tmp, kit, "--json", tmp / "locked" / "out.json")


# ----------------------------------------------------------------------------- the corpus

_needs_tflite = pytest.mark.skipif(not SHARED_TFLITE.is_file(), reason="the shared TFLite models are not here")

CASES = [
    # Empty, truncated and random-byte files under every extension.
    *[Case(f"empty{ext}", "model", empty(ext), "is empty (0 bytes)") for ext in EXTENSIONS],
    Case("truncated.onnx", "model", truncated_onnx, "could not be read as ONNX"),
    Case("truncated.pt", "model", truncated_zip_pt, "truncated or corrupt"),
    Case("truncated.pth", "model", truncated_legacy_pth, "it is truncated"),
    Case("truncated.pt2", "model", truncated_torchscript_pt2, "truncated or corrupt"),
    Case("truncated.tflite", "model", truncated_tflite, "TFLite", (_needs_tflite,)),
    *[
        Case(f"random{ext}", "model", random_bytes(ext, seed), "not a model format QuantBench reads")
        for seed, ext in enumerate((*EXTENSIONS, ".bin"))
    ],
    Case("tflite-of-a-few-bytes", "model", tflite_of_a_few_bytes, "TFLite"),
    Case(
        "tflite-non-utf8-tensor-name", "model", tflite_with_a_non_utf8_tensor_name, "TFLite",
        (_needs_tflite,),
    ),
    Case("git-lfs-pointer", "model", lfs_pointer, "Git LFS pointer"),
    Case("html-error-page", "model", html_error_page, "HTML"),
    Case("zip-not-pytorch", "model", zip_that_is_not_pytorch, "zip archive but not a PyTorch"),
    # Other formats under a model's name: the message says what the file really is.
    Case("safetensors", "model", safetensors_file, "is a safetensors file"),
    Case("png-named-onnx", "model", png_named_onnx, "is a PNG image"),
    Case("gzip-named-pt", "model", gzip_named_pt, "gzip-compressed"),
    Case("hdf5-named-tflite", "model", keras_h5_named_tflite, "HDF5"),
    # Pickles whose reduce calls os.system, in every container; never run, the global named.
    Case("pickle-protocol-2", "model", bare_pickle(2, ".pkl"), f"global {SYSTEM_GLOBAL}"),
    Case("pickle-protocol-5", "model", bare_pickle(5, ".bin"), f"global {SYSTEM_GLOBAL}"),
    Case("torch-legacy-pickle", "model", torch_pickle(legacy=True), f"global {SYSTEM_GLOBAL}"),
    Case("torch-zip-pickle", "model", torch_pickle(legacy=False), f"global {SYSTEM_GLOBAL}"),
    Case("pickled-whole-module", "model", pickled_whole_module, "whole pickled model object"),
    Case("torchscript-untrusted", "model", torchscript_without_trust, "--trust"),
    Case("state-dict-wrong-keys", "model", state_dict_with_wrong_keys, "does not fit architecture 'demo'"),
    Case("state-dict-wrong-shapes", "model", state_dict_with_wrong_shapes, "size mismatch"),
    # ONNX: external data, the checker, custom ops, declared sizes.
    Case("onnx-external-outside-folder", "model", onnx_external_outside_folder, "must be a plain file name inside"),
    Case("onnx-external-through-symlink", "model", onnx_external_through_symlink, "symbolic link"),
    Case("onnx-external-missing", "model", onnx_external_missing, "is missing"),
    Case("onnx-external-too-short", "model", onnx_external_too_short, "is 100 bytes but tensor"),
    Case("onnx-checker", "model", onnx_failing_the_checker, "fails the ONNX checker"),
    Case("onnx-custom-domain", "model", onnx_custom_domain, "custom domain 'com.evil'"),
    Case("onnx-absurd-weight-dims", "model", onnx_absurd_weight_dims, "impossible dimension"),
    Case("onnx-tiny-file-huge-tensor", "model", onnx_tiny_file_claiming_a_huge_tensor, "but holds 16"),
    Case("onnx-weights-beyond-memory", "model", onnx_weights_beyond_memory, "of memory is free"),
    Case("onnx-absurd-input-dims", "model", onnx_absurd_input_dims, "of memory is free"),
    Case("onnx-negative-input-dim", "model", onnx_negative_input_dim, "impossible dimension -5"),
    Case("onnx-without-graph", "model", onnx_without_a_graph, "holds no ONNX graph"),
    # Datasets.
    Case("npz-object-array", "dataset", npz_object_array, "Python objects"),
    Case("npy-pickle-system", "dataset", npy_pickle_calling_system, "Python objects"),
    Case("npz-missing-x", "dataset", npz_missing_x, "no array named 'x'"),
    Case("npz-length-mismatch", "dataset", npz_length_mismatch, "has 5 samples but array 'y' has 4 labels"),
    Case("npz-truncated", "dataset", npz_truncated, "not a readable numpy"),
    Case("npz-empty", "dataset", npz_empty, "empty (0 bytes)"),
    Case("npz-random-bytes", "dataset", npz_random_bytes, "not a numpy .npz or .npy file"),
    Case("npz-claiming-a-petabyte", "dataset", npz_claiming_a_petabyte, "but the file holds only 64 bytes"),
    Case("csv-empty", "dataset", _csv("empty.csv", b""), "the file is empty"),
    Case("csv-header-only", "dataset", _csv("header.csv", b"a,b,c,label\n"), "no data rows"),
    Case("csv-ragged", "dataset", _csv("ragged.csv", b"1,2,3,0\n4,5,6\n"), "row 2 has 3 columns but the file has 4"),
    Case("csv-non-numeric", "dataset", _csv("words.csv", b"1,2,3,0\n4,five,6,1\n"), "row 2, column 2 is 'five'"),
    Case("csv-nan", "dataset", _csv("nan.csv", b"1,2,3,0\n4,nan,6,1\n"), "missing or infinite"),
    Case("csv-binary", "dataset", _csv("binary.csv", b"\xff\xd8\xff\xe0" + bytes(range(256))), "not a UTF-8 text file"),
    Case("csv-nul-bytes", "dataset", _csv("nul.csv", b"1,2,3,0\n4,5\x00,6,1\n"), "NUL bytes"),
    Case("csv-huge-cell", "dataset", _csv("wide.csv", b"1,2,3,0\n4," + b"9" * 200_000 + b",6,1\n"), "field limit"),
    Case("folder-no-classes", "dataset", folder_without_classes, "no class sub-folders"),
    Case("folder-empty-class", "dataset", folder_with_an_empty_class, "class folder 'dog' has no images"),
    Case("folder-corrupt-png", "dataset", folder_with_a_corrupt_png, "damaged or truncated"),
    Case("folder-text-named-jpg", "dataset", folder_with_a_text_file_named_jpg, "not an image format"),
    Case("folder-decompression-bomb", "dataset", folder_with_a_decompression_bomb, "too large to decode safely"),
    Case("synthetic-absurd-input", "dataset", synthetic_for_an_absurd_input, "of memory is free"),
    # A model and a dataset that do not fit together.
    # 0 to 14: the evaluated labels (issue 14 item 7: the samples held out for calibration, one labelled 15, are not).
    Case("labels-out-of-range", "study", labels_out_of_range, "labels run from 0 to 14"),
    Case("dataset-smaller-than-batch", "study", dataset_smaller_than_a_batch, "fewer than the timing batch size 8"),
    # Where results go.
    Case("json-parent-is-a-file", "output", json_into_a_file_as_folder, "is not a folder"),
    Case("json-onto-a-folder", "output", json_onto_a_folder, "is a folder"),
    Case("html-missing-folder", "output", html_into_a_missing_folder, "does not exist"),
    Case("json-read-only-folder", "output", json_into_a_read_only_folder, "not writable"),
]


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.id, marks=case.marks) for case in cases]


def test_the_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.kind for c in CASES} == {"model", "dataset", "study", "output"}


# ----------------------------------------------------------------------------- through the API


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((p.relative_to(root).as_posix(), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def _refuse(case: Case, made: Made, capsys: pytest.CaptureFixture[str]) -> str:
    """Feed ``made`` to the public API the case's kind uses; the BadInput message (or CLI stderr line)."""
    if case.kind == "model":
        with pytest.raises(BadInput) as info:
            load_model(ModelSpec(path=str(made.model), arch=made.arch))
        return str(info.value)
    if case.kind == "dataset":
        with pytest.raises(BadInput) as info:
            load_dataset(DatasetSpec.parse(made.dataset or ""), made.model_input)
        return str(info.value)
    if case.kind == "study":
        spec = StudySpec(
            model=ModelSpec(path=str(made.model)),
            dataset=DatasetSpec.parse(made.dataset or ""),
            timing=replace(QUICK, batch_size=made.batch_size),
        )
        with pytest.raises(BadInput) as info:
            list(run_study(spec))
        return str(info.value)
    from core.cli.main import main

    capsys.readouterr()
    fast = ["--scheme", "fp32", "--max-time", "0.05", "--threads", "1"]
    code = main(["run", "--model", str(made.model), "--dataset", made.dataset or "", "--no-history",
                 "--in-process", "--quiet", *fast, *made.cli])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0].removeprefix("quantbench: ")


@pytest.mark.parametrize("case", _params(CASES))
def test_each_bad_input_is_refused_with_one_clear_sentence(
    case: Case, tmp_path: Path, kit: SimpleNamespace, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # must be ignored
    made = case.build(tmp_path, kit)
    before = _tree(tmp_path)

    message = _refuse(case, made, capsys)

    assert case.expect in message, message
    assert made.names in message, "the message names the file"
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith("."), "one sentence"
    assert len(message) < 600, "a message, not a dump"
    assert "weights_only" not in message, "no advice to load unsafely"
    assert not (tmp_path / CANARY).exists(), "no code from the file ran"
    assert _tree(tmp_path) == before, "nothing was written"


# ----------------------------------------------------------------------------- through the command

CLI_CASES = [
    "empty.onnx", "random.tflite", "torch-legacy-pickle", "torch-zip-pickle", "pickled-whole-module",
    "onnx-external-outside-folder", "onnx-custom-domain", "npy-pickle-system", "csv-ragged",
    "folder-corrupt-png", "labels-out-of-range",
]


def quantbench(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUANTBENCH_HOME": str(home), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "run", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("case", _params([c for c in CASES if c.id in CLI_CASES]))
def test_the_command_exits_2_with_one_line(case: Case, tmp_path: Path, kit: SimpleNamespace) -> None:
    work = tmp_path / "case"
    work.mkdir()
    made = case.build(work, kit)
    # Model cases get a dataset, dataset cases the MLP, so only the broken part is at fault.
    model = made.model or kit.make_mlp_onnx(tmp_path / "fine" / "mlp.onnx")
    dataset = made.dataset or "synthetic:4"
    out = tmp_path / "out"
    out.mkdir()
    before = _tree(work)
    args = ["--model", str(model), "--dataset", dataset, "--json", str(out / "result.json"), "--max-time", "0.05",
            "--threads", "1", "--scheme", "fp32", *made.cli]
    if made.arch:
        args += ["--arch", made.arch]

    done = quantbench(args, tmp_path / "home")

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("quantbench: ") and case.expect in lines[0] and made.names in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert list(out.iterdir()) == [], "no result file, not even a temporary one"
    assert not (work / CANARY).exists()
    assert _tree(work) == before


def _three_feature_model(path: Path) -> Path:
    """x [batch, 3] -> MatMul -> y [batch, 2]: what the CSV cases' rows would feed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "three",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# ----------------------------------------------------------------------------- accepted, but reported


def _nan_model(path: Path) -> Path:
    """x [batch, 4] -> MatMul w -> Div by (0, 1, 1) -> y [batch, 3]: the first output is always +-inf or NaN."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0.0, 1.0, 1.0], np.float32), "d"),
    ]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Div", ["h", "d"], ["y"])]
    graph = helper.make_graph(
        nodes, "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_model_that_outputs_nan_and_inf_is_measured_and_reported(tmp_path: Path) -> None:
    import json

    model = _nan_model(tmp_path / "nan.onnx")
    x = np.random.default_rng(1).standard_normal((12, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(12) % 3)
    spec = StudySpec(
        model=ModelSpec(path=str(model)),
        # Every sample evaluated (nothing held out for calibration, which ort-fp16 does not use).
        dataset=replace(DatasetSpec.parse(f"npz:{tmp_path / 'd.npz'}"), calibration=CALIBRATE_ON_SAME),
        variants=(VariantSpec(scheme=SchemeSpec("ort-fp16")),),
        timing=QUICK,
    )

    final = list(run_study(spec))[-1]

    assert isinstance(final, StudyFinished)
    rows = {r.label: r for r in final.result.results}
    assert set(rows) == {"fp32", "ort-fp16"}, "every variant still gets a row"
    for row in rows.values():
        assert row.status is VariantStatus.OK, row.error
        assert "12 output values are NaN or infinite" in row.notes
    fidelity = rows["ort-fp16"].fidelity or {}
    assert fidelity["nonfinite"] == 12 and fidelity["baseline_nonfinite"] == 12
    assert fidelity["nonfinite_samples"] == 12
    json.dumps(final.result.to_json_dict(), allow_nan=False)  # the result file stays valid JSON
