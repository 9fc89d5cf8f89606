"""`folder:PATH`: one sub-folder per class, images inside, turned into model input.

Images are resized to the model's input height and width, converted to its channel
count (palette, grey+alpha, RGBA and 16-bit images included) and scaled by the
dataset's ``Preprocess``. A file with an image suffix that cannot be decoded is a
BadInput naming it rather than a silent skip: dropping it would change the evaluation
set from one run to the next without anyone noticing. Files without an image suffix
(read-me files, ``Thumbs.db``) are skipped with a note.
"""

from __future__ import annotations

import dataclasses
import errno
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import format_shape
from core.errors import BadInput
from core.study.spec import DatasetSpec, Preprocess, Task

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from core.models.loaded import TensorInfo

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)
#: Used when the model's input size is not fixed and the images differ in size.
FALLBACK_SIZE = (224, 224)
#: 3-channel models with inputs at least this many pixels on a side get ImageNet normalization by default.
IMAGENET_MIN_SIDE = 64


@dataclass(frozen=True)
class _Layout:
    """Where channels sit in one sample: "chw", "hwc", "hw" (no channel axis) or "flat" (CHW flattened)."""

    order: str
    channels: int
    size: tuple[int, int] | None  # (height, width); None when the model does not fix it

    def sample_shape(self, h: int, w: int) -> tuple[int, ...]:
        return {
            "chw": (self.channels, h, w),
            "hwc": (h, w, self.channels),
            "hw": (h, w),
            "flat": (self.channels * h * w,),
        }[self.order]


def load_folder(spec: DatasetSpec, model_input: TensorInfo | None = None, limit: int | None = None) -> Dataset:
    """Decode every image under ``spec.location`` into a float32 batch shaped for ``model_input``.

    With ``limit``, images are taken round-robin across classes so a short run still sees
    every class; they keep the class-by-class order in the result. Without a model input
    the batch is channels-first with ``preprocess.channels`` (default 3) channels.
    """
    text = spec.describe()
    root = Path(spec.location).expanduser()
    if not root.is_dir():
        said = "is a file; folder: takes a folder with one sub-folder of images per class" if root.exists() \
            else "no such folder"
        raise BadInput(f"{text}: {said}.")
    class_names, per_class, skipped = _scan(root, text)
    files = _take(per_class, limit)
    layout = _layout(model_input, spec.preprocess, text)
    notes: list[str] = []
    total = sum(len(paths) for paths in per_class)
    if len(files) < total:
        notes.append(f"Evaluating {len(files)} of {total} images, taken round-robin across classes.")
    if skipped:
        example = skipped[0].relative_to(root).as_posix()
        notes.append(f"Skipped {len(skipped)} file(s) without an image suffix, e.g. {example}.")
    height, width = _target_size(layout, spec.preprocess, files, root, text, notes)
    pre = _resolve_preprocess(spec.preprocess, layout.channels, (height, width), text)

    from core.models.limits import check_claim

    shape = (len(files), *layout.sample_shape(height, width))
    check_claim(text, f"{len(files)} images at {height}x{width}", math.prod(shape) * 4)
    x = np.empty(shape, dtype=np.float32)
    for i, (path, _) in enumerate(files):
        pixels = _read_pixels(path, (height, width), layout.channels, root, text)
        x[i] = _arrange(pixels, layout.order)
    _normalize(x, pre, layout.order, layout.channels)

    return Dataset(
        x=x,
        y=np.array([label for _, label in files], dtype=np.int64),
        task=Task.CLASSIFICATION,
        spec=text,
        class_names=class_names,
        preprocessing=pre.describe(),
        image_shape=(height, width) if layout.channels == 1 else (height, width, layout.channels),
        notes=notes,
    )


