"""A sweep's study on its node under the same guards as a study run here (``core.engine.isolation``).

The Ray task does not run the engine in its own process: it spawns a study process (``core.engine.study_child``)
under the memory ceiling, relays its events, and stops it when one step stays silent past the hang timeout. A
study that runs out of memory, hangs or crashes then fails with one sentence, and the Ray worker, the node's gate
and the rest of the sweep are unharmed.

Each timing run of the study still passes the node's gate: the study process is not a Ray worker, so its timing
sections ask the Ray task over a pipe ("acquire", then "release" with how busy the rest of the machine was
meanwhile), and the task holds the gate for it. The wait for the gate never counts as a hang.

Once a study has ended, the Ray worker starts the next study process at once (as the window does after each study):
the worker's next task then finds the interpreter started and the runtimes imported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from core.study.events import Event
from core.study.spec import StudySpec

#: How often the relay looks at the study process's pipes (seconds).
POLL_S = 0.02
#: ``limits`` key of the memory ceiling; missing: ``core.memory_limit``'s share of the node's memory.
MEMORY = "max_memory_bytes"
#: ``limits`` key of the hang timeout; missing: the drivers' default (``DEFAULT_HANG_TIMEOUT_S``).
HANG = "hang_timeout_s"

#: This worker's next study process and its gate pipe, started when the last study ended (see ``_take``).
_warm: tuple[Any, Any] | None = None


def node_limits(limits: dict[str, Any]) -> tuple[int | None, float | None]:
    """The memory ceiling and the hang timeout a study on this node runs under: what the sweep's driver was given
    (--max-memory, --hang-timeout), else the same defaults as a study run here, reckoned for this node."""
    from core.engine.isolation import DEFAULT_HANG_TIMEOUT_S
    from core.memory_limit import default_limit_bytes

    memory = limits[MEMORY] if MEMORY in limits else default_limit_bytes()
    hang = limits.get(HANG, DEFAULT_HANG_TIMEOUT_S)
    return memory, hang


def guarded_study(
    spec: StudySpec,
    workdir: Path,
    section: Callable[[], AbstractContextManager[object]],
    load: Any,
    limits: dict[str, Any],
) -> Iterator[Event]:
    """``spec``'s events, the study run in a spawned study process under ``limits``' memory ceiling and hang
    timeout. Each timing run of the study is inside ``section()`` here; the study process's measure of the rest
    of the machine's load during those runs is added to ``load`` (``core.sweep.load.OtherLoad``).

    A study that ran out of memory, hung or crashed ends as ``run_study_isolated`` ends one: the running variant
    fails with the reason, then a StudyFinished with what had finished (BadInput when it died before starting)."""
    from core.engine.isolation import ChildCrashed, _exit_reason, _hang_limit, _Tracker
    from core.printable import printable

    memory, hang_timeout_s = node_limits(limits)
    child, gate = _take()
    with contextlib.suppress(BrokenPipeError, OSError):
        child.control.send(("run", spec, workdir, memory))
    tracker = _Tracker(spec)
    held: list[AbstractContextManager[object]] = []
    end_reason: str | None = None
    try:
        last_message = time.monotonic()
        while not tracker.finished:
            if gate.poll(0):
                _serve_gate(gate, section, held, load)
                last_message = time.monotonic()  # waiting for the gate is not a hang
                continue
            if child.receiver.poll(POLL_S):
                try:
                    kind, payload = child.receiver.recv()
                except (EOFError, OSError):
                    break
                last_message = time.monotonic()
                event = _event_from(kind, payload)
                if event is not None:
                    tracker.see(event)
                    yield event
                continue
            if not child.proc.is_alive():
                if child.receiver.poll(0) or gate.poll(0):
                    continue  # drain what the process sent just before it exited
                break
            limit = _hang_limit(hang_timeout_s, tracker)
            if limit is not None and time.monotonic() - last_message > limit:
                child.proc.kill()
                end_reason = tracker.hung(limit)
                break
        if tracker.finished:
            return
    finally:
        for cm in held:  # the process died holding the gate: free the node
            cm.__exit__(None, None, None)
        held.clear()
        child.end(1.0)
        gate.close()
        _prewarm()
    reason = end_reason or "the study process " + _exit_reason(child.proc.exitcode, memory)
    if tracker.started is None:
        raise ChildCrashed(f"{printable(spec.model.path)} could not be opened: {reason}.")
    yield from tracker.finish(reason, cancelled=False)


def _event_from(kind: str, payload: Any) -> Event | None:
    from core.errors import BadInput

    if kind == "event":
        return payload
    if kind == "bad_input":
        raise BadInput(payload)
    if kind == "error":
        raise RuntimeError(payload)
    return None


def _serve_gate(gate: Any, section: Callable[[], AbstractContextManager[object]],
                held: list[AbstractContextManager[object]], load: Any) -> None:
    """One request of the study process's timing section: hold the node's gate for it, or let it go."""
    try:
        message = gate.recv()
    except (EOFError, OSError):
        return
    if message == "acquire":
        cm = section()
        cm.__enter__()
        held.append(cm)
        with contextlib.suppress(BrokenPipeError, OSError):
            gate.send("go")
    elif isinstance(message, tuple) and message[0] == "release":
        _, other_s, wall_s, readable = message
        load.merge(other_s, wall_s, readable)
        if held:
            held.pop().__exit__(None, None, None)


def _take() -> tuple[Any, Any]:
    """The study process started after this worker's last study, if it is still there; else a new one."""
    global _warm
    warm, _warm = _warm, None
    if warm is not None:
        child, gate = warm
        if child.proc.is_alive():
            return warm
        child.discard()
        gate.close()
    return _spawn()


