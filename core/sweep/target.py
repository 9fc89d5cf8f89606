"""One study measured on a target device: the window's Run on a cluster's ``device:NAME`` node.

``target_engine(where)`` is an engine like ``run_study`` (``(spec, cancel) -> events``): the study runs as a Ray
streaming task on the target (its files shipped through the object store), its timing passes the node's gate,
and its events come back as the engine yields them there, so the window draws the study live as it draws one run
here. Cancel ends the task within a poll (a quarter of a second).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from core.errors import BadInput, Cancelled
from core.study.cancel import CancelToken
from core.study.events import Event
from core.study.spec import StudySpec
from core.sweep.where import Where


def target_engine(where: Where, limits: dict[str, Any] | None = None) -> Callable[[StudySpec, CancelToken],
                                                                                   Iterator[Event]]:
    """An engine that runs each study on ``where``'s target (or any node of the cluster when it names none);
    ``limits``: the study process's ``max_memory_bytes`` and ``hang_timeout_s`` there (default: the node's)."""

    def engine(spec: StudySpec, cancel: CancelToken) -> Iterator[Event]:
        return run_on_target(spec, cancel, where, limits)

    return engine


def run_on_target(spec: StudySpec, cancel: CancelToken | None, where: Where,
                  limits: dict[str, Any] | None = None) -> Iterator[Event]:
    """Run ``spec`` as a Ray task where ``where`` says, yielding its events as they come; BadInput for what the
    study's own files or the cluster refuse, Cancelled when ``cancel`` stops it."""
    import ray

    from core.sweep.ray_runner import POLL_S, check_target, connect, ensure_gates, task_options
    from core.sweep.remote import RemoteStudy, pack, stream_remote_study, study_paths

    cancel = cancel or CancelToken()
    ours = connect(where)
    try:
        check_target(where)
        gates = ensure_gates()
        paths = study_paths(spec)
        refs = [ray.put(_packed(path, pack)) for path in paths]
        options = {"num_returns": "streaming", **task_options(spec, where)}
        stream = ray.remote(stream_remote_study).options(**options).remote(
            RemoteStudy(spec=spec, key=spec.study_id, target=where.target, paths=paths, limits=dict(limits or {})),
            *refs)
        while True:
            if cancel.cancelled:
                ray.cancel(stream, force=True)
                for gate in gates.values():
                    gate.forget.remote(spec.study_id)
                raise Cancelled("the study was cancelled")
            ready, _ = ray.wait([stream], timeout=POLL_S)
            if not ready:
                continue
            try:
                kind, value = ray.get(next(stream))
            except StopIteration:
                return
            if kind == "event":
                yield value
            elif kind == "error":
                if value["kind"] == "bad_input":
                    raise BadInput(value["error"])
                raise RuntimeError(value["error"])
    finally:
        if ours:
            ray.shutdown()


def _packed(path: str, pack: Callable[[str], bytes]) -> bytes:
    try:
        return pack(path)
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read to send it to the cluster ({exc.strerror}).") from None
