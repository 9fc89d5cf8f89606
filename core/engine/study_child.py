"""What runs inside the study's child process: import the runtimes, wait for a study, run it, send its events.

The parent's side (spawning, stopping, relaying events) is ``core.engine.study_process`` and
``core.engine.isolation``; the only things the two sides share are the two pipes and
``MEMORY_EXIT_CODE``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import traceback
from typing import Any

from core.errors import BadInput, Cancelled
from core.study.cancel import CancelToken

#: The child exits with this code when loading the study ran into its memory ceiling.
MEMORY_EXIT_CODE = 75


def child_main(conn: Any, control: Any, log_path: str | None, folder: str | None = None) -> None:
    """Entry point of the spawned process: import the runtimes, wait for a study, run it, send every event.

    ``folder``, the process's own place for temporary files, goes with it when it ends: the parent removes it
    too, but a parent that was killed (the window ended by SIGKILL: this process then sees its pipe close and
    stops) never does."""
    if not folder:
        _serve(conn, control, log_path)
        return
    import shutil

    _work_in(folder)
    try:
        _serve(conn, control, log_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _serve(conn: Any, control: Any, log_path: str | None) -> None:
    import faulthandler

    if log_path:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        log = open(log_path, "a")  # noqa: SIM115 - must stay open until the process dies
        faulthandler.enable(log)
        # What runtimes print on their own (warnings, colour-coded log lines) goes to the log, not
        # to the user's terminal: the driver reports everything that matters in its own words.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    else:
        faulthandler.enable()
    # The parent decides about Ctrl-C; the child stops through the cancel event.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from core.engine.run import run_study
    from core.files.logs import quiet_runtime_consoles

    quiet_runtime_consoles()  # a Ray worker's study process does not inherit the launcher's environment
    import_runtimes(stop_early=control.poll)
    try:
        command = control.recv()
    except (EOFError, OSError):
        return  # the parent went away before asking for a study
    if not (isinstance(command, tuple) and command and command[0] == "run"):
        return
    _, spec, workdir, memory_limit = command
    from core.memory_limit import apply_limit, is_allocation_failure

    apply_limit(memory_limit)
    token = CancelToken()

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):  # the parent closed the pipe or died: stop as well
            control.recv()
        token.cancel()

    threading.Thread(target=watch, daemon=True).start()
    try:
        for event in run_study(spec, token, workdir=workdir):
            conn.send(("event", event))
    except BadInput as exc:
        conn.send(("bad_input", str(exc)))
    except Cancelled:
        pass  # the driver asked for the stop: it expects no further message
    except Exception as exc:  # reported to the driver with its traceback
        if is_allocation_failure(exc):
            conn.close()
            os._exit(MEMORY_EXIT_CODE)  # loading the model or data ran into the ceiling: the driver says so
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _work_in(folder: str) -> None:
    """Make ``folder`` this process's current directory and its place for temporary files."""
    import tempfile

    os.chdir(folder)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder


def import_runtimes(stop_early: Any = None) -> None:
    """What every study needs, imported while the process still waits for its study.

    ``stop_early()`` is asked between two modules: once a study has arrived, it starts at once
    and imports the rest as it needs them (a study handed over right at launch, as the demo's
    is, would otherwise wait a second for modules its first variant does not use)."""
    import importlib

    for name in ("numpy", "torch", "core.measures.latency_stats", "core.engine.timing", "core.runtimes.torch_runner",
                 "onnx", "onnxruntime", "core.runtimes.ort_runner", "core.schemes.ort_schemes",
                 "core.schemes.ort_static"):
        if stop_early is not None and stop_early():
            return
        with contextlib.suppress(Exception):  # a missing optional runtime shows up later, with its own message
            importlib.import_module(name)
