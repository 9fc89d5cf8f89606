"""What runs inside a sweep's Ray task, on whichever node Ray chose: the study's files arrive through Ray's object
store (no shared file system), the engine runs in the task's process, each timing phase passes the node's gate,
and the study's recorded events come back with where they were measured."""

from __future__ import annotations

import io
import socket
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import QuantBenchError
from core.study.spec import DatasetKind, DatasetSpec, StudySpec

#: Dataset kinds whose location is a file or a folder to ship.
PATH_KINDS = (DatasetKind.NPZ, DatasetKind.CSV, DatasetKind.FOLDER)
#: The runtimes a node is asked about (module -> the name a message uses).
RUNTIME_MODULES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "ai_edge_litert": "LiteRT"}


@dataclass
class RemoteStudy:
    """What a task needs besides the files: the spec (with the driver's paths), the key its gate knows it by,
    the target it was sent to, and the shipped paths in the order of the task's file arguments."""

    spec: StudySpec
    key: str
    target: str | None = None
    paths: list[str] = field(default_factory=list)


def study_paths(spec: StudySpec) -> list[str]:
    """Every file or folder the study reads: the model, --variant files, a file dataset and its calibration."""
    paths = [spec.model.path, *(v.path for v in spec.variants if v.path)]
    for ds in (spec.dataset, spec.dataset.calibration_dataset()):
        if ds is not None and ds.kind in PATH_KINDS:
            paths.append(ds.location)
    return list(dict.fromkeys(paths))


def pack(path: str) -> bytes:
    """A file's bytes, or a folder as an uncompressed tar (folder datasets)."""
    p = Path(path).expanduser()
    if p.is_dir():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(p, arcname=p.name)
        return b"D" + buffer.getvalue()
    return b"F" + p.read_bytes()


def unpack(blob: bytes, original: str, into: Path) -> str:
    """Write a packed file or folder under ``into`` (same base name as on the driver); return its new path."""
    name = Path(original).name or "file"
    if blob[:1] == b"D":
        with tarfile.open(fileobj=io.BytesIO(blob[1:]), mode="r") as tar:
            tar.extractall(into, filter="data")
        return str(into / name)
    target = into / name
    target.write_bytes(blob[1:])
    return str(target)


def localize(spec: StudySpec, moved: dict[str, str]) -> StudySpec:
    """``spec`` reading the files where they were unpacked on this node."""
    ds = spec.dataset
    if ds.kind in PATH_KINDS and ds.location in moved:
        ds = replace(ds, location=moved[ds.location])
    calibration = ds.calibration_dataset()
    if calibration is not None and calibration.kind in PATH_KINDS and calibration.location in moved:
        other = DatasetSpec.parse(ds.calibration or "")
        ds = replace(ds, calibration=replace(other, location=moved[calibration.location]).describe())
    variants = tuple(replace(v, path=moved.get(v.path, v.path)) if v.path else v for v in spec.variants)
    model = replace(spec.model, path=moved.get(spec.model.path, spec.model.path))
    return replace(spec, model=model, dataset=ds, variants=variants)


def node_runtimes() -> dict[str, bool]:
    """Which runtimes this node can import (by name: PyTorch, ONNX Runtime, LiteRT)."""
    import importlib.util

    return {name: importlib.util.find_spec(module) is not None for module, name in RUNTIME_MODULES.items()}


def run_remote_study(job: RemoteStudy, *blobs: bytes) -> dict[str, Any]:
    """A sweep's Ray task: the study run to its end on the node. Returns {"events": the events the history
    records, "placement": where it ran} or {"error": one sentence, "kind": "bad_input" | "internal", "placement"}."""
    from core.history.recorder import RECORDED_EVENTS

    events: list[Any] = []
    reply: dict[str, Any] = {}
    for kind, value in stream_remote_study(job, *blobs):
        if kind == "event":
            if isinstance(value, RECORDED_EVENTS):
                events.append(value)
        else:
            reply.update(value)
    return reply if "error" in reply else {"events": events, **reply}


def stream_remote_study(job: RemoteStudy, *blobs: bytes) -> Iterator[tuple[str, Any]]:
    """The study on this node as a stream: ("event", each engine event, the driver's paths in it), then
    ("placement", {"placement": where it ran}) or ("error", {"error", "kind", "placement"}). Run as a Ray
    streaming task (``num_returns="streaming"``) by the window's target engine (core.sweep.target), or consumed
    whole by ``run_remote_study``. The StudyFinished comes once the placement is complete, so its environment
    block says where every figure was measured."""
    import ray

    from core.engine.timing import timing_section_hook
    from core.study.events import StudyFinished

    node = ray.get_runtime_context().get_node_id()
    placement: dict[str, Any] = {
        "host": socket.gethostname(), "node": node, "target": job.target, "runtimes": node_runtimes(),
        "timing_intervals": [], "others_meanwhile": [], "started": time.time(),
    }
    gate = _own_gate(node)  # None on a node without the quantbench_timing resource: timings not exclusive
    placement["timing_exclusive"] = gate is not None
    if gate is not None:
        ray.get(gate.enter.remote(job.key))
    others: set[str] = set()
    finished = None
    try:
        with tempfile.TemporaryDirectory(prefix="quantbench-sweep-") as tmp:
            moved = {}
            for index, (path, blob) in enumerate(zip(job.paths, blobs, strict=True)):
                folder = Path(tmp) / f"in{index}"
                folder.mkdir()
                moved[path] = unpack(blob, path, folder)
            spec = localize(job.spec, moved)
            load = OtherLoad()
            section = _gate_section(gate, job.key, placement["timing_intervals"], others, load)
            with timing_section_hook(section):
                for event in _study_events(spec, Path(tmp) / "work"):
                    _restore_paths([event], job.spec, placement)
                    if isinstance(event, StudyFinished):
                        finished = event  # told last, with the whole placement
                    else:
                        yield "event", event
            # Whatever else kept the machine's cores busy while this study timed (any process, not only ours).
            placement["other_load_cores"] = load.cores
    except QuantBenchError as exc:
        yield "error", {"error": str(exc), "kind": "bad_input", "placement": placement}
        return
    except Exception as exc:  # noqa: BLE001 - told to the driver as one line, the sweep goes on
        yield "error", {"error": f"{type(exc).__name__}: {exc}", "kind": "internal", "placement": placement}
        return
    finally:
        if gate is not None:
            ray.get(gate.leave.remote(job.key))
    # The other studies of the sweep that were on this node while this one timed (building, evaluating).
    placement["others_meanwhile"] = sorted(others)
    placement["timed_alone"] = not others
    placement["ended"] = time.time()
    if finished is not None:
        finished.result.environment["placement"] = dict(placement)
        yield "event", finished
    yield "placement", {"placement": placement}