def _prewarm() -> None:
    """Start this worker's next study process now (it imports the runtimes while the worker waits for a task)."""
    global _warm
    if _warm is None:
        with contextlib.suppress(OSError):
            _warm = _spawn()


def _spawn() -> tuple[Any, Any]:
    """A study process (``core.engine.study_process.StudyProcess``) whose timing runs ask this process for the
    gate, and this process's end of that pipe."""
    import multiprocessing as mp

    from core.engine.study_process import StudyProcess
    from core.files.scratch import Scratch

    ctx = mp.get_context("spawn")  # a Ray worker holds threads: never fork it
    receiver, sender = ctx.Pipe(duplex=False)
    control_in, control_out = ctx.Pipe(duplex=False)
    gate_here, gate_there = ctx.Pipe(duplex=True)
    scratch = Scratch("study")
    proc = ctx.Process(target=_child_entry, args=(sender, control_in, gate_there, str(scratch.path)),
                       name="quantbench-study", daemon=True)
    proc.start()
    sender.close()
    control_in.close()
    gate_there.close()
    return StudyProcess(proc, receiver, control_out, None, scratch), gate_here


def _child_entry(sender: Any, control_in: Any, gate: Any, folder: str) -> None:
    """In the study process: end with the Ray task (a task cancelled by force takes its study with it), pass each
    timing run through the task's gate, then run the study as every study process does."""
    from core.engine.study_child import child_main
    from core.engine.timing import timing_section_hook

    _end_with_parent()
    with timing_section_hook(_gate_section(gate)):
        child_main(sender, control_in, None, folder)


def _gate_section(gate: Any) -> Callable[[], AbstractContextManager[None]]:
    from core.sweep.load import OtherLoad

    @contextmanager
    def section() -> Iterator[None]:
        gate.send("acquire")
        gate.recv()  # "go": the node's gate is ours
        load = OtherLoad()
        mark = load.mark()
        try:
            yield
        finally:
            load.add(mark)
            gate.send(("release", load.other_s, load.wall_s, load.readable))

    return section


def _end_with_parent() -> None:
    """Linux: be killed when the process that started this one dies (PR_SET_PDEATHSIG), as a force-cancelled Ray
    task's worker does; elsewhere the study process notices its closed pipe at the next step."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
