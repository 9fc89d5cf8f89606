"""Issue #12: trust only from the user's list, memory and time ceilings on the study's process,
a model that cannot run ends as bad input, control characters shown and never obeyed, and no
temporary file left behind.

Every model here is built in the test: a TorchScript module, and ONNX graphs that ask for 40 GB
at run time, loop for ever, or cannot run at all (diagrams in each builder).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.engine.isolation import run_study_isolated
from core.files.trust import TrustList
from core.printable import markup_escape, printable, printable_block
from core.study.cancel import CancelToken
from core.study.events import Progress, StudyFinished, StudyStarted, VariantStarted
from core.study.project import save_spec, spec_from_dict
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec

REPO = Path(__file__).resolve().parents[2]
FAST = ["--max-time", "0.05", "--threads", "1", "--quiet"]
QUICK = TimingSpec(threads=1, max_time_s=0.05, min_samples=3, max_samples=50, warmup_runs=1, warmup_s=0.0)


def _cli(*args: str, timeout: float = 120, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in its own process; ``peak_rss_kb`` of that (main) process on the last stdout line."""
    code = (
        "import sys\n"
        "from core.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        # VmHWM, not ru_maxrss: the latter starts from the size of the process that launched this one.
        "print('peak_rss_kb', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        "sys.exit(rc)\n"
    )
    env = dict(os.environ)
    if home is not None:
        env["QUANTBENCH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


def _one_sentence(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _onnx(path: Path, nodes: list, inputs: list, outputs: list, producer: str = "tests", opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _x_info(name: str = "x"):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])


def identity_model(path: Path, producer: str = "tests") -> Path:
    """x[1,4] -> Relu -> y[1,4]."""
    from onnx import helper

    return _onnx(path, [helper.make_node("Relu", ["x"], ["y"])], [_x_info()], [_x_info("y")], producer)


def memory_bomb_model(path: Path) -> Path:
    """x[1,4] + ReduceSum(ConstantOfShape([100000, 100000])) -> y: 40 GB asked for by one node."""
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [100_000, 100_000])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("Constant", [], ["big_shape"], value=shape),
        helper.make_node("ConstantOfShape", ["big_shape"], ["big"], value=one),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("Add", ["x", "total"], ["y"]),
    ]
    return _onnx(path, nodes, [_x_info()], [_x_info("y")])


def endless_loop_model(path: Path) -> Path:
    """y = Loop(M = 2**62, cond = true) { acc + 1 } + 0 * x: a loop that never ends in practice."""
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1, 4])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    nodes = [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)]
    graph = helper.make_graph(
        nodes, "endless", [_x_info()], [_x_info("y")],
        initializer=[helper.make_tensor("trips", TensorProto.INT64, [], [2**62]),
                     helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def cannot_run_model(path: Path) -> Path:
    """x[1,4] -> Reshape(to [3]) -> y: 4 values never fit 3, so every run fails."""
    from onnx import TensorProto, helper

    shape = helper.make_tensor("to", TensorProto.INT64, [1], [3])
    nodes = [helper.make_node("Constant", [], ["to"], value=shape), helper.make_node("Reshape", ["x", "to"], ["y"])]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    return _onnx(path, nodes, [_x_info()], [out])


def torchscript_model(path: Path, out_features: int = 2) -> Path:
    import torch

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, out_features))), str(path))
    return path


# --- 1. trust comes only from the user's list --------------------------------------------------
def test_a_stored_spec_never_grants_trust(tmp_path: Path) -> None:
    spec = StudySpec(
        model=ModelSpec(path=str(tmp_path / "m.pt"), trusted=True, input_shape=(1, 4)),
        dataset=DatasetSpec.parse("synthetic:4"),
        variants=(VariantSpec(path=str(tmp_path / "v.pt"), trusted=True),),
    )
    d = spec.to_dict()
    d["model"]["trusted"] = d["variants"][0]["trusted"] = True  # what a stranger's file says
    back = spec_from_dict(d)
    assert back.model.trusted is False and back.variants[0].trusted is False


def test_a_project_file_marked_trusted_does_not_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    model = torchscript_model(tmp_path / "scripted.pt")
    project = tmp_path / "study.json"
    save_spec(StudySpec(model=ModelSpec(path=str(model), trusted=True, input_shape=(1, 4)),
                        dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK), project)
    payload = json.loads(project.read_text())
    payload["spec"]["model"]["trusted"] = True
    project.write_text(json.dumps(payload))

    run = ["run", "--spec", str(project), "--home", str(home), "--in-process", *FAST]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "--trust" in err and "scripted.pt" in err
    assert not TrustList(home).is_trusted(model)

    # The user's own --trust opens it, and is remembered by hash for the next run...
    assert main([*run, "--trust", str(model)]) == 0
    assert TrustList(home).is_trusted(model)
    capsys.readouterr()
    assert main(run) == 0
    capsys.readouterr()
    # ...but other bytes at the same path ask again.
    torchscript_model(model, out_features=3)
    assert main(run) == 2
    assert "--trust" in capsys.readouterr().err


