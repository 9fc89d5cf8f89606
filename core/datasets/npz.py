"""`npz:PATH`: arrays ``x`` (inputs) and optional ``y`` (labels) saved with numpy.

Pickled (object) arrays are refused: a data file must never run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input, format_shape, infer_task
from core.errors import BadInput
from core.spec import DatasetSpec

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo


def load_npz(spec: DatasetSpec, model_input: TensorInfo | None = None) -> Dataset:
    """Load ``x`` and ``y`` from an .npz archive (a bare .npy file is taken as ``x`` alone)."""
    text = spec.describe()
    path = Path(spec.location).expanduser()
    if not path.is_file():
        raise BadInput(f"{text}: no such file.")
    x, y = _read_arrays(path, text)
    x = _checked_inputs(x, text)
    if y is not None:
        y = _checked_labels(y, len(x), text)
    image_shape = image_shape_of(x.shape[1:])
    return Dataset(
        x=conform_to_input(x, model_input, text),
        y=y,
        task=infer_task(y),
        spec=text,
        image_shape=image_shape,
        preprocessing="none (arrays used as stored)",
    )


def _read_arrays(path: Path, text: str) -> tuple[np.ndarray, np.ndarray | None]:
    with path.open("rb") as f:
        magic = f.read(6)
    if not magic:
        raise BadInput(f"{text}: the file is empty (0 bytes).")
    # Checked first: numpy would otherwise try any other file as a pickle and blame that.
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise BadInput(f"{text}: not a numpy .npz or .npy file.")
    _check_declared_sizes(path, magic == b"\x93NUMPY", text)
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise BadInput(
                f"{text}: the array holds Python objects, which are refused because loading them can run code."
            ) from None
        raise BadInput(f"{text}: not a readable numpy .npz or .npy file.") from None
    # A damaged zip fails in many ways (bad names, unknown versions or methods, encryption flags).
    except Exception:  # noqa: BLE001 - all of them mean the same to the user
        raise BadInput(f"{text}: not a readable numpy .npz or .npy file.") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        keys = list(loaded.files)
        if "x" not in keys:
            found = ", ".join(repr(k) for k in keys) or "none"
            raise BadInput(f"{text}: no array named 'x' (arrays found: {found}).")
        return _member(loaded, "x", text), _member(loaded, "y", text) if "y" in keys else None


def _member(archive: np.lib.npyio.NpzFile, key: str, text: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise BadInput(
                f"{text}: array '{key}' holds Python objects, which are refused because loading them can run code."
            ) from None
        raise BadInput(f"{text}: array '{key}' cannot be read ({exc}).") from None
    except Exception:  # noqa: BLE001 - zlib, zipfile and numpy each report damage differently
        raise BadInput(f"{text}: array '{key}' is damaged and cannot be read.") from None


def _check_declared_sizes(path: Path, bare: bool, text: str) -> None:
    """Refuse arrays whose header claims more data than the file holds or memory allows.

    numpy allocates the whole declared shape before reading, so a few bytes claiming
    a petabyte array would otherwise end in an out-of-memory error instead of a message.
    """
    from core.models.limits import check_claim

    total = 0
    try:
        if bare:
            with path.open("rb") as fh:
                total += _declared_nbytes(fh, path.stat().st_size, "x", text)
        else:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    key = info.filename[:-4] if info.filename.endswith(".npy") else None
                    if key in ("x", "y"):
                        with zf.open(info) as fh:
                            total += _declared_nbytes(fh, info.file_size, key, text)
    except BadInput:
        raise
    except Exception:  # noqa: BLE001 - a damaged header or archive: np.load below says it plainly
        return
    check_claim(text, "loading its arrays", total)


def _declared_nbytes(fh: object, stored: int, key: str, text: str) -> int:
    """Bytes array ``key`` declares in its .npy header; BadInput when fewer are stored."""
    import math

    from numpy.lib import format as npy

    version = npy.read_magic(fh)  # type: ignore[arg-type]
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(fh)  # type: ignore[arg-type]
    else:
        shape, _, dtype = npy.read_array_header_2_0(fh)  # type: ignore[arg-type]
    if dtype.hasobject:
        return 0  # refused as Python objects when loaded
    declared = math.prod(shape) * dtype.itemsize
    available = stored - fh.tell()  # type: ignore[attr-defined]
    if declared > available:
        dims = "x".join(str(d) for d in shape)
        raise BadInput(
            f"{text}: array '{key}' declares {dims} {dtype} values ({declared} bytes) but the file holds only "
            f"{max(available, 0)} bytes of data; it is truncated or malformed."
        )
    return declared


def _checked_inputs(x: np.ndarray, text: str) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise BadInput(f"{text}: array 'x' holds {x.dtype} values, not numbers.")
    if x.ndim < 1:
        raise BadInput(f"{text}: array 'x' is a single number, not a batch of samples.")
    if len(x) == 0:
        raise BadInput(f"{text}: array 'x' has no samples.")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise BadInput(f"{text}: array 'x' holds NaN or infinite values (first in sample {bad}).")
    return x


def _checked_labels(y: np.ndarray, n: int, text: str) -> np.ndarray:
    if y.dtype.kind not in "biuf":
        raise BadInput(f"{text}: array 'y' holds {y.dtype} values, not numbers.")
    if y.ndim == 0 or len(y) != n:
        have = "a single number" if y.ndim == 0 else f"{len(y)} labels"
        raise BadInput(f"{text}: array 'x' has {n} samples but array 'y' has {have}.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.argwhere(~np.isfinite(y.reshape(len(y), -1)))[0][0])
        raise BadInput(f"{text}: array 'y' holds NaN or infinite values (first in sample {bad}).")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2:
        raise BadInput(f"{text}: array 'y' is {format_shape(y.shape)}; labels must be (N,) or (N, k).")
    return y


def image_shape_of(sample_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """How to show one sample as a picture: (H, W) or (H, W, C); None for non-image samples.

    Samples (H, W), (C, H, W) and (H, W, C) with C of 1, 3 or 4 count as images when both
    sides are at least 4 pixels; (C, H, W) wins when both readings fit.
    """
    if len(sample_shape) == 2:
        h, w = sample_shape
        return (h, w) if min(h, w) >= 4 else None
    if len(sample_shape) == 3:
        c, h, w = sample_shape
        if c in (1, 3, 4) and min(h, w) >= 4:
            return (h, w) if c == 1 else (h, w, c)
        h, w, c = sample_shape
        if c in (1, 3, 4) and min(h, w) >= 4:
            return (h, w) if c == 1 else (h, w, c)
    return None
