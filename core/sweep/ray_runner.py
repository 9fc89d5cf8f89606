"""A sweep on Ray: each study one Ray task, placed by Ray, its timing phases passing its node's gate.

The driver (this process) ships each study's files once through the object store, submits every study, and
records each one into the local history the moment its task returns. A task lost with its node (or its worker)
is sent again once, to whichever node Ray picks; a study whose files or spec are bad fails on its own; Cancel
ends the remaining tasks at once (``ray.cancel(force=True)``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.study.cancel import CancelToken
from core.sweep.events import SweepEvent, SweepNote, SweepStudyChanged
from core.sweep.gate import TIMING_RESOURCE, node_gate
from core.sweep.history import record_events
from core.sweep.outcome import StudyOutcome, StudyState, conclude, failed
from core.sweep.remote import RemoteStudy, pack, run_remote_study, study_paths
from core.sweep.where import RAY_MISSING, Where, ray_problem

#: How often the driver looks at Cancel and at which studies have started (seconds).
POLL_S = 0.25
#: Tries per study: the first, and one more when its node or worker was lost.
MAX_ATTEMPTS = 2
#: A target's share of its ``device:NAME`` resource per study, so many studies may be placed there at once
#: (their timings still pass the node's gate one at a time).
TARGET_SHARE = 0.001
#: How long a new gate may take to start on its node before the node is left without one (seconds).
GATE_TIMEOUT_S = 60.0
#: Prefix of the node resources that name a target device (``device:rpi5``).
DEVICE_PREFIX = "device:"


def connect(where: Where) -> bool:
    """Join (or start) Ray as ``where`` says; True when this call started the connection (and must end it)."""
    if ray_problem():
        raise BadInput(RAY_MISSING + ".")
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False, "configure_logging": False}
    if where.address is None:
        ray.init(resources={TIMING_RESOURCE: 1}, include_dashboard=False, **options)
    else:
        _check_reachable(where.address)
        try:
            ray.init(address=where.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BadInput(f"--ray {where.address}: cannot join the Ray cluster there ({exc}).") from None
    return True


#: How long joining a cluster waits for its address to answer before saying so (Ray itself retries for minutes).
CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """BadInput, at once, when nothing answers at a cluster's HOST:PORT (``ray.init`` would retry for minutes,
    writing its own logs to the terminal)."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # a form Ray resolves itself ("auto", a bare host name)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BadInput(f"--ray {address}: no Ray cluster answers there ({why.lower()}).") from None


def cluster_targets() -> list[str]:
    """The target devices of the connected cluster: the NAMEs of its ``device:NAME`` node resources."""
    import ray

    return sorted(k[len(DEVICE_PREFIX):] for k in ray.cluster_resources() if k.startswith(DEVICE_PREFIX))


def task_options(spec: Any, where: Where) -> dict[str, Any]:
    """The Ray options of a study's task: a CPU (a GPU for a CUDA study), its target's resource, no retry by Ray
    (the sweep retries a lost study itself, once)."""
    from core.study.spec import Device

    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
    if spec.device is Device.CUDA:
        options["num_gpus"] = 1
    if where.target:
        options["resources"] = {DEVICE_PREFIX + where.target: TARGET_SHARE}
    return options


def check_target(where: Where) -> None:
    """BadInput when ``where`` names a target no node of the connected cluster carries."""
    if where.target and where.target not in cluster_targets():
        known = ", ".join(cluster_targets()) or "none"
        raise BadInput(f"--target {where.target}: no node of the cluster carries the resource "
                       f"{DEVICE_PREFIX}{where.target} (targets there: {known}).")


def ensure_gates() -> dict[str, Any]:
    """One timing gate per alive node that offers the ``quantbench_timing`` resource: node id -> its gate."""
    import ray

    gates = {}
    for node in ray.nodes():
        if node.get("Alive"):
            gate = node_gate(node["NodeID"], node.get("Resources", {}))
            if gate is not None:
                gates[node["NodeID"]] = gate
    return _answering(gates)


def _answering(gates: dict[str, Any]) -> dict[str, Any]:
    """The gates that answer: a node that is going away (removed, its death not yet known to the cluster) keeps
    its gate's name for a while, but not its gate."""
    import ray

    asked = {node_id: gate.active.remote() for node_id, gate in gates.items()}
    ray.wait(list(asked.values()), num_returns=len(asked), timeout=GATE_TIMEOUT_S)
    live = {}
    for node_id, ref in asked.items():
        try:
            ray.get(ref, timeout=0.1)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            continue
        live[node_id] = gates[node_id]
    return live


class _Sweep:
    """The driver's state while the tasks run: task -> its study, the shipped files, the gates."""

    def __init__(self, where: Where, home: Path | str | None, limits: dict[str, Any] | None = None) -> None:
        import ray

        from core.sweep.guard import HANG, MEMORY

        self.where = where
        #: The study processes' memory ceiling and hang timeout (core.sweep.guard), as the driver was given them.
        self.limits = {k: v for k, v in (limits or {}).items() if k in (MEMORY, HANG)}
        self.home = home
        self.task = ray.remote(run_remote_study)
        self.blobs: dict[str, Any] = {}  # path -> object ref of its packed bytes
        self.running: dict[Any, StudyOutcome] = {}  # object ref -> study
        self.gates = ensure_gates()

    def submit(self, outcome: StudyOutcome) -> None:
        import ray

        spec = outcome.spec
        paths = study_paths(spec)
        for path in paths:
            if path not in self.blobs:
                try:
                    self.blobs[path] = ray.put(pack(path))
                except OSError as exc:
                    raise BadInput(f"{path}: cannot be read to send it to the cluster ({exc.strerror}).") from None
        outcome.attempts += 1
        job = RemoteStudy(spec=spec, key=_key(outcome), target=self.where.target, paths=paths, limits=self.limits)
        ref = self.task.options(**task_options(spec, self.where)).remote(job, *(self.blobs[p] for p in paths))
        self.running[ref] = outcome

    def started(self) -> dict[str, tuple[str, str]]:
        """Study key -> (node id, host) for the studies the gates say have started."""
        import ray

        found: dict[str, tuple[str, str]] = {}
        for node_id, gate in list(self.gates.items()):
            try:
                active = ray.get(gate.active.remote(), timeout=2)
            except Exception:  # noqa: BLE001 - a gate on a node that went away
                self.gates.pop(node_id, None)
                continue
            host = _node_host(node_id)
            for key in active:
                found[key] = (node_id, host)
        return found

    def forget(self, outcome: StudyOutcome) -> None:
        """Free whatever the study's dead task held in the gates."""
        for gate in self.gates.values():
            gate.forget.remote(_key(outcome))


