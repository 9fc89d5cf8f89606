"""2. Agreement with PyTorch's reference timer.

One PyTorch model (an untrained torchvision ResNet-18 on 32×32 inputs, 5–8 ms
at one thread here) is prepared once with ``TorchRunner.prepare_call``; the same
zero-argument call is timed by QuantBench's ``LatencyHarness`` and by
``torch.utils.benchmark.Timer("call()").blocked_autorange()`` with the same
thread count. Many short rounds (0.1 s a side, so that few of them straddle one of
this VM's speed changes) alternate the order; the figure is the median of the
per-round ratios QuantBench median ÷ Timer median. Goal: 0.97–1.03.

The two medians are not quite the same statistic: the Timer's is the median of
block means (blocks of ``number_per_run`` calls), QuantBench's the median of
single calls when a call is long enough for the clock. On a right-skewed
distribution a block mean sits above the per-call median, so a ratio a little
under 1 is expected; both are reported so the difference can be seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.perf.common import interleaved, ratio_summary, torchvision_model

THREADS = 1
INPUT = (1, 3, 32, 32)


def run(quick: bool) -> dict[str, Any]:
    import torch
    from torch.utils.benchmark import Timer

    from core.engine.timing import LatencyHarness
    from core.runtimes.torch_runner import TorchRunner
    from core.study.spec import TimingMode, TimingSpec

    # Many short rounds: on a shared machine the load changes within seconds, and each
    # per-round ratio should compare two measurements taken under the same load.
    rounds = 61 if quick else 121
    min_run_time = 0.1
    torch.manual_seed(0)
    runner = TorchRunner(torchvision_model("resnet18"), THREADS)
    call = runner.prepare_call(np.random.default_rng(0).standard_normal(INPUT, dtype=np.float32))
    spec = TimingSpec(threads=THREADS, mode=TimingMode.THOROUGH, max_time_s=min_run_time, max_samples=20_000)
    timer = Timer(stmt="call()", globals={"call": call}, num_threads=THREADS)
    runs: list[Any] = []
    measurements: list[Any] = []

    def harness_side() -> float:
        torch.set_num_threads(THREADS)
        run = LatencyHarness(call, spec).measure()
        runs.append(run)
        return float(np.median(run.samples_ms))

    def timer_side() -> float:
        m = timer.blocked_autorange(min_run_time=min_run_time)
        measurements.append(m)
        return float(m.median) * 1e3

    harness_side()
    timer_side()  # both warm: the first pass of each is not part of the comparison
    runs.clear()
    measurements.clear()
    harness_ms, timer_ms = interleaved(harness_side, timer_side, rounds)
    summary = ratio_summary(harness_ms, timer_ms)
    runner.close()
    return {
        "threads": THREADS,
        "torch_timer_agreement_ratio": summary["ratio"],
        "torch_timer_agreement": {
            **summary,
            "model": f"torchvision resnet18 (untrained), input {INPUT}, eager, inference_mode",
            "harness_median_ms": float(np.median(harness_ms)),
            "timer_median_ms": float(np.median(timer_ms)),
            "harness_block_sizes": sorted({r.block_size for r in runs}),
            "harness_samples": [len(r.samples_ms) for r in runs],
            "timer_number_per_run": sorted({int(m.number_per_run) for m in measurements}),
            "timer_blocks": [len(m.raw_times) for m in measurements],
            "timer_min_run_time_s": min_run_time,
        },
    }


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
