"""Latency statistics: the summary of every kept sample, the median's confidence interval, quantiles.

Exact where it can be (order statistics, no randomness); the bootstrap is the seeded alternative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from core.study.result import LatencyStats

#: IQR / median above this marks a latency measurement as noisy (DESIGN.md).
NOISY_IQR_REL = 0.10

#: Fewest samples for which the order-statistic interval of the median reaches 95 %.
MIN_SAMPLES_FOR_CI = 6


@lru_cache(maxsize=256)
def _median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bounding the median.

    The number B of samples below the true median is Binomial(n, 1/2), and
    the 1-based order statistics [x(j), x(n+1-j)] cover the median with
    probability 1 - 2·P(B <= j-1). The largest j with P(B <= j-1) <= (1 -
    confidence)/2 gives the narrowest interval of at least that coverage.
    Below ``MIN_SAMPLES_FOR_CI`` samples not even j = 1 qualifies and the whole
    range (coverage 1 - 2/2^n) is returned.
    """
    alpha = (1.0 - confidence) / 2.0
    k = np.arange(n, dtype=np.float64)
    # log pmf by the ratio pmf(k+1)/pmf(k) = (n-k)/(k+1): no factorials, no underflow.
    log_pmf = np.concatenate(([-n * math.log(2.0)], -n * math.log(2.0) + np.cumsum(np.log((n - k) / (k + 1.0)))))
    cdf = np.cumsum(np.exp(log_pmf))
    # cdf[j-1] = P(B <= j-1) rises with j, so the largest valid j is how many entries stay <= alpha.
    j = int(np.count_nonzero(cdf[: n // 2 + 1] <= alpha))
    if j == 0:
        return 0, n - 1
    return j - 1, n - j


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median from order statistics (binomial).

    Exact and needs no randomness; with fewer than ``MIN_SAMPLES_FOR_CI``
    samples it is the full range, whose coverage is below 95 %.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no samples")
    lo, hi = _median_ci_ranks(int(x.size), confidence)
    return float(x[lo]), float(x[hi])


def bootstrap_median_ci(
    samples: Sequence[float], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median, reproducible through ``seed``."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    medians = np.empty(n_boot)
    # Resample in chunks so 1000 x 10^5 indices never sit in memory at once.
    chunk = max(1, 2_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        medians[start:stop] = np.median(x[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def ci_half_width_rel(samples: Sequence[float]) -> float:
    """Half-width of the median's 95 % interval over the median (0.03 = ±3 %).

    ``inf`` while the interval cannot reach 95 % (too few samples) or the
    median is zero with a non-zero width, so a stopping rule never stops on it.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size < MIN_SAMPLES_FOR_CI:
        return math.inf
    lo, hi = median_ci(x)
    median = float(np.median(x))
    half = (hi - lo) / 2.0
    if median <= 0.0:
        return 0.0 if half == 0.0 else math.inf
    return half / median


def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """The ``qs`` percentiles (0-100) of a non-empty array of finite numbers, interpolated linearly
    between order statistics as ``np.percentile``'s default is (to within one unit in the last
    place), found by a partial sort alone.

    For the window, which asks for a few percentiles of thousands of samples many times a second:
    ``np.percentile`` adds about 0.3 ms of overhead per call, and numpy 2.4 imports ``numpy.ma`` on
    its first use, a 40 ms pause in the middle of the first live histogram.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if any(not 0.0 <= q <= 100.0 for q in qs):
        raise ValueError(f"percentiles must lie in 0-100, got {list(qs)}")
    pos = [q / 100.0 * (x.size - 1) for q in qs]
    ranks = sorted({k for p in pos for k in (math.floor(p), math.ceil(p))})
    part = np.partition(x, ranks)
    out = []
    for p in pos:
        lo, hi = math.floor(p), math.ceil(p)
        a, b = float(part[lo]), float(part[hi])
        out.append(a + (b - a) * (p - lo))
    return out


def latency_stats(
    samples_ms: Sequence[float],
    *,
    block_size: int = 1,
    first_ms: float | None = None,
    batch_size: int = 1,
    seed: int = 0,
) -> LatencyStats:
    """Summary of kept latency samples (ms per call).

    Percentiles use linear interpolation (``np.percentile``'s default), ``std``
    is the sample standard deviation (n-1), and ``ci95_p50`` is the exact
    order-statistic interval of the median (``median_ci``). ``iqr_rel`` is
    (p75 - p25) / p50 and ``noisy`` flags it above 10 %. ``seed`` is accepted so
    callers can pass the study seed uniformly; the interval itself involves no
    randomness (``bootstrap_median_ci`` is the seeded alternative).
    """
    del seed  # the order-statistic interval is exact; see the docstring
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to summarize")
    if not np.all(np.isfinite(x)):
        raise ValueError("latency samples must be finite numbers")
    p25, p50, p75, p90, p99 = (float(v) for v in np.percentile(x, [25, 50, 75, 90, 99]))
    iqr = p75 - p25
    # A zero median means a clock too coarse for the call; spread then is all noise.
    iqr_rel = iqr / p50 if p50 > 0.0 else (0.0 if iqr == 0.0 else 1.0)
    return LatencyStats(
        p50=p50,
        p90=p90,
        p99=p99,
        mean=float(np.mean(x)),
        std=float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        min=float(np.min(x)),
        max=float(np.max(x)),
        n=int(x.size),
        ci95_p50=median_ci(x),
        iqr_rel=float(iqr_rel),
        noisy=bool(iqr_rel > NOISY_IQR_REL),
        block_size=int(block_size),
        first_ms=None if first_ms is None else float(first_ms),
        batch_size=int(batch_size),
    )


def throughput_per_s(p50_ms: float, batch_size: int) -> float:
    """Samples per second when one call of ``batch_size`` samples takes ``p50_ms``."""
    if not p50_ms > 0.0:
        raise ValueError(f"the median latency must be positive, got {p50_ms} ms")
    return batch_size * 1000.0 / p50_ms

