"""The `quantbench` command in a real subprocess: help, the catalogue, bad input, a full run, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from core.schemes import catalogue

REPO = Path(__file__).resolve().parents[2]
FAST = ["--max-time", "0.2", "--threads", "1"]


@pytest.fixture(scope="module", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the runs' history out of the user's own QuantBench folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTBENCH_HOME", str(tmp_path_factory.mktemp("quantbench_home")))
        yield


def quantbench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _leftovers(folder: Path, name: str) -> list[Path]:
    """Temporary files an atomic write of ``name`` would leave behind if it were interrupted."""
    return list(folder.glob(f".{name}.*"))


def test_the_runtimes_own_chatter_stays_off_the_terminal(tmp_path: Path) -> None:
    """PyTorch's profiler (the layer analysis of a PyTorch variant) printed "profiler_start" and
    "gpuGetDeviceCount failed" lines on every run whose study process had no log file (--no-history)."""
    done = quantbench("run", "--demo", "--scheme", "torch-int8-dynamic", "--layers", "--no-history", "--quiet",
                      "--limit", "64", *FAST, timeout=120)
    assert done.returncode == 0, done.stderr
    for chatter in ("profiler_start", "USDT", "gpuGetDeviceCount", "External init callback"):
        assert chatter not in done.stderr


def test_options_that_would_be_ignored_or_meaningless_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.main import main

    for args, expected in (
        (["--max-time", "nan"], "--max-time must be positive."),
        (["--max-time", "inf"], "--max-time must be positive."),
        (["--arch", "resnet18"], "--arch is for a model file; --demo brings its own model and architecture."),
        (["--in-process", "--hang-timeout", "5"], "--max-memory and --hang-timeout guard the study's own process, "
                                                  "which --in-process does not start: drop one or the other."),
        (["--in-process", "--max-memory", "8"], "--max-memory and --hang-timeout guard the study's own process, "
                                                "which --in-process does not start: drop one or the other."),
    ):
        assert main(["run", "--demo", "--no-history", *args]) == 2
        assert capsys.readouterr().err.strip() == f"quantbench: {expected}"


def test_help_exits_0() -> None:
    for args in (["--help"], ["run", "--help"]):
        done = quantbench(*args)
        assert done.returncode == 0, done.stderr
        assert "usage: quantbench" in done.stdout
    assert "--scheme" in done.stdout and "--dataset" in done.stdout


def test_building_the_parser_imports_no_runtime() -> None:
    code = (
        "import sys, core.cli.main, core.cli.parser\n"
        "core.cli.parser.build_parser().parse_args(['run', '--demo'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime', 'onnx', 'sklearn')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_schemes_lists_every_id() -> None:
    done = quantbench("schemes")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line and not line[0].isspace()]
    assert listed == [s.info.id for s in catalogue()]
    assert "calibration samples from the dataset" in done.stdout  # what ort-int8-static needs


def _empty_model(tmp: Path, model: Path, data: Path) -> tuple[list[str], str]:
    (tmp / "empty.onnx").write_bytes(b"")
    return ["--model", str(tmp / "empty.onnx"), "--dataset", f"npz:{data}"], "empty (0 bytes)"


def _wrong_shape(tmp: Path, model: Path, data: Path) -> tuple[list[str], str]:
    x = np.zeros((10, 3, 5, 5), dtype=np.float32)
    np.savez(tmp / "wrong.npz", x=x, y=np.zeros(10, dtype=np.int64))
    return ["--model", str(model), "--dataset", f"npz:{tmp / 'wrong.npz'}"], "expects 1x8x8"


BAD_INPUTS: dict[str, Callable[[Path, Path, Path], tuple[list[str], str]]] = {
    "missing model": lambda tmp, model, data: (
        ["--model", str(tmp / "absent.onnx"), "--dataset", f"npz:{data}"], "absent.onnx: no such file"
    ),
    "empty model": _empty_model,
    "unknown scheme": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--scheme", "int3-magic"],
        "'int3-magic' is not a known scheme",
    ),
    "bad scheme option": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--scheme", "ort-int8-static:samples"], "key=value"
    ),
    "scheme option value out of range": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--scheme", "ort-int8-static:samples=lots"],
        "scheme ort-int8-static:samples=lots: samples must be a whole number, not 'lots'.",
    ),
    "scheme option not a choice": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--scheme", "ort-int8-static:calibration=best"],
        "calibration must be one of minmax, entropy, percentile, not 'best'.",
    ),
    "bad dataset spec": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", "pictures:somewhere"], "unknown dataset kind 'pictures'"
    ),
    "dataset shape mismatch": _wrong_shape,
    "json into a missing folder": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--json", str(tmp / "nowhere" / "out.json")],
        "does not exist",
    ),
    "no model": lambda tmp, model, data: (["--dataset", f"npz:{data}"], "--model"),
    "negative seed": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--seed", "-1"], "--seed: must be 0 or more, not -1"
    ),
    "threshold not a number": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--speed-good", "nan"],
        "--speed-good must be a number from 0 to 100, not nan.",
    ),
    "a name with no history": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--no-history", "--name", "x"],
        "--name names the study in the history, which --no-history turns off",
    ),
    "empty json name": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--json", ""], "argument --json: needs a value",
    ),
    "one file for two reports": lambda tmp, model, data: (
        ["--model", str(model), "--dataset", f"npz:{data}", "--json", str(tmp / "r"), "--html", str(tmp / "r")],
        "--json and --html both name",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path, tiny_onnx: Path, tiny_npz: Path) -> None:
    args, expected = BAD_INPUTS[case](tmp_path, tiny_onnx, tiny_npz)
    before = sorted(tmp_path.rglob("*"))

    done = quantbench("run", *args, *FAST)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("quantbench: ") and expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(tmp_path.rglob("*")) == before, "nothing is written on bad input"


def test_a_run_writes_the_json_contract(tmp_path: Path, tiny_onnx: Path, tiny_npz: Path) -> None:
    out = tmp_path / "result.json"
    done = quantbench(
        "run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--scheme", "ort-int8-static:samples=16",
        "--json", str(out), *FAST,
    )

    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["status"] == "finished"
    assert data["model"]["format"] == "onnx" and data["model"]["path"] == str(tiny_onnx)
    # 86 of the 96: ten are held out for calibration (issue 14 item 7), as dataset.calibration says.
    assert data["dataset"]["samples"] == 86 and data["dataset"]["task"] == "classification"
    assert data["dataset"]["calibration"] == {"source": "holdout", "samples": 10, "overlaps_evaluation": False}
    assert [(r["label"], r["status"]) for r in data["results"]] == [
        ("fp32", "ok"), ("ort-int8-static:samples=16", "ok")
    ]
    static = data["results"][1]
    # 10, not the 16 asked for: the held-out split is all there is to calibrate on.
    assert static["coverage"]["conv_integer"] == 2 and static["coverage"]["calibration_samples"] == 10
    assert static["size_bytes"] < 0.4 * data["results"][0]["size_bytes"]
    assert data["results"][0]["metrics"]["accuracy"] == 1.0  # the labels are the float model's own answers
    assert "ort-int8-static:samples=16" in done.stdout  # the comparison table
    assert f"wrote {out}" in done.stderr
    assert _leftovers(tmp_path, out.name) == []


def test_ctrl_c_mid_run_exits_130(tmp_path: Path, tiny_onnx: Path, tiny_npz: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "core.cli", "run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}",
            "--scheme", "ort-int8-dynamic", "--json", str(out), "--max-time", "60", "--timing", "thorough",
            "--threads", "1",
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("[1/"):  # the first variant has started
                break
        assert seen and seen[-1].startswith("[1/"), "".join(seen)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 130, "".join(seen) + stderr
    assert "Traceback" not in stderr
    assert stopped_after < 10
    # Whatever was written is whole: the cancelled study, with nothing finished half-way.
    if out.exists():
        data = json.loads(out.read_text(encoding="utf-8"))
        assert data["status"] == "cancelled"
        assert all(r["status"] == "ok" for r in data["results"])
    assert _leftovers(tmp_path, out.name) == []
