"""The latency harness: warm up, pick a block size, time until the median is known.

``LatencyHarness.batches()`` is a generator, like the engine: it yields the new
per-call samples (ms) about every ``TimingSpec.report_every_ms`` so a window can
draw the histogram while timing goes on, and it stops on its own when the 95 %
interval of the median is narrow enough. The clock is injectable so tests can
script it and check every statistic exactly.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from core.measures.latency_stats import ci_half_width_rel
from core.study.cancel import CancelToken
from core.study.spec import TimingSpec

#: The harness's own cost (two clock reads and the loop) may be at most this share of a timed block.
OVERHEAD_SHARE = 0.01
#: No block runs longer than about this, so cancellation and reports stay prompt.
MAX_BLOCK_NS = 10_000_000
#: Upper bound on calls per block (for calls too short for the clock to see).
MAX_BLOCK_SIZE = 10_000
#: Back-to-back clock reads used to estimate the cost of reading the clock.
CLOCK_PROBES = 25


@dataclass
class TimingRun:
    """Everything one timing run measured; ``samples_ms`` are per call."""

    samples_ms: list[float]
    block_size: int
    first_ms: float
    warmup_runs: int
    warmup_ms: float
    stop_reason: str  # "converged" | "max_samples" | "max_time" | "cancelled"
    elapsed_s: float  # measuring time only, warm-up excluded


class LatencyHarness:
    """Times ``fn`` (one inference, prepared beforehand) under a ``TimingSpec``.

    Steps: the first call is timed alone (``first_ms``: lazy initialisation
    shows up here, not in the samples); warm-up runs until both
    ``spec.warmup_runs`` calls and ``spec.warmup_s`` seconds are done; the
    block size k is chosen so that two clock reads and the loop stay under
    1 % of a block; then blocks of k calls are timed, each giving one sample
    of block time / k. Timing stops when the median's 95 % interval is within
    ``spec.target_ci_rel`` (checked at report boundaries, after
    ``spec.min_samples``), at ``spec.max_samples``, after ``spec.max_time_s``
    of measuring, or when ``cancel`` is set (checked between blocks).

    The garbage collector is off while ``fn`` runs and restored to its
    previous state whenever control leaves the harness (at each yield and at
    the end), so the caller's own work never runs with it off.
    """

    def __init__(
        self,
        fn: Callable[[], object],
        spec: TimingSpec,
        *,
        clock: Callable[[], int] = time.perf_counter_ns,
        cancel: CancelToken | None = None,
    ) -> None:
        self._fn = fn
        self._spec = spec
        self._clock = clock
        self._cancel = cancel
        self._run: TimingRun | None = None

    @property
    def run(self) -> TimingRun:
        """The finished run; available once ``batches()`` is exhausted."""
        if self._run is None:
            raise RuntimeError("the timing run is not finished: exhaust batches() first")
        return self._run

    def measure(self) -> TimingRun:
        """Run to the end without looking at the batches."""
        for _ in self.batches():
            pass
        return self.run

    def batches(self) -> Iterator[list[float]]:
        """Yield new samples (ms per call) about every ``spec.report_every_ms``, inside the timing section
        installed with ``timing_section_hook`` (held across the yields: nothing else times on its node meanwhile)."""
        with _timing_section():
            yield from self._batches()

    def _batches(self) -> Iterator[list[float]]:
        self._run = None
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            first_ms = self._time_first()
            warmup_runs, warmup_ns, call_ns = self._warm_up(first_ms)
            if self._cancelled():
                self._run = TimingRun([], 1, first_ms, warmup_runs, warmup_ns / 1e6, "cancelled", 0.0)
                return
            block = choose_block_size(call_ns, 2 * self._clock_read_ns())
            samples: list[float] = []
            stop_reason, elapsed_ns = yield from self._measure(block, samples, gc_was_enabled)
            self._run = TimingRun(
                samples, block, first_ms, warmup_runs, warmup_ns / 1e6, stop_reason, elapsed_ns / 1e9
            )
        finally:
            if gc_was_enabled:
                gc.enable()

    # ------------------------------------------------------------------ steps

    def _time_first(self) -> float:
        clock, fn = self._clock, self._fn
        t0 = clock()
        fn()
        t1 = clock()
        return (t1 - t0) / 1e6

    def _warm_up(self, first_ms: float) -> tuple[int, int, float]:
        """Run until both the call count and the time are reached; return (runs, ns, median call ns). With no
        warm-up asked for, the first call (``first_ms``) is the estimate: no call is made here."""
        clock, fn, spec = self._clock, self._fn, self._spec
        min_ns = spec.warmup_s * 1e9
        times: list[int] = []
        start = clock()
        now = start
        while len(times) < spec.warmup_runs or now - start < min_ns:
            if self._cancelled():
                break
            t0 = clock()
            fn()
            now = clock()
            times.append(now - t0)
        # No warm-up asked for (or cancelled at once): the first call's time is the estimate.
        call_ns = float(sorted(times)[len(times) // 2]) if times else first_ms * 1e6
        return len(times), now - start, call_ns

    def _clock_read_ns(self) -> float:
        """Median cost of one clock read, from back-to-back reads."""
        clock = self._clock
        diffs = []
        for _ in range(CLOCK_PROBES):
            a = clock()
            b = clock()
            diffs.append(b - a)
        diffs.sort()
        return float(diffs[len(diffs) // 2])

    def _measure(
        self, block: int, samples: list[float], gc_was_enabled: bool
    ) -> Generator[list[float], None, tuple[str, int]]:
        """Time blocks into ``samples``; yield batches; return (stop reason, elapsed ns)."""
        clock, fn, spec = self._clock, self._fn, self._spec
        report_ns = spec.report_every_ms * 1e6
        max_ns = spec.max_time_s * 1e9
        calls = range(block)
        scale = 1e6 * block  # ns per block -> ms per call
        start = clock()
        end = start
        last_report = start
        reported = 0
        reason = "max_samples"
        while len(samples) < spec.max_samples:
            if self._cancelled():
                reason = "cancelled"
                break
            t0 = clock()
            for _ in calls:
                fn()
            end = clock()
            samples.append((end - t0) / scale)
            if end - start >= max_ns:
                reason = "max_time"
                break
            if end - last_report >= report_ns:
                # The interval costs a sort, so it is checked at report boundaries only.
                converged = (
                    len(samples) >= spec.min_samples and ci_half_width_rel(samples) <= spec.target_ci_rel
                )
                yield from _with_gc(samples[reported:], gc_was_enabled)
                reported = len(samples)
                last_report = end
                if converged:
                    reason = "converged"
                    break
        if reported < len(samples):
            yield from _with_gc(samples[reported:], gc_was_enabled)
        return reason, end - start

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled


def _with_gc(batch: list[float], gc_was_enabled: bool) -> Iterator[list[float]]:
    """Yield ``batch`` with the caller's garbage-collector state, then switch it off again."""
    if gc_was_enabled:
        gc.enable()
    try:
        yield batch
    finally:
        gc.disable()


