"""Measuring one candidate file: its outputs on the evaluation samples, accuracy (or agreement), SQNR, latency.

Everything stops promptly through a ``StopToken``: the caller's cancel or the search's deadline, checked
between evaluation chunks and between timing blocks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import Cancelled
from core.study.cancel import CancelToken

#: Evaluation samples per ONNX Runtime call; cancellation is checked between chunks.
EVAL_CHUNK = 64


class StopToken(CancelToken):
    """Set when the caller cancels or when the deadline (``time.monotonic()`` seconds) passes."""

    def __init__(self, parent: CancelToken | None = None, deadline: float | None = None) -> None:
        super().__init__()
        self.parent = parent
        self.deadline = deadline

    @property
    def cancelled(self) -> bool:
        if super().cancelled:
            return True
        if self.parent is not None and self.parent.cancelled:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    @property
    def by_caller(self) -> bool:
        """True when the stop came from the caller's cancel rather than the deadline."""
        return self.parent is not None and self.parent.cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("the search was cancelled" if self.by_caller else "the search reached its time limit")


def open_runner(path: Path, threads: int) -> Any:
    """An ONNX Runtime session on ``path`` with the study's session options (core.runtimes.ort_runner)."""
    from core.runtimes.ort_runner import OrtRunner

    return OrtRunner(path, threads)


def predict(runner: Any, x: np.ndarray, stop: CancelToken) -> np.ndarray:
    """The runner's first output on ``x``, chunk by chunk, checking ``stop`` between chunks."""
    outs = []
    for start in range(0, len(x), EVAL_CHUNK):
        stop.raise_if_cancelled()
        outs.append(runner.predict(x[start : start + EVAL_CHUNK]))
    return np.concatenate(outs, axis=0)


def accuracy(out: np.ndarray, base_out: np.ndarray, y: np.ndarray | None) -> float:
    """Top-1 accuracy against ``y``; without labels, agreement with the float model's predicted classes."""
    from core.measures.task_metrics import predicted_labels

    pred = predicted_labels(out)
    truth = predicted_labels(base_out) if y is None else np.asarray(y).reshape(-1).astype(np.int64)
    return float(np.mean(pred == truth)) if len(pred) else 0.0


def sqnr_db(out: np.ndarray, base_out: np.ndarray) -> float | None:
    """Output SQNR against the float model (core.measures.fidelity: capped, never inf)."""
    from core.measures.fidelity import fidelity

    return fidelity(base_out, out, classification=False)["sqnr_db"]


def latency_ms(runner: Any, x: np.ndarray, threads: int, max_time_s: float, stop: CancelToken) -> dict[str, float]:
    """p50 and p99 (ms per call) of one sample, with the study's harness (core.engine.timing) on a short budget."""
    stats, _ = timed(runner, x, threads, max_time_s, stop)
    return brief(stats)


def brief(stats: Any) -> dict[str, float]:
    """The candidate's ``latency_ms``: p50 and p99 of a LatencyStats, rounded as the tune JSON writes them."""
    return {"p50": round(stats.p50, 4), "p99": round(stats.p99, 4)}


def timed(
    runner: Any, x: np.ndarray, threads: int, max_time_s: float, stop: CancelToken, batch_size: int = 1
) -> tuple[Any, list[float]]:
    """(LatencyStats, every kept sample in ms) of calls on ``batch_size`` samples, with the study's harness."""
    from core.engine.timing import LatencyHarness
    from core.measures.latency_stats import latency_stats
    from core.study.spec import TimingSpec

    spec = TimingSpec(threads=threads, warmup_runs=3, warmup_s=0.05, min_samples=20, max_time_s=max_time_s,
                      batch_size=batch_size)
    run = LatencyHarness(runner.prepare_call(x[:batch_size]), spec, cancel=stop).measure()
    if run.stop_reason == "cancelled" or not run.samples_ms:
        stop.raise_if_cancelled()
        raise Cancelled("timing was cancelled")
    stats = latency_stats(run.samples_ms, block_size=run.block_size, first_ms=run.first_ms, batch_size=batch_size)
    stats.stop_reason = run.stop_reason
    return stats, list(run.samples_ms)