# --- 2. memory --------------------------------------------------------------------------------
def test_a_model_asking_for_40_gb_ends_with_needed_more_than_the_ceiling(tmp_path: Path) -> None:
    model = memory_bomb_model(tmp_path / "bomb.onnx")
    done = _cli("run", "--model", str(model), "--dataset", "synthetic:4", "--scheme", "fp32",
                "--max-memory", "2", *FAST, home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    sentence = _one_sentence(done.stderr)
    assert "bomb.onnx" in sentence and "needed more than 2 GB of memory" in sentence
    peak_kb = int(done.stdout.split("peak_rss_kb")[-1])
    # The main process holds its own imports (about 35 MB here) and none of the 40 GB.
    assert peak_kb < 300 * 1024, f"the main process peaked at {peak_kb / 1024:.0f} MB"


def test_max_memory_rejects_a_value_that_is_not_a_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = identity_model(tmp_path / "m.onnx")
    for bad in ("lots", "0.1", "-3"):
        assert main(["run", "--model", str(model), "--dataset", "synthetic:4", "--max-memory", bad, *FAST]) == 2
        assert "--max-memory" in _one_sentence(capsys.readouterr().err)


def test_the_child_runs_under_the_ceiling_and_the_parent_does_not(tmp_path: Path) -> None:
    from core.memory_limit import current_limit_bytes

    model = identity_model(tmp_path / "m.onnx")
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK)
    limits = []
    for event in run_study_isolated(spec, max_memory_bytes=3 << 30):
        if isinstance(event, StudyStarted):
            with open(f"/proc/{event.environment['pid']}/limits") as fh:
                limits = [ln for ln in fh if ln.startswith("Max data size")]
    assert limits and str(3 << 30) in limits[0]
    assert current_limit_bytes() is None or current_limit_bytes() > 3 << 30


# --- 3. time ----------------------------------------------------------------------------------
def test_an_endless_loop_is_stopped_after_the_hang_timeout(tmp_path: Path) -> None:
    model = endless_loop_model(tmp_path / "loop.onnx")
    t0 = time.monotonic()
    done = _cli("run", "--model", str(model), "--dataset", "synthetic:4", "--scheme", "fp32",
                "--hang-timeout", "3", *FAST, home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    sentence = _one_sentence(done.stderr)
    assert "loop.onnx" in sentence and "did not finish within 3 s" in sentence and "fp32" in sentence
    assert time.monotonic() - t0 < 60


def test_cancel_stops_an_endless_loop_at_once(tmp_path: Path) -> None:
    model = endless_loop_model(tmp_path / "loop.onnx")
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK)
    cancel = CancelToken()
    cancelled_at = None
    events = []
    for event in run_study_isolated(spec, cancel, hang_timeout_s=None, kill_after_s=1.0):
        events.append(event)
        if isinstance(event, Progress) and event.stage == "evaluating" and cancelled_at is None:
            cancelled_at = time.monotonic()
            cancel.cancel()
        if isinstance(event, VariantStarted) and cancelled_at is None:
            # Evaluation never reports on this model: cancel once it has had time to enter the loop.
            time.sleep(1.0)
            cancelled_at = time.monotonic()
            cancel.cancel()
    assert cancelled_at is not None and time.monotonic() - cancelled_at < 5
    assert isinstance(events[-1], StudyFinished) and events[-1].cancelled


def test_slow_evaluation_keeps_reporting_so_it_is_not_taken_for_a_hang(tmp_path: Path) -> None:
    from core.engine.run import run_study

    model = identity_model(tmp_path / "m.onnx")
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:100"), timing=QUICK)
    steps = [e.done for e in run_study(spec) if isinstance(e, Progress) and e.stage == "evaluating"]
    # Chunks start at one sample and grow: the first report comes after a single call.
    assert steps[0] == 1 and steps[-1] == 100 and len(steps) >= 7


