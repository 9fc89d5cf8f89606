"""quantbench sweep without Ray: the sweep file, resume, the command line, the timing-section hook, the gate.

The studies are a hand-written MLP graph (conftest.make_mlp_onnx) on a 48-sample .npz, timed briefly, run exactly
as `quantbench run` runs them (each in its own child process), recorded in a private history.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.errors import BadInput
from core.history.store import StudyStore
from core.study.project import save_spec
from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec
from core.sweep import Where, load_sweep, spec_fingerprint
from tests.core.conftest import make_mlp_onnx, save_npz

#: Brief timing: the tests check where studies ran and what the history holds, not latencies.
BRIEF = TimingSpec(threads=1, max_time_s=0.2, warmup_runs=2, warmup_s=0.0, min_samples=10, max_samples=300)


def sweep_specs(folder: Path, models: int = 1, schemes: tuple[str, ...] = ("ort-int8-dynamic", "ort-fp16"),
                timing: TimingSpec = BRIEF) -> list[StudySpec]:
    """``models`` MLPs x ``schemes``: one study each, on one shared .npz dataset."""
    x = np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32)
    data = save_npz(folder / "data.npz", x, np.random.default_rng(1).integers(0, 10, 48))
    specs = []
    for m in range(models):
        model = make_mlp_onnx(folder / f"mlp{m}.onnx", seed=m)
        for scheme in schemes:
            specs.append(StudySpec(
                model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse(f"npz:{data}"),
                variants=(VariantSpec(scheme=SchemeSpec.parse(scheme)),), timing=timing,
            ))
    return specs


def write_sweep(folder: Path, specs: list[StudySpec]) -> Path:
    """SWEEP.json built the way a user builds it: from files written by --save-spec."""
    studies = []
    for i, spec in enumerate(specs):
        one = folder / f"study{i}.json"
        save_spec(spec, one)
        studies.append(json.loads(one.read_text()))
    path = folder / "sweep.json"
    path.write_text(json.dumps({"studies": studies}))
    return path


# ---- the sweep file --------------------------------------------------------------------------------------------


def test_sweep_file_reads_saved_specs_and_bare_specs(tmp_path: Path) -> None:
    specs = sweep_specs(tmp_path)
    path = write_sweep(tmp_path, specs)
    payload = json.loads(path.read_text())
    payload["studies"][1] = payload["studies"][1]["spec"]  # the bare spec object is read too
    path.write_text(json.dumps(payload))
    loaded = load_sweep(path)
    assert [s.variants[0].label for s in loaded] == ["ort-int8-dynamic", "ort-fp16"]
    assert [spec_fingerprint(s) for s in loaded] == [spec_fingerprint(s) for s in specs]
    assert loaded[0].study_id != specs[0].study_id  # each run of a sweep is new studies


@pytest.mark.parametrize(("text", "says"), [
    ("{nope", "sweep.json: not valid JSON (line 1"),
    ('{"runs": []}', 'sweep.json: not a sweep file (it needs a "studies" list of study specs).'),
    ('{"studies": []}', 'sweep.json: the "studies" list is empty.'),
    ('{"studies": [3]}', "sweep.json, study 1: not a JSON object"),
    ('{"studies": [{"model": {"path": "m.onnx"}}]}', "sweep.json, study 1: the field 'dataset' is missing."),
    ('{"studies": [{"quantbench_project": 9, "spec": {}}]}', "sweep.json, study 1: written by a newer QuantBench"),
])
def test_a_bad_sweep_file_is_one_sentence_naming_it(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(text)
    with pytest.raises(BadInput) as caught:
        load_sweep(path, source="sweep.json")
    assert str(caught.value).startswith(says)


def test_the_fingerprint_ignores_the_id_and_trust_but_not_the_study(tmp_path: Path) -> None:
    a, b = sweep_specs(tmp_path)
    from dataclasses import replace

    same = replace(a, study_id="x", model=replace(a.model, trusted=True))
    assert spec_fingerprint(same) == spec_fingerprint(a) == spec_fingerprint(a.to_dict())
    assert spec_fingerprint(b) != spec_fingerprint(a)


def test_where_reads_the_ray_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Where.from_option(None) == Where()
    assert Where.from_option("local") == Where(ray=True, address=None)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert Where.from_option("env", "rpi5") == Where(ray=True, address="10.0.0.5:6379", target="rpi5")
    with pytest.raises(BadInput, match="--target rpi5: a target is a node of a Ray cluster"):
        Where.from_option(None, "rpi5")
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(BadInput, match="RAY_ADDRESS is not set"):
        Where.from_option("env")


# ---- the command line, here ------------------------------------------------------------------------------------


def test_sweep_here_records_each_study_and_resume_skips_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    sweep = write_sweep(tmp_path, sweep_specs(tmp_path))
    out = tmp_path / "out.json"
    assert main(["sweep", str(sweep), "--home", str(home), "--json", str(out)]) == 0
    studies = StudyStore(home).list_studies()
    assert sorted(s.status for s in studies) == ["finished", "finished"]
    report = json.loads(out.read_text())
    assert report["kind"] == "sweep" and report["where"] == "here"
    entries = report["studies"]
    assert [e["status"] for e in entries] == ["done", "done"]
    assert {e["study_id"] for e in entries} == {s.id for s in studies}
    for e in entries:
        assert e["host"] and e["node"] == "here"
        assert e["placement"]["threads"] == 1 and e["placement"]["timed_alone"] is True
        assert e["result"]["results"][1]["label"] == e["schemes"][0]
        assert e["result"]["environment"]["placement"]["host"] == e["host"]  # every figure says where
        stored = StudyStore(home).load_study(e["study_id"])
        assert stored.environment["placement"]["node"] == "here"
    capsys.readouterr()

    assert main(["sweep", str(sweep), "--home", str(home), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 2 and "already in the history as study" in err
    assert [e["status"] for e in json.loads(out.read_text())["studies"]] == ["skipped", "skipped"]
    assert len(StudyStore(home).list_studies()) == 2  # nothing ran again


def test_sweep_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sweep", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err.strip() == f"quantbench: {tmp_path / 'none.json'}: no such file."
    specs = sweep_specs(tmp_path, schemes=("ort-int8-dynamic",))
    sweep = write_sweep(tmp_path, specs)
    (tmp_path / "mlp0.onnx").write_bytes(b"not a model")  # the study's own file is bad: exit 2, the sweep ends
    assert main(["sweep", str(sweep), "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert "quantbench: study 1 (mlp0.onnx): " in err and "Traceback" not in err


def test_without_ray_the_command_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    sweep = write_sweep(tmp_path, sweep_specs(tmp_path, schemes=("ort-fp16",)))
    assert main(["sweep", str(sweep), "--ray", "local"]) == 2
    assert capsys.readouterr().err.strip() == (
        "quantbench: --ray: Ray is not installed; install it with: pip install 'quantbench[cluster]'."
    )


# ---- the engine's timing hook and the gate ----------------------------------------------------------------------


def test_every_timing_run_passes_the_installed_section() -> None:
    from core.engine.timing import LatencyHarness, timing_section_hook

    log: list[str] = []

    @contextmanager
    def section():
        log.append("enter")
        yield
        log.append("leave")

    ticks = iter(range(0, 10**12, 1000))
    harness = LatencyHarness(lambda: log.append("call"), TimingSpec(warmup_runs=1, warmup_s=0.0, min_samples=3,
                             max_samples=3), clock=lambda: next(ticks))
    with timing_section_hook(section):
        harness.measure()
    assert log[0] == "enter" and log[-1] == "leave" and log.count("enter") == 1
    assert log.count("call") >= 5  # first call, warm-up, three samples: all inside the section
    log.clear()
    harness.measure()  # outside the hook: no section
    assert "enter" not in log


def test_the_gate_lets_one_timing_through_and_knows_who_else_ran() -> None:
    from core.sweep.gate import TimingGate

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        gate = TimingGate()
        order: list[str] = []
        await gate.enter("a")
        await gate.enter("b")
        await gate.acquire("a")

        async def b_times() -> None:
            await gate.acquire("b")
            order.append("b holds")

        waiting = asyncio.create_task(b_times())
        await asyncio.sleep(0.01)
        order.append("a still holds")  # b is waiting
        await gate.enter("c")  # started on the node while a timed
        seen_by_a = await gate.release("a")
        await waiting
        await gate.leave("c")
        await gate.forget("b")  # b's task died holding it: the node is free again
        await gate.acquire("d")
        seen_by_d = await gate.release("d")
        return order, seen_by_a, seen_by_d

    order, seen_by_a, seen_by_d = asyncio.run(scenario())
    assert order == ["a still holds", "b holds"]
    assert seen_by_a == ["b", "c"]
    assert seen_by_d == ["a"]  # a entered and never left; b was forgotten, c left


def test_a_variant_missing_its_runtime_on_the_node_says_so() -> None:
    from core.study.result import VariantResult, VariantStatus
    from core.sweep.remote import _name_missing_runtime

    v = VariantResult(label="torch-int8-dynamic", scheme="torch-int8-dynamic", status=VariantStatus.FAILED,
                      error="torch-int8-dynamic failed while building: ModuleNotFoundError: No module named 'torch'.")
    _name_missing_runtime(v, {"target": "rpi5", "runtimes": {"PyTorch": False, "ONNX Runtime": True}})
    assert v.error == "torch-int8-dynamic cannot run on target rpi5: PyTorch is not installed there."


def test_where_a_study_was_measured_is_said_in_one_place() -> None:
    from core.sweep.outcome import measured_where, timing_text, where_text

    node = "4a197c" + "0" * 50
    beside = {"host": "vm", "node": node, "target": "edge", "timed_alone": False, "others_meanwhile": ["a", "b"],
              "timing_exclusive": True}
    assert where_text(beside) == "vm (node 4a197c…), target edge"
    assert timing_text(beside) == "beside 2 studies"
    assert measured_where({"placement": beside}) == "measured on vm (node 4a197c…), target edge, timed beside 2 studies"
    assert timing_text({**beside, "timed_alone": True}) == "alone"
    assert timing_text({**beside, "timing_exclusive": False}) == "not exclusive"
    assert measured_where({"placement": {"host": "vm", "node": "here", "timed_alone": True}}) == (
        "measured on vm, timed alone")
    assert measured_where({}) == ""  # a study run by `quantbench run` or the window says nothing more


def test_the_load_of_other_processes_during_a_timing_is_measured() -> None:
    import subprocess
    import sys
    import time

    from core.sweep.load import OtherLoad

    load = OtherLoad()
    spin = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)  # the spinner is up
        mark = load.mark()
        time.sleep(0.6)  # this process idles: only others are busy
        load.add(mark)
    finally:
        spinner.wait()
    assert load.cores is not None and load.cores >= 0.4  # at least most of the spinner's core


def test_a_study_task_asks_ray_for_what_the_study_needs(tmp_path: Path) -> None:
    from dataclasses import replace

    from core.study.spec import Device
    from core.sweep.ray_runner import task_options

    (spec,) = sweep_specs(tmp_path, schemes=("ort-fp16",))
    assert task_options(spec, Where(ray=True)) == {"num_cpus": 1, "max_retries": 0}
    on_gpu = task_options(replace(spec, device=Device.CUDA), Where(ray=True, target="jetson"))
    assert on_gpu == {"num_cpus": 1, "max_retries": 0, "num_gpus": 1, "resources": {"device:jetson": 0.001}}


# ---- what a study ships to a node ------------------------------------------------------------------------------


def test_an_onnx_model_is_packed_with_its_external_data_and_other_files_alone(tmp_path: Path) -> None:
    import onnxruntime as ort

    from core.sweep.remote import pack, shipped_files, unpack
    from tests.core.conftest import make_mlp_onnx

    model = make_mlp_onnx(tmp_path / "src" / "mlp.onnx", external_data="mlp.weights")
    blob = pack(str(model))
    assert blob[:1] == b"M"
    assert sorted(shipped_files(blob, str(model))["files"]) == ["mlp.onnx", "mlp.weights"]
    into = tmp_path / "node"
    into.mkdir()
    copy = Path(unpack(blob, str(model), into))
    assert copy == into / "mlp.onnx"
    assert (into / "mlp.weights").read_bytes() == (model.parent / "mlp.weights").read_bytes()
    x = np.ones((2, 64), np.float32)
    here = ort.InferenceSession(str(model)).run(None, {"x": x})[0]
    there = ort.InferenceSession(str(copy)).run(None, {"x": x})[0]
    np.testing.assert_array_equal(here, there)

    single = make_mlp_onnx(tmp_path / "single.onnx")  # weights inside: the file alone
    assert pack(str(single)) == b"F" + single.read_bytes()
    other = tmp_path / "model.tflite"
    other.write_bytes(b"\0\0\0\0TFL3" + bytes(64))
    assert pack(str(other)) == b"F" + other.read_bytes()


def test_external_data_outside_the_models_folder_is_refused_before_it_is_shipped(tmp_path: Path) -> None:
    import onnx

    from core.sweep.remote import pack
    from tests.core.conftest import make_mlp_onnx

    model = make_mlp_onnx(tmp_path / "m" / "mlp.onnx", external_data="mlp.weights")
    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    onnx.save(proto, str(model))
    (tmp_path / "secret.bin").write_bytes((model.parent / "mlp.weights").read_bytes())
    with pytest.raises(BadInput, match=r"mlp\.onnx: external data location '\.\./secret\.bin' .* must be a plain "
                                       r"file name inside the model's folder"):
        pack(str(model))
