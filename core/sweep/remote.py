"""What runs inside a sweep's Ray task, on whichever node Ray chose: the study's files arrive through Ray's object
store (no shared file system), the engine runs in the task's process, each timing phase passes the node's gate,
and the study's recorded events come back with where they were measured."""

from __future__ import annotations

import io
import socket
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import QuantBenchError
from core.files.scratch import Scratch
from core.study.spec import DatasetKind, DatasetSpec, StudySpec
from core.sweep.load import OtherLoad

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
    #: The study process's memory ceiling and hang timeout (``max_memory_bytes``, ``hang_timeout_s``) as the
    #: driver was given them; a missing key: the same default as a study run here, reckoned on the node.
    limits: dict[str, Any] = field(default_factory=dict)


def study_paths(spec: StudySpec) -> list[str]:
    """Every file or folder the study reads: the model, --variant files, a file dataset and its calibration."""
    paths = [spec.model.path, *(v.path for v in spec.variants if v.path)]
    for ds in (spec.dataset, spec.dataset.calibration_dataset()):
        if ds is not None and ds.kind in PATH_KINDS:
            paths.append(ds.location)
    return list(dict.fromkeys(paths))


def pack(path: str) -> bytes:
    """A file's bytes; an ONNX file with its external data files as an uncompressed tar of the model and those
    files, each at its place beside the model (``M``); a folder as an uncompressed tar (folder datasets)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return b"D" + _tar([(p, p.name)])
    companions = external_data_names(p)
    if companions:
        return b"M" + _tar([(p, p.name), *((p.parent / name, name) for name in companions)])
    return b"F" + p.read_bytes()


def external_data_names(path: Path) -> list[str]:
    """The external data files an ONNX model reads, as names relative to its folder; [] for any other file (TFLite,
    TorchScript, a PyTorch file: single files) or a file the node will refuse anyway with its own message. External
    data that would escape the model's folder is refused here, in the words the loader uses."""
    from core.errors import BadInput
    from core.models.detect import FileKind, detect_file

    try:
        if not path.is_file() or detect_file(path) is not FileKind.ONNX:
            return []
    except BadInput:
        return []  # not a model: the study on the node says what it is
    import onnx

    from core.models.onnx_model import _all_tensors, check_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a damaged file: the node's loader names the problem
        return []
    check_external_data(path, model)  # BadInput: a location outside the folder, a link, a missing file
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    names = [ExternalDataInfo(t).location for t in _all_tensors(model.graph) if uses_external_data(t)]
    return list(dict.fromkeys(names))


def _tar(members: list[tuple[Path, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for source, name in members:
            tar.add(source, arcname=name)
    return buffer.getvalue()


def unpack(blob: bytes, original: str, into: Path) -> str:
    """Write a packed file, model with its external data, or folder under ``into`` (same base names as on the
    driver); return the new path of the file or folder itself."""
    name = Path(original).name or "file"
    if blob[:1] in (b"D", b"M"):
        with tarfile.open(fileobj=io.BytesIO(blob[1:]), mode="r") as tar:
            tar.extractall(into, filter="data")
        return str(into / name)
    target = into / name
    target.write_bytes(blob[1:])
    return str(target)


def shipped_files(blob: bytes, original: str) -> dict[str, Any]:
    """What a packed blob carried to the node: the driver's path, the files (names relative to it) and bytes."""
    if blob[:1] in (b"D", b"M"):
        with tarfile.open(fileobj=io.BytesIO(blob[1:]), mode="r") as tar:
            files = [m.name for m in tar.getmembers() if m.isfile()]
    else:
        files = [Path(original).name]
    return {"path": original, "files": files, "bytes": len(blob) - 1}


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
    """Which runtimes this node can import (by name: PyTorch, ONNX Runtime, LiteRT), asked without importing them."""
    return {name: _findable(module) for module, name in RUNTIME_MODULES.items()}


def _findable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook that refuses the module: not there
        return False


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

    from core.study.events import StudyFinished
    from core.sweep.guard import guarded_study, node_limits

    node = ray.get_runtime_context().get_node_id()
    placement: dict[str, Any] = {
        "host": socket.gethostname(), "node": node, "target": job.target, "runtimes": node_runtimes(),
        "timing_intervals": [], "others_meanwhile": [], "started": time.time(),
    }
    memory, hang = node_limits(job.limits)
    placement["max_memory_bytes"], placement["hang_timeout_s"] = memory, hang
    gate = _own_gate(node)  # None on a node without the quantbench_timing resource: timings not exclusive
    placement["timing_exclusive"] = gate is not None
    if gate is not None:
        ray.get(gate.enter.remote(job.key))
    others: set[str] = set()
    finished = None
    try:
        with Scratch("sweep") as tmp:  # what a task cancelled by force leaves goes when the next one starts
            moved = {}
            placement["shipped"] = []
            for index, (path, blob) in enumerate(zip(job.paths, blobs, strict=True)):
                folder = Path(tmp) / f"in{index}"
                folder.mkdir()
                moved[path] = unpack(blob, path, folder)
                placement["shipped"].append({**shipped_files(blob, path), "copy": moved[path]})
            spec = localize(job.spec, moved)
            load = OtherLoad()
            section = _gate_section(gate, job.key, placement["timing_intervals"], others)
            # In a study process of its own, under the memory ceiling and the hang timeout (core.sweep.guard).
            for event in guarded_study(spec, Path(tmp) / "work", section, load, job.limits):
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


def _gate_section(gate: Any, key: str, intervals: list[list[float]], others: set[str]) -> Any:
    """The section each timing run of the study holds (``core.sweep.guard`` enters it for the study process): the
    node's gate, and the run's interval recorded."""
    import ray

    @contextmanager
    def section() -> Iterator[None]:
        if gate is not None:
            ray.get(gate.acquire.remote(key))
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            if gate is not None:
                others.update(ray.get(gate.release.remote(key)))
            intervals.append([start, end])

    return section


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
