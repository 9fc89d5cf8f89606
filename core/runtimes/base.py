"""The small interface every runtime gives the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class Runner(Protocol):
    """Runs one variant. Created with its thread count already pinned."""

    #: "pytorch", "onnxruntime" or "litert".
    runtime: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run a batch of float32 inputs; return the first output as float32 (N, ...)."""
        ...

    def prepare_call(self, x: np.ndarray) -> Callable[[], object]:
        """Return a zero-argument function that runs one inference on ``x``.

        Everything that is not inference (conversion, binding, allocation) happens
        here, before timing starts; the function itself is what the harness times.
        """
        ...

    def close(self) -> None:
        ...

    # Optional: ``reopener() -> Callable[[], Runner]``, what makes a fresh runner of the same file (ONNX
    # Runtime, LiteRT). The engine then closes a measured variant at once and reopens it for the re-check.
