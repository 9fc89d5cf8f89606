"""`quantbench run` never says less than the truth (issue 14, items 9, 19-22): an unusable device is refused
up front, --fail-on gates CI, Ctrl-C names what did not run, a variant file is compared alone, and the table
and its notes fit the terminal."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAST = ["--max-time", "0.1", "--threads", "1", "--quiet", "--no-history"]


@pytest.fixture(scope="module", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the runs' history out of the user's own QuantBench folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTBENCH_HOME", str(tmp_path_factory.mktemp("quantbench_home")))
        yield


def quantbench(*args: str, timeout: float = 120, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def other_weights_onnx(tmp_path_factory: pytest.TempPathFactory, kit) -> Path:  # noqa: ANN001
    """The tiny CNN's architecture with other weights: same inputs and outputs, other answers."""
    return kit.export_onnx(kit.make_tiny_cnn(seed=1), tmp_path_factory.mktemp("other") / "other.onnx",
                           kit.sample_shape)


@pytest.fixture(scope="module")
def same_copy_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path) -> Path:
    """A byte-for-byte copy of the tiny CNN: no smaller, no faster, same answers (ACCEPTABLE)."""
    path = tmp_path_factory.mktemp("copy") / "copy.onnx"
    shutil.copyfile(tiny_onnx, path)
    return path


# ----------------------------------------------------------------------------- item 9: --device cuda


def _no_cuda() -> str | None:
    from core.runtimes.devices import cuda_problem

    return cuda_problem()


def test_device_cuda_without_a_gpu_is_refused_before_anything_runs(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path
) -> None:
    problem = _no_cuda()
    if problem is None:
        pytest.skip("this machine has a usable CUDA GPU")
    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--scheme", "onnx-fp32",
                      "--device", "cuda", "--json", str(out), "--max-time", "0.1", "--threads", "1")

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # no progress line: nothing ran, not even the model's loading
    assert lines[0].startswith("quantbench: --device cuda, but there is no usable CUDA GPU here: ")
    assert lines[0].endswith("; use --device cpu.")
    assert "Found no NVIDIA driver" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not out.exists()


def test_the_engine_refuses_cuda_it_cannot_use_before_any_event(tiny_onnx: Path, tiny_npz: Path) -> None:
    """The window's path (the spec straight to the engine) is refused the same way, in its own words."""
    if _no_cuda() is None:
        pytest.skip("this machine has a usable CUDA GPU")
    from core.engine.run import run_study
    from core.errors import BadInput
    from core.study.spec import DatasetSpec, Device, ModelSpec, SchemeSpec, StudySpec, VariantSpec

    spec = StudySpec(ModelSpec(str(tiny_onnx)), DatasetSpec.parse(f"npz:{tiny_npz}"),
                     (VariantSpec(scheme=SchemeSpec("onnx-fp32")),), device=Device.CUDA)
    events = run_study(spec)
    with pytest.raises(BadInput, match="CUDA was chosen as the device, but there is no usable CUDA GPU here"):
        next(events)


def test_onnx_runtime_never_falls_back_to_the_cpu_silently(tiny_onnx: Path) -> None:
    from core.runtimes.devices import ort_cuda_problem

    if ort_cuda_problem() is None:
        pytest.skip("ONNX Runtime has its CUDA provider here")
    from core.errors import BadInput
    from core.runtimes.ort_runner import OrtRunner
    from core.study.spec import Device

    with pytest.raises(BadInput, match="ONNX Runtime has no CUDA provider"):
        OrtRunner(tiny_onnx, 1, Device.CUDA)


def test_the_run_panel_offers_cuda_only_when_a_driver_is_there() -> None:
    """The cheap hint the window's Device box uses imports no runtime."""
    code = ("import sys; from core.runtimes.devices import cuda_may_be_present; cuda_may_be_present(); "
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- item 22: --fail-on


def test_fail_on_bad_exits_3_when_a_variant_grades_bad(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path, other_weights_onnx: Path
) -> None:
    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}",
                      "--variant", str(other_weights_onnx), "--fail-on", "bad", "--json", str(out), *FAST)

    assert done.returncode == 3, done.stderr
    grades = {r["label"]: r["verdict"]["overall"] for r in json.loads(out.read_text())["results"]}
    assert grades["file:other.onnx"] == "bad"
    assert done.stderr.strip() == "quantbench: --fail-on bad: file:other.onnx graded BAD."
    assert "file:other.onnx" in done.stdout  # the table is still printed, and the JSON written


