"""``quantbench tune`` from the command line: the budget, the exit codes, the JSON and bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.main import main


def test_tune_on_the_demo_meets_a_half_point_budget_and_writes_its_json(tmp_path: Path, capsys) -> None:
    import onnxruntime as ort

    from core.history.store import StudyStore

    out, home, saved = tmp_path / "tune.json", tmp_path / "home", tmp_path / "keep" / "best.onnx"
    saved.parent.mkdir()
    code = main(["tune", "--demo", "--max-drop", "0.5", "--time-limit", "2m", "--json", str(out),
                 "--home", str(home), "--save-best", str(saved)])
    printed = capsys.readouterr()
    result = json.loads(out.read_text())
    assert code == 0 and result["kind"] == "tune" and result["status"] == "met"
    assert result["candidates"][0]["scheme"] == "fp32" and result["best"]["accuracy_drop_pt"] <= 0.5
    best = result["best"]
    assert best["latency_ms"]["p50"] < result["candidates"][0]["latency_ms"]["p50"]  # faster than float
    assert f"best: {best['scheme']}" in printed.out and "budget met" in printed.out
    assert best["label"] in printed.err  # each candidate is printed as it finishes

    # The search is a study in the history: one variant per candidate, the baseline first, reopened whole.
    store = StudyStore(home)
    (summary,) = store.list_studies()
    assert summary.name == "search: at most 0.5 pt, by latency" and summary.status == "finished"
    study = store.load_study(summary.id)
    assert [v.label for v in study.results] == [c["label"] for c in result["candidates"]]
    assert study.results[0].is_baseline and study.results[0].scheme == "fp32"
    stored_best = next(v for v in study.results if v.label == best["label"])
    assert stored_best.metrics["accuracy"] == pytest.approx(best["accuracy"])
    assert stored_best.latency.p50 == pytest.approx(best["latency_ms"]["p50"], abs=1e-4)
    assert stored_best.verdict is not None and len(stored_best.samples_ms) >= 20
    # Run again measures the candidates as a study: the stored spec lists their scheme strings.
    assert [v["scheme"]["id"] for v in study.spec["variants"]] == [c["scheme"].split(":")[0]
                                                                  for c in result["candidates"][1:]]
    assert f"quantbench show {summary.id}" in printed.err

    # --save-best: the winner's file, byte for byte what was measured, with the sidecar of --save-variants.
    sidecar = json.loads((saved.parent / "best.quantbench.json").read_text())
    assert saved.stat().st_size == best["size_bytes"] == sidecar["size_bytes"]
    assert sidecar["scheme"] == best["scheme"] and sidecar["study_id"] == summary.id
    assert ort.InferenceSession(str(saved)).get_inputs()[0].shape[1:] == [1, 8, 8]


def test_a_search_out_of_time_exits_3_as_missed_and_still_writes_its_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tune.json"
    code = main(["tune", "--demo", "--max-drop", "0.5", "--time-limit", "0.001s", "--json", str(out)])
    result = json.loads(out.read_text())
    assert code == 3 and result["status"] == "missed" and result["best"] is None
    assert "budget missed" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "option"), [
    (["tune", "--demo", "--max-drop", "1", "--time-limit", "soon"], "--time-limit"),
    (["tune", "--model", "nothing.onnx", "--max-drop", "1"], "--dataset"),
    (["tune", "--demo", "--max-drop", "1", "--threads", "0"], "--threads"),
    (["tune", "--demo", "--max-drop", "-1"], "--max-drop"),
])
def test_bad_options_get_one_sentence_naming_the_option(argv: list[str], option: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert option in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_the_sweeps_alone_write_their_json_and_html(tmp_path: Path, capsys) -> None:
    out, page = tmp_path / "sweeps.json", tmp_path / "sweeps.html"
    code = main(["tune", "--demo", "--limit", "120", "--calibration-sweep", "--sweep-samples", "16,32",
                 "--batch-sizes", "1,4", "--latency-limit", "1000", "--json", str(out), "--html", str(page)])
    printed = capsys.readouterr()
    result = json.loads(out.read_text())
    assert code == 0 and result["kind"] == "sweeps" and "candidates" not in result  # no search without --max-drop
    calibration = result["calibration_sweep"]
    assert calibration["status"] == "finished" and calibration["counts"] == [16, 32]
    assert [(p["method"], p["samples"]) for p in calibration["points"]] == [
        (m, n) for m in ("minmax", "entropy", "percentile") for n in (16, 32)
    ]
    for p in calibration["points"]:
        assert p["scheme"] == f"ort-int8-static:calibration={p['method']},samples={p['samples']}"
        assert 0.0 <= p["accuracy"] <= 1.0 and p["sqnr_db"] > 10.0  # int8 of the demo CNN stays close
    batch = result["batch_sweep"]
    assert [v["label"] for v in batch["variants"]] == ["fp32", "ort-int8-static"]
    for v in batch["variants"]:
        assert [p["batch_size"] for p in v["points"]] == [1, 4]
        for p in v["points"]:
            assert p["throughput_per_s"] == pytest.approx(p["batch_size"] * 1000 / p["latency_ms"]["p50"], rel=1e-3)
        assert v["best_batch_size"] == max(v["points"], key=lambda p: p["throughput_per_s"])["batch_size"]
    assert "calibration sweep (finished)" in printed.out and "batch sweep (finished)" in printed.out
    html = page.read_text()
    assert 'data-chart="calibration-sqnr"' in html and 'data-chart="batch-latency"' in html


@pytest.mark.parametrize(("argv", "option"), [
    (["tune", "--demo", "--batch-sizes", "0,8"], "--batch-sizes"),
    (["tune", "--demo", "--calibration-sweep", "--sweep-samples", "many"], "--sweep-samples"),
    (["tune", "--demo", "--max-drop", "1", "--latency-limit", "5"], "--batch-sizes"),
    (["tune", "--demo", "--batch-sizes", "1", "--scheme", "nonsense"], "--scheme"),
    (["tune", "--demo"], "--max-drop"),
    (["tune", "--demo", "--max-drop", "1", "--sweep-samples", "16"], "add --calibration-sweep"),  # was ignored
])
def test_bad_sweep_options_get_one_sentence(argv: list[str], option: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert option in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_home_that_cannot_record_the_search_is_refused_before_it_starts(tmp_path: Path, capsys) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("x")
    assert main(["tune", "--demo", "--max-drop", "1", "--home", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantbench: QuantBench's home {not_a_folder} is not a folder, so the study cannot be ")
    assert len(err.strip().splitlines()) == 1
