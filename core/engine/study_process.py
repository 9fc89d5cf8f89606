"""The parent's handle on one study process: start it (spawned, or forked while that is safe), ask it to
stop, end it, and remove its private folder."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from core.engine.study_child import child_main
from core.files.scratch import Scratch

#: How long an unused study process may take to end by itself before it is killed (see StudyProcess.discard).
DISCARD_WAIT_S = 0.3


class StudyProcess:
    """A spawned study process, possibly started ahead of time (see ``prewarm``).

    It works in a private folder of its own (its current directory and TMPDIR), made here and
    removed here once it has ended, however it ended: a runtime that drops a temporary file in
    the current directory (ONNX Runtime's shape inference does) leaves nothing behind. The folder is a
    ``core.files.scratch.Scratch``: should this process and the study process both be killed, the next
    study process started on the machine removes it."""

    def __init__(self, proc: Any, receiver: Any, control: Any, log_path: str | None, scratch: Scratch) -> None:
        self.proc, self.receiver, self.control, self.log_path = proc, receiver, control, log_path
        self.scratch = scratch
        self.folder = str(scratch.path)

    @classmethod
    def spawn(cls, log_path: str | None, allow_fork: bool = False) -> StudyProcess:
        import multiprocessing as mp

        ctx = mp.get_context(start_method() if allow_fork else "spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        # Commands and Cancel travel down their own pipe, not a multiprocessing.Event: an Event whose
        # waiter died can block set() for ever, and a closed pipe also tells the child its parent is gone.
        control_in, control_out = ctx.Pipe(duplex=False)
        # A forked child inherits the parent's ends too; holding the control pipe's write end, it would
        # never see the parent go (a window that aborted left its prewarmed child waiting for ever).
        parent_ends = (receiver.fileno(), control_out.fileno()) if ctx.get_start_method() == "fork" else ()
        scratch = Scratch("study")
        proc = ctx.Process(
            target=_child_entry, args=(sender, control_in, log_path, str(scratch.path), parent_ends),
            name="quantbench-study", daemon=True,
        )
        proc.start()
        sender.close()
        control_in.close()
        return cls(proc, receiver, control_out, log_path, scratch)

    def request_stop(self) -> None:
        """Ask the child to stop the study (as Cancel does)."""
        with contextlib.suppress(BrokenPipeError, OSError):  # the child may already be gone
            self.control.send("stop")

    def end(self, kill_after_s: float) -> None:
        """Once a study is over: stop the child if it still runs (killing it after ``kill_after_s``),
        close its pipes and remove its private folder."""
        proc = self.proc
        if proc.is_alive():
            self.request_stop()
            proc.join(kill_after_s)
            if proc.is_alive():
                proc.kill()
        proc.join(1.0)
        self.receiver.close()
        self.control.close()
        self.remove_private_folder()

    def remove_private_folder(self) -> None:
        """Delete the child's folder and whatever it left there (call once the child has ended)."""
        self.scratch.remove()

    def discard(self) -> None:
        """End an unused process: closing its pipe ends it once it has imported its runtimes; one still
        importing (the window quit right after a study started the next) is killed, since it holds nothing."""
        with contextlib.suppress(OSError):  # already closed: nothing to tell the process
            self.control.close()
        self.proc.join(DISCARD_WAIT_S)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1.0)
        self.remove_private_folder()


def _child_entry(sender: Any, control_in: Any, log_path: str | None, folder: str, parent_ends: tuple[int, ...]) -> None:
    """In the child: close the parent's pipe ends a fork copied (see ``StudyProcess.spawn``), then run the study."""
    for fd in parent_ends:
        with contextlib.suppress(OSError):
            os.close(fd)
    child_main(sender, control_in, log_path, folder)


def start_method() -> str:
    """"spawn": a fresh interpreter, safe whatever this process holds. Forking is only safe before
    this process has started a second thread (Qt, a thread pool) or loaded a library with threads
    of its own (numpy's BLAS, torch, onnxruntime), so only the launcher's first prewarm asks for it
    (``prewarm(allow_fork=True)``): on Linux, as the very first thing the window does, it saves the
    new interpreter's start-up, a few tenths of a second on the way to the demo's first result.

    Qt counts from its GUI module on: QtCore alone starts no thread, and the desktop bundle's start-up
    (PyInstaller's PySide6 hook) imports it before ``quantbench`` runs, which must not cost the bundle its fork."""
    import sys

    heavy = {"numpy", "torch", "onnxruntime", "PySide6.QtGui", "PySide6.QtWidgets"}
    if sys.platform == "linux" and threading.active_count() == 1 and not heavy & set(sys.modules):
        return "fork"
    return "spawn"
