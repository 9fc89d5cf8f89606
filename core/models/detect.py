"""Tell what a model file is from its bytes, not its name."""

from __future__ import annotations

import zipfile
from enum import Enum
from pathlib import Path

from core.errors import BadInput

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class FileKind(str, Enum):
    ONNX = "onnx"
    TFLITE = "tflite"
    TORCH_ZIP = "pytorch-zip"  # torch.save in the zip format (state dict or pickled module)
    TORCH_LEGACY = "pytorch-legacy"  # torch.save in the pre-1.6 format
    TORCHSCRIPT = "torchscript"
    TORCH_EXPORT = "torch-export"


def detect_file(path: Path) -> FileKind:
    """Classify ``path`` by content; raise BadInput saying what it really is otherwise."""
    if not path.exists():
        raise BadInput(f"{path}: no such file.")
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not a model file.")
    size = path.stat().st_size
    if size == 0:
        raise BadInput(f"{path} is empty (0 bytes), not a model.")
    with path.open("rb") as fh:
        head = fh.read(512)

    if head.startswith(b"version https://git-lfs"):
        raise BadInput(f"{path} is a Git LFS pointer, not the model itself; run 'git lfs pull' to fetch the real file.")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise BadInput(f"{path} is an HTML/XML page (perhaps a download error page), not a model.")
    if head[4:8] == b"TFL3":
        return FileKind.TFLITE
    other = _other_format(head, size)
    if other:
        raise BadInput(f"{path} is {other}, not a model format QuantBench reads.")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return FileKind.TORCH_LEGACY
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return FileKind.TORCH_LEGACY  # a bare pickle: torch.load decides whether it is safe
    if _looks_like_onnx(head):
        return FileKind.ONNX
    if size < 16:
        raise BadInput(f"{path} is only {size} bytes long; it is too short to be a model file.")
    if _mostly_text(head):
        raise BadInput(f"{path} is a text file, not a model (ONNX, PyTorch, TorchScript, torch.export or TFLite).")
    raise BadInput(
        f"{path} is not a model format QuantBench reads (ONNX, PyTorch, TorchScript, torch.export or TFLite)."
    )


def _zip_kind(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    # zipfile reports damage in many ways: bad names (UnicodeDecodeError), unknown versions
    # or methods (NotImplementedError), bad sizes (ValueError, struct.error), besides BadZipFile.
    except Exception:  # noqa: BLE001 - every way a damaged archive fails means the same thing here
        raise BadInput(f"{path} starts like a zip archive (PyTorch format) but is truncated or corrupt.") from None
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return FileKind.TORCH_EXPORT
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return FileKind.TORCHSCRIPT
    if any(n.endswith("data.pkl") for n in names):
        return FileKind.TORCH_ZIP
    raise BadInput(f"{path} is a zip archive but not a PyTorch, TorchScript or torch.export file.")


#: Formats people mistake for models (or save under a model's name), by their first bytes.
_OTHER_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
    (b"BZh", "bzip2-compressed data (decompress it first)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "a Linux executable or library"),
    (b"MZ", "a Windows executable"),
    (b"\x93NUMPY", "a numpy array file (a dataset, not a model)"),
)


def _other_format(head: bytes, size: int) -> str | None:
    """What a file in a known non-model format is, or None."""
    for magic, what in _OTHER_SIGNATURES:
        if head.startswith(magic):
            return what
    # safetensors: an 8-byte little-endian header length, then the JSON header itself.
    if len(head) >= 10 and head[8:10] == b'{"' and int.from_bytes(head[:8], "little") < size:
        return "a safetensors file (save the state dict with torch.save to use it here)"
    return None


def _looks_like_onnx(head: bytes) -> bool:
    # A ModelProto starts with a protobuf field: ir_version (field 1, varint, tag 0x08) in practice,
    # occasionally another top-level field (opset_import 0x42, producer_name 0x12, graph 0x3a).
    return len(head) >= 2 and head[0] in (0x08, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x52, 0x72)


def _mostly_text(head: bytes) -> bool:
    if not head:
        return False
    printable = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(head) > 0.95
