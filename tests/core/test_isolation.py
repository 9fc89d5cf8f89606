"""The study runs in a spawned child: crashes, hangs and cancels end only the child."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest

from core.engine.isolation import run_study_isolated
from core.engine.run import demo_study_spec
from core.errors import BadInput
from core.study.cancel import CancelToken
from core.study.events import (
    LatencySamples,
    StudyFinished,
    StudyStarted,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, TimingSpec, VariantSpec


def _quick_spec(*schemes: str):
    spec = demo_study_spec(TimingSpec(max_time_s=0.1, min_samples=5, warmup_s=0.0, warmup_runs=1))
    return replace(
        spec,
        dataset=replace(spec.dataset, limit=64),
        variants=tuple(VariantSpec(scheme=SchemeSpec(s)) for s in schemes),
    )


def test_isolated_study_streams_the_same_events_as_in_process():
    events = list(run_study_isolated(_quick_spec("onnx-fp32")))
    assert isinstance(events[0], StudyStarted)
    assert events[0].environment["pid"] != os.getpid()  # measured in the child
    finished = [e for e in events if isinstance(e, VariantFinished)]
    assert [e.result.label for e in finished] == ["fp32", "onnx-fp32"]
    assert finished[1].result.metrics["accuracy"] > 0.9
    assert isinstance(events[-1], StudyFinished) and events[-1].result.status == "finished"


def test_a_crash_in_the_runtime_fails_only_the_running_variant():
    spec = _quick_spec("onnx-fp32", "ort-int8-static")
    events = []
    pid = None
    for event in run_study_isolated(spec):
        events.append(event)
        if isinstance(event, StudyStarted):
            pid = event.environment["pid"]
        if isinstance(event, VariantStarted) and event.label == "ort-int8-static":
            os.kill(pid, signal.SIGSEGV)  # what a native crash in a runtime looks like from outside
    failed = [e for e in events if isinstance(e, VariantFailed)]
    assert len(failed) == 1 and failed[0].label == "ort-int8-static"
    assert "segmentation fault" in failed[0].error
    final = events[-1]
    assert isinstance(final, StudyFinished)
    assert [r.label for r in final.result.results] == ["fp32", "onnx-fp32", "ort-int8-static"]
    assert [r.status.value for r in final.result.results] == ["ok", "ok", "failed"]
    assert final.result.status == "failed"


def test_a_hung_child_is_ended_after_the_hang_timeout():
    spec = _quick_spec("onnx-fp32")
    events = []
    t0 = time.monotonic()
    for event in run_study_isolated(spec, hang_timeout_s=1.5):
        events.append(event)
        if isinstance(event, VariantStarted) and event.label == "onnx-fp32":
            os.kill(events[0].environment["pid"], signal.SIGSTOP)  # frozen, like a deadlocked runtime
    assert time.monotonic() - t0 < 30
    failed = [e for e in events if isinstance(e, VariantFailed)]
    assert failed and "did not finish within 1.5 s" in failed[0].error
    assert events[-1].result.results[0].ok  # the baseline finished before the hang and is kept


def test_cancel_inside_a_timing_loop_stops_the_child_promptly():
    spec = replace(_quick_spec(), timing=TimingSpec(max_time_s=60, min_samples=10**6, max_samples=10**7))
    cancel = CancelToken()
    events = []
    cancelled_at = None
    for event in run_study_isolated(spec, cancel):
        events.append(event)
        if isinstance(event, LatencySamples) and cancelled_at is None:
            cancelled_at = time.monotonic()
            cancel.cancel()
    final = events[-1]
    assert isinstance(final, StudyFinished) and final.cancelled
    assert time.monotonic() - cancelled_at < 3
    assert final.result.status == "cancelled"


def test_bad_input_in_the_child_reaches_the_driver_as_bad_input(tmp_path):
    empty = tmp_path / "model.onnx"
    empty.write_bytes(b"")
    spec = replace(_quick_spec(), model=ModelSpec(path=str(empty)), dataset=DatasetSpec.parse("synthetic:4"))
    with pytest.raises(BadInput, match="empty"):
        list(run_study_isolated(spec))


def test_trust_is_remembered_by_file_hash_not_path(tmp_path):
    import torch

    from core.files.trust import TrustList
    from core.models import load_model

    module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 2)))
    first = tmp_path / "a.pt"
    torch.jit.save(module, str(first))
    with pytest.raises(BadInput, match="--trust"):
        load_model(ModelSpec(path=str(first), input_shape=(1, 4)))
    TrustList(tmp_path / "home").trust(first)
    assert TrustList(tmp_path / "home").is_trusted(first)
    # The same path with other bytes is not trusted.
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3))), str(first))
    assert not TrustList(tmp_path / "home").is_trusted(first)


def test_a_prewarmed_child_runs_the_next_study():
    from core.engine import isolation
    isolation.prewarm()
    warm_pid = isolation._warm.proc.pid
    try:
        events = list(run_study_isolated(_quick_spec()))
    finally:
        isolation.discard_prewarmed()
    assert events[0].environment["pid"] == warm_pid
    assert isinstance(events[-1], StudyFinished) and events[-1].result.results[0].ok
    assert isolation._warm is None  # used up: the next study spawns (or prewarms) afresh


def test_only_an_untouched_process_may_fork_its_study_process() -> None:
    """The launcher forks its first study process (quicker than a fresh interpreter) only while nothing
    with threads of its own is loaded; everything else spawns."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from core.engine.study_process import start_method\n"
        "print(start_method())\n"
        "import numpy\n"
        "print(start_method())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    expected_first = "fork" if sys.platform == "linux" else "spawn"
    assert out.stdout.split() == [expected_first, "spawn"]


def test_a_study_process_whose_parent_never_asks_removes_its_own_folder() -> None:
    """A prewarmed study process left waiting (a Ray worker that ended, a window killed) takes its private
    folder with it when its pipe closes: its parent is not there to remove it."""
    from pathlib import Path

    from core.engine.study_process import StudyProcess

    child = StudyProcess.spawn(None)
    folder = Path(child.folder)
    assert folder.is_dir()
    child.control.close()  # what the parent's death does to the pipe
    child.proc.join(60)
    assert child.proc.exitcode == 0
    assert not folder.exists()
    child.receiver.close()
