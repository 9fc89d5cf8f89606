"""Calls into onnxruntime.quantization as the schemes make them: quietly (it logs, warns and prints freely), and
in a chosen working directory (it resolves external data and writes scratch files relative to it)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def current_directory(folder: Path) -> Iterator[None]:
    """Work in ``folder`` for a while (one such change at a time), then go back."""
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an onnxruntime.quantization call without its logging, warnings and prints on stdout."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    finally:
        root.setLevel(level)
