"""The thin adapter between the engine's generator and Qt signals.

A StudyWorker is moved to a QThread by the controller. It iterates the engine
and emits one signal per event (the engine already batches latency samples
about every 50 ms, so the GUI thread is never flooded). It never touches a
widget; everything it sends is plain data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.isolation import DEFAULT_HANG_TIMEOUT_S
from core.errors import BadInput, Cancelled, QuantBenchError
from core.study.cancel import CancelToken
from core.study.events import Event
from core.study.spec import StudySpec

log = logging.getLogger(__name__)

RunStudy = Callable[[StudySpec, CancelToken], Iterator[Event]]


def engine_run_study(spec: StudySpec, cancel: CancelToken, workdir: Path | None = None) -> Iterator[Event]:
    """The engine in this process (in the worker thread); imported on first use so the window opens fast.

    ``workdir``: where the variants are built (None: a temporary folder removed at the end)."""
    from core.engine.run import run_study

    return run_study(spec, cancel=cancel, workdir=workdir)


def isolated_run_study(spec: StudySpec, cancel: CancelToken, workdir: Path | None = None) -> Iterator[Event]:
    """The engine in a child process: a crashing runtime cannot take the window down, and the
    window's own Python work does not compete with the timing loop for the interpreter lock.
    A native crash of the child leaves its faulthandler trace in the log folder."""
    from core.engine.isolation import run_study_isolated
    from core.files.logs import log_dir

    return run_study_isolated(spec, cancel, workdir=workdir, log_dir=log_dir(), **_limits)


#: The ceilings every isolated study of this window runs under: the command line's defaults
#: (memory: the engine's default share) until ``set_study_limits`` is called.
_limits: dict[str, Any] = {"hang_timeout_s": DEFAULT_HANG_TIMEOUT_S}


def set_study_limits(*, hang_timeout_s: float | None, max_memory_bytes: int | None) -> None:
    """The memory ceiling and hang limit of the window's study processes (``--max-memory``,
    ``--hang-timeout`` on the window's command line)."""
    _limits.update(hang_timeout_s=hang_timeout_s, max_memory_bytes=max_memory_bytes)


def study_limits() -> dict[str, Any]:
    """The ceilings set with ``set_study_limits``, as ``run_study_isolated`` options (a sweep's studies too)."""
    return dict(_limits)


class StudyWorker(QObject):
    #: Every engine event, in the order the engine yielded it.
    event_emitted = Signal(object)
    #: The study stopped with an error before its StudyFinished: (study id, one human sentence).
    study_failed = Signal(str, str)
    #: Always the last signal, whatever happened.
    finished = Signal()

    def __init__(self, spec: StudySpec, cancel: CancelToken, run_study: RunStudy = engine_run_study) -> None:
        super().__init__()
        self._spec = spec
        self._cancel = cancel
        self._run_study = run_study

    @Slot()
    def run(self) -> None:
        events: Iterator[Event] | None = None
        try:
            events = self._run_study(self._spec, self._cancel)
            for event in events:
                self.event_emitted.emit(event)
        except Cancelled:
            pass  # the engine may stop by raising; the controller already knows it asked to cancel
        except (BadInput, QuantBenchError) as exc:
            self.study_failed.emit(self._spec.study_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - anything else is reported, never lost in a thread
            log.exception("the study stopped with an internal error")
            self.study_failed.emit(self._spec.study_id, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # run the engine's cleanup (temporary files, sessions) now, in this thread
            self.finished.emit()