def _own_gate(node: str) -> Any:
    """This node's timing gate, started here when the sweep's driver did not know the node yet (it joined since)."""
    import ray

    from core.sweep.gate import NAMESPACE, gate_name, node_gate

    try:
        return ray.get_actor(gate_name(node), namespace=NAMESPACE)
    except ValueError:
        mine = next((n for n in ray.nodes() if n["NodeID"] == node), {})
        return node_gate(node, mine.get("Resources", {}))


def _study_events(spec: StudySpec, workdir: Path) -> Iterator[Any]:
    from core.engine.run import run_study

    yield from run_study(spec, None, workdir=workdir)


def _gate_section(gate: Any, key: str, intervals: list[list[float]], others: set[str],
                  load: OtherLoad | None = None) -> Any:
    """The ``timing_section_hook`` factory: each timing run holds the node's gate, records its interval and how
    busy the rest of the machine was meanwhile."""
    import ray

    load = load if load is not None else OtherLoad()

    @contextmanager
    def section() -> Iterator[None]:
        if gate is not None:
            ray.get(gate.acquire.remote(key))
        start = time.time()
        mark = load.mark()
        try:
            yield
        finally:
            load.add(mark)
            end = time.time()
            if gate is not None:
                others.update(ray.get(gate.release.remote(key)))
            intervals.append([start, end])

    return section


class OtherLoad:
    """How many cores the rest of the machine kept busy while this process timed: the machine's busy CPU time
    (``/proc/stat``) less this process's own, over the wall time of the timing runs. None where /proc/stat is
    not readable (not Linux)."""

    def __init__(self) -> None:
        self.other_s = 0.0
        self.wall_s = 0.0
        self.readable = _machine_busy_s() is not None

    def mark(self) -> tuple[float, float, float] | None:
        busy = _machine_busy_s()
        return None if busy is None else (busy, time.process_time(), time.perf_counter())

    def add(self, mark: tuple[float, float, float] | None) -> None:
        busy = _machine_busy_s()
        if mark is None or busy is None:
            self.readable = False
            return
        self.other_s += max(0.0, (busy - mark[0]) - (time.process_time() - mark[1]))
        self.wall_s += time.perf_counter() - mark[2]

    @property
    def cores(self) -> float | None:
        """Mean cores busy with other work during the timings (None: unknown)."""
        if not self.readable or self.wall_s <= 0:
            return None
        return round(self.other_s / self.wall_s, 3)


def _machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (user, nice, system, irq, softirq, steal)."""
    import os

    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
    return busy / ticks


def _restore_paths(events: list[Any], spec: StudySpec, placement: dict[str, Any]) -> None:
    """The driver's paths back in what the study tells (the node's temporary copies are gone), where it runs in
    its StudyStarted, and a variant that failed for want of a runtime on the node saying so."""
    from core.study.events import StudyFinished, StudyStarted, VariantFailed, VariantFinished

    for event in events:
        if isinstance(event, StudyStarted):
            event.model["path"] = spec.model.path
            event.dataset["spec"] = spec.dataset.describe()
            placement["cpu"] = event.environment.get("cpu")
            placement["threads"] = event.environment.get("threads")
            event.environment["placement"] = dict(placement)
        elif isinstance(event, (VariantFinished, VariantFailed)):
            _on_the_driver(event.result, placement)
            if isinstance(event, VariantFailed):
                event.error = event.result.error or event.error
        elif isinstance(event, StudyFinished):
            result = event.result
            result.model["path"] = spec.model.path
            result.dataset["spec"] = spec.dataset.describe()
            result.spec = spec.to_dict()
            for variant in result.results:
                _on_the_driver(variant, placement)


def _on_the_driver(variant: Any, placement: dict[str, Any]) -> None:
    variant.source_path = None  # built on the node, in a folder that is gone
    _name_missing_runtime(variant, placement)


def _name_missing_runtime(variant: Any, placement: dict[str, Any]) -> None:
    """A variant that failed because its runtime is not installed on the node says so in those words."""
    error = variant.error or ""
    if "ModuleNotFoundError" not in error and "No module named" not in error:
        return
    missing = [name for name, present in placement.get("runtimes", {}).items() if not present]
    where = f"target {placement['target']}" if placement.get("target") else f"node {placement.get('host')}"
    runtime = ", ".join(missing) if missing else "a module it needs"
    variant.error = f"{variant.label} cannot run on {where}: {runtime} is not installed there."
