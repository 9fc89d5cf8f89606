"""Datasets: load one from a ``DatasetSpec`` and check that it fits a model.

    load_dataset(DatasetSpec.parse("builtin:digits"), model.input) -> Dataset

Importing this package costs numpy only; scikit-learn and Pillow are imported by the
loaders that need them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.builtin import BUILTIN_NAMES
from core.datasets.check import check_dataset_fits, describe_mismatch, infer_task, to_float32
from core.errors import BadInput
from core.study.spec import CALIBRATE_ON_SAME, DatasetKind, DatasetSpec, Task

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


def load_dataset(
    spec: DatasetSpec, model_input: TensorInfo | list[TensorInfo] | None = None, seed: int = 0
) -> Dataset:
    """Load the dataset ``spec`` names, shaped for ``model_input`` when one is given.

    ``spec.limit`` keeps the first samples in the file's order (a folder takes them
    round-robin across classes); ``spec.task`` other than AUTO overrides the guess from
    the labels. ``seed`` only matters for synthetic data. ``spec.calibration`` picks the
    calibration pool: by default a held-out split (``_hold_out``), which is not evaluated.
    Raises BadInput for anything the user can fix. ``model_input`` may be the model's list of inputs: a
    model with several reads one array per input (npz) or draws them (synthetic), as core.models.io_spec says.
    """
    if spec.limit is not None and spec.limit <= 0:
        raise BadInput(f"{spec.describe()}: the sample limit must be positive, not {spec.limit}.")
    inputs = list(model_input) if isinstance(model_input, (list, tuple)) else [model_input] if model_input else []
    first = inputs[0] if inputs else None
    ds = _load(_reading_ahead(spec), first, seed, inputs)
    _choose_calibration(ds, spec, first, seed, inputs)
    return _finish(ds, spec)


def _reading_ahead(spec: DatasetSpec) -> DatasetSpec:
    """``spec`` with its limit raised by the samples the default split will hold out of them, so that
    loaders that read only the first ``limit`` samples (csv, folder) still leave ``limit`` to evaluate."""
    if spec.limit is None or spec.calibration is not None or spec.kind not in _HOLDOUT_KINDS:
        return spec
    # h = ceil(limit * P / (100 - P)) is exactly what _hold_out takes from limit + h samples.
    ahead = min(HOLDOUT_MAX, -(-spec.limit * HOLDOUT_PERCENT // (100 - HOLDOUT_PERCENT)))
    return replace(spec, limit=spec.limit + ahead)


def _load(
    spec: DatasetSpec, model_input: TensorInfo | None, seed: int, inputs: list[TensorInfo] | None = None
) -> Dataset:
    """The dataset as its loader reads it: no calibration split, sample limit or task applied yet."""
    if spec.kind is DatasetKind.BUILTIN:
        from core.datasets.builtin import load_builtin

        ds = load_builtin(spec, model_input)
    elif spec.kind is DatasetKind.NPZ:
        from core.datasets.npz import load_npz

        ds = load_npz(spec, model_input, inputs)
    elif spec.kind is DatasetKind.CSV:
        from core.datasets.csv import load_csv

        ds = load_csv(spec, model_input)
    elif spec.kind is DatasetKind.FOLDER:
        from core.datasets.folder import load_folder

        ds = load_folder(spec, model_input, spec.limit)
    else:
        from core.datasets.synthetic import load_synthetic

        ds = load_synthetic(spec, model_input, seed, inputs)
    return ds


def _choose_calibration(
    ds: Dataset, spec: DatasetSpec, model_input: TensorInfo | None, seed: int, inputs: list[TensorInfo] | None = None
) -> None:
    """Give ``ds`` the calibration pool ``spec.calibration`` asks for (see ``DatasetSpec.calibration``)."""
    if spec.calibration == CALIBRATE_ON_SAME:
        ds.calibration, ds.calibration_source, ds.calibration_overlaps = None, CALIBRATE_ON_SAME, True
        ds.calibration_recipe = None
        ds.notes.append(overlap_warning("asked for"))
        return
    other = spec.calibration_dataset()
    if other is not None:
        _calibrate_on(ds, spec, other, model_input, seed, inputs)
        ds.calibration_recipe = None
    elif ds.calibration is None and ds.calibration_recipe is None:
        _hold_out(ds)


def overlap_warning(why: str) -> str:
    """The note of a study whose static schemes calibrate on evaluated samples, saying ``why``."""
    return f"Warning: static schemes calibrate on the very samples they are scored on ({why}), which can flatter them."


def _calibrate_on(
    ds: Dataset, spec: DatasetSpec, other: DatasetSpec, model_input: TensorInfo | None, seed: int,
    inputs: list[TensorInfo] | None = None,
) -> None:
    """Calibrate on the whole of another dataset, after checking its samples are shaped like ``ds``'s."""
    pool = _load(other, model_input, seed, inputs).x
    if pool.dtype.names is not None and pool.dtype != ds.x.dtype:
        from core.models.io_spec import describe_arrays

        def listed(x: np.ndarray) -> str:
            return ", ".join(f"{a['name']} {a['shape']} {a['dtype']}" for a in describe_arrays(x))

        raise BadInput(f"calibration data {other.describe()}: its arrays are {listed(pool)}, "
                       f"but those of {ds.spec} are {listed(ds.x)}.")
    if pool.shape[1:] != ds.x.shape[1:]:
        raise BadInput(
            f"calibration data {other.describe()}: its samples are {list(pool.shape[1:])}, "
            f"but those of {ds.spec} are {list(ds.x.shape[1:])}."
        )
    ds.calibration, ds.calibration_source = pool, other.describe()
    ds.calibration_overlaps = _same_data(spec, other)
    if ds.calibration_overlaps:
        ds.notes.append(overlap_warning(f"the calibration data {other.describe()} is this dataset"))