def test_fail_on_levels_on_an_acceptable_variant(tiny_onnx: Path, tiny_npz: Path, same_copy_onnx: Path) -> None:
    """A copy of the model is ACCEPTABLE: it trips `--fail-on acceptable`, passes `--fail-on bad` and no gate."""
    common = ["run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--variant", str(same_copy_onnx),
              *FAST]
    strict = quantbench(*common, "--fail-on", "acceptable")
    assert strict.returncode == 3, strict.stderr
    assert strict.stderr.strip() == "quantbench: --fail-on acceptable: file:copy.onnx graded ACCEPTABLE."

    lenient = quantbench(*common, "--fail-on", "bad")
    assert lenient.returncode == 0, lenient.stderr
    assert lenient.stderr == ""


def test_fail_on_takes_only_its_levels(tiny_onnx: Path, tiny_npz: Path) -> None:
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--fail-on", "good", *FAST)
    assert done.returncode == 2 and "--fail-on" in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_study_without_its_baseline_never_exits_0() -> None:
    """A study that ended without the baseline's row is an internal error (1), never a success."""
    from core.cli.main import _check_baseline
    from core.study.result import StudyResult, VariantResult, VariantStatus

    result = StudyResult("s1", "2026-01-01T00:00:00+00:00", "failed", {"path": "m.onnx"}, {}, {}, {}, {},
                         results=[VariantResult(label="onnx-fp32", scheme="onnx-fp32", status=VariantStatus.OK)])
    with pytest.raises(RuntimeError, match="without measuring the baseline"):
        _check_baseline(result, cancelled=False)
    _check_baseline(result, cancelled=True)  # cancelled before it: exit 130, said below

    result.results.insert(0, VariantResult(label="fp32", scheme="fp32", status=VariantStatus.FAILED,
                                           error="fp32 failed while building: no."))
    from core.errors import BadInput

    with pytest.raises(BadInput, match="m.onnx: the model does not run here"):
        _check_baseline(result, cancelled=False)


# ----------------------------------------------------------------------------- item 21: Ctrl-C


def test_ctrl_c_says_cancelled_and_names_the_variants_that_did_not_run(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "core.cli", "run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}",
            "--scheme", "ort-int8-dynamic", "--scheme", "ort-int8-static", "--scheme", "ort-fp16",
            "--max-time", "60", "--timing", "thorough", "--threads", "1", "--no-history",
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("[2/"):  # the baseline is done; ort-int8-dynamic has started
                break
        assert seen and seen[-1].startswith("[2/"), "".join(seen)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 130, "".join(seen) + stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    found = re.fullmatch(r"quantbench: cancelled: (\d) of 4 variants measured; not run: (.+)\.", last)
    assert found, stderr
    not_run = [label.removesuffix(" (stopped midway)") for label in found.group(2).split(", ")]
    # Cancelled while ort-int8-dynamic ran (or, on a fast machine, a later one): that one and the rest did not run.
    assert len(not_run) >= 2 and not_run == ["ort-int8-dynamic", "ort-int8-static", "ort-fp16"][-len(not_run):]
    assert int(found.group(1)) + len(not_run) == 4


def test_the_cancelled_summary_counts_in_words() -> None:
    from core.cli.main import cancelled_summary
    from core.study.result import StudyResult

    empty = StudyResult("s1", "2026-01-01T00:00:00+00:00", "cancelled", {}, {}, {}, {}, {})
    assert cancelled_summary(["fp32"], empty) == "cancelled: 0 of 1 variant measured; not run: fp32."

    from core.study.result import VariantResult, VariantStatus

    stopped = StudyResult("s1", "2026-01-01T00:00:00+00:00", "cancelled", {}, {}, {}, {}, {}, results=[
        VariantResult(label="fp32", scheme="fp32", status=VariantStatus.OK),
        VariantResult(label="ort-fp16", scheme="ort-fp16", status=VariantStatus.FAILED, error_stage="running"),
    ])
    assert cancelled_summary(["fp32", "ort-fp16", "ort-int8-static"], stopped) == (
        "cancelled: 1 of 3 variants measured; not run: ort-fp16 (stopped midway), ort-int8-static."
    )


# ----------------------------------------------------------------------------- item 19: --variant alone


def test_a_variant_file_without_schemes_is_compared_alone(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path, same_copy_onnx: Path
) -> None:
    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}",
                      "--variant", str(same_copy_onnx), "--json", str(out), *FAST)

    assert done.returncode == 0, done.stderr
    rows = [(r["label"], r["status"]) for r in json.loads(out.read_text())["results"]]
    assert rows == [("fp32", "ok"), ("file:copy.onnx", "ok")]


def test_default_schemes_that_cannot_apply_are_left_out(tmp_path: Path, tiny_onnx: Path, tiny_npz: Path) -> None:
    """Without --scheme an ONNX model gets the defaults that apply to it, and no SKIPPED rows."""
    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--json", str(out),
                      "--max-time", "0.05", "--threads", "1", "--quiet", "--no-history")

    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    labels = [r["label"] for r in results]
    # onnx-fp32 (the model is ONNX already) and torch-int8-dynamic (needs a PyTorch model) cannot apply.
    assert labels == ["fp32", "ort-int8-dynamic", "ort-int8-static", "ort-fp16"]
    assert all(r["status"] != "skipped" for r in results)
    assert "SKIPPED" not in done.stdout


