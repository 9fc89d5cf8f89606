"""Timing a built variant: the harness's samples streamed out, then summarised into its latency figures."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from core.engine.state import StudyState
from core.errors import BadInput, Cancelled
from core.study.events import Event, LatencySamples, Progress
from core.study.result import VariantResult


def time_variant(state: StudyState, label: str, runner: Any, result: VariantResult) -> Generator[Event, None, None]:
    """Time ``runner`` on one timing batch, yielding the samples as they come; fills ``result.latency``."""
    from core.engine.timing import LatencyHarness
    from core.measures.latency_stats import latency_stats, throughput_per_s

    timing = state.spec.timing
    x = state.dataset.x[: timing.batch_size]
    if len(x) < timing.batch_size:
        raise BadInput(f"the dataset has {len(x)} samples, fewer than the timing batch size {timing.batch_size}.")
    yield Progress(state.spec.study_id, label, "timing", 0, timing.min_samples, f"timing {label}")
    harness = LatencyHarness(runner.prepare_call(x), timing, cancel=state.cancel)
    total = 0
    for batch in harness.batches():
        total += len(batch)
        yield LatencySamples(state.spec.study_id, label, batch, total)
    run = harness.run
    if run.stop_reason == "cancelled":
        raise Cancelled("the study was cancelled")
    result.samples_ms = list(run.samples_ms)
    result.latency = latency_stats(
        run.samples_ms,
        block_size=run.block_size,
        first_ms=run.first_ms,
        batch_size=timing.batch_size,
        seed=state.spec.seed,
    )
    result.latency.warmup_runs = run.warmup_runs
    result.latency.warmup_ms = round(run.warmup_ms, 4)
    result.latency.stop_reason = run.stop_reason
    result.throughput_per_s = throughput_per_s(result.latency.p50, timing.batch_size)
    if result.metrics is not None and x.dtype.names is not None or state.task.value == "causal-lm":
        from core.models.io_spec import tokens_in

        # A model over tokens: its throughput in real (unpadded) tokens of the timed batch per second.
        tokens = throughput_per_s(result.latency.p50, tokens_in(x))
        if tokens is not None:
            result.metrics = {**(result.metrics or {}), "tokens_per_s": tokens}
    if result.latency.noisy:
        result.notes.append(
            f"noisy timing: interquartile range is {result.latency.iqr_rel:.0%} of the median (over 10 %)"
        )
