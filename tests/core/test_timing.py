"""The latency harness, mostly on a scripted clock so every sample is known exactly."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from core.engine.timing import LatencyHarness, choose_block_size, pin_torch_threads
from core.study.cancel import CancelToken
from core.study.spec import TimingMode, TimingSpec

MS = 1_000_000  # ns


class FakeClock:
    """A clock that only moves when told to, plus ``tick_ns`` per read (the cost of reading it)."""

    def __init__(self, tick_ns: int = 0) -> None:
        self.now = 1_000 * MS
        self.tick_ns = tick_ns
        self.reads = 0

    def __call__(self) -> int:
        value = self.now
        self.now += self.tick_ns
        self.reads += 1
        return value


class FakeModel:
    """A call that advances the fake clock by a scripted duration.

    ``first_ns`` is the first call's duration; later calls cycle through
    ``durations_ns``. ``on_call`` lets a test act at a given call number.
    """

    def __init__(
        self,
        clock: FakeClock,
        durations_ns: Sequence[int],
        first_ns: int | None = None,
        on_call: Callable[[int], None] | None = None,
    ) -> None:
        self.clock = clock
        self.durations = list(durations_ns)
        self.first_ns = first_ns
        self.on_call = on_call
        self.calls = 0
        self.gc_states: set[bool] = set()

    def __call__(self) -> None:
        self.gc_states.add(gc.isenabled())
        if self.calls == 0 and self.first_ns is not None:
            self.clock.now += self.first_ns
        else:
            k = self.calls - (1 if self.first_ns is not None else 0)
            self.clock.now += self.durations[k % len(self.durations)]
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)


def _spec(**kw: object) -> TimingSpec:
    base: dict[str, object] = dict(
        warmup_runs=3, warmup_s=0.0, min_samples=30, max_samples=5000, max_time_s=100.0, report_every_ms=50.0
    )
    base.update(kw)
    return TimingSpec(**base)  # type: ignore[arg-type]


def test_constant_calls_converge_at_first_report_past_min_samples() -> None:
    clock = FakeClock()
    model = FakeModel(clock, [2 * MS], first_ns=100 * MS)
    h = LatencyHarness(model, _spec(), clock=clock)
    batches = list(h.batches())
    run = h.run
    # A report every 50 ms = 25 samples of 2 ms; at 25 samples min_samples (30) is not reached yet.
    assert [len(b) for b in batches] == [25, 25]
    assert run.samples_ms == [2.0] * 50
    assert run.stop_reason == "converged"
    assert run.block_size == 1
    assert run.first_ms == 100.0
    assert run.warmup_runs == 3
    assert run.warmup_ms == 6.0
    assert run.elapsed_s == pytest.approx(0.1)
    # first call + 3 warm-up + 50 timed
    assert model.calls == 54


def test_thorough_mode_needs_a_narrower_interval() -> None:
    # Alternating 10 ms / 10.4 ms: the median interval is 10..10.4, about +-2 % of 10.2.
    durations = [10 * MS, 10_400_000]
    clock = FakeClock()
    quick = LatencyHarness(FakeModel(clock, durations), _spec(max_samples=400), clock=clock).measure()
    assert quick.stop_reason == "converged"
    assert len(quick.samples_ms) == 30  # 50 ms reports hold 5 samples; the first check past 30 stops
    clock = FakeClock()
    thorough = LatencyHarness(
        FakeModel(clock, durations), _spec(max_samples=400, mode=TimingMode.THOROUGH), clock=clock
    ).measure()
    assert thorough.stop_reason == "max_samples"
    assert len(thorough.samples_ms) == 400


def test_max_samples() -> None:
    clock = FakeClock()
    # Alternating 1 ms / 3 ms: the median interval spans 1..3, it never converges.
    model = FakeModel(clock, [1 * MS, 3 * MS])
    # The first call and one warm-up call use 1 ms and 3 ms, so timing starts on a 1 ms call.
    run = LatencyHarness(model, _spec(max_samples=40, warmup_runs=1), clock=clock).measure()
    assert run.stop_reason == "max_samples"
    assert run.samples_ms == [1.0, 3.0] * 20
    assert run.elapsed_s == pytest.approx(0.08)


def test_max_time_counts_measuring_only() -> None:
    clock = FakeClock()
    model = FakeModel(clock, [1 * MS, 3 * MS], first_ns=500 * MS)
    # A long warm-up (0.5 s) must not eat into the 0.1 s of measuring.
    run = LatencyHarness(model, _spec(max_time_s=0.1, warmup_runs=2, warmup_s=0.5), clock=clock).measure()
    assert run.stop_reason == "max_time"
    assert run.warmup_runs == 250  # 250 calls of 2 ms average reach 0.5 s
    assert run.warmup_ms == 500.0
    assert run.samples_ms == [1.0, 3.0] * 25
    assert run.elapsed_s == pytest.approx(0.1)


def test_warmup_runs_until_both_count_and_time() -> None:
    clock = FakeClock()
    run = LatencyHarness(FakeModel(clock, [2 * MS]), _spec(warmup_runs=2, warmup_s=0.01), clock=clock).measure()
    assert run.warmup_runs == 5  # time decides: 5 x 2 ms = 10 ms
    clock = FakeClock()
    run = LatencyHarness(FakeModel(clock, [2 * MS]), _spec(warmup_runs=8, warmup_s=0.01), clock=clock).measure()
    assert run.warmup_runs == 8  # count decides
    assert run.warmup_ms == 16.0


def test_without_a_warm_up_the_first_call_is_the_only_untimed_one() -> None:
    clock = FakeClock()
    model = FakeModel(clock, [40 * MS], first_ns=60 * MS)
    spec = _spec(warmup_runs=0, warmup_s=0.0, min_samples=3, max_time_s=0.1)
    run = LatencyHarness(model, spec, clock=clock).measure()
    assert run.warmup_runs == 0 and run.first_ms == 60.0
    assert model.calls == 1 + len(run.samples_ms) and run.samples_ms == [40.0] * 3
    assert run.block_size == 1  # chosen from the first call's time: no call was spent estimating it


def test_a_paired_burst_spends_one_untimed_call_on_a_warm_runner_and_two_on_a_fresh_one() -> None:
    from core.engine.drift import BURST_WARMUP_S, _burst

    timing = _spec()
    for fresh, untimed in ((False, 1), (True, 2)):
        clock = FakeClock()
        model = FakeModel(clock, [40 * MS])
        run = LatencyHarness(model, _burst(timing, 40.0, fresh=fresh), clock=clock).measure()
        assert model.calls - len(run.samples_ms) == untimed, fresh
        assert len(run.samples_ms) >= 3
    # A call shorter than BURST_WARMUP_S: calls run untimed until about that long has passed, the first included.
    clock = FakeClock()
    model = FakeModel(clock, [1 * MS])
    run = LatencyHarness(model, _burst(timing, 1.0), clock=clock).measure()
    assert BURST_WARMUP_S * 1e3 <= run.first_ms + run.warmup_ms <= BURST_WARMUP_S * 1e3 + 1.0 + 1e-6


def test_block_size_for_a_one_microsecond_call() -> None:
    # Each clock read costs 50 ns, so two reads are 10 % of a 1 us call: blocks are needed.
    clock = FakeClock(tick_ns=50)
    model = FakeModel(clock, [1_000])
    run = LatencyHarness(model, _spec(warmup_runs=5, max_samples=200), clock=clock).measure()
    # The warm-up measures 1000 + 50 ns per call; overhead 2 x 50 ns: k = ceil(100 / 10.5) = 10.
    assert run.block_size == 10
    # A block reads the clock once before and once after: (10 x 1000 + 50) ns / 10 calls.
    assert run.samples_ms == [0.001005] * 200
    assert run.stop_reason == "max_samples"  # 200 blocks take 2 ms, no report boundary is reached


def test_choose_block_size() -> None:
    assert choose_block_size(30_000, 200) == 1  # 30 us call: 0.7 % overhead
    assert choose_block_size(1_000, 200) == 20
    assert choose_block_size(1_000, 0) == 1
    assert choose_block_size(0, 100) == 10_000  # a call the clock cannot see
    assert choose_block_size(5_000_000, 1_000_000) == 2  # capped near 10 ms per block


def test_cancel_between_blocks() -> None:
    token = CancelToken()
    clock = FakeClock()
    # Calls: 1 first + 3 warm-up, then the 10th timed call cancels.
    model = FakeModel(clock, [2 * MS], on_call=lambda n: token.cancel() if n == 14 else None)
    h = LatencyHarness(model, _spec(), clock=clock, cancel=token)
    batches = list(h.batches())
    assert h.run.stop_reason == "cancelled"
    assert h.run.samples_ms == [2.0] * 10
    assert batches == [[2.0] * 10]
    assert model.calls == 14


def test_cancel_during_warmup() -> None:
    token = CancelToken()
    clock = FakeClock()
    model = FakeModel(clock, [2 * MS], on_call=lambda n: token.cancel() if n == 2 else None)
    h = LatencyHarness(model, _spec(warmup_runs=100), clock=clock, cancel=token)
    assert list(h.batches()) == []
    assert h.run.stop_reason == "cancelled"
    assert h.run.samples_ms == []
    assert h.run.warmup_runs == 1
    assert model.calls == 2


def test_gc_is_off_while_timing_and_restored_after() -> None:
    assert gc.isenabled()
    clock = FakeClock()
    model = FakeModel(clock, [2 * MS])
    seen_between_batches = []
    h = LatencyHarness(model, _spec(), clock=clock)
    for _ in h.batches():
        seen_between_batches.append(gc.isenabled())
    assert model.gc_states == {False}
    assert seen_between_batches == [True, True]  # the caller's code runs with its own gc state
    assert gc.isenabled()


def test_gc_left_disabled_if_it_was() -> None:
    gc.disable()
    try:
        clock = FakeClock()
        LatencyHarness(FakeModel(clock, [2 * MS]), _spec(), clock=clock).measure()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_restored_when_the_caller_stops_early() -> None:
    clock = FakeClock()
    gen = LatencyHarness(FakeModel(clock, [1 * MS, 3 * MS]), _spec(), clock=clock).batches()
    next(gen)
    gen.close()
    assert gc.isenabled()


def test_run_is_unavailable_before_the_end() -> None:
    clock = FakeClock()
    h = LatencyHarness(FakeModel(clock, [2 * MS]), _spec(), clock=clock)
    with pytest.raises(RuntimeError):
        _ = h.run


def test_real_clock_on_a_tiny_numpy_call() -> None:
    a = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    spec = TimingSpec(warmup_runs=5, warmup_s=0.01, min_samples=30, max_samples=2000, max_time_s=0.3)
    h = LatencyHarness(lambda: a @ a, spec)
    total = sum(len(b) for b in h.batches())
    run = h.run
    assert total == len(run.samples_ms) >= 1
    assert all(s > 0 for s in run.samples_ms)
    assert run.block_size >= 1
    assert run.first_ms > 0 and run.warmup_runs >= 5
    assert run.stop_reason in {"converged", "max_samples", "max_time"}
    # A 16x16 matmul is a few microseconds: well under a millisecond per call.
    assert np.median(run.samples_ms) < 1.0


def test_pin_torch_threads_restores() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with pin_torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
