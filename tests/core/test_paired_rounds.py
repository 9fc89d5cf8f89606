"""The paired rounds a drifted study runs: one variant at a time against the baseline, each burst between two of
the baseline's, so the memory stays that of one variant and a steady change of speed cancels."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from core.engine import drift
from core.engine.timing import LatencyHarness
from core.study.cancel import CancelToken
from core.study.result import LatencyStats, VariantResult, VariantStatus
from core.study.spec import DatasetKind, DatasetSpec, ModelSpec, StudySpec, TimingSpec


class _Clock:
    """The harness's clock (core.engine.timing.LatencyHarness takes one): a made-up call spends its cost on it,
    so the test measures the design, not how busy the machine running the tests is."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        self.ns += 40  # reading a clock takes a little time too
        return self.ns

    def spend(self, ms: float) -> None:
        self.ns += int(ms * 1e6)


class _Runner:
    def __init__(self, pool: _Pool, label: str, ms: float) -> None:
        self.pool, self.label, self.ms = pool, label, ms

    def prepare_call(self, x: np.ndarray) -> Any:
        def call() -> None:
            # A machine slowing down steadily: every call costs a little more than the one before.
            self.pool.calls += 1
            self.pool.clock.spend(self.ms * (1 + self.pool.calls / 4000))
        return call


class _Pool(dict):
    """A RunnerPool of made-up runners: counts how many are open at once (the baseline stays open)."""

    def __init__(self, costs: dict[str, float], base: str) -> None:
        super().__init__()
        self.costs, self.base, self.calls, self.most_open = costs, base, 0, 0
        self.clock = _Clock()
        self.open = {base}

    def __contains__(self, label: object) -> bool:
        return label in self.costs

    def __getitem__(self, label: str) -> Any:
        self.open.add(label)
        self.most_open = max(self.most_open, len(self.open))
        return _Runner(self, label, self.costs[label])

    def release(self, label: str) -> None:
        if label != self.base:
            self.open.discard(label)


def _result(label: str, p50: float) -> VariantResult:
    latency = LatencyStats(p50=p50, p90=p50, p99=p50, mean=p50, std=0.0, min=p50, max=p50, n=50,
                           ci95_p50=(p50, p50), iqr_rel=0.0, noisy=False)
    return VariantResult(label=label, scheme=label, status=VariantStatus.OK, latency=latency)


def test_paired_rounds_open_one_variant_at_a_time_and_bracket_each_burst_with_the_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    costs = {"fp32": 2.0, "half": 1.0, "twice": 4.0, "same": 2.0}
    results = [_result(label, ms) for label, ms in costs.items()]
    pool = _Pool(costs, "fp32")
    monkeypatch.setattr(drift, "LatencyHarness", functools.partial(LatencyHarness, clock=pool.clock))
    spec = StudySpec(model=ModelSpec(path="m.onnx"), dataset=DatasetSpec(DatasetKind.SYNTHETIC, "8"),
                     timing=TimingSpec(min_samples=20))
    rounds = drift._paired_rounds(spec, results[0], results, pool, np.zeros((1, 4), np.float32), CancelToken())
    events = []
    try:
        while True:
            events.append(next(rounds))
    except StopIteration as stop:
        paired = stop.value
    assert pool.most_open == 2  # the baseline and one variant, never more
    assert [e.message.split("timing ")[1].split(" again")[0] for e in events] == ["half", "twice", "same"]
    assert paired["rounds"] == drift.PAIRED_ROUNDS and set(paired["speedup"]) == set(costs)
    speedup = {label: figures["median"] for label, figures in paired["speedup"].items()}
    # Each variant's speed-up is the ratio of the costs: the slowing machine cancels between the bursts around it
    # (timed one after the other, the machine slows by a few per cent between a variant's and the baseline's).
    assert abs(speedup["half"] - 2.0) < 0.02 and abs(speedup["twice"] - 0.5) < 0.005
    assert abs(speedup["same"] - 1.0) < 0.01 and speedup["fp32"] == 1.0
    assert paired["p50_ms"]["twice"] > 3 * paired["p50_ms"]["half"]
