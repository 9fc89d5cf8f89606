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
    if len(inputs) > 1:
        names = ", ".join(f"'{t.name}'" for t in inputs)
        return f"{ds.spec}: the model takes {len(inputs)} inputs ({names}) but a dataset feeds only one."
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
    return None


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