def _scan(root: Path, text: str) -> tuple[list[str], list[list[Path]], list[Path]]:
    """Class names, each class's image files (sorted), and the files skipped as non-images.

    Symbolic links are followed, for class folders as for image files, wherever they point;
    a link whose target is missing (or a loop) is a BadInput rather than a silent skip, since
    skipping a class would renumber the labels and skipping an image would shrink the set.
    """
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    for entry in entries:
        _check_link(entry, root, text)
    class_dirs = sorted(p for p in entries if p.is_dir())
    if not class_dirs:
        raise BadInput(f"{text}: no class sub-folders (put each class's images in a folder named after the class).")
    per_class: list[list[Path]] = []
    skipped: list[Path] = []
    for class_dir in class_dirs:
        images: list[Path] = []
        for path in sorted(class_dir.rglob("*")):
            relative = path.relative_to(class_dir).parts
            if any(part.startswith(".") for part in relative):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                _check_link(path, root, text)
            if not path.is_file():
                continue
            (images if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
        if not images:
            raise BadInput(f"{text}: class folder '{class_dir.name}' has no images.")
        per_class.append(images)
    return [d.name for d in class_dirs], per_class, skipped


def _check_link(path: Path, root: Path, text: str) -> None:
    """BadInput when ``path`` is a symbolic link that leads nowhere (a missing target or a loop)."""
    if not path.is_symlink():
        return
    try:
        path.stat()  # follows the link
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = "loops back on itself"
        elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
            why = "does not exist"
        else:
            why = f"cannot be reached ({exc.strerror})"
    try:
        target = repr(str(path.readlink()))
    except OSError:
        target = "a target that cannot be read"
    raise BadInput(f"{text}: '{path.relative_to(root).as_posix()}' is a symbolic link to {target}, which {why}.")


def _take(per_class: list[list[Path]], limit: int | None) -> list[tuple[Path, int]]:
    if limit is None:
        return [(path, label) for label, paths in enumerate(per_class) for path in paths]
    picked: list[tuple[int, int]] = []  # (label, index within the class)
    for index in range(max(len(paths) for paths in per_class)):
        for label, paths in enumerate(per_class):
            if index < len(paths) and len(picked) < limit:
                picked.append((label, index))
    return [(per_class[label][index], label) for label, index in sorted(picked)]


def _layout(model_input: TensorInfo | None, pre: Preprocess | None, text: str) -> _Layout:
    asked = pre.channels if pre is not None else None
    if model_input is None:
        return _Layout("chw", asked or 3, None)
    shape = tuple(model_input.sample_shape)

    def known(d: object) -> bool:
        return isinstance(d, int) and not isinstance(d, bool)

    def size(h: object, w: object) -> tuple[int, int] | None:
        return (h, w) if known(h) and known(w) else None  # type: ignore[return-value]

    if len(shape) == 3:
        a, h, w = shape
        if a in (1, 3) or (not known(a) and shape[2] not in (1, 3)):
            return _Layout("chw", asked or (a if known(a) else 3), size(h, w))  # type: ignore[arg-type]
        h, w, c = shape
        if c in (1, 3):
            return _Layout("hwc", asked or c, size(h, w))  # type: ignore[arg-type]
    elif len(shape) == 2:
        return _Layout("hw", 1, size(*shape))
    elif len(shape) == 1 and known(shape[0]):
        return _flat_layout(shape[0], pre, model_input, text)  # type: ignore[arg-type]
    raise BadInput(
        f"{text}: the model input '{model_input.name}' is {format_shape(shape)} per sample, "
        "which is not an image layout (channels 1 or 3 first or last, or height x width)."
    )


def _flat_layout(n: int, pre: Preprocess | None, model_input: TensorInfo, text: str) -> _Layout:
    """A flat input (an MLP on pixels): the side follows from preprocess.size or a square image."""
    if pre is not None and pre.size is not None:
        h, w = pre.size
        if n % (h * w) == 0 and n // (h * w) in (1, 3):
            return _Layout("flat", n // (h * w), (h, w))
    for channels in (1, 3):
        side = math.isqrt(n // channels)
        if side * side * channels == n:
            return _Layout("flat", channels, (side, side))
    raise BadInput(
        f"{text}: the model input '{model_input.name}' takes {n} flat values per sample, which is not a square "
        "image; set the image size in the preprocessing."
    )


def _target_size(
    layout: _Layout, pre: Preprocess | None, files: list[tuple[Path, int]], root: Path, text: str, notes: list[str]
) -> tuple[int, int]:
    if pre is not None and pre.size is not None:
        return pre.size
    if layout.size is not None:
        return layout.size
    sizes = {_image_size(path, root, text) for path, _ in files}
    if len(sizes) == 1:
        w, h = sizes.pop()
        notes.append(f"The model input size is not fixed; images kept at their own size {h}x{w}.")
        return h, w
    notes.append(
        f"The model input size is not fixed and the images differ in size; all resized to "
        f"{FALLBACK_SIZE[0]}x{FALLBACK_SIZE[1]}."
    )
    return FALLBACK_SIZE


def _resolve_preprocess(pre: Preprocess | None, channels: int, size: tuple[int, int], text: str) -> Preprocess:
    """The preprocessing actually applied, with the size filled in so the description is concrete."""
    if pre is None:
        small = min(size) < IMAGENET_MIN_SIDE
        pre = Preprocess.imagenet() if channels == 3 and not small else Preprocess()
    for name in ("mean", "std"):
        values = getattr(pre, name)
        if len(values) not in (1, channels):
            raise BadInput(f"{text}: the preprocessing {name} has {len(values)} values for {channels}-channel images.")
    if any(s == 0 for s in pre.std):
        raise BadInput(f"{text}: the preprocessing std contains a zero.")
    return dataclasses.replace(pre, size=size, channels=channels)


def _open(path: Path, root: Path, text: str) -> PILImage.Image:
    from PIL import Image

    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, root, text, exc) from None


def _unreadable(path: Path, root: Path, text: str, exc: BaseException) -> BadInput:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        why = "not an image format Pillow can read"
    elif isinstance(exc, Image.DecompressionBombError):
        why = "too large to decode safely"
    else:
        why = "damaged or truncated"
    return BadInput(f"{text}: {path.relative_to(root).as_posix()} cannot be read as an image ({why}).")


def _image_size(path: Path, root: Path, text: str) -> tuple[int, int]:
    with _open(path, root, text) as img:
        return img.size


def _read_pixels(path: Path, size: tuple[int, int], channels: int, root: Path, text: str) -> np.ndarray:
    """One image as float32 (H, W, C) on the 0..255 scale of an 8-bit picture."""
    from PIL import Image

    with _open(path, root, text) as img:
        try:
            img.load()
            converted = _to_mode(img, channels)
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.float32)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise _unreadable(path, root, text, exc) from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] != channels:  # grey (or 16-bit grey) feeding a 3-channel model
        pixels = np.repeat(pixels, channels, axis=2)
    return pixels