#: Entered around every timing run of this process; None: nothing. A sweep's Ray task installs one (core.sweep)
#: that holds its node's timing slot, so no two studies on one machine time at once.
_TIMING_SECTION: Callable[[], AbstractContextManager[object]] | None = None


@contextmanager
def timing_section_hook(section: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
    """Enter ``section()`` around every ``LatencyHarness`` run started inside the block (this process only)."""
    global _TIMING_SECTION
    previous, _TIMING_SECTION = _TIMING_SECTION, section
    try:
        yield
    finally:
        _TIMING_SECTION = previous


def _timing_section() -> AbstractContextManager[object]:
    return _TIMING_SECTION() if _TIMING_SECTION is not None else nullcontext()


def choose_block_size(call_ns: float, overhead_ns: float) -> int:
    """Calls per timed block so ``overhead_ns`` stays under 1 % of a block.

    ``call_ns`` is the estimated time of one call, ``overhead_ns`` the cost of
    the two clock reads around a block. Capped so a block stays near
    ``MAX_BLOCK_NS`` and at ``MAX_BLOCK_SIZE`` calls.
    """
    if overhead_ns <= 0:
        return 1
    if call_ns <= 0:
        return MAX_BLOCK_SIZE
    if overhead_ns <= OVERHEAD_SHARE * call_ns:
        return 1
    k = math.ceil(overhead_ns / (OVERHEAD_SHARE * call_ns))
    k = min(k, max(1, int(MAX_BLOCK_NS // call_ns)), MAX_BLOCK_SIZE)
    return max(1, k)


@contextmanager
def pin_torch_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op thread count to ``n`` inside the block, then restore it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
