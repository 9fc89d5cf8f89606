"""Issue 14, item 7: static schemes never calibrate on the samples they are scored on unless asked.

npz, csv and folder data hold out a seeded calibration split (10 %, at most 500 samples) that is
not evaluated; the built-in sets keep their own train split; ``--calibration-data`` (and the
spec's ``dataset.calibration``) names another dataset, or ``same`` to calibrate on the evaluated
samples with a warning. The result JSON says which in ``dataset.calibration``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.cli.main import spec_from_args
from core.cli.parser import parse_args
from core.datasets import HOLDOUT_MAX, load_dataset
from core.engine.run import run_study
from core.errors import BadInput
from core.study.events import StudyFinished
from core.study.project import load_spec, reproduce_command, save_spec, spec_from_dict
from core.study.spec import (
    CALIBRATE_ON_SAME,
    DatasetKind,
    DatasetSpec,
    ModelSpec,
    SchemeSpec,
    StudySpec,
    TimingSpec,
    VariantSpec,
)

FAST = TimingSpec(threads=1, max_time_s=0.05, min_samples=5, warmup_runs=1)


def _rows(a: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in a.reshape(len(a), -1)}


def _npz(path: Path, n: int, features: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.normal(size=(n, features)).astype(np.float32), y=rng.integers(0, 3, size=n))
    return path


def test_npz_holds_out_a_calibration_split_that_is_not_evaluated(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", 100)
    ds = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path)))

    assert len(ds) == 90 and ds.y is not None and len(ds.y) == 90
    assert ds.calibration is not None and len(ds.calibration) == 10
    assert not _rows(ds.calibration) & _rows(ds.x)  # no calibration sample is scored
    assert ds.info()["calibration"] == {"source": "holdout", "samples": 10, "overlaps_evaluation": False}
    # Every draw of calibration samples comes from the held-out pool.
    assert _rows(ds.calibration_samples(200, seed=3)) <= _rows(ds.calibration)
    # Seeded: the window, loading the same data on its own, evaluates the very same samples.
    again = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path)))
    np.testing.assert_array_equal(again.x, ds.x)


def test_the_split_is_at_most_500_samples_and_the_limit_applies_to_the_rest(tmp_path: Path) -> None:
    path = _npz(tmp_path / "big.npz", 6000)
    ds = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path)))
    assert (len(ds.calibration), len(ds)) == (HOLDOUT_MAX, 5500)

    limited = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path), limit=100))
    assert len(limited) == 100 and not _rows(limited.calibration) & _rows(limited.x)


def test_csv_and_folder_hold_out_too(tmp_path: Path) -> None:
    from PIL import Image

    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    ds = load_dataset(DatasetSpec.parse(f"csv:{csv}"))
    assert (len(ds), len(ds.calibration)) == (18, 2) and ds.info()["calibration"]["source"] == "holdout"
    # The csv loader reads only the first rows under a limit: it reads ahead so that the limit is still evaluated.
    limited = load_dataset(DatasetSpec(DatasetKind.CSV, str(csv), limit=9))
    assert (len(limited), len(limited.calibration)) == (9, 1)

    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (8, 8), color=i * 20 + (cls == "b") * 100).save(tmp_path / "imgs" / cls / f"{i}.png")
    images = load_dataset(DatasetSpec.parse(f"folder:{tmp_path / 'imgs'}"))
    assert (len(images), len(images.calibration)) == (9, 1)
    assert not images.info()["calibration"]["overlaps_evaluation"]


def test_builtin_digits_keeps_its_own_split_and_its_figures() -> None:
    ds = load_dataset(DatasetSpec.parse("builtin:digits"))
    assert len(ds) == 450  # the whole test split is still evaluated: the demo's figures are unchanged
    assert ds.info()["calibration"] == {"source": "train_split", "samples": 1347, "overlaps_evaluation": False}


def test_same_calibrates_on_the_evaluated_samples_with_a_warning(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", 100)
    ds = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path), calibration=CALIBRATE_ON_SAME))
    assert len(ds) == 100
    assert ds.info()["calibration"] == {"source": "same", "samples": 100, "overlaps_evaluation": True}
    assert any(n.startswith("Warning: static schemes calibrate on the very samples") for n in ds.notes)


def test_another_dataset_calibrates_and_the_whole_set_is_evaluated(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", 100)
    calib = _npz(tmp_path / "c.npz", 30, seed=1)
    ds = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path), calibration=f"npz:{calib}"))
    assert len(ds) == 100 and len(ds.calibration) == 30
    assert ds.info()["calibration"] == {"source": f"npz:{calib}", "samples": 30, "overlaps_evaluation": False}

    # The same file named again is an overlap, said so.
    same = load_dataset(DatasetSpec(DatasetKind.NPZ, str(path), calibration=f"npz:{path}"))
    assert same.info()["calibration"]["overlaps_evaluation"] is True and same.notes

    wrong = _npz(tmp_path / "w.npz", 30, features=5)
    with pytest.raises(BadInput, match="calibration data npz:.*w.npz: its samples are"):
        load_dataset(DatasetSpec(DatasetKind.NPZ, str(path), calibration=f"npz:{wrong}"))


def _study(tmp_path: Path, kit: Any, tiny_onnx: Path, calibration: str | None) -> dict[str, Any]:
    x = kit.tiny_inputs(100, seed=5)
    data = kit.save_npz(tmp_path / "data.npz", x, np.arange(100) % 10)
    spec = StudySpec(
        ModelSpec(str(tiny_onnx)),
        DatasetSpec(DatasetKind.NPZ, str(data), calibration=calibration),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static", (("samples", "8"),))),),
        timing=FAST,
    )
    finished = [e for e in run_study(spec) if isinstance(e, StudyFinished)][-1]
    return json.loads(json.dumps(finished.result.to_json_dict()))


def test_the_result_json_says_where_the_study_calibrated(tmp_path: Path, kit: Any, tiny_onnx: Path) -> None:
    data = _study(tmp_path, kit, tiny_onnx, None)
    assert data["schema_version"] == 1 and data["dataset"]["samples"] == 90
    assert data["dataset"]["calibration"] == {"source": "holdout", "samples": 10, "overlaps_evaluation": False}
    static = data["results"][1]
    assert static["status"] == "ok" and static["coverage"]["calibration_samples"] == 8

    asked = _study(tmp_path, kit, tiny_onnx, CALIBRATE_ON_SAME)
    assert asked["dataset"]["samples"] == 100 and asked["dataset"]["calibration"]["overlaps_evaluation"] is True


def test_the_calibration_choice_survives_spec_files_and_the_command_line(tmp_path: Path) -> None:
    calib = _npz(tmp_path / "c.npz", 30)
    dataset = DatasetSpec(DatasetKind.NPZ, str(tmp_path / "d.npz"), calibration=f"npz:{calib}")
    spec = StudySpec(ModelSpec(str(tmp_path / "m.onnx")), dataset)
    for calibration in (f"npz:{calib}", CALIBRATE_ON_SAME, None):
        changed = replace(spec, dataset=replace(dataset, calibration=calibration))
        assert spec_from_dict(changed.to_dict()).dataset == changed.dataset

    # A relative calibration path in a project file is read against the file's folder.
    project = tmp_path / "p.quantbench.json"
    save_spec(spec, project)
    payload = json.loads(project.read_text())
    payload["spec"]["dataset"]["calibration"] = "npz:c.npz"
    project.write_text(json.dumps(payload))
    assert load_spec(project).dataset.calibration == f"npz:{calib}"

    args = parse_args(["run", "--model", str(tmp_path / "m.onnx"), "--dataset", "npz:d.npz",
                       "--calibration-data", f"npz:{calib}"])
    assert spec_from_args(args).dataset.calibration == f"npz:{calib}"
    assert f"--calibration-data npz:{calib}" in reproduce_command(spec.to_dict())
    same = parse_args(["run", "--model", "m.onnx", "--dataset", "npz:d.npz", "--calibration-data", "SAME"])
    assert spec_from_args(same).dataset.calibration == CALIBRATE_ON_SAME
    default = parse_args(["run", "--model", "m.onnx", "--dataset", "npz:d.npz"])
    assert spec_from_args(default).dataset.calibration is None
    bad = parse_args(["run", "--model", "m.onnx", "--dataset", "npz:d.npz", "--calibration-data", "nope:x"])
    with pytest.raises(BadInput, match="^--calibration-data: "):
        spec_from_args(bad)
