"""Datasets: load one from a ``DatasetSpec`` and check that it fits a model.

    load_dataset(DatasetSpec.parse("builtin:digits"), model.input) -> Dataset

Importing this package costs numpy only; scikit-learn and Pillow are imported by the
loaders that need them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.builtin import BUILTIN_NAMES
from core.datasets.check import check_dataset_fits, describe_mismatch, infer_task, to_float32
from core.errors import BadInput
from core.study.spec import DatasetKind, DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

__all__ = [
    "BUILTIN_NAMES",
    "Dataset",
    "check_dataset_fits",
    "describe_mismatch",
    "infer_task",
    "load_dataset",
    "sample_image",
]


def load_dataset(spec: DatasetSpec, model_input: TensorInfo | None = None, seed: int = 0) -> Dataset:
    """Load the dataset ``spec`` names, shaped for ``model_input`` when one is given.

    ``spec.limit`` keeps the first samples in the file's order (a folder takes them
    round-robin across classes); ``spec.task`` other than AUTO overrides the guess from
    the labels. ``seed`` only matters for synthetic data. Raises BadInput for anything
    the user can fix.
    """
    if spec.limit is not None and spec.limit <= 0:
        raise BadInput(f"{spec.describe()}: the sample limit must be positive, not {spec.limit}.")
    if spec.kind is DatasetKind.BUILTIN:
        from core.datasets.builtin import load_builtin

        ds = load_builtin(spec, model_input)
    elif spec.kind is DatasetKind.NPZ:
        from core.datasets.npz import load_npz

        ds = load_npz(spec, model_input)
    elif spec.kind is DatasetKind.CSV:
        from core.datasets.csv import load_csv

        ds = load_csv(spec, model_input)
    elif spec.kind is DatasetKind.FOLDER:
        from core.datasets.folder import load_folder

        ds = load_folder(spec, model_input, spec.limit)
    else:
        from core.datasets.synthetic import load_synthetic

        ds = load_synthetic(spec, model_input, seed)
    return _finish(ds, spec)


def _finish(ds: Dataset, spec: DatasetSpec) -> Dataset:
    """Apply the sample limit and the task, and give the labels the task's dtype."""
    if spec.limit is not None and len(ds) > spec.limit:
        ds.notes.append(f"Evaluating the first {spec.limit} of {len(ds)} samples.")
        # Copies, so the full arrays can be freed.
        ds.x = ds.x[: spec.limit].copy()
        ds.y = ds.y[: spec.limit].copy() if ds.y is not None else None
    if len(ds) == 0:
        raise BadInput(f"{ds.spec}: the dataset has no samples.")
    task = ds.task if spec.task is Task.AUTO else spec.task
    ds.y = _labels_for(task, ds, spec.task is not Task.AUTO)
    ds.task = task
    return ds


def _labels_for(task: Task, ds: Dataset, chosen: bool) -> np.ndarray | None:
    y, text = ds.y, ds.spec
    if task is Task.UNLABELLED:
        if y is not None:
            ds.notes.append("Labels ignored: the task is set to unlabelled.")
        return None
    if y is None:
        raise BadInput(f"{text}: the task is {task.value} but the dataset has no labels.")
    if task is Task.REGRESSION:
        return to_float32(y, "y", text)
    how = "set to" if chosen else "detected as"
    if y.ndim != 1:
        raise BadInput(f"{text}: the task is {how} classification but the labels have several values per sample.")
    if y.dtype.kind == "f" and (np.any(y != np.round(y)) or not np.all(np.isfinite(y))):
        raise BadInput(f"{text}: the task is {how} classification but the labels are not whole numbers.")
    if y.size and np.min(y) < 0:
        raise BadInput(f"{text}: the task is {how} classification but some labels are negative.")
    return y.astype(np.int64, copy=False)


def sample_image(ds: Dataset, index: int) -> np.ndarray | None:
    """Sample ``index`` as a picture, (H, W) or (H, W, C), or None when the dataset has no images.

    Handles channels-first samples and flat ones (channels-first flattened, as a
    PyTorch ``flatten`` of an NCHW batch makes them). Values are as the model sees them.
    """
    shape = ds.image_shape
    if shape is None:
        return None
    sample = ds.x[index]
    if sample.shape == shape:
        return sample
    if sample.size != math.prod(shape):
        return None
    if len(shape) == 3:
        h, w, c = shape
        if sample.shape == (c, h, w) or sample.ndim == 1:
            return np.moveaxis(sample.reshape(c, h, w), 0, -1)
    return sample.reshape(shape)