def run_on_ray(
    pending: list[StudyOutcome], where: Where, home: Path | str | None, cancel: CancelToken,
    limits: dict[str, Any] | None = None,
) -> Iterator[SweepEvent]:
    """The Ray side of ``core.sweep.driver.run_sweep``; ``limits``: ``max_memory_bytes`` and ``hang_timeout_s`` of
    each study's process on its node (a key left out: that node's default)."""
    import ray

    ours = connect(where)
    try:
        check_target(where)
        sweep = _Sweep(where, home, limits)
        for outcome in pending:
            try:
                sweep.submit(outcome)
            except BadInput as exc:
                failed(outcome, str(exc), "bad_input")
                yield SweepStudyChanged(outcome)
        last_look = 0.0
        while sweep.running:
            if cancel.cancelled:
                yield from _cancel_all(sweep)
                break
            ready, _ = ray.wait(list(sweep.running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                yield from _collect(sweep, ref)
            if time.monotonic() - last_look > 4 * POLL_S:
                last_look = time.monotonic()
                yield from _mark_started(sweep)
    finally:
        if ours:
            ray.shutdown()


def _collect(sweep: _Sweep, ref: Any) -> Iterator[SweepEvent]:
    import ray

    outcome = sweep.running.pop(ref)
    try:
        reply = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        outcome.state = StudyState.CANCELLED
        yield SweepStudyChanged(outcome)
        return
    except ray.exceptions.RayTaskError as exc:  # the task's own code raised: its node is fine, no retry
        sweep.forget(outcome)
        failed(outcome, f"the study's task failed on its node: {_first_line(exc)}", "internal")
        yield SweepStudyChanged(outcome)
        return
    except ray.exceptions.RayError as exc:  # its node or worker was lost
        sweep.forget(outcome)
        if outcome.attempts < MAX_ATTEMPTS:
            outcome.state = StudyState.RETRYING
            outcome.error = f"its node was lost ({_first_line(exc)}); sent again"
            yield SweepStudyChanged(outcome)
            try:
                sweep.submit(outcome)
            except BadInput as bad:  # its files went away meanwhile
                failed(outcome, str(bad), "bad_input")
                yield SweepStudyChanged(outcome)
            return
        failed(outcome, f"lost twice with its node ({_first_line(exc)})", "internal")
        yield SweepStudyChanged(outcome)
        return
    placement = reply["placement"]
    outcome.placement = placement
    if "error" in reply:
        failed(outcome, reply["error"], reply["kind"])
        yield SweepStudyChanged(outcome)
        return
    events = reply["events"]
    _complete_placement(placement, events)
    notes: list[str] = []
    finished = record_events(outcome.spec, events, sweep.home, placement, notes.append)
    for note in notes:
        yield SweepNote(note)
    if finished is None:
        failed(outcome, "the study ended without its result", "internal")
    else:
        outcome.error = None
        conclude(outcome, finished)
    yield SweepStudyChanged(outcome)


def _mark_started(sweep: _Sweep) -> Iterator[SweepEvent]:
    started = sweep.started()
    for outcome in sweep.running.values():
        where = started.get(_key(outcome))
        if where is not None and outcome.state in (StudyState.QUEUED, StudyState.RETRYING):
            outcome.state = StudyState.RUNNING
            outcome.placement = {"node": where[0], "host": where[1], "target": sweep.where.target}
            yield SweepStudyChanged(outcome)


def _cancel_all(sweep: _Sweep) -> Iterator[SweepEvent]:
    import ray

    for ref, outcome in list(sweep.running.items()):
        ray.cancel(ref, force=True)
        sweep.forget(outcome)
        outcome.state = StudyState.CANCELLED
        yield SweepStudyChanged(outcome)
    sweep.running.clear()


def _complete_placement(placement: dict[str, Any], events: list[Any]) -> None:
    """The CPU and thread count the study itself reported, next to where it ran."""
    from core.study.events import StudyStarted

    for event in events:
        if isinstance(event, StudyStarted):
            placement["cpu"] = event.environment.get("cpu")
            placement["threads"] = event.environment.get("threads")


def _node_host(node_id: str) -> str:
    import ray

    for node in ray.nodes():
        if node["NodeID"] == node_id:
            return str(node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or "")
    return ""


def _key(outcome: StudyOutcome) -> str:
    """How the gates know a study: its id, fixed before it is sent (a retry keeps it; nothing of a lost try was
    recorded, the history gets the study once)."""
    return outcome.spec.study_id


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def list_targets(where: Where) -> list[str]:
    """The target devices of the cluster ``where`` names (joined for the question, then left)."""
    import ray

    ours = connect(where)
    try:
        return cluster_targets()
    finally:
        if ours:
            ray.shutdown()