def _to_mode(img: PILImage.Image, channels: int) -> PILImage.Image:
    """Grey as "L" or "F" (16-bit scaled to 0..255, keeping its fractions), colour as "RGB"."""
    from PIL import Image

    if img.mode.startswith("I"):  # 16-bit and 32-bit integer grey
        return Image.fromarray(np.asarray(img, dtype=np.float32) / 257.0)
    if img.mode == "F":
        return img
    if img.mode == "P":
        # Through RGBA so palette transparency is understood rather than warned about.
        img = img.convert("RGBA")
    return img.convert("L" if channels == 1 else "RGB")


def _arrange(pixels: np.ndarray, order: str) -> np.ndarray:
    if order == "hwc":
        return pixels
    if order == "hw":
        return pixels[:, :, 0]
    chw = pixels.transpose(2, 0, 1)
    return chw.reshape(-1) if order == "flat" else chw


def _normalize(x: np.ndarray, pre: Preprocess, order: str, channels: int) -> None:
    """In place: ``(pixel * scale - mean[c]) / std[c]`` with the channel axis of the layout."""
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)
    x *= np.float32(pre.scale)
    if order == "chw":
        mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
    elif order == "flat" and len(mean) > 1:
        # CHW flattened: each channel is a contiguous block of H*W values.
        block = x.shape[1] // channels
        mean, std = np.repeat(mean, block), np.repeat(std, block)
    elif order in ("hw", "flat"):
        mean, std = mean[0], std[0]
    # "hwc": the channel axis is last, so (C,) broadcasts as it is.
    x -= mean
    x /= std
