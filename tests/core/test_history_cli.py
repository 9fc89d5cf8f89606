"""`quantbench run` recording into the history, and the history commands, on real short demo studies."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--in-process", "--quiet", "--threads", "1", "--max-time", "0.1"]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One recorded demo study with every output option: spec file, JSON, HTML, saved variants."""
    d = tmp_path_factory.mktemp("history_cli")
    ns = SimpleNamespace(home=d / "home", spec=d / "study.json", json=d / "result.json", html=d / "report.html",
                         variants=d / "variants")
    code = main([
        "run", "--demo", *FAST, "--limit", "60", "--home", str(ns.home), "--name", "first",
        "--scheme", "fp32", "--scheme", "ort-int8-dynamic", "--scheme", "torch-int8-dynamic",
        "--save-spec", str(ns.spec), "--json", str(ns.json), "--html", str(ns.html),
        "--save-variants", str(ns.variants),
    ])
    assert code == 0
    ns.result = json.loads(ns.json.read_text())
    ns.id = ns.result["study_id"]
    return ns


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_json_lists_the_study(first: SimpleNamespace) -> None:
    # A fresh process, as a script would call it.
    out = subprocess.run(
        [sys.executable, "-m", "core.cli", "history", "--json", "--home", str(first.home)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    (entry,) = [e for e in json.loads(out.stdout) if e["id"] == first.id]
    assert {"id", "created", "model", "dataset", "status", "variants_finished"} <= set(entry)
    assert entry["status"] == "finished"
    assert entry["name"] == "first"
    assert entry["created"] == first.result["created"]
    assert entry["model"] == first.result["model"]["path"]
    assert entry["dataset"] == "builtin:digits"
    assert entry["variants_finished"] == entry["variants_planned"] == 3


def test_history_table_and_show(first: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "history", "--home", str(first.home))
    assert code == 0
    assert first.id in out and "finished" in out and "3/3" in out and "first" in out
    code, out, _ = _run(capsys, "show", first.id[:5], "--home", str(first.home))
    assert code == 0
    assert out.startswith(f'Study {first.id} "first": finished')
    for label in ("fp32", "ort-int8-dynamic", "torch-int8-dynamic"):
        assert label in out
    p50 = first.result["results"][1]["latency_ms"]["p50"]
    assert (f"{p50:.3f}" if p50 < 10 else f"{p50:.1f}") in out


def test_export_json_matches_the_run_and_csv_has_a_row_per_variant(
    first: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_csv, out_html = tmp_path / "e.json", tmp_path / "e.csv", tmp_path / "e.html"
    code, _, err = _run(capsys, "export", first.id[:4], "--json", str(out_json), "--csv", str(out_csv),
                        "--html", str(out_html), "--home", str(first.home))
    assert code == 0, err
    assert json.loads(out_json.read_text()) == first.result
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["label"] for r in rows] == [r["label"] for r in first.result["results"]]
    for row, res in zip(rows, first.result["results"], strict=True):
        assert row["study_id"] == first.id and row["study_name"] == "first"
        assert float(row["p50_ms"]) == res["latency_ms"]["p50"]
        assert float(row["accuracy"]) == res["metrics"]["accuracy"]
        assert int(row["size_bytes"]) == res["size_bytes"]
    assert rows[1]["verdict"] == first.result["results"][1]["verdict"]["overall"]
    html = out_html.read_text()
    assert html.startswith("<!DOCTYPE html>") and first.id in html
    # The four study charts, and the per-layer charts of the variants analysed by default.
    layer_charts = html.count('data-chart="layers"')
    assert html.count('data-chart="') - layer_charts == 4 and layer_charts >= 1


def test_export_without_a_target_or_with_an_unknown_id_is_bad_input(
    first: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "export", first.id, "--home", str(first.home))
    assert code == 2 and err == "quantbench: export needs at least one of --html FILE, --json FILE or --csv FILE.\n"
    code, _, err = _run(capsys, "show", "nosuchid", "--home", str(first.home))
    assert code == 2 and "no study 'nosuchid'" in err and err.count("\n") == 1


def test_spec_file_reruns_the_study_with_overrides_and_compare(
    first: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = json.loads(first.spec.read_text())
    assert saved["quantbench_project"] == 1
    assert [v["scheme"]["id"] for v in saved["spec"]["variants"]] == ["ort-int8-dynamic", "torch-int8-dynamic"]
    rerun = tmp_path / "rerun.json"
    code, _, err = _run(capsys, "run", "--spec", str(first.spec), *FAST, "--limit", "40", "--name", "second",
                        "--home", str(first.home), "--json", str(rerun))
    assert code == 0, err
    second = json.loads(rerun.read_text())
    assert second["study_id"] != first.id
    assert second["dataset"]["samples"] == 40  # the override
    assert [r["label"] for r in second["results"]] == [r["label"] for r in first.result["results"]]

    html, table = tmp_path / "cmp.html", tmp_path / "cmp.csv"
    code, out, err = _run(capsys, "compare", first.id, second["study_id"][:6], "--html", str(html), "--csv", str(table),
                          "--home", str(first.home))
    assert code == 0, err
    assert "first" in out and "second" in out
    assert "different datasets or sample counts" in out
    text = html.read_text()
    for name in ("first", "second"):
        for label in ("fp32", "ort-int8-dynamic", "torch-int8-dynamic"):
            assert f'data-variant="{name} / {label}"' in text
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["study_name"] for r in rows] == ["first"] * 3 + ["second"] * 3

    # A result file written by --json compares as well as a history id.
    code, out, _ = _run(capsys, "compare", first.id, str(rerun), "--home", str(first.home))
    assert code == 0 and "rerun" in out


def test_spec_refuses_options_that_would_change_the_study(
    first: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "run", "--spec", str(first.spec), "--scheme", "ort-fp16", "--home", str(first.home))
    assert code == 2
    assert err.startswith("quantbench: --scheme cannot be combined with --spec")


def test_a_missing_or_broken_spec_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "run", "--spec", str(tmp_path / "none.json"))
    assert code == 2 and "no such file" in err
    (tmp_path / "bad.json").write_text('{"spec": {"model": {}}}')
    code, _, err = _run(capsys, "run", "--spec", str(tmp_path / "bad.json"))
    assert code == 2 and "the field 'path' is missing" in err


def test_saved_variants_load_in_their_runtime(first: SimpleNamespace) -> None:
    import onnxruntime as ort
    import torch

    from core.datasets.builtin import digits_split

    names = sorted(p.name for p in first.variants.iterdir())
    # The baseline is the user's own file, so it is not copied; the work folder is gone.
    assert names == [
        "ort-int8-dynamic.onnx", "ort-int8-dynamic.quantbench.json", "torch-int8-dynamic.pt",
        "torch-int8-dynamic.quantbench.json",
    ]
    side = json.loads((first.variants / "ort-int8-dynamic.quantbench.json").read_text())
    model_file = first.variants / side["file"]
    assert side["scheme"] == "ort-int8-dynamic" and side["runtime"] == "onnxruntime"
    assert side["source_model"]["path"] == first.result["model"]["path"]
    assert side["study_id"] == first.id
    assert side["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert side["size_bytes"] == model_file.stat().st_size == first.result["results"][1]["size_bytes"]
    assert "integer kernels" in side["coverage"]

    _, _, x_test, y_test = digits_split()
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x_test[:60]})[0]
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test[:60]))
    assert accuracy == pytest.approx(first.result["results"][1]["metrics"]["accuracy"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own TypedStorage notice while unpickling packed params
        state = torch.load(first.variants / "torch-int8-dynamic.pt", weights_only=True)
    assert any("_packed_params" in key for key in state)  # the dynamic-int8 Linear layers, as PyTorch packs them


def test_an_unusable_history_warns_but_the_run_completes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "history.sqlite3").write_bytes(b"not a database" * 100)
    out_json = tmp_path / "r.json"
    code, out, err = _run(capsys, "run", "--demo", "--in-process", "--threads", "1", "--max-time", "0.05",
                          "--limit", "20", "--scheme", "fp32", "--home", str(home), "--json", str(out_json))
    assert code == 0
    assert "warning: the study is not recorded in the history" in err and "corrupt" in err
    assert json.loads(out_json.read_text())["status"] == "finished"
    assert (home / "history.sqlite3").read_bytes() == b"not a database" * 100


def test_quantbench_home_environment_variable(tmp_path: Path) -> None:
    env = dict(os.environ, QUANTBENCH_HOME=str(tmp_path / "qbhome"))
    out = subprocess.run([sys.executable, "-m", "core.cli", "history"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"No studies yet in {tmp_path / 'qbhome' / 'history.sqlite3'}")


def test_project_paths_are_relative_to_the_project_file(tmp_path: Path) -> None:
    from core.study.project import load_spec
    from core.study.spec import DatasetKind

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"quantbench_project": 1, "spec": {
        "model": {"path": "models/net.onnx"},
        "dataset": {"kind": "npz", "location": "data/val.npz", "limit": 32},
        "variants": [{"scheme": {"id": "ort-int8-static", "params": [["samples", "50"]]}}, {"path": "/abs/other.onnx"}],
        "timing": {"mode": "thorough", "max_time_s": 1.5},
        "thresholds": {"accuracy_drop_good": 0.02},
    }}))
    spec = load_spec(folder / "study.json")
    assert spec.model.path == str(folder / "models" / "net.onnx")
    assert (spec.dataset.kind, spec.dataset.location, spec.dataset.limit) == (
        DatasetKind.NPZ,
        str(folder / "data" / "val.npz"),
        32,
    )
    assert spec.variants[0].scheme.label == "ort-int8-static:samples=50"
    assert spec.variants[1].path == "/abs/other.onnx"
    assert spec.timing.mode.value == "thorough" and spec.timing.max_time_s == 1.5
    assert spec.thresholds.accuracy_drop_good == 0.02 and spec.thresholds.accuracy_drop_bad == 0.05


