"""No error is silent: whatever goes wrong reaches the user and the log file.

``ErrorReporter`` writes an exception with its traceback to
``QUANTBENCH_HOME/logs/quantbench.log`` and shows one line about it in the
window: in the status bar and in a non-modal box that names the log.
``install`` routes ``sys.excepthook`` (the GUI thread, which is where an
exception raised in a Qt slot ends up) and ``threading.excepthook`` (Python
threads) to it. ``enable_fault_log`` makes a native crash of the window's own
process leave a faulthandler trace in the same folder; the study's child
process writes its own (see ``core.engine.isolation``).
"""

from __future__ import annotations

import faulthandler
import logging
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow, QMessageBox

from core.files.logs import LOGGER_NAME, log_dir, log_exception, setup_logging

#: Module loggers whose records also go to the log file (``log.exception`` in the worker, the loaders).
MODULE_LOGGERS = ("qtapp", "core")
FAULT_LOG = "faults.log"

_fault_file: IO[str] | None = None  # kept open for as long as the process lives


def setup_app_logging(home: Path | str | None = None) -> Path:
    """Open the log file and send the ``qtapp`` and ``core`` module loggers there too; returns its path."""
    path = setup_logging(home)
    handlers = [h for h in logging.getLogger(LOGGER_NAME).handlers
                if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path]
    for name in MODULE_LOGGERS:
        logger = logging.getLogger(name)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
    return path


def log_study_failure(study_id: str, message: str, home: Path | str | None = None) -> Path:
    """Record that a study stopped with an error (the worker logged any traceback already)."""
    path = setup_app_logging(home)
    logging.getLogger(LOGGER_NAME).error("study %s stopped: %s", study_id, message)
    return path


def enable_fault_log(home: Path | str | None = None) -> Path | None:
    """Make a segfault or abort of this process write its Python stacks to ``logs/faults.log``.

    Leaves faulthandler alone when something else already enabled it (``python -X
    faulthandler``, pytest): that one was asked for. Returns the file, or None.
    """
    global _fault_file
    if faulthandler.is_enabled():
        return None
    path = log_dir(home) / FAULT_LOG
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _fault_file = path.open("a", encoding="utf-8")
    except OSError:
        return None  # an unwritable data folder must not stop the window
    faulthandler.enable(_fault_file, all_threads=True)
    return path


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


class ErrorReporter(QObject):
    """Logs errors from any thread and shows them in ``window`` (always from the GUI thread)."""

    #: An error was shown: (one-line message, log file path).
    reported = Signal(str, str)
    _arrived = Signal(str, str)  # from any thread; queued to the GUI thread

    def __init__(self, window: QMainWindow, home: Path | str | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._home = home
        self._box: QMessageBox | None = None
        self._count = 0
        self._previous_hooks: tuple[Any, Any] | None = None
        self._arrived.connect(self._show, Qt.ConnectionType.QueuedConnection)

    # --- reporting ---------------------------------------------------
    def report(self, exc: BaseException, context: str) -> Path:
        """Log ``exc`` with its traceback and show it in the window; safe from any thread."""
        path = log_exception(exc, context, self._home)
        self._arrived.emit(f"{context}: {type(exc).__name__}: {first_line(str(exc))}", str(path))
        return path

    @property
    def box(self) -> QMessageBox | None:
        """The message box of the last error (None before the first)."""
        return self._box

    @Slot(str, str)
    def _show(self, message: str, path: str) -> None:
        self._count += 1
        self._window.statusBar().showMessage(f"Error: {message} (details in {path})")
        if self._box is None:
            self._box = QMessageBox(QMessageBox.Icon.Critical, "QuantBench: something went wrong", "",
                                    QMessageBox.StandardButton.Close, self._window)
            self._box.setWindowModality(Qt.WindowModality.NonModal)
            self._box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        earlier = f"\n\n{self._count - 1} earlier error(s) are in the same log." if self._count > 1 else ""
        self._box.setText(message)
        self._box.setInformativeText(f"The details, with the traceback, are in {path}.{earlier}")
        self._box.show()
        if QGuiApplication.platformName() != "offscreen":  # it cannot raise windows, and warns
            self._box.raise_()
        self.reported.emit(message, path)

    # --- hooks -------------------------------------------------------
    def install(self) -> None:
        """Route uncaught exceptions of the GUI thread (Qt slots included) and Python threads here."""
        if self._previous_hooks is None:
            self._previous_hooks = (sys.excepthook, threading.excepthook)
            sys.excepthook = self._excepthook
            threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        """Put the previous hooks back (main() returns; tests run it in-process)."""
        if self._previous_hooks is not None:
            sys.excepthook, threading.excepthook = self._previous_hooks
            self._previous_hooks = None

    def _excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous = self._previous_hooks[0] if self._previous_hooks else sys.__excepthook__
        if not issubclass(kind, KeyboardInterrupt):
            self._safely_report(exc.with_traceback(tb), "unexpected error")
        previous(kind, exc, tb)  # still printed on the console (and seen by test harnesses)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        previous = self._previous_hooks[1] if self._previous_hooks else threading.__excepthook__
        if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
            name = args.thread.name if args.thread is not None else "a thread"
            self._safely_report(args.exc_value.with_traceback(args.exc_traceback), f"unexpected error in {name}")
        previous(args)

    def _safely_report(self, exc: BaseException, context: str) -> None:
        try:
            self.report(exc, context)
        except Exception:  # noqa: BLE001 - reporting must never raise from inside an except hook
            print(f"quantbench: could not report an error: {exc!r}", file=sys.stderr)
