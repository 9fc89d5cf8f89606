"""Datasets that ship with scikit-learn: no download, same split everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input
from core.errors import BadInput
from core.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

#: The fixed split used by `builtin:digits` and by the demo's training script.
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as (x_train, y_train, x_test, y_test).

    Images are float32 (N, 1, 8, 8) scaled from 0..16 to 0..1; labels int64.
    The split is stratified and fixed, so every tool and test sees the same test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return x_train, y_train, x_test, y_test


#: What `builtin:NAME` accepts, in the order the window lists them.
BUILTIN_NAMES = ("digits", "iris", "wine", "breast_cancer", "diabetes")

#: The fixed split of the tabular sets: a quarter held out for evaluation.
TABULAR_TEST_FRACTION = 0.25
TABULAR_SPLIT_SEED = 0


def load_builtin(spec: DatasetSpec, model_input: TensorInfo | None = None) -> Dataset:
    """`builtin:NAME`: evaluate on the fixed test split; the train split is the calibration pool."""
    name = spec.location.strip().lower()
    if name == "digits":
        return _digits(spec, model_input)
    if name in ("iris", "wine", "breast_cancer", "diabetes"):
        return _tabular(name, spec, model_input)
    raise BadInput(
        f"{spec.describe()}: unknown built-in dataset {spec.location!r} (use one of {', '.join(BUILTIN_NAMES)})."
    )


def _digits(spec: DatasetSpec, model_input: TensorInfo | None) -> Dataset:
    x_train, _, x_test, y_test = digits_split()
    text = spec.describe()
    return Dataset(
        x=conform_to_input(x_test, model_input, text),
        y=y_test,
        task=Task.CLASSIFICATION,
        spec=text,
        class_names=[str(d) for d in range(10)],
        preprocessing="8x8 grey levels scaled from 0..16 to 0..1",
        calibration=conform_to_input(x_train, model_input, text),
        image_shape=(8, 8),
    )


def _tabular(name: str, spec: DatasetSpec, model_input: TensorInfo | None) -> Dataset:
    from sklearn import datasets as skd
    from sklearn.model_selection import train_test_split

    loader = {
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }[name]
    bunch = loader()
    classification = name != "diabetes"
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int64 if classification else np.float32)
    x_train, x_test, _, y_test = train_test_split(
        x,
        y,
        test_size=TABULAR_TEST_FRACTION,
        random_state=TABULAR_SPLIT_SEED,
        stratify=y if classification else None,
    )
    # Statistics of the train split only, so nothing about the test split leaks into the inputs.
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    text = spec.describe()
    return Dataset(
        x=conform_to_input((x_test - mean) / std, model_input, text),
        y=y_test,
        task=Task.CLASSIFICATION if classification else Task.REGRESSION,
        spec=text,
        class_names=[str(c) for c in bunch.target_names] if classification else None,
        preprocessing="features standardized with the train split's mean and std",
        calibration=conform_to_input((x_train - mean) / std, model_input, text),
    )