# --- 5. a model that cannot run ---------------------------------------------------------------
def test_a_model_that_cannot_run_ends_with_exit_2_and_the_runtimes_reason(tmp_path: Path) -> None:
    model = cannot_run_model(tmp_path / "reshape.onnx")
    out = tmp_path / "out.json"
    done = _cli("run", "--model", str(model), "--dataset", "synthetic:4", "--scheme", "onnx-fp32",
                "--json", str(out), *FAST, home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    sentence = _one_sentence(done.stderr)
    assert "reshape.onnx: the model does not run here" in sentence and "Reshape" in sentence
    assert not out.exists()


def test_the_engine_stops_after_a_baseline_that_cannot_run(tmp_path: Path) -> None:
    from core.engine.run import run_study

    model = cannot_run_model(tmp_path / "reshape.onnx")
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK,
                     variants=(VariantSpec(scheme=SchemeSpec("ort-fp16")),))
    final = list(run_study(spec))[-1]
    assert isinstance(final, StudyFinished)
    assert final.result.status == "failed" and [r.label for r in final.result.results] == ["fp32"]
    assert final.result.baseline_failure().startswith(f"{model}: the model does not run here")


# --- 6. control characters ----------------------------------------------------------------------
def test_printable_writes_out_every_control_character() -> None:
    assert printable("a\x1b[2Jb\nc\td\r\x07\x9b\u202e") == "a\\x1b[2Jb\\nc\\td\\r\\x07\\x9b\\u202e"
    assert printable_block("row\tone\nrow two\x1b[0m") == "row\tone\nrow two\\x1b[0m"
    assert markup_escape('<b x="1">\x1b</b>') == "&lt;b x=&quot;1&quot;&gt;\\x1b&lt;/b&gt;"
    assert printable("naïve — ünïcode ✓") == "naïve — ünïcode ✓"


def test_escape_sequences_from_a_file_reach_the_terminal_written_out(tmp_path: Path) -> None:
    folder = tmp_path / "\x1b[2Jclear"
    folder.mkdir()
    model = identity_model(folder / "m\x1b]0;pwned\x07.onnx", producer="\x1b[31mred\x1b[0m")
    variant = identity_model(folder / "v\x1b[5m.onnx")
    html = tmp_path / "report.html"
    done = _cli("run", "--model", str(model), "--variant", str(variant), "--dataset", "synthetic:4",
                "--scheme", "fp32", "--html", str(html), "--max-time", "0.05", "--threads", "1",
                home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr, html.read_text(encoding="utf-8")):
        assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mred" in done.stderr  # the producer metadata, shown written out
    assert "file:v\\x1b[5m.onnx" in done.stdout  # the variant's row in the table
    assert "\\x1b[5m" in html.read_text(encoding="utf-8")


def test_a_refusal_naming_a_hostile_file_name_stays_one_safe_line(tmp_path: Path) -> None:
    empty = tmp_path / "x\x1b[2J\ny.onnx"
    empty.write_bytes(b"")
    done = _cli("run", "--model", str(empty), "--dataset", "synthetic:4", *FAST, home=tmp_path / "home")
    assert done.returncode == 2
    sentence = _one_sentence(done.stderr)
    assert "x\\x1b[2J\\ny.onnx" in sentence and "\x1b" not in done.stderr


# --- 7. temporary files -----------------------------------------------------------------------
def test_the_study_process_works_in_a_private_folder_removed_even_after_a_crash(tmp_path: Path) -> None:
    model = identity_model(tmp_path / "m.onnx")
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse("synthetic:4"), timing=QUICK,
                     variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static")),))
    folders = []
    study_pid = None  # the study process's pid, from StudyStarted (which comes before any VariantStarted)
    for event in run_study_isolated(spec):
        if isinstance(event, StudyStarted):
            study_pid = event.environment["pid"]
        if isinstance(event, VariantStarted) and event.label == "ort-int8-static":
            assert study_pid is not None
            folder = Path(os.readlink(f"/proc/{study_pid}/cwd"))
            folders.append(folder)
            (folder / "left-by-a-runtime.onnx").write_bytes(b"x")  # what a runtime drops in its cwd
            os.kill(study_pid, signal.SIGKILL)
    assert folders and folders[0].name.startswith("quantbench-study-")
    assert not folders[0].exists()


def test_relative_paths_still_resolve_from_the_callers_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    identity_model(tmp_path / "m.onnx")
    np.savez(tmp_path / "d.npz", x=np.ones((4, 4), np.float32))
    monkeypatch.chdir(tmp_path)
    spec = StudySpec(model=ModelSpec(path="m.onnx"), dataset=DatasetSpec.parse("npz:d.npz"), timing=QUICK)
    final = list(run_study_isolated(replace(spec)))[-1]
    assert isinstance(final, StudyFinished) and final.result.results[0].ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "m.onnx"]