def test_a_newer_project_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"quantbench_project": 2, "spec": {}}))
    code, _, err = _run(capsys, "run", "--spec", str(tmp_path / "p.json"))
    assert code == 2 and "newer QuantBench (project version 2" in err


def test_the_reproduce_command_rebuilds_the_same_spec(first: SimpleNamespace, tmp_path: Path) -> None:
    """The command printed in reports, parsed by `quantbench run`, gives back the study's spec."""
    import shlex

    from core.cli.main import spec_from_args
    from core.cli.parser import build_parser
    from core.study.project import load_spec, reproduce_command, save_spec

    spec = load_spec(first.spec)
    spec = replace(spec, thresholds=replace(spec.thresholds, size_reduction_good=0.4), seed=3)
    argv = shlex.split(reproduce_command(spec.to_dict()))
    assert argv[:2] == ["quantbench", "run"]
    rebuilt = spec_from_args(build_parser(window=False).parse_args(argv[1:]))
    strip = lambda s: {k: v for k, v in s.to_dict().items() if k != "study_id"}  # noqa: E731
    assert strip(rebuilt) == strip(spec)
    save_spec(rebuilt, tmp_path / "again.json")
    assert strip(load_spec(tmp_path / "again.json")) == strip(spec)


def test_saved_variants_with_crash_isolation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default run builds in a child process; its variants must land in DIR all the same."""
    out = tmp_path / "variants"
    code, _, err = _run(capsys, "run", "--demo", "--quiet", "--threads", "1", "--max-time", "0.05", "--limit", "20",
                        "--scheme", "fp32", "--scheme", "ort-fp16", "--home", str(tmp_path / "home"),
                        "--save-variants", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["ort-fp16.onnx", "ort-fp16.quantbench.json"]


def test_compare_says_why_a_named_file_is_not_a_result(
    first: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**first.result, "schema_version": 99}), encoding="utf-8")
    binary = tmp_path / "photo.json"
    binary.write_bytes(bytes(range(256)))
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}', encoding="utf-8")
    cases = {
        str(tmp_path / "absent.json"): "absent.json: no such file.",
        str(tmp_path): "is a folder, not a QuantBench result file.",
        str(binary): "photo.json: not a QuantBench result file (not UTF-8 JSON text).",
        str(other): "other.json: not a QuantBench result file (it has no 'study_id').",
        str(newer): "newer.json: written by a newer QuantBench (schema_version 99; this one reads up to 1).",
    }
    for named, expected in cases.items():
        code, _out, err = _run(capsys, "compare", str(first.json), named, "--home", str(first.home))
        assert code == 2 and err.strip().endswith(expected) and len(err.strip().splitlines()) == 1, err


def test_reading_a_history_that_does_not_exist_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "new-home"
    code, out, _err = _run(capsys, "history", "--home", str(home))
    assert code == 0 and out.startswith("No studies yet in ")
    code, _out, err = _run(capsys, "show", "abc", "--home", str(home))
    assert code == 2 and err.strip() == f"quantbench: no study 'abc': there is no history in {home} yet " \
                                       "(quantbench run records one)."
    assert not home.exists()
