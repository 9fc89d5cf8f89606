"""Does a dataset fit a model? Label-based task guess, reshaping to the input, and mismatch checks.

Everything here is plain numpy so the window can call ``describe_mismatch`` before
a run without waiting for a runtime to load.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.errors import BadInput
from core.study.spec import Task

if TYPE_CHECKING:
    from core.datasets.base import Dataset
    from core.models.loaded import TensorInfo

#: Float labels with more distinct values than this are never taken for classes.
MAX_INFERRED_CLASSES = 1000

#: Model input dtypes that hold indices (token ids, categories): float data cannot feed them.
INDEX_DTYPES = ("int32", "int64")


def infer_task(y: np.ndarray | None) -> Task:
    """Guess the task from the labels alone.

    None is unlabelled; integer or boolean labels are classes; float labels are classes
    only when they are whole, non-negative and few (each class seen twice on average),
    otherwise regression. Multi-column targets are regression.
    """
    if y is None:
        return Task.UNLABELLED
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return Task.REGRESSION
    if y.dtype.kind in "biu":
        return Task.CLASSIFICATION
    if y.dtype.kind == "f" and _looks_like_class_ids(y):
        return Task.CLASSIFICATION
    return Task.REGRESSION


def _looks_like_class_ids(y: np.ndarray) -> bool:
    if y.size == 0 or not np.all(np.isfinite(y)):
        return False
    if np.any(y < 0) or np.any(y != np.round(y)):
        return False
    distinct = len(np.unique(y))
    return distinct <= MAX_INFERRED_CLASSES and distinct * 2 <= len(y)


def format_shape(shape: tuple[int | str | None, ...]) -> str:
    """``(1, 8, 8)`` as ``1x8x8``; an unknown dimension is ``?``, a scalar ``scalar``."""
    if not shape:
        return "scalar"
    return "x".join("?" if d is None else str(d) for d in shape)


def _is_known(dim: int | str | None) -> bool:
    return isinstance(dim, int) and not isinstance(dim, bool)


def _model_dtype(info: TensorInfo) -> np.dtype | None:
    try:
        return np.dtype(info.dtype)
    except TypeError:
        return None


def conform_to_input(x: np.ndarray, model_input: TensorInfo | None, spec_text: str) -> np.ndarray:
    """Give ``x`` the dtype and sample shape the model input wants, when that is unambiguous.

    Integer data stays integer for an integer input (token ids); everything else becomes
    float32 (a quantized input is the runtime's business). Samples with the same number of
    values as a fully known input are reshaped (flat 64 values for an 8x8 image model, or
    the reverse); a different number of values is a BadInput naming both shapes. Inputs with
    symbolic dimensions are left for ``describe_mismatch`` to judge, except a single symbolic
    feature dimension, for which samples are flattened.
    """
    x = _cast_for(x, model_input, spec_text)
    if model_input is None:
        return x
    want = tuple(model_input.sample_shape)
    have = tuple(x.shape[1:])
    if have == want:
        return x
    if not all(_is_known(d) for d in want):
        if len(want) == 1 and len(have) > 1:
            return x.reshape(x.shape[0], -1)
        return x
    if len(have) == 3 and len(want) == 3 and have == (want[2], want[0], want[1]) and want[2] != want[0]:
        # Channels-first images for a channels-last model (TFLite): transpose, never reshape,
        # or every pixel would land in the wrong place.
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    have_n, want_n = math.prod(have), math.prod(want)  # type: ignore[arg-type]
    if have_n == want_n:
        return x.reshape((x.shape[0], *want))
    raise BadInput(
        f"{spec_text}: samples are {format_shape(have)} ({have_n} values) but the model input "
        f"'{model_input.name}' expects {format_shape(want)} ({want_n} values)."
    )


def _cast_for(x: np.ndarray, model_input: TensorInfo | None, spec_text: str) -> np.ndarray:
    wanted = _model_dtype(model_input) if model_input is not None else None
    if wanted is not None and wanted.kind in "iu":
        if x.dtype.kind in "biu":
            return x.astype(wanted, copy=False)
        if x.dtype.kind == "f" and x.size and np.all(x == np.round(x)):
            return x.astype(wanted)
    return to_float32(x, "x", spec_text)


def to_float32(values: np.ndarray, name: str, spec_text: str) -> np.ndarray:
    """``values`` as float32; BadInput when finite values would become infinite in the cast.

    float64 reaches about 1.8e308, float32 only 3.4e38: a larger value silently turns into
    inf and poisons every metric of every variant, so it is reported before the run.
    """
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return values.astype(np.float32, copy=False)
    with np.errstate(over="ignore"):  # the overflow is counted and reported below
        cast = values.astype(np.float32)
    if not np.all(np.isfinite(cast)):
        # Counted in the cast itself: values just past the limit that round back to it are fine.
        overflow = int(np.count_nonzero(np.isinf(cast) & np.isfinite(values)))
        if overflow:
            value, be = ("value", "is") if overflow == 1 else ("values", "are")
            raise BadInput(
                f"{spec_text}: {overflow} {value} of {name} {be} beyond float32's range "
                "(±3.4e38) and would become infinite."
            )
    return cast


def describe_mismatch(ds: Dataset, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> str | None:
    """One sentence saying why ``ds`` cannot be fed to a model with these inputs/outputs, or None."""
    if len(ds) == 0:
        return f"{ds.spec}: the dataset has no samples."
    if inputs:
        problem = _input_problem(ds, inputs)
        if problem:
            return problem
    if outputs and ds.y is not None:
        return _label_problem(ds, outputs[0])
    return None


def check_dataset_fits(ds: Dataset, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> None:
    """Raise BadInput with ``describe_mismatch``'s sentence when the dataset does not fit the model."""
    problem = describe_mismatch(ds, inputs, outputs)
    if problem:
        raise BadInput(problem)


def _input_problem(ds: Dataset, inputs: list[TensorInfo]) -> str | None:
    from core.models.io_spec import is_named

    if len(inputs) > 1 or is_named(ds.x):
        return _named_inputs_problem(ds, inputs)
    info = inputs[0]
    want = tuple(info.sample_shape)
    have = tuple(ds.x.shape[1:])
    fits = len(want) == len(have) and all(not _is_known(w) or w == h for w, h in zip(want, have, strict=True))
    if not fits:
        return (
            f"{ds.spec}: samples are {format_shape(have)} but the model input '{info.name}' "
            f"expects {format_shape(want)} per sample."
        )
    wanted = _model_dtype(info)
    if wanted is not None and wanted.name in INDEX_DTYPES and ds.x.dtype.kind == "f":
        return (
            f"{ds.spec}: the model input '{info.name}' takes {wanted.name} values but the dataset "
            f"holds fractional {ds.x.dtype.name} numbers."
        )
    return _value_problem(ds.spec, "x", ds.x, info)


def _named_inputs_problem(ds: Dataset, inputs: list[TensorInfo]) -> str | None:
    """Why the named arrays of ``ds`` cannot feed these inputs (one array per input, named as it), or None."""
    from core.models.io_spec import describe_arrays, input_names, is_named

    listed = ", ".join(f"'{t.name}'" for t in inputs)
    if not is_named(ds.x):
        return (
            f"{ds.spec}: the model takes {len(inputs)} inputs ({listed}) but the dataset holds one array; "
            "give an npz file with one array per input, named as the inputs."
        )
    held = input_names(ds.x)
    for info in inputs:
        if info.name not in held:
            found = ", ".join(f"'{n}'" for n in held)
            return f"{ds.spec}: no array named '{info.name}' for the model input '{info.name}' (arrays found: {found})."
    shapes = {a["name"]: a for a in describe_arrays(ds.x)}
    for info in inputs:
        have = tuple(shapes[info.name]["shape"])
        want = tuple(info.sample_shape)
        fits = len(want) == len(have) and all(not _is_known(w) or w == h for w, h in zip(want, have, strict=True))
        if not fits:
            return (
                f"{ds.spec}: array '{info.name}' is {format_shape(have)} per sample but the model input "
                f"'{info.name}' expects {format_shape(want)}."
            )
        array = ds.x[info.name]
        wanted = _model_dtype(info)
        if wanted is not None and wanted.kind in "iu" and array.dtype.kind == "f":
            return (
                f"{ds.spec}: array '{info.name}' holds {array.dtype.name} numbers but the model input "
                f"'{info.name}' takes {wanted.name} values."
            )
        problem = _value_problem(ds.spec, info.name, array, info)
        if problem:
            return problem
    return None


def _value_problem(spec_text: str, name: str, array: np.ndarray, info: TensorInfo) -> str | None:
    """Token ids outside the embedding table's rows, or a mask holding other values than 0 and 1."""
    from core.models.io_spec import is_mask_name

    if array.dtype.kind not in "biu" or not array.size:
        return None
    low, high = int(np.min(array)), int(np.max(array))
    vocab = getattr(info, "vocab", None)
    if vocab and (low < 0 or high >= vocab):
        return (
            f"{spec_text}: array '{name}' holds token ids from {low} to {high} but the model's embedding for "
            f"'{info.name}' has {vocab} rows (ids 0 to {vocab - 1})."
        )
    if is_mask_name(info.name) and (low < 0 or high > 1):
        return (f"{spec_text}: array '{name}' is a mask for '{info.name}' but holds values from {low} to {high}, "
                "not 0 and 1.")
    return None


def conform_named(
    arrays: dict[str, np.ndarray], inputs: list[TensorInfo], spec_text: str, found: list[str] | None = None
) -> np.ndarray:
    """One structured batch (core.models.io_spec) from arrays named as ``inputs``, in the inputs' order.

    BadInput names the array when one is missing, holds no numbers, holds fractional numbers for an
    integer input, or has another number of samples than the first."""
    from core.models.io_spec import pack_inputs

    listed = ", ".join(f"'{n}'" for n in (arrays if found is None else found)) or "none"
    packed: dict[str, np.ndarray] = {}
    first: tuple[str, int] | None = None
    for info in inputs:
        if info.name not in arrays:
            raise BadInput(f"{spec_text}: no array named '{info.name}' for the model input '{info.name}' "
                           f"(arrays found: {listed}).")
        a = arrays[info.name]
        if a.dtype.kind not in "biuf" or a.ndim < 1:
            raise BadInput(f"{spec_text}: array '{info.name}' holds {a.dtype} values, not a batch of numbers.")
        wanted = _model_dtype(info)
        whole = bool(a.size) and bool(np.all(a == np.round(a)))
        if wanted is not None and wanted.kind in "iu" and a.dtype.kind == "f" and not whole:
            raise BadInput(
                f"{spec_text}: array '{info.name}' holds fractional {a.dtype.name} numbers but the model input "
                f"'{info.name}' takes {wanted.name} values."
            )
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise BadInput(f"{spec_text}: array '{info.name}' holds NaN or infinite values.")
        if first is None:
            first = (info.name, len(a))
        elif len(a) != first[1]:
            raise BadInput(
                f"{spec_text}: array '{info.name}' has {len(a)} samples but array '{first[0]}' has {first[1]}."
            )
        packed[info.name] = _cast_for(a, info, f"{spec_text}: array '{info.name}'")
    return pack_inputs(packed)


def _label_problem(ds: Dataset, output: TensorInfo) -> str | None:
    y = ds.y
    assert y is not None
    width = output.shape[-1] if len(output.shape) >= 2 else 1
    if not _is_known(width):
        return None
    if ds.task is Task.CLASSIFICATION:
        # A single output column is a binary classifier's logit: labels 0 and 1.
        classes = max(int(width), 2)  # type: ignore[call-overload]
        low, high = int(np.min(y)), int(np.max(y))
        if low < 0 or high >= classes:
            return (
                f"{ds.spec}: labels run from {low} to {high} but the model output '{output.name}' "
                f"has {classes} classes (0 to {classes - 1})."
            )
    elif ds.task is Task.REGRESSION:
        targets = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
        if targets != width:
            return (
                f"{ds.spec}: each sample has {targets} target value(s) but the model output "
                f"'{output.name}' gives {width}."
            )
    return None
