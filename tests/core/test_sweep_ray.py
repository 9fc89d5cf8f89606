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
