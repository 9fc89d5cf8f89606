"""`npz:PATH`: arrays ``x`` (inputs) and optional ``y`` (labels) saved with numpy.

Pickled (object) arrays are refused: a data file must never run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input, format_shape, infer_task
from core.errors import BadInput
from core.study.spec import DatasetSpec

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

#: What every .npy file starts with.
_NPY_MAGIC = b"\x93NUMPY"
#: The longest .npy header read (numpy's own ``max_header_size`` default); a longer one is refused unread.
MAX_NPY_HEADER_BYTES = 10_000


def load_npz(
    spec: DatasetSpec, model_input: TensorInfo | None = None, inputs: list[TensorInfo] | None = None
) -> Dataset:
    """Load ``x`` and ``y`` from an .npz archive (a bare .npy file is taken as ``x`` alone).

    For a model with several ``inputs`` the archive holds one array per input, named as the input
    (``input_ids``, ``attention_mask``, ...), and optional ``y``; they become one structured batch
    (core.models.io_spec). A model with one input may also find its array under the input's name."""
    text = spec.describe()
    path = Path(spec.location).expanduser()
    if not path.is_file():
        raise BadInput(f"{text}: {'is a folder, not an .npz or .npy file' if path.is_dir() else 'no such file'}.")
    names = [t.name for t in inputs or []]
    if len(names) > 1:
        return _load_named(path, text, inputs or [])
    x, y = _read_arrays(path, text, names)
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


def _load_named(path: Path, text: str, inputs: list[TensorInfo]) -> Dataset:
    """A dataset of one array per model input, refused before the run when an array is missing or does not fit."""
    from core.datasets.check import conform_named

    with path.open("rb") as f:
        magic = f.read(6)
    listed = ", ".join(f"'{t.name}'" for t in inputs)
    if not magic.startswith(b"PK"):
        raise BadInput(f"{text}: the model takes {len(inputs)} inputs ({listed}); give an .npz archive with one "
                       "array per input, named as the inputs.")
    arrays = _read_npz_members(path, text, [t.name for t in inputs])
    if "x" in arrays and not any(t.name in arrays for t in inputs):
        raise BadInput(f"{text}: the model takes {len(inputs)} inputs ({listed}) but the file holds one array 'x'; "
                       "save one array per input, named as the inputs.")
    found = list(arrays)
    y = arrays.pop("y", None)
    arrays.pop("x", None)
    x = conform_named(arrays, inputs, text, found)
    if y is not None:
        y = _checked_labels(y, len(x), text)
    return Dataset(x=x, y=y, task=infer_task(y), spec=text, preprocessing="none (arrays used as stored)")