def _same_data(a: DatasetSpec, b: DatasetSpec) -> bool:
    if a.kind is not b.kind:
        return False
    if a.kind in (DatasetKind.BUILTIN, DatasetKind.SYNTHETIC):
        return a.location.strip().lower() == b.location.strip().lower()
    return Path(a.location).expanduser().resolve() == Path(b.location).expanduser().resolve()


#: The default calibration split: this percentage of the samples (rounded up), at most ``HOLDOUT_MAX``, drawn
#: with a fixed seed (so the window, which loads the data on its own, shows the samples the study evaluated).
HOLDOUT_PERCENT = 10
HOLDOUT_MAX = 500
HOLDOUT_SEED = 0
#: The kinds the default split applies to (a built-in set has its own train split, synthetic data a separate draw).
_HOLDOUT_KINDS = (DatasetKind.NPZ, DatasetKind.CSV, DatasetKind.FOLDER)


def _hold_out(ds: Dataset) -> None:
    """Move a seeded ``HOLDOUT_PERCENT`` of the samples (at most ``HOLDOUT_MAX``) into the calibration pool."""
    n = len(ds)
    held = min(HOLDOUT_MAX, -(-n * HOLDOUT_PERCENT // 100))  # integers: 30 * 0.1 rounds up to 4
    if n - held < 1:
        ds.calibration_source, ds.calibration_overlaps = CALIBRATE_ON_SAME, True
        ds.notes.append(overlap_warning(f"{n} sample is too few to hold any out"))
        return
    rng = np.random.default_rng(HOLDOUT_SEED)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=held, replace=False)] = True
    ds.calibration = ds.x[mask].copy()
    ds.x = ds.x[~mask].copy()
    ds.y = ds.y[~mask].copy() if ds.y is not None else None
    ds.calibration_source, ds.calibration_overlaps = "holdout", False
    ds.notes.append(
        f"Calibration holds out {held} of the {n} samples ({held / n:.0%}); the other {n - held} are evaluated."
    )


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
    if task is Task.CAUSAL_LM:
        # The labels of next-token prediction are the input tokens themselves, shifted by one.
        if y is not None:
            ds.notes.append("Labels ignored: a causal language model is judged on its next tokens.")
        return None
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
