"""Datasets that ship with scikit-learn: no download, same split everywhere."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input
from core.errors import BadInput
from core.study.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

#: The fixed split used by `builtin:digits` and by the demo's training script.
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0
DIGITS_ROWS = 1797
#: The split's row indices, as scikit-learn's train_test_split picks them (see digits_split).
DIGITS_SPLIT_FILE = Path(__file__).resolve().parents[2] / "resources" / "demo" / "digits_split.json"


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as (x_train, y_train, x_test, y_test).

    Images are float32 (N, 1, 8, 8) scaled from 0..16 to 0..1; labels int64.
    The split is stratified and fixed, so every tool and test sees the same test set.

    Importing scikit-learn's datasets and model selection takes about a second, on
    the path to every demo study's first result. So the digits are read straight from
    the data file scikit-learn ships, and the split from ``DIGITS_SPLIT_FILE``: the
    indices ``train_test_split`` picks, written by ``resources/demo/make_demo.py``
    (a test checks they still match). Without either file, scikit-learn does both.
    """
    x, y = _digits_arrays()
    train, test = digits_split_indices(y)
    return x[train], y[train], x[test], y[test]


def digits_split_indices(y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of the fixed split, from DIGITS_SPLIT_FILE when it holds the split
    of these labels, else from scikit-learn's ``train_test_split``."""
    if y is None:
        _, y = _digits_arrays()
    try:
        stored = json.loads(DIGITS_SPLIT_FILE.read_text(encoding="utf-8"))
        train, test = np.asarray(stored["train"], dtype=np.int64), np.asarray(stored["test"], dtype=np.int64)
        if stored.get("rows") == len(y) and np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y))):
            return train, test
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no split file (an installed bundle without resources/): scikit-learn picks it
    return sklearn_digits_split_indices(y)


def sklearn_digits_split_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The split as scikit-learn's ``train_test_split`` makes it (what DIGITS_SPLIT_FILE stores)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(y)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 (N, 1, 8, 8) in 0..1 and int64 labels."""
    path = _sklearn_data_file("digits.csv.gz")
    if path is not None:
        try:
            table = np.loadtxt(path, delimiter=",")
            if table.shape == (DIGITS_ROWS, 65):
                images = table[:, :64].reshape(-1, 8, 8)
                return (images.astype(np.float32) / 16.0)[:, None, :, :], table[:, 64].astype(np.int64)
        except (OSError, ValueError):
            pass  # unreadable: let scikit-learn load it (and say what is wrong)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images.astype(np.float32) / 16.0)[:, None, :, :], digits.target.astype(np.int64)


def _sklearn_data_file(name: str) -> Path | None:
    """A data file of scikit-learn's datasets package, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


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
        calibration_source="train_split",
        calibration_overlaps=False,
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
        calibration_source="train_split",
        calibration_overlaps=False,
    )