def _read_arrays(path: Path, text: str, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    with path.open("rb") as f:
        magic = f.read(6)
    if not magic:
        raise BadInput(f"{text}: the file is empty (0 bytes).")
    # Checked first: numpy would otherwise try any other file as a pickle and blame that.
    if not (magic.startswith(b"PK") or magic == _NPY_MAGIC):
        raise BadInput(f"{text}: not a numpy .npz or .npy file.")
    if magic == _NPY_MAGIC:
        return _read_npy(path, text), None
    return _read_npz(path, text, names or [])


def _read_npy(path: Path, text: str) -> np.ndarray:
    """A bare .npy file, once its header's claim fits the file and the memory free."""
    from core.models.limits import check_claim

    with path.open("rb") as fh:
        shape, dtype, header_bytes = _npy_header(fh, "x", text)
    declared = _check_data_length(shape, dtype, path.stat().st_size - header_bytes, "x", text, exact=False)
    check_claim(text, "loading its arrays", _loading_cost("x", shape, dtype, declared))
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError:
        raise
    # A damaged file fails in many ways; all of them mean the same to the user.
    except Exception:  # noqa: BLE001
        raise BadInput(f"{text}: not a readable numpy .npz or .npy file.") from None


def _read_npz(path: Path, text: str, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (or the one model input's array, under its name) and ``y`` from an .npz archive."""
    arrays = _read_npz_members(path, text, names)
    if "x" not in arrays:
        alias = next((n for n in names if n in arrays), None)
        if alias is None:
            found = ", ".join(repr(n) for n in arrays) or "none"
            raise BadInput(f"{text}: no array named 'x' (arrays found: {found}).")
        arrays["x"] = arrays.pop(alias)
    return arrays["x"], arrays.get("y")


def _read_npz_members(path: Path, text: str, names: list[str]) -> dict[str, np.ndarray]:
    """``x`` and ``y`` from an .npz archive, each read only after every claim about it was checked.

    The members are read here rather than through ``np.load``: numpy hands back the raw bytes of
    any member that is not a .npy array (a whole bomb, read into memory, then a crash), and it
    believes whatever the zip directory and the .npy header say. Here the directory's sizes
    (``check_zip_member``), the header's shape against the member's length, and the total
    against the memory free are all judged before a byte of array data is read.
    """
    from core.models.limits import check_claim, check_zip_member

    try:
        archive = zipfile.ZipFile(path)
    # zipfile reports damage in many ways (bad names, unknown versions, bad sizes, BadZipFile).
    except Exception:  # noqa: BLE001 - all of them mean the same to the user
        raise BadInput(f"{text}: not a readable numpy .npz or .npy file.") from None
    with archive:
        members = _members_by_key(archive, ("x", "y", *names))
        order = {info.filename: i for i, info in enumerate(archive.infolist())}
        members = dict(sorted(members.items(), key=lambda kv: order.get(kv[1].filename, 0)))  # as in the file
        if "x" not in members and not any(n in members for n in names):
            found = ", ".join(repr(n.removesuffix(".npy")) for n in archive.namelist()) or "none"
            raise BadInput(f"{text}: no array named 'x' (arrays found: {found}).")
        archive_bytes = path.stat().st_size
        total = 0
        for key, info in members.items():
            check_zip_member(text, info, archive_bytes)
            shape, dtype, header_bytes = _member_header(archive, info, key, text)
            declared = _check_data_length(shape, dtype, info.file_size - header_bytes, key, text, exact=True)
            total += _loading_cost("x" if key in names else key, shape, dtype, declared)
        check_claim(text, "loading its arrays", total)
        return {key: _member(archive, info, key, text) for key, info in members.items()}


def _members_by_key(archive: zipfile.ZipFile, keys: tuple[str, ...] = ("x", "y")) -> dict[str, zipfile.ZipInfo]:
    """The members that hold ``keys``, chosen as ``np.load`` would (``x.npy``, or a member named ``x``)."""
    last = {info.filename: info for info in archive.infolist()}  # a repeated name: zipfile opens the last
    names = {name.removesuffix(".npy"): name for name in last}
    names.update({name: name for name in last})  # an exact name wins, as in numpy's NpzFile
    return {key: last[names[key]] for key in dict.fromkeys(keys) if key in names}


def _member_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, text: str
) -> tuple[tuple[int, ...], np.dtype, int]:
    """The .npy header of member ``info``; BadInput naming the member when it is not a .npy array."""
    try:
        with archive.open(info) as fh:
            head = fh.read(len(_NPY_MAGIC))
            if head != _NPY_MAGIC:
                what = "itself a zip archive" if head.startswith(b"PK") else "raw bytes"
                raise BadInput(f"{text}: member {info.filename!r} (array '{key}') is {what}, not a .npy array.")
            return _npy_header(fh, key, text, head)
    except BadInput:
        raise
    # A damaged local header, a bad offset, an unreadable deflate stream.
    except Exception:  # noqa: BLE001 - all of them mean the same to the user
        raise BadInput(f"{text}: array '{key}' is damaged and cannot be read.") from None


def _npy_header(fh: Any, key: str, text: str, head: bytes = b"") -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and length in bytes of the .npy header ``fh`` starts with (after ``head``, already read).

    Read by hand up to its length field, so that a header claiming gigabytes is refused unread
    (numpy reads the whole header before it checks its length).
    """
    import io
    import struct
    import warnings

    from numpy.lib import format as npy

    def bad(problem: str) -> BadInput:
        return BadInput(f"{text}: array '{key}' has {problem}; it is not a readable .npy array.")

    head += fh.read(len(_NPY_MAGIC) + 2 - len(head))
    if len(head) < len(_NPY_MAGIC) + 2 or not head.startswith(_NPY_MAGIC):
        raise bad("a damaged .npy signature")
    major = head[len(_NPY_MAGIC)]
    if major not in (1, 2, 3):
        raise bad(f"an unknown .npy format version {major}")
    width = 2 if major == 1 else 4
    field = fh.read(width)
    if len(field) < width:
        raise bad("a truncated header")
    length = struct.unpack("<H" if width == 2 else "<I", field)[0]
    if length > MAX_NPY_HEADER_BYTES:
        raise bad(f"a header of {length} bytes (numpy reads at most {MAX_NPY_HEADER_BYTES})")
    body = fh.read(length)
    if len(body) < length:
        raise bad("a truncated header")
    read_header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about headers written by Python 2
            shape, _, dtype = read_header(io.BytesIO(field + body))
    except Exception:  # noqa: BLE001 - numpy says "cannot parse header" in several ways
        raise bad("a damaged header") from None
    if dtype.hasobject:
        raise BadInput(
            f"{text}: array '{key}' holds Python objects, which are refused because loading them can run code."
        )
    if any(d < 0 for d in shape):
        raise bad(f"an impossible shape {shape}")
    return tuple(int(d) for d in shape), dtype, len(head) + width + length


def _check_data_length(
    shape: tuple[int, ...], dtype: np.dtype, held: int, key: str, text: str, *, exact: bool
) -> int:
    """Bytes array ``key`` declares; BadInput when the ``held`` bytes after its header cannot be that array.

    numpy allocates the whole declared shape before reading, so a few bytes claiming a
    petabyte must be refused here. An .npz member must hold exactly its array (``exact``);
    a bare .npy file may carry bytes after it, which numpy never reads.
    """
    import math

    declared = math.prod(shape) * dtype.itemsize
    if declared > held or (exact and declared != held):
        values = f"{'x'.join(str(d) for d in shape)} {dtype} values" if shape else f"a single {dtype} value"
        problem = "is truncated or malformed" if declared > held else "is malformed"
        raise BadInput(
            f"{text}: array '{key}' declares {values} ({declared} bytes) but the file holds "
            f"{'only ' if declared > held else ''}{max(held, 0)} bytes of data for it; it {problem}."
        )
    return declared


def _loading_cost(key: str, shape: tuple[int, ...], dtype: np.dtype, declared: int) -> int:
    """Bytes loading an array takes: as stored, and for the inputs the float32 copy the models are fed."""
    import math

    if key != "x" or dtype.kind not in "biuf":
        return declared
    return declared + math.prod(shape) * (1 if dtype == np.float32 else 4)  # the NaN check's mask, or the copy


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, text: str) -> np.ndarray:
    """The array in member ``info``, whose header and sizes were already checked; zipfile stops at the declared size."""
    from numpy.lib import format as npy

    try:
        with archive.open(info) as fh:
            return npy.read_array(fh, allow_pickle=False)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - zlib, zipfile (a bad CRC) and numpy each report damage differently
        raise BadInput(f"{text}: array '{key}' is damaged and cannot be read.") from None


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
