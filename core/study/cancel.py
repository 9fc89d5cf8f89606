"""Cooperative cancellation shared by the engine and whoever drives it."""

from __future__ import annotations

import threading

from core.errors import Cancelled


class CancelToken:
    """A flag the driver sets and the engine checks between (and inside) steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("the study was cancelled")
