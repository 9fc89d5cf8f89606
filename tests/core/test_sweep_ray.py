"""quantbench sweep on Ray: a two-node cluster on this machine (ray.cluster_utils.Cluster, started once for the
module), the head node plain, the worker labelled as the target device ``edge``.

Checked: 2 models x 2 schemes land 4 studies in the history; the timing intervals recorded on one node never
overlap; a study pinned to the target records that node; a node removed mid-sweep loses no finished study and its
running study is retried elsewhere; Cancel ends the remaining tasks within seconds. Skipped without Ray.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from core.history.store import StudyStore  # noqa: E402
from core.study.cancel import CancelToken  # noqa: E402
from core.study.spec import TimingSpec  # noqa: E402
from core.sweep import StudyState, SweepFinished, SweepStudyChanged, Where, run_sweep  # noqa: E402
from core.sweep.gate import TIMING_RESOURCE  # noqa: E402
from tests.core.test_sweep import sweep_specs  # noqa: E402

#: Timing that runs to its time cap (the stopping rule can never be met): studies long enough to be caught running.
SLOW = TimingSpec(threads=1, max_time_s=1.0, warmup_runs=2, warmup_s=0.0, min_samples=10**6, max_samples=10**6)


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "resources": {TIMING_RESOURCE: 1}},
    )
    worker = c.add_node(num_cpus=2, resources={TIMING_RESOURCE: 1, "device:edge": 1, "device:pool": 1})
    ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
    c.wait_for_nodes()
    try:
        yield {"cluster": c, "address": c.address, "worker": worker.node_id}
    finally:
        ray.shutdown()
        c.shutdown()


def finished(events: Any) -> Any:
    return next(e for e in events if isinstance(e, SweepFinished))


def test_a_sweep_of_two_models_by_two_schemes_lands_four_studies(cluster: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    specs = sweep_specs(tmp_path, models=2)
    end = finished(run_sweep(specs, Where(ray=True, address=cluster["address"]), home=home))
    assert [o.state for o in end.outcomes] == [StudyState.DONE] * 4
    stored = {s.id: s.status for s in StudyStore(home).list_studies()}
    assert sorted(stored) == sorted(o.study_id for o in end.outcomes)
    assert set(stored.values()) == {"finished"}
    by_node: dict[str, list[tuple[float, float]]] = {}
    for o in end.outcomes:
        p = o.placement
        assert p["host"] and p["node"] and p["threads"] == 1 and p["cpu"]
        assert p["timing_exclusive"] is True and isinstance(p["timed_alone"], bool)
        assert p["other_load_cores"] >= 0.0
        assert p["timing_intervals"], "each study timed at least its baseline and its variant"
        stored_placement = StudyStore(home).load_study(o.study_id).environment["placement"]
        assert stored_placement["node"] == p["node"]
        by_node.setdefault(p["node"], []).extend(tuple(i) for i in p["timing_intervals"])
    for intervals in by_node.values():
        intervals.sort()
        for (_, end_a), (start_b, _) in zip(intervals, intervals[1:], strict=False):
            assert start_b >= end_a, "two timings overlapped on one node"
    # The sweep is resumable: run again, nothing runs.
    again = finished(run_sweep(specs, Where(ray=True, address=cluster["address"]), home=home))
    assert [o.state for o in again.outcomes] == [StudyState.SKIPPED] * 4


def test_a_study_pinned_to_the_target_is_measured_there(cluster: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    specs = sweep_specs(tmp_path, schemes=("ort-int8-dynamic",))
    end = finished(run_sweep(specs, Where(ray=True, address=cluster["address"], target="edge"), home=home))
    (outcome,) = end.outcomes
    assert outcome.state is StudyState.DONE
    assert outcome.placement["node"] == cluster["worker"] and outcome.placement["target"] == "edge"
    assert outcome.placement["runtimes"]["ONNX Runtime"] is True
    stored = StudyStore(home).load_study(outcome.study_id)
    assert stored.environment["placement"]["target"] == "edge"
    assert stored.environment["placement"]["node"] == cluster["worker"]
    assert all(v.latency is not None for v in stored.results)


def test_a_target_nobody_carries_is_bad_input(cluster: Any, tmp_path: Path) -> None:
    from core.errors import BadInput

    specs = sweep_specs(tmp_path, schemes=("ort-fp16",))
    with pytest.raises(BadInput, match=r"--target rpi5: no node of the cluster carries the resource device:rpi5 "
                                       r"\(targets there: edge, pool\)"):
        finished(run_sweep(specs, Where(ray=True, address=cluster["address"], target="rpi5"), home=tmp_path))


def test_a_node_lost_mid_sweep_loses_only_its_running_study_which_is_retried(cluster: Any, tmp_path: Path) -> None:
    c = cluster["cluster"]
    doomed = c.add_node(num_cpus=2, resources={TIMING_RESOURCE: 1, "device:pool": 1})
    c.wait_for_nodes()
    home = tmp_path / "home"
    specs = [replace(s, timing=SLOW) for s in sweep_specs(tmp_path, models=2)]
    removed = False
    changes: list[tuple[int, StudyState]] = []
    end = None
    for event in run_sweep(specs, Where(ray=True, address=cluster["address"], target="pool"), home=home):
        if isinstance(event, SweepStudyChanged):
            o = event.outcome
            changes.append((o.index, o.state))
            if not removed and o.state is StudyState.RUNNING and o.placement.get("node") == doomed.node_id:
                c.remove_node(doomed, allow_graceful=False)
                removed = True
        elif isinstance(event, SweepFinished):
            end = event
    assert removed, "no study was placed on the node to remove"
    assert end is not None and [o.state for o in end.outcomes] == [StudyState.DONE] * 4
    retried = [o for o in end.outcomes if o.attempts == 2]
    assert len(retried) >= 1 and all(o.placement["node"] == cluster["worker"] for o in retried)
    assert any(state is StudyState.RETRYING for _, state in changes)
    assert sorted(s.id for s in StudyStore(home).list_studies()) == sorted(o.study_id for o in end.outcomes)


def test_cancel_ends_the_remaining_tasks_within_seconds(cluster: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    specs = [replace(s, timing=SLOW) for s in sweep_specs(tmp_path, models=2)]
    cancel = CancelToken()
    cancelled_at = None
    end = None
    for event in run_sweep(specs, Where(ray=True, address=cluster["address"]), home=home, cancel=cancel):
        if isinstance(event, SweepStudyChanged) and event.outcome.state is StudyState.RUNNING and not cancel.cancelled:
            cancel.cancel()
            cancelled_at = time.monotonic()
        elif isinstance(event, SweepFinished):
            end = event
    assert cancelled_at is not None and end is not None and end.cancelled
    assert time.monotonic() - cancelled_at < 5.0
    states = [o.state for o in end.outcomes]
    assert StudyState.CANCELLED in states and set(states) <= {StudyState.CANCELLED, StudyState.DONE}
    done = {o.study_id for o in end.outcomes if o.state is StudyState.DONE}
    assert {s.id for s in StudyStore(home).list_studies()} == done  # nothing half-run recorded


def test_the_window_engine_streams_a_study_measured_on_the_target(cluster: Any, tmp_path: Path) -> None:
    from core.study.events import LatencySamples, StudyFinished, StudyStarted
    from core.sweep.target import run_on_target

    (spec,) = sweep_specs(tmp_path, schemes=("ort-int8-dynamic",))
    events = list(run_on_target(spec, None, Where(ray=True, address=cluster["address"], target="edge")))
    kinds = [type(e) for e in events]
    assert kinds[0] is StudyStarted and kinds[-1] is StudyFinished and LatencySamples in kinds
    assert events[0].environment["placement"]["node"] == cluster["worker"]
    assert events[0].model["path"] == spec.model.path  # the driver's path, not the node's copy
    finished = events[-1].result.environment["placement"]
    assert finished["target"] == "edge" and finished["timing_intervals"] and finished["threads"] == 1
    assert all(v.latency is not None for v in events[-1].result.results)


def test_the_window_engine_stops_at_cancel(cluster: Any, tmp_path: Path) -> None:
    from core.errors import Cancelled
    from core.study.events import LatencySamples
    from core.sweep.target import run_on_target

    (spec,) = sweep_specs(tmp_path, schemes=("ort-int8-dynamic",), timing=SLOW)
    cancel = CancelToken()
    cancelled_at = None
    with pytest.raises(Cancelled):
        for event in run_on_target(spec, cancel, Where(ray=True, address=cluster["address"], target="edge")):
            if isinstance(event, LatencySamples) and cancelled_at is None:
                cancel.cancel()
                cancelled_at = time.monotonic()
    assert cancelled_at is not None and time.monotonic() - cancelled_at < 2.0


# ---- nothing shared but the object store; a target without PyTorch; the study's guards on its node -------------


def test_an_onnx_model_with_external_data_travels_with_it_and_measures_as_here(
        cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.sweep.ray_runner as ray_runner
    from core.engine.run import run_study
    from core.study.events import StudyFinished
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, VariantSpec
    from tests.core.conftest import make_mlp_onnx, save_npz
    from tests.core.test_sweep import BRIEF

    folder = tmp_path / "model"
    model = make_mlp_onnx(folder / "mlp.onnx", external_data="mlp.weights")
    rng = np.random.default_rng(0)
    data = save_npz(tmp_path / "data.npz", rng.standard_normal((48, 64)).astype(np.float32), rng.integers(0, 10, 48))
    spec = StudySpec(model=ModelSpec(path=str(model)), dataset=DatasetSpec.parse(f"npz:{data}"),
                     variants=(VariantSpec(scheme=SchemeSpec.parse("ort-int8-dynamic")),), timing=BRIEF)
    here = next(e for e in run_study(spec) if isinstance(e, StudyFinished)).result

    # Once the model is packed for the cluster its folder is gone here: the node can only read what was shipped.
    packed = []

    def pack_then_hide(path: str) -> bytes:
        blob = real_pack(path)
        packed.append(path)
        if path == str(model):
            folder.rename(tmp_path / "gone")
        return blob

    real_pack = ray_runner.pack
    monkeypatch.setattr(ray_runner, "pack", pack_then_hide)
    end = finished(run_sweep([spec], Where(ray=True, address=cluster["address"], target="edge"),
                             home=tmp_path / "home"))
    (outcome,) = end.outcomes
    assert str(model) in packed and not folder.exists()
    assert outcome.state is StudyState.DONE, outcome.error
    assert outcome.placement["node"] == cluster["worker"]
    shipped = {s["path"]: s for s in outcome.placement["shipped"]}
    assert sorted(shipped[str(model)]["files"]) == ["mlp.onnx", "mlp.weights"]
    assert shipped[str(model)]["copy"] != str(model)
    there = outcome.result
    assert there.model["path"] == str(model) and there.model["file_bytes"] == here.model["file_bytes"]
    assert there.model["file_bytes"] > (tmp_path / "gone" / "mlp.onnx").stat().st_size  # the weights counted
    for a, b in zip(here.results, there.results, strict=True):
        assert (a.label, a.status, a.size_bytes) == (b.label, b.status, b.size_bytes)
        assert a.metrics["accuracy"] == b.metrics["accuracy"]
        if a.fidelity is not None:
            assert b.fidelity is not None and b.fidelity["max_abs"] == pytest.approx(a.fidelity["max_abs"], rel=1e-5)
    assert all(v.latency is not None for v in there.results)


#: Makes ``import torch`` fail in every Python process that starts with this folder on its PYTHONPATH: a board
#: where PyTorch is not installed.
NO_TORCH = '''import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTorch())
'''


def test_a_target_without_pytorch_runs_the_onnx_runtime_variants_and_says_why_not_the_others(
        cluster: Any, tmp_path: Path, tiny_cnn: Any, tiny_onnx: Path, tiny_npz: Path) -> None:
    import torch

    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, VariantSpec
    from tests.core.test_sweep import BRIEF

    hide = tmp_path / "no_torch"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(NO_TORCH)
    scripted = tmp_path / "tiny_cnn.ts.pt"
    torch.jit.trace(tiny_cnn, torch.zeros(1, 1, 8, 8)).save(str(scripted))
    c = cluster["cluster"]
    bare = c.add_node(num_cpus=1, resources={TIMING_RESOURCE: 1, "device:bare": 1},
                      env_vars={"PYTHONPATH": str(hide)})
    c.wait_for_nodes()
    try:
        spec = StudySpec(model=ModelSpec(path=str(tiny_onnx)), dataset=DatasetSpec.parse(f"npz:{tiny_npz}"),
                         variants=(VariantSpec(scheme=SchemeSpec.parse("ort-int8-dynamic")),
                                   VariantSpec(path=str(scripted), trusted=True)), timing=BRIEF)
        end = finished(run_sweep([spec], Where(ray=True, address=cluster["address"], target="bare"),
                                 home=tmp_path / "home"))
    finally:
        c.remove_node(bare)
    (outcome,) = end.outcomes
    assert outcome.state is StudyState.DONE, outcome.error
    assert outcome.placement["node"] == bare.node_id
    runtimes = outcome.placement["runtimes"]
    assert runtimes["PyTorch"] is False and runtimes["ONNX Runtime"] is True
    rows = {v.label: v for v in outcome.result.results}
    assert rows["fp32"].status.value == "ok" and rows["ort-int8-dynamic"].status.value == "ok"
    assert rows["ort-int8-dynamic"].latency is not None and rows["ort-int8-dynamic"].metrics["accuracy"] > 0.5
    scripted_row = rows["file:tiny_cnn.ts.pt"]
    assert scripted_row.status.value == "failed"
    assert scripted_row.error == "file:tiny_cnn.ts.pt cannot run on target bare: PyTorch is not installed there."
    stored = StudyStore(tmp_path / "home").load_study(outcome.study_id)
    assert [v.error for v in stored.results if v.status.value == "failed"] == [scripted_row.error]


def test_a_study_on_a_node_is_stopped_at_its_memory_ceiling_or_hang_timeout_and_the_sweep_goes_on(
        cluster: Any, tmp_path: Path) -> None:
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec
    from tests.core.test_safety_ceilings import QUICK, endless_loop_model, memory_bomb_model
    from tests.core.test_sweep import BRIEF

    (fine,) = sweep_specs(tmp_path, schemes=("ort-fp16",))
    on_four = DatasetSpec.parse("synthetic:4")
    bomb = StudySpec(model=ModelSpec(path=str(memory_bomb_model(tmp_path / "bomb.onnx"))), dataset=on_four,
                     timing=QUICK)
    loop = StudySpec(model=ModelSpec(path=str(endless_loop_model(tmp_path / "loop.onnx"))), dataset=on_four,
                     timing=QUICK)
    limits = {"max_memory_bytes": 2 * 10**9, "hang_timeout_s": 3.0}
    t0 = time.monotonic()
    end = finished(run_sweep([bomb, loop, replace(fine, timing=BRIEF)], Where(ray=True, address=cluster["address"]),
                             home=tmp_path / "home", isolation=limits))
    assert time.monotonic() - t0 < 45
    by_model = {o.model_name: o for o in end.outcomes}
    assert by_model["mlp0.onnx"].state is StudyState.DONE
    for name, says in (("bomb.onnx", "needed more than 2 GB of memory"), ("loop.onnx", "did not finish within 3 s")):
        outcome = by_model[name]
        assert outcome.state is StudyState.FAILED and outcome.error_kind == "bad_input"
        assert says in outcome.error and "\n" not in outcome.error and "Traceback" not in outcome.error
        assert f"{name}: the model does not run on {outcome.where}, so no variant" in outcome.error
        assert outcome.placement["max_memory_bytes"] == 2 * 10**9 and outcome.placement["hang_timeout_s"] == 3.0
    # The node's worker survived: its gate was freed, the study beside it was measured.
    assert by_model["mlp0.onnx"].result.results[1].latency is not None
