"""A log file in QuantBench's data folder, so no error is ever silent."""

from __future__ import annotations

import logging
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOGGER_NAME = "quantbench"


def quiet_runtime_consoles() -> None:
    """Before a runtime loads: keep its own diagnostics off the terminal. PyTorch's profiler library (the
    layer analysis uses it) writes "profiler_start", "profiler_stop" and, on a machine without a GPU,
    "gpuGetDeviceCount failed" lines at every profile; level 6 keeps them all back. A value the user set stays."""
    import os

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")


def log_dir(home: Path | str | None = None) -> Path:
    from core.files.home import resolve_home

    return Path(resolve_home(home)) / "logs"


def setup_logging(home: Path | str | None = None) -> Path:
    """Send the ``quantbench`` logger to ``<home>/logs/quantbench.log``; returns the file's path."""
    folder = log_dir(home)
    path = folder / "quantbench.log"
    logger = logging.getLogger(LOGGER_NAME)
    if any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return path  # an unwritable data folder must not stop the work itself
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path


def log_exception(exc: BaseException, context: str, home: Path | str | None = None) -> Path:
    """Write ``exc`` with its traceback to the log; returns the log's path for the user message."""
    path = setup_logging(home)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logging.getLogger(LOGGER_NAME).error("%s\n%s", context, text)
    return path
