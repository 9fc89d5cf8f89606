"""``quantbench tune`` from the command line: the budget, the exit codes, the JSON and bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.main import main


def test_tune_on_the_demo_meets_a_half_point_budget_and_writes_its_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tune.json"
    code = main(["tune", "--demo", "--max-drop", "0.5", "--time-limit", "2m", "--json", str(out)])
    printed = capsys.readouterr()
    result = json.loads(out.read_text())
    assert code == 0 and result["kind"] == "tune" and result["status"] == "met"
    assert result["candidates"][0]["scheme"] == "fp32" and result["best"]["accuracy_drop_pt"] <= 0.5
    best = result["best"]
    assert best["latency_ms"]["p50"] < result["candidates"][0]["latency_ms"]["p50"]  # faster than float
    assert f"best: {best['scheme']}" in printed.out and "budget met" in printed.out
    assert best["label"] in printed.err  # each candidate is printed as it finishes


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