def test_a_scheme_asked_for_by_name_is_still_shown_when_it_cannot_apply(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path
) -> None:
    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--json", str(out),
                      "--scheme", "torch-int8-dynamic", *FAST)

    assert done.returncode == 0, done.stderr
    rows = [(r["label"], r["status"]) for r in json.loads(out.read_text())["results"]]
    assert rows == [("fp32", "ok"), ("torch-int8-dynamic", "skipped")]


# ----------------------------------------------------------------------------- item 20: widths and plurals


def test_the_table_fits_100_columns_and_the_notes_wrap_to_the_terminal(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path
) -> None:
    from core.reports.text import format_table
    from core.study.result import study_from_json

    out = tmp_path / "out.json"
    done = quantbench("run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--json", str(out),
                      "--scheme", "ort-int8-static:samples=16", "--scheme", "ort-int8-dynamic", "--scheme", "ort-fp16",
                      *FAST, columns=100)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(line for line in lines if len(line) > 100)
    table = lines[: lines.index("")]
    assert [row.split("  ")[0] for row in table[2:6]] == [
        "fp32", "ort-int8-static:samples=16", "ort-int8-dynamic", "ort-fp16"
    ]
    assert table[0].startswith("Variant") and "Verdict" in table[0] and "Size" in table[0]
    assert "Left out to fit 100 columns: " in done.stdout  # said, not silently dropped

    # A 60-column terminal: the table is no wider than the terminal allows where it can be, the notes wrap.
    study = study_from_json(json.loads(out.read_text()))
    text = format_table(study, width=60)
    notes = [n for n in text.split("\n\n", 1)[1].splitlines() if "/" not in n]  # a path is never cut
    assert notes and max(map(len, notes)) <= 60, "\n".join(n for n in notes if len(n) > 60)
    assert "\n      " in text  # a long note continues indented under its variant
    wide = format_table(study, width=200)
    assert max(len(line) for line in wide.splitlines()[:6]) <= 100  # the table never passes 100 columns


def test_a_number_and_its_unit_stay_on_one_line() -> None:
    from core.reports.text import _wrap

    text = _wrap("  v: latency fell 14.3 %, size shrank 74 % over 7 rounds, accuracy fell 2 pt", 20, "      ")
    assert "14.3 %" in text and "74 %" in text and "2 pt" in text
    assert all(len(line) <= 20 for line in text.splitlines())


def test_counts_are_written_in_the_right_number() -> None:
    from core.engine.explain import _conversions
    from core.printable import counted
    from core.schemes.coverage import summarize_op_counts

    assert counted(1, "conversion") == "1 conversion" and counted(2, "conversion") == "2 conversions"
    assert counted(0, "layer") == "0 layers" and counted(3, "matrix", "matrices") == "3 matrices"
    assert _conversions({"conversions": 1, "ops": {"QuantizeLinear": 1}}, {}) == [
        "1 conversion between integer and float inserted (QuantizeLinear) that the baseline does not run"
    ]
    assert _conversions({"conversions": 2, "ops": {"QuantizeLinear": 2}}, {})[0].startswith("2 conversions ")
    summary = summarize_op_counts({"QLinearConv": 1, "QLinearAdd": 1}, "")["summary"]
    assert "1 element-wise/pooling op in integer" in summary


def test_the_defaults_stay_defaults_in_a_project_file_and_its_command(
    tmp_path: Path, tiny_onnx: Path, tiny_npz: Path
) -> None:
    """Saved and re-run, a study of the default schemes still leaves out those that cannot apply."""
    import shlex

    from core.cli.main import spec_from_args
    from core.cli.parser import build_parser
    from core.study.project import load_spec, reproduce_command, save_spec

    argv = ["run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}"]
    spec = spec_from_args(build_parser(window=False).parse_args(argv))
    assert spec.variants and all(v.if_applicable for v in spec.variants)
    save_spec(spec, tmp_path / "p.quantbench.json")
    assert load_spec(tmp_path / "p.quantbench.json").variants == spec.variants
    command = shlex.split(reproduce_command(spec.to_dict()))
    assert "--scheme" not in command
    again = spec_from_args(build_parser(window=False).parse_args(command[1:]))
    assert again.variants == spec.variants

    chosen = spec_from_args(build_parser(window=False).parse_args([*argv, "--scheme", "ort-fp16"]))
    assert [(v.label, v.if_applicable) for v in chosen.variants] == [("ort-fp16", False)]
