"""Dataset loading: real files written in tmp_path, checked value by value."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.datasets import (
    BUILTIN_NAMES,
    Dataset,
    check_dataset_fits,
    describe_mismatch,
    infer_task,
    sample_image,
)
from core.datasets import load_dataset as load_with_split
from core.datasets.builtin import digits_split
from core.errors import BadInput
from core.models.loaded import TensorInfo
from core.study.spec import CALIBRATE_ON_SAME, DatasetKind, DatasetSpec, Preprocess, Task

ROOT = Path(__file__).resolve().parents[2]

REPO = Path(__file__).resolve().parents[2]


def load_dataset(spec: DatasetSpec, *args: Any, **kw: Any) -> Dataset:
    """The loader's own reading of a file, every sample kept: these tests pin how files are read, so
    nothing is held out for calibration here (tests/core/test_calibration_split.py pins the split)."""
    if spec.kind in (DatasetKind.NPZ, DatasetKind.CSV, DatasetKind.FOLDER) and spec.calibration is None:
        spec = replace(spec, calibration=CALIBRATE_ON_SAME)
    ds = load_with_split(spec, *args, **kw)
    ds.notes = [n for n in ds.notes if not n.startswith("Warning: static schemes calibrate")]
    return ds


def bad_input(spec: DatasetSpec, model_input: TensorInfo | None = None, **kw: object) -> str:
    """Load ``spec`` expecting a BadInput; check its message is one sentence naming the spec."""
    with pytest.raises(BadInput) as info:
        load_dataset(spec, model_input, **kw)  # type: ignore[arg-type]
    return one_sentence(str(info.value), spec.describe())


def one_sentence(message: str, names: str) -> str:
    assert names in message
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")
    return message


def image_input(*sample: int | str | None, dtype: str = "float32") -> TensorInfo:
    return TensorInfo("input", ("batch", *sample), dtype)


# --- import cost and task inference -------------------------------------------------------


def test_import_does_not_pull_heavy_libraries() -> None:
    code = (
        "import sys, core.datasets\n"
        "heavy = [m for m in ('sklearn', 'torch', 'PIL', 'torchvision', 'onnxruntime') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (None, Task.UNLABELLED),
        (np.array([0, 1, 2, 1], dtype=np.int64), Task.CLASSIFICATION),
        (np.array([True, False, True]), Task.CLASSIFICATION),
        (np.array([0.0, 1.0, 1.0, 0.0, 2.0, 2.0]), Task.CLASSIFICATION),
        (np.array([[1.0], [0.0], [1.0], [0.0]]), Task.CLASSIFICATION),
        (np.array([0.5, 1.25, 3.0, 2.0]), Task.REGRESSION),
        (np.array([151.0, 75.0, 141.0, 206.0]), Task.REGRESSION),  # whole numbers, but all different
        (np.array([-1.0, 1.0, -1.0, 1.0]), Task.REGRESSION),
        (np.array([[0.0, 1.0], [1.0, 0.0]]), Task.REGRESSION),
    ],
)
def test_infer_task(y: np.ndarray | None, task: Task) -> None:
    assert infer_task(y) is task


# --- builtin -------------------------------------------------------------------------------


def test_builtin_digits_is_the_fixed_test_split() -> None:
    x_train, _, x_test, y_test = digits_split()
    ds = load_dataset(DatasetSpec.parse("builtin:digits"))
    assert ds.x.shape == (450, 1, 8, 8) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, x_test)
    np.testing.assert_array_equal(ds.y, y_test)
    assert ds.y is not None and ds.y.dtype == np.int64
    assert ds.calibration is not None and ds.calibration.shape == (1347, 1, 8, 8)
    np.testing.assert_array_equal(ds.calibration, x_train)
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.image_shape == (8, 8)
    assert ds.task is Task.CLASSIFICATION
    assert ds.x.min() >= 0.0 and ds.x.max() == 1.0
    assert ds.info()["samples"] == 450 and ds.spec == "builtin:digits"


def test_digits_without_scikit_learn_are_scikit_learns_split(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The digits read from scikit-learn's data file with the committed split indices are exactly what
    load_digits + train_test_split give; a missing split file falls back to scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import core.datasets.builtin as builtin

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    want = train_test_split(
        x, y, test_size=builtin.DIGITS_TEST_FRACTION, random_state=builtin.DIGITS_SPLIT_SEED, stratify=y
    )
    x_train, y_train, x_test, y_test = builtin.digits_split()
    for got, expected in zip((x_train, x_test, y_train, y_test), want, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert builtin.DIGITS_SPLIT_FILE.is_file() and builtin._sklearn_data_file("digits.csv.gz") is not None
    monkeypatch.setattr(builtin, "DIGITS_SPLIT_FILE", tmp_path / "missing.json")
    np.testing.assert_array_equal(builtin.digits_split()[2], want[1])


def test_loading_the_digits_imports_no_scikit_learn() -> None:
    code = (
        "import sys\n"
        "from core.datasets import load_dataset\n"
        "from core.study.spec import DatasetSpec\n"
        "ds = load_dataset(DatasetSpec.parse('builtin:digits'))\n"
        "print(len(ds), sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["450", "[]"]


def test_builtin_digits_reshaped_for_a_flat_model() -> None:
    ds = load_dataset(DatasetSpec.parse("builtin:digits"), image_input(64))
    x_test = digits_split()[2]
    assert ds.x.shape == (450, 64)
    assert ds.calibration is not None and ds.calibration.shape == (1347, 64)
    np.testing.assert_array_equal(ds.x, x_test.reshape(450, 64))
    shown = sample_image(ds, 3)
    assert shown is not None
    np.testing.assert_array_equal(shown, x_test[3, 0])


def test_builtin_digits_wrong_size_names_both_shapes() -> None:
    message = bad_input(DatasetSpec.parse("builtin:digits"), image_input(3, 32, 32))
    assert "1x8x8 (64 values)" in message and "3x32x32 (3072 values)" in message and "'input'" in message


@pytest.mark.parametrize(("name", "features", "classes"), [("iris", 4, 3), ("wine", 13, 3), ("breast_cancer", 30, 2)])
def test_builtin_tabular_classification(name: str, features: int, classes: int) -> None:
    ds = load_dataset(DatasetSpec.parse(f"builtin:{name}"))
    assert ds.task is Task.CLASSIFICATION
    assert ds.x.dtype == np.float32 and ds.x.shape[1] == features
    assert ds.calibration is not None and ds.calibration.shape[1] == features
    assert len(ds) + len(ds.calibration) in (150, 178, 569)
    assert ds.class_names is not None and len(ds.class_names) == classes
    assert ds.y is not None and ds.y.dtype == np.int64 and set(np.unique(ds.y)) == set(range(classes))
    # Standardized with the train split: the calibration (train) pool has mean 0 and std 1 exactly.
    np.testing.assert_allclose(ds.calibration.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.calibration.std(axis=0), 1.0, atol=1e-4)
    # The same split every time.
    again = load_dataset(DatasetSpec.parse(f"builtin:{name}"))
    np.testing.assert_array_equal(again.x, ds.x)


def test_builtin_iris_split_is_stratified() -> None:
    ds = load_dataset(DatasetSpec.parse("builtin:iris"))
    assert ds.y is not None
    assert len(ds) == 38
    assert sorted(np.bincount(ds.y).tolist()) == [12, 13, 13]


def test_builtin_diabetes_is_regression() -> None:
    ds = load_dataset(DatasetSpec.parse("builtin:diabetes"))
    assert ds.task is Task.REGRESSION
    assert ds.x.shape == (111, 10) and ds.x.dtype == np.float32
    assert ds.y is not None and ds.y.dtype == np.float32 and ds.y.shape == (111,)
    assert ds.y.min() >= 25.0 and ds.y.max() <= 346.0
    assert ds.class_names is None


def test_builtin_unknown_name_lists_the_choices() -> None:
    message = bad_input(DatasetSpec(DatasetKind.BUILTIN, "mnist"))
    assert "'mnist'" in message
    for name in BUILTIN_NAMES:
        assert name in message


# --- npz -------------------------------------------------------------------------------------


def npz_spec(path: Path) -> DatasetSpec:
    return DatasetSpec(DatasetKind.NPZ, str(path))


def test_npz_images_and_integer_labels(tmp_path: Path) -> None:
    x = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    y = np.array([0, 1, 2, 1, 0], dtype=np.int32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(npz_spec(tmp_path / "d.npz"))
    assert ds.x.dtype == np.float32 and ds.x.shape == (5, 28, 28)
    np.testing.assert_array_equal(ds.x, x.astype(np.float32))
    assert ds.y is not None and ds.y.dtype == np.int64
    assert ds.y.tolist() == [0, 1, 2, 1, 0]
    assert ds.task is Task.CLASSIFICATION
    assert ds.image_shape == (28, 28)


def test_npz_reshaped_to_model_and_channel_layouts(tmp_path: Path) -> None:
    np.savez(tmp_path / "flat.npz", x=np.ones((4, 28, 28), dtype=np.float64))
    ds = load_dataset(npz_spec(tmp_path / "flat.npz"), image_input(1, 28, 28))
    assert ds.x.shape == (4, 1, 28, 28) and ds.x.dtype == np.float32
    assert ds.y is None and ds.task is Task.UNLABELLED

    np.savez(tmp_path / "chw.npz", x=np.zeros((2, 3, 16, 12), dtype=np.float32))
    assert load_dataset(npz_spec(tmp_path / "chw.npz")).image_shape == (16, 12, 3)
    np.savez(tmp_path / "hwc.npz", x=np.zeros((2, 16, 12, 3), dtype=np.float32))
    assert load_dataset(npz_spec(tmp_path / "hwc.npz")).image_shape == (16, 12, 3)
    np.savez(tmp_path / "tab.npz", x=np.zeros((2, 7), dtype=np.float32))
    assert load_dataset(npz_spec(tmp_path / "tab.npz")).image_shape is None


def test_npz_float_targets_are_regression(tmp_path: Path) -> None:
    np.savez(tmp_path / "r.npz", x=np.zeros((3, 2)), y=np.array([0.5, 1.5, -2.25]))
    ds = load_dataset(npz_spec(tmp_path / "r.npz"))
    assert ds.task is Task.REGRESSION
    assert ds.y is not None and ds.y.dtype == np.float32 and ds.y.tolist() == [0.5, 1.5, -2.25]


def test_npz_integer_inputs_kept_for_integer_model(tmp_path: Path) -> None:
    ids = np.array([[1, 5, 9], [2, 2, 0]], dtype=np.int32)
    np.savez(tmp_path / "ids.npz", x=ids)
    ds = load_dataset(npz_spec(tmp_path / "ids.npz"), TensorInfo("ids", ("batch", 3), "int64"))
    assert ds.x.dtype == np.int64
    np.testing.assert_array_equal(ds.x, ids)
    assert load_dataset(npz_spec(tmp_path / "ids.npz")).x.dtype == np.float32


def test_npz_missing_file(tmp_path: Path) -> None:
    assert "no such file" in bad_input(npz_spec(tmp_path / "absent.npz"))


def test_npz_object_array_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, [1, 2]], dtype=object))
    message = bad_input(npz_spec(tmp_path / "obj.npz"))
    assert "'x'" in message and "Python objects" in message


def test_bare_npy_is_x_alone_and_pickles_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((3, 4), dtype=np.float16))
    ds = load_dataset(npz_spec(tmp_path / "x.npy"))
    assert ds.x.dtype == np.float32 and ds.x.shape == (3, 4) and ds.y is None
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "Python objects" in bad_input(npz_spec(tmp_path / "o.npy"))
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"x": [1, 2]}))
    assert "not a numpy .npz or .npy file" in bad_input(npz_spec(tmp_path / "p.npz"))


def test_npz_length_mismatch(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", x=np.zeros((4, 2)), y=np.zeros(3, dtype=np.int64))
    assert "'x' has 4 samples but array 'y' has 3 labels" in bad_input(npz_spec(tmp_path / "m.npz"))


def test_npz_without_x_lists_what_it_holds(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 2)), labels=np.zeros(2))
    message = bad_input(npz_spec(tmp_path / "k.npz"))
    assert "no array named 'x'" in message and "'images'" in message and "'labels'" in message


def test_npz_wrong_shape_for_model(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", x=np.zeros((2, 10), dtype=np.float32))
    message = bad_input(npz_spec(tmp_path / "s.npz"), image_input(1, 8, 8))
    assert "10 (10 values)" in message and "1x8x8 (64 values)" in message


def test_npz_not_a_numpy_file_and_nan(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip archive")
    assert "not a" in bad_input(npz_spec(tmp_path / "junk.npz"))
    x = np.zeros((3, 2), dtype=np.float32)
    x[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    assert "NaN or infinite values (first in sample 2)" in bad_input(npz_spec(tmp_path / "nan.npz"))


def test_npz_string_labels_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "str.npz", x=np.zeros((2, 2)), y=np.array(["cat", "dog"]))
    assert "'y' holds" in bad_input(npz_spec(tmp_path / "str.npz"))


# --- csv -------------------------------------------------------------------------------------


def write_csv(tmp_path: Path, text: str, name: str = "t.csv") -> DatasetSpec:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return DatasetSpec(DatasetKind.CSV, str(path))


def test_csv_with_header_label_last(tmp_path: Path) -> None:
    spec = write_csv(tmp_path, "a,b,label\n1,2,0\n3.5,-4,1\n5,6,1\n7,8,0\n\n")
    ds = load_dataset(spec)
    assert ds.x.dtype == np.float32 and ds.x.tolist() == [[1, 2], [3.5, -4], [5, 6], [7, 8]]
    assert ds.y is not None and ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 1, 0]
    assert ds.task is Task.CLASSIFICATION


def test_csv_label_column_by_name_and_index(tmp_path: Path) -> None:
    text = "target,f1,f2\n1,0.5,0.25\n0,1.5,2.5\n1,3,4\n0,5,6\n"
    spec = write_csv(tmp_path, text)
    by_name = load_dataset(DatasetSpec(DatasetKind.CSV, spec.location, label_column="target"))
    by_index = load_dataset(DatasetSpec(DatasetKind.CSV, spec.location, label_column="0"))
    for ds in (by_name, by_index):
        assert ds.x.tolist() == [[0.5, 0.25], [1.5, 2.5], [3, 4], [5, 6]]
        assert ds.y is not None and ds.y.tolist() == [1, 0, 1, 0]
    parsed = DatasetSpec.parse(f"csv:{spec.location}#label=target")
    assert load_dataset(parsed).x.shape == (4, 2)


def test_csv_without_header_semicolons_and_regression(tmp_path: Path) -> None:
    spec = write_csv(tmp_path, "1;2;0.5\n3;4;1.75\n5;6;-3.25\n")
    ds = load_dataset(spec)
    assert ds.x.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert ds.task is Task.REGRESSION and ds.y is not None and ds.y.tolist() == [0.5, 1.75, -3.25]


def test_csv_unlabelled_keeps_every_column(tmp_path: Path) -> None:
    spec = write_csv(tmp_path, "1,2,3\n4,5,6\n")
    ds = load_dataset(DatasetSpec(DatasetKind.CSV, spec.location, task=Task.UNLABELLED))
    assert ds.x.shape == (2, 3) and ds.y is None and ds.task is Task.UNLABELLED


def test_csv_features_reshaped_to_image_model(tmp_path: Path) -> None:
    rows = "\n".join(",".join(str(v) for v in [*range(64), i % 2]) for i in range(4))
    ds = load_dataset(write_csv(tmp_path, rows), image_input(1, 8, 8))
    assert ds.x.shape == (4, 1, 8, 8) and ds.x[0, 0, 7, 7] == 63.0


def test_csv_missing_file(tmp_path: Path) -> None:
    assert "no such file" in bad_input(DatasetSpec(DatasetKind.CSV, str(tmp_path / "nope.csv")))


def test_csv_empty(tmp_path: Path) -> None:
    assert "is empty" in bad_input(write_csv(tmp_path, "\n\n"))
    assert "no data rows" in bad_input(write_csv(tmp_path, "a,b,label\n", "header_only.csv"))


def test_csv_ragged_row(tmp_path: Path) -> None:
    message = bad_input(write_csv(tmp_path, "a,b,label\n1,2,0\n3,4\n5,6,1\n"))
    assert "row 3 has 2 columns but the file has 3" in message


def test_csv_nan_names_row_and_column(tmp_path: Path) -> None:
    message = bad_input(write_csv(tmp_path, "a,b,label\n1,2,0\n3,NaN,1\n"))
    assert "row 3, column 2 ('b')" in message and "'NaN'" in message


def test_csv_non_numeric_and_empty_cells(tmp_path: Path) -> None:
    message = bad_input(write_csv(tmp_path, "a,b,label\n1,2,0\n3,4,cat\n"))
    assert "row 3, column 3 ('label') is 'cat', not a number" in message
    message = bad_input(write_csv(tmp_path, "1,,0\n3,4,1\n", "gap.csv"))
    assert "row 1, column 2 is empty" in message


def test_csv_unknown_label_column(tmp_path: Path) -> None:
    spec = write_csv(tmp_path, "a,b\n1,0\n")
    message = bad_input(DatasetSpec(DatasetKind.CSV, spec.location, label_column="class"))
    assert "no label column named 'class'" in message and "a, b" in message
    message = bad_input(DatasetSpec(DatasetKind.CSV, spec.location, label_column="5"))
    assert "index 5 is out of range for 2 columns" in message


# --- folder ----------------------------------------------------------------------------------


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def gray(value: int, size: tuple[int, int] = (8, 8)) -> Image.Image:
    return Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint8), mode="L")


def folder_spec(root: Path, **kw: object) -> DatasetSpec:
    return DatasetSpec(DatasetKind.FOLDER, str(root), **kw)  # type: ignore[arg-type]


def test_folder_grayscale_for_one_channel_model(tmp_path: Path) -> None:
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    save(tmp_path / "cat" / "a.png", Image.fromarray(pixels, mode="L"))
    save(tmp_path / "cat" / "b.png", gray(255))
    save(tmp_path / "dog" / "c.png", gray(51))
    ds = load_dataset(folder_spec(tmp_path), image_input(1, 8, 8))
    assert ds.x.shape == (3, 1, 8, 8) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[0, 0], pixels / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x[1], 1.0)
    np.testing.assert_allclose(ds.x[2], 0.2, rtol=1e-6)
    assert ds.y is not None and ds.y.tolist() == [0, 0, 1]
    assert ds.class_names == ["cat", "dog"]
    assert ds.task is Task.CLASSIFICATION
    assert ds.image_shape == (8, 8)
    assert ds.preprocessing == "resize to 8x8, pixels scaled to 0..1"


def test_folder_rgb_imagenet_default_for_large_colour_model(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", Image.new("RGB", (64, 64), (255, 128, 0)))
    ds = load_dataset(folder_spec(tmp_path), image_input(3, 64, 64))
    assert ds.x.shape == (1, 3, 64, 64)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([255, 128, 0]) / 255.0 - mean) / std
    np.testing.assert_allclose(ds.x[0, :, 5, 5], expected, rtol=1e-5)
    assert ds.preprocessing == "resize to 64x64, ImageNet mean/std"
    assert ds.image_shape == (64, 64, 3)


def test_folder_small_colour_model_uses_unit_scale_and_nhwc(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", Image.new("RGB", (32, 32), (255, 0, 51)))
    ds = load_dataset(folder_spec(tmp_path), image_input(32, 32, 3))
    assert ds.x.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(ds.x[0, 0, 0], [1.0, 0.0, 0.2], rtol=1e-6)
    assert "pixels scaled to 0..1" in ds.preprocessing


def test_folder_converts_channels(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    save(tmp_path / "a" / "rgba.png", rgba)
    save(tmp_path / "a" / "gray.png", gray(100))
    sixteen = Image.fromarray(np.full((8, 8), 65535 // 5, dtype=np.uint16))  # 13107 -> 51 of 255
    save(tmp_path / "b" / "sixteen.png", sixteen)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.info["transparency"] = 0
    save(tmp_path / "b" / "palette.png", palette)
    with Image.open(tmp_path / "b" / "sixteen.png") as stored:
        assert stored.mode.startswith("I")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = load_dataset(folder_spec(tmp_path, preprocess=Preprocess()), image_input(3, 8, 8))
        mono = load_dataset(folder_spec(tmp_path), image_input(1, 8, 8))
    # Order: a/gray.png, a/rgba.png, b/palette.png, b/sixteen.png
    np.testing.assert_allclose(rgb.x[0, :, 0, 0], [100 / 255] * 3, rtol=1e-6)
    np.testing.assert_allclose(rgb.x[1, :, 0, 0], [10 / 255, 20 / 255, 30 / 255], rtol=1e-6)  # alpha dropped
    np.testing.assert_allclose(rgb.x[2, :, 0, 0], [200 / 255, 100 / 255, 50 / 255], rtol=1e-6)
    np.testing.assert_allclose(rgb.x[3, :, 0, 0], [0.2] * 3, rtol=1e-6)  # 16-bit scaled, not clipped
    np.testing.assert_allclose(mono.x[3, 0], 0.2, rtol=1e-6)
    luma = (200 * 299 + 100 * 587 + 50 * 114) / 1000
    assert abs(mono.x[2, 0, 0, 0] * 255 - luma) <= 1.0
    assert mono.y is not None and mono.y.tolist() == [0, 0, 1, 1]


def test_folder_resizes_and_flattens_for_mlp(tmp_path: Path) -> None:
    save(tmp_path / "0" / "big.png", gray(102, (28, 20)))
    ds = load_dataset(folder_spec(tmp_path), image_input(64))
    assert ds.x.shape == (1, 64)
    np.testing.assert_allclose(ds.x, 0.4, rtol=1e-6)
    shown = sample_image(ds, 0)
    assert shown is not None and shown.shape == (8, 8)


def test_folder_symbolic_size_keeps_image_size(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", Image.new("RGB", (12, 10), (0, 0, 0)))
    ds = load_dataset(folder_spec(tmp_path, preprocess=Preprocess()), image_input(3, "h", "w"))
    assert ds.x.shape == (1, 3, 10, 12)
    assert any("10x12" in note for note in ds.notes)
    sized = load_dataset(folder_spec(tmp_path, preprocess=Preprocess(size=(6, 5))), image_input(3, "h", "w"))
    assert sized.x.shape == (1, 3, 6, 5)


def test_folder_skips_non_images_with_a_note(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", gray(0))
    (tmp_path / "a" / "README.txt").write_text("about the cats")
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\0\1")
    ds = load_dataset(folder_spec(tmp_path), image_input(1, 8, 8))
    assert len(ds) == 1
    assert ds.notes == ["Skipped 1 file(s) without an image suffix, e.g. a/README.txt."]


def test_folder_limit_takes_every_class(tmp_path: Path) -> None:
    for cls in ("a", "b", "c"):
        for i in range(4):
            save(tmp_path / cls / f"{i}.png", gray(i))
    ds = load_dataset(folder_spec(tmp_path, limit=5), image_input(1, 8, 8))
    assert ds.y is not None and ds.y.tolist() == [0, 0, 1, 1, 2]
    np.testing.assert_allclose(ds.x[:, 0, 0, 0] * 255, [0, 1, 0, 1, 0], atol=1e-4)
    assert "Evaluating 5 of 12 images" in ds.notes[0]


def test_folder_missing_and_without_classes(tmp_path: Path) -> None:
    assert "no such folder" in bad_input(folder_spec(tmp_path / "nope"))
    (tmp_path / "a.npz").write_bytes(b"x")
    assert "is a file; folder: takes a folder" in bad_input(folder_spec(tmp_path / "a.npz"))
    assert "is a folder, not an .npz or .npy file" in bad_input(npz_spec(tmp_path))
    save(tmp_path / "loose.png", gray(0))
    assert "no class sub-folders" in bad_input(folder_spec(tmp_path))


def test_folder_empty_class(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", gray(0))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("nothing here")
    assert "class folder 'b' has no images" in bad_input(folder_spec(tmp_path), image_input(1, 8, 8))


def test_folder_corrupt_image_names_the_file(tmp_path: Path) -> None:
    save(tmp_path / "a" / "good.png", gray(0))
    (tmp_path / "a" / "bad.png").write_bytes(b"this is not a png")
    message = bad_input(folder_spec(tmp_path), image_input(1, 8, 8))
    assert "a/bad.png cannot be read as an image" in message

    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    save(tmp_path / "a" / "noise.png", Image.fromarray(noise, mode="L"))
    whole = (tmp_path / "a" / "noise.png").read_bytes()
    (tmp_path / "a" / "bad.png").write_bytes(whole[: len(whole) // 2])
    message = bad_input(folder_spec(tmp_path), image_input(1, 8, 8))
    assert "a/bad.png cannot be read as an image (damaged or truncated)" in message


def test_folder_rejects_non_image_model_and_bad_preprocess(tmp_path: Path) -> None:
    save(tmp_path / "a" / "x.png", gray(0))
    assert "not an image layout" in bad_input(folder_spec(tmp_path), image_input(5, 7, 9))
    message = bad_input(folder_spec(tmp_path, preprocess=Preprocess.imagenet()), image_input(1, 8, 8))
    assert "mean has 3 values for 1-channel images" in message


# --- synthetic -------------------------------------------------------------------------------


def test_synthetic_shape_and_seed() -> None:
    spec = DatasetSpec.parse("synthetic:16")
    ds = load_dataset(spec, image_input(3, 4, 5), seed=7)
    assert ds.x.shape == (16, 3, 4, 5) and ds.x.dtype == np.float32
    assert ds.y is None and ds.task is Task.UNLABELLED
    np.testing.assert_array_equal(ds.x, load_dataset(spec, image_input(3, 4, 5), seed=7).x)
    assert not np.array_equal(ds.x, load_dataset(spec, image_input(3, 4, 5), seed=8).x)
    assert abs(float(ds.x.mean())) < 0.2 and 0.8 < float(ds.x.std()) < 1.2


def test_synthetic_needs_fixed_shape_and_a_model() -> None:
    spec = DatasetSpec.parse("synthetic:4")
    message = bad_input(spec, image_input(3, "height", "width"))
    assert "3xheightxwidth" in message and "real dataset" in message
    assert "a model is needed" in bad_input(spec)
    assert "int64" in bad_input(spec, TensorInfo("ids", ("batch", 8), "int64"))


# --- limit and task override -----------------------------------------------------------------


def test_limit_keeps_the_first_samples() -> None:
    full = load_dataset(DatasetSpec.parse("builtin:digits"))
    ds = load_dataset(DatasetSpec(DatasetKind.BUILTIN, "digits", limit=20))
    assert len(ds) == 20
    np.testing.assert_array_equal(ds.x, full.x[:20])
    assert ds.y is not None and full.y is not None and ds.y.tolist() == full.y[:20].tolist()
    assert ds.calibration is not None and len(ds.calibration) == 1347
    assert "Evaluating the first 20 of 450 samples." in ds.notes
    assert "must be positive" in bad_input(DatasetSpec(DatasetKind.BUILTIN, "digits", limit=0))


def test_task_override(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 2, 3], dtype=np.int64))
    as_regression = load_dataset(DatasetSpec(DatasetKind.NPZ, str(tmp_path / "d.npz"), task=Task.REGRESSION))
    assert as_regression.task is Task.REGRESSION and as_regression.y is not None
    assert as_regression.y.dtype == np.float32
    unlabelled = load_dataset(DatasetSpec(DatasetKind.NPZ, str(tmp_path / "d.npz"), task=Task.UNLABELLED))
    assert unlabelled.y is None and unlabelled.task is Task.UNLABELLED

    np.savez(tmp_path / "f.npz", x=np.zeros((2, 2)), y=np.array([0.5, 1.0]))
    message = bad_input(DatasetSpec(DatasetKind.NPZ, str(tmp_path / "f.npz"), task=Task.CLASSIFICATION))
    assert "set to classification but the labels are not whole numbers" in message
    spec = DatasetSpec(DatasetKind.SYNTHETIC, "3", task=Task.CLASSIFICATION)
    assert "has no labels" in bad_input(spec, image_input(2))


# --- fit checks ------------------------------------------------------------------------------


def digits_ds() -> Dataset:
    return load_dataset(DatasetSpec.parse("builtin:digits"))


def test_fits_when_shapes_and_labels_agree() -> None:
    ds = digits_ds()
    assert describe_mismatch(ds, [image_input(1, 8, 8)], [TensorInfo("logits", ("batch", 10), "float32")]) is None
    # Symbolic dimensions are not judged.
    assert describe_mismatch(ds, [image_input(1, "h", "w")], [TensorInfo("logits", ("batch", "k"), "float32")]) is None
    check_dataset_fits(ds, [image_input(1, 8, 8)], [TensorInfo("logits", ("batch", 10), "float32")])


def test_labels_out_of_range() -> None:
    ds = digits_ds()
    outputs = [TensorInfo("logits", ("batch", 5), "float32")]
    message = describe_mismatch(ds, [image_input(1, 8, 8)], outputs)
    assert message is not None
    one_sentence(message, "builtin:digits")
    assert "labels run from 0 to 9" in message and "'logits' has 5 classes" in message
    with pytest.raises(BadInput, match="has 5 classes"):
        check_dataset_fits(ds, [image_input(1, 8, 8)], outputs)


def test_shape_mismatch_and_other_problems() -> None:
    ds = digits_ds()
    outputs = [TensorInfo("logits", ("batch", 10), "float32")]
    message = describe_mismatch(ds, [image_input(3, "h", "w")], outputs)
    assert message is not None and "samples are 1x8x8" in message and "3xhxw" in message
    message = describe_mismatch(ds, [image_input(1, 8, 8), image_input(4)], outputs)
    assert message is not None and "2 inputs" in message
    message = describe_mismatch(ds, [image_input(1, 8, 8, dtype="int64")], outputs)
    assert message is not None and "takes int64 values" in message

    empty = Dataset(x=np.zeros((0, 4), dtype=np.float32), y=None, task=Task.UNLABELLED, spec="npz:empty.npz")
    with pytest.raises(BadInput, match="npz:empty.npz: the dataset has no samples"):
        check_dataset_fits(empty, [image_input(4)], outputs)

    reg = load_dataset(DatasetSpec.parse("builtin:diabetes"))
    assert describe_mismatch(reg, [image_input(10)], [TensorInfo("y", ("batch", 1), "float32")]) is None
    message = describe_mismatch(reg, [image_input(10)], [TensorInfo("y", ("batch", 3), "float32")])
    assert message is not None and "1 target value(s)" in message and "gives 3" in message


def test_binary_single_logit_accepts_zero_one() -> None:
    ds = load_dataset(DatasetSpec.parse("builtin:breast_cancer"))
    assert describe_mismatch(ds, [image_input(30)], [TensorInfo("logit", ("batch", 1), "float32")]) is None
