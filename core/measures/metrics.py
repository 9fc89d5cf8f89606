"""Task metrics, fidelity against the baseline, latency statistics and the verdict.

Everything returned here is plain JSON-ready data: Python floats, ints, lists,
``None`` for "cannot be computed"; never ``inf`` or ``NaN``. scikit-learn is
imported inside the functions that use it, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import numpy as np

from core.study.result import Grade, LatencyStats, Verdict
from core.study.spec import Task, Thresholds

#: SQNR reported when the variant's outputs equal the baseline's exactly (no noise
#: at all). float32 rounding alone gives about 140 dB, so 200 dB reads as "identical"
#: while staying a finite number that JSON and charts can hold.
SQNR_CAP_DB = 200.0

#: IQR / median above this marks a latency measurement as noisy (DESIGN.md).
NOISY_IQR_REL = 0.10

#: Fewest samples for which the order-statistic interval of the median reaches 95 %.
MIN_SAMPLES_FOR_CI = 6


# --------------------------------------------------------------------------- task metrics


def predicted_labels(scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class labels from model outputs.

    (N,) integer-valued outputs are labels already; (N, C) with C > 1 is argmax
    over the classes; (N, 1) is one binary score: class 1 when it is above
    ``threshold`` (default 0.5 if every score lies in [0, 1], read as a
    probability, else 0, read as a logit). Outputs with more axes are flattened
    per sample before the argmax.
    """
    s = np.asarray(scores)
    if s.ndim == 0:
        raise ValueError("model outputs must have a sample axis; got a scalar")
    if s.ndim == 1:
        return np.rint(s).astype(np.int64)
    s = s.reshape(s.shape[0], -1)
    if s.shape[1] == 1:
        if threshold is None:
            threshold = _binary_threshold(s)
        return (s[:, 0] > threshold).astype(np.int64)
    return np.argmax(s, axis=1).astype(np.int64)


def _binary_threshold(scores: np.ndarray) -> float:
    finite = scores[np.isfinite(scores)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        return 0.5
    return 0.0


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, n_classes: int | None = None) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    ``scores`` are (N, C) logits or probabilities, or (N,) predicted labels.
    The confusion matrix has rows = true class, columns = predicted class and
    covers every class 0..n_classes-1 even when a class never occurs; it grows
    to cover a label beyond ``n_classes`` rather than silently dropping it.
    Macro averages are taken over the classes that occur in the labels or the
    predictions (scikit-learn's rule), so a class absent from a small test set
    does not count as a zero. Undefined precision/recall (nothing predicted or
    nothing true in a class) is 0.
    """
    y = _as_labels(y_true)
    pred = predicted_labels(scores)
    if y.shape[0] != pred.shape[0]:
        raise ValueError(f"{y.shape[0]} labels but {pred.shape[0]} predictions")
    if y.size and y.min() < 0:
        raise ValueError("class labels must be 0 or more")
    if n_classes is None:
        n_classes = _class_count(np.asarray(scores))
    seen = int(max(y.max(initial=-1), pred.max(initial=-1))) + 1
    n = max(int(n_classes), seen, 1)
    labels = list(range(n))

    # Computed here rather than with scikit-learn: importing sklearn.metrics costs about a
    # second in every study process, and these are a few lines of counting (same definitions).
    matrix = np.bincount(y * n + pred, minlength=n * n).reshape(n, n)
    hits = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _safe_div(hits, predicted)
    recall = _safe_div(hits, support.astype(np.float64))
    f1 = _safe_div(2 * hits, predicted + support)
    present = (support > 0) | (predicted > 0)  # the classes in the labels or the predictions
    if present.any():
        macro_p, macro_r, macro_f1 = (float(v[present].mean()) for v in (precision, recall, f1))
    else:
        macro_p = macro_r = macro_f1 = 0.0
    return {
        "accuracy": float(np.mean(y == pred)) if y.size else 0.0,
        "precision_macro": float(macro_p),
        "recall_macro": float(macro_r),
        "f1_macro": float(macro_f1),
        "per_class": [
            {
                "label": i,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in labels
        ],
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _class_count(scores: np.ndarray) -> int:
    """Classes the outputs can express: C for (N, C), 2 for one binary score, 0 for labels."""
    if scores.ndim < 2:
        return 0
    per_sample = int(np.prod(scores.shape[1:]))
    return per_sample if per_sample > 1 else 2


def _as_labels(y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"classification labels must be (N,), got shape {y.shape}")
    return np.rint(y).astype(np.int64) if y.dtype.kind == "f" else y.astype(np.int64)


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """Mean squared error, mean absolute error and R² over all output values.

    Both arrays are flattened, so (N, 1) predictions against (N,) targets work;
    multi-output targets are scored over all their values together. R² is
    ``None`` when it is undefined (fewer than two values). NaN or infinite
    predictions raise ``ValueError`` with a sentence saying how many: there is
    no honest error figure for them.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} target values but {p.size} predicted values")
    bad = int(np.count_nonzero(~np.isfinite(p)))
    if bad:
        raise ValueError(f"{bad} predicted values are NaN or infinite, so MSE, MAE and R² cannot be computed")
    error = y - p
    r2 = None
    if y.size >= 2:
        residual = float(np.sum(error**2))
        total = float(np.sum((y - y.mean()) ** 2))
        # A constant target: scikit-learn's rule (1 when predicted exactly, else 0).
        r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
        "r2": r2,
    }


# --------------------------------------------------------------------------- fidelity


def fidelity(baseline: np.ndarray, variant: np.ndarray, classification: bool) -> dict[str, Any]:
    """How far a variant's raw outputs are from the baseline's, sample by sample.

    Keys: ``mae``, ``mse``, ``max_abs`` (over all values), ``sqnr_db``
    (10·log10(Σb² / Σ(b−v)²), capped at ±``SQNR_CAP_DB``; identical outputs
    give +``SQNR_CAP_DB``), ``cosine`` (mean per-sample cosine similarity; for
    one value per sample, the cosine of the whole output vector, since a
    per-sample cosine of scalars is only their sign), ``identical``,
    ``nonfinite`` / ``baseline_nonfinite`` (NaN or infinite values in each) and
    ``nonfinite_samples``. Classification adds ``agreement`` (fraction of equal
    predicted classes), ``flipped`` (indices that differ) and ``flipped_count``.

    Samples whose outputs hold NaN or infinity in either model are left out of
    the error statistics (``None`` when no sample is left) and count as flipped.
    """
    b = np.asarray(baseline, dtype=np.float64)
    v = np.asarray(variant, dtype=np.float64)
    if b.ndim == 0 or v.ndim == 0 or b.shape[0] != v.shape[0] or b.size != v.size:
        raise ValueError(f"baseline outputs {b.shape} and variant outputs {v.shape} do not match")
    n = b.shape[0]
    b2 = b.reshape(n, -1)
    v2 = v.reshape(n, -1)
    finite_rows = np.all(np.isfinite(b2), axis=1) & np.all(np.isfinite(v2), axis=1)
    out: dict[str, Any] = {
        "samples": int(n),
        "nonfinite": int(np.count_nonzero(~np.isfinite(v2))),
        "baseline_nonfinite": int(np.count_nonzero(~np.isfinite(b2))),
        "nonfinite_samples": int(np.count_nonzero(~finite_rows)),
    }
    out.update(_error_stats(b2[finite_rows], v2[finite_rows]))
    if classification:
        threshold = _binary_threshold(b2) if b2.shape[1] == 1 else None
        base_pred = predicted_labels(b2, threshold)
        var_pred = predicted_labels(v2, threshold)
        same = (base_pred == var_pred) & finite_rows
        flipped = np.flatnonzero(~same)
        out["agreement"] = float(same.mean()) if n else None
        out["flipped"] = [int(i) for i in flipped]
        out["flipped_count"] = int(flipped.size)
        # What each flipped sample was and became, aligned with ``flipped`` (for the window's list).
        out["flipped_from"] = [int(base_pred[i]) for i in flipped]
        out["flipped_to"] = [int(var_pred[i]) for i in flipped]
    return out


def _error_stats(b: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    if b.shape[0] == 0:
        return {"mae": None, "mse": None, "max_abs": None, "sqnr_db": None, "cosine": None, "identical": False}
    diff = b - v
    noise = float(np.sum(diff * diff))
    signal = float(np.sum(b * b))
    return {
        "mae": float(np.mean(np.abs(diff))),
        "mse": float(np.mean(diff * diff)),
        "max_abs": float(np.max(np.abs(diff))),
        "sqnr_db": _sqnr_db(signal, noise),
        "cosine": _mean_cosine(b, v),
        "identical": noise == 0.0,
    }


def _sqnr_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal == 0.0:
        return -SQNR_CAP_DB
    return float(np.clip(10.0 * math.log10(signal / noise), -SQNR_CAP_DB, SQNR_CAP_DB))


def _mean_cosine(b: np.ndarray, v: np.ndarray) -> float:
    if b.shape[1] == 1:
        b, v = b.reshape(1, -1), v.reshape(1, -1)
    nb = np.linalg.norm(b, axis=1)
    nv = np.linalg.norm(v, axis=1)
    dot = np.sum(b * v, axis=1)
    both_zero = (nb == 0) & (nv == 0)
    denom = np.where(nb * nv == 0, 1.0, nb * nv)
    # Two all-zero outputs agree perfectly; one all-zero output shares no direction.
    cos = np.where(both_zero, 1.0, np.where(nb * nv == 0, 0.0, dot / denom))
    return float(np.clip(np.mean(cos), -1.0, 1.0))


# --------------------------------------------------------------------------- latency


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


# --------------------------------------------------------------------------- verdict


def baseline_verdict(thresholds: Thresholds) -> Verdict:
    """The baseline's own verdict: it is the yardstick, so every grade is BASELINE."""
    return Verdict(
        accuracy=Grade.BASELINE,
        size=Grade.BASELINE,
        speed=Grade.BASELINE,
        overall=Grade.BASELINE,
        accuracy_drop=0.0,
        size_reduction=0.0,
        latency_reduction=0.0,
        speedup=1.0,
        speedup_vs_fastest_float=None,
        thresholds=asdict(thresholds),
        reasons=["the float baseline every other variant is compared with"],
    )


def verdict(
    *,
    task: Task,
    baseline_metrics: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    baseline_size: int | None,
    size: int | None,
    baseline_p50: float | None,
    p50: float | None,
    fastest_float_p50: float | None,
    agreement: float | None,
    thresholds: Thresholds,
    paired_speedup: float | None = None,
    paired_rounds: int | None = None,
    paired_vs_fastest_float: float | None = None,
) -> Verdict:
    """Grade a variant against the baseline on accuracy, size and speed.

    Accuracy drop: accuracy points lost (classification with labels), R² lost
    (regression), or 1 − agreement with the baseline's predictions (no labels);
    UNKNOWN when none of these is available. Good when the drop is under
    ``accuracy_drop_good``, bad when over ``accuracy_drop_bad``, else acceptable.
    Size: good when at least ``size_reduction_good`` of the bytes are saved,
    bad when the variant is larger than the baseline, else acceptable.
    Speed: good when the median latency falls by ``latency_reduction_good`` or
    more, bad when it rises by more than ``latency_increase_bad``, else acceptable.
    ``paired_speedup`` (baseline ÷ variant, median of ``paired_rounds`` interleaved
    rounds, measured when the machine's speed changed during the study) replaces
    the ratio of the two medians for the speed grade and the speed-ups.

    Overall: BAD if accuracy is bad, or if size and speed are both bad (it costs
    more and buys nothing); otherwise UNKNOWN if accuracy is unknown. With
    accuracy good: ACCEPTABLE when one of size/speed is bad (a trade at best);
    GOOD if size or speed is good; ACCEPTABLE otherwise. With accuracy acceptable: ACCEPTABLE.
    """
    drop, drop_kind = _accuracy_drop(task, baseline_metrics, metrics, agreement)
    acc_grade, acc_reason = _grade_accuracy(drop, drop_kind, thresholds)
    size_reduction = _reduction(baseline_size, size)
    size_grade, size_reason = _grade_size(size_reduction, thresholds)
    if paired_speedup is not None and paired_speedup > 0:
        latency_reduction = 1.0 - 1.0 / paired_speedup
        where = f"{paired_speedup:.3g}x the baseline's speed over {paired_rounds or '?'} interleaved rounds"
        speed_grade, speed_reason = _grade_speed(latency_reduction, baseline_p50, p50, thresholds, where)
    else:
        latency_reduction = _reduction(baseline_p50, p50)
        speed_grade, speed_reason = _grade_speed(latency_reduction, baseline_p50, p50, thresholds)
    overall, overall_reason = _overall(acc_grade, size_grade, speed_grade)
    return Verdict(
        accuracy=acc_grade,
        size=size_grade,
        speed=speed_grade,
        overall=overall,
        accuracy_drop=drop,
        size_reduction=size_reduction,
        latency_reduction=latency_reduction,
        speedup=paired_speedup if paired_speedup is not None else _ratio(baseline_p50, p50),
        speedup_vs_fastest_float=(
            paired_vs_fastest_float if paired_speedup is not None else _ratio(fastest_float_p50, p50)
        ),
        thresholds=asdict(thresholds),
        reasons=[acc_reason, size_reason, speed_reason, overall_reason],
    )


def _accuracy_drop(
    task: Task, bm: dict[str, Any] | None, m: dict[str, Any] | None, agreement: float | None
) -> tuple[float | None, str]:
    bm, m = bm or {}, m or {}
    if task in (Task.CLASSIFICATION, Task.AUTO) and _both(bm, m, "accuracy"):
        return float(bm["accuracy"]) - float(m["accuracy"]), "accuracy"
    if task in (Task.REGRESSION, Task.AUTO) and _both(bm, m, "r2"):
        return float(bm["r2"]) - float(m["r2"]), "r2"
    if task is not Task.REGRESSION and agreement is not None:
        return 1.0 - float(agreement), "agreement"
    return None, "unknown"


def _both(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    return a.get(key) is not None and b.get(key) is not None


def _grade_accuracy(drop: float | None, kind: str, t: Thresholds) -> tuple[Grade, str]:
    if drop is None:
        return Grade.UNKNOWN, "accuracy unknown: no labels and no class predictions to compare"
    if drop < t.accuracy_drop_good:
        grade = Grade.GOOD
        rule = f"good: under {_amount(t.accuracy_drop_good, kind)}"
    elif drop > t.accuracy_drop_bad:
        grade = Grade.BAD
        rule = f"bad: over {_amount(t.accuracy_drop_bad, kind)}"
    else:
        grade = Grade.ACCEPTABLE
        rule = f"acceptable: between {_amount(t.accuracy_drop_good, kind)} and {_amount(t.accuracy_drop_bad, kind)}"
    if kind == "agreement":
        what = f"predictions differ from the baseline's on {_pct(drop)} of samples"
    else:
        name = "accuracy" if kind == "accuracy" else "R²"
        verb = "dropped" if drop >= 0 else "rose"
        what = f"{name} {verb} {_amount(abs(drop), kind)}"
    return grade, f"{what} ({rule})"


def _amount(value: float, kind: str) -> str:
    if kind == "accuracy":
        points = f"{value * 100:.3g}"
        return f"{points} point" if points == "1" else f"{points} points"
    if kind == "r2":
        return f"{value:.3g}"
    return _pct(value)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g} %"


def _reduction(base: float | None, value: float | None) -> float | None:
    if base is None or value is None or not base > 0:
        return None
    return 1.0 - float(value) / float(base)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator > 0 or not numerator > 0:
        return None
    return float(numerator) / float(denominator)


def _grade_size(reduction: float | None, t: Thresholds) -> tuple[Grade, str]:
    if reduction is None:
        return Grade.UNKNOWN, "size unknown"
    if reduction >= t.size_reduction_good:
        return Grade.GOOD, f"size shrank {_pct(reduction)} (good: {_pct(t.size_reduction_good)} or more)"
    if reduction < 0:
        return Grade.BAD, f"size grew {_pct(-reduction)} (bad: larger than the baseline)"
    return (
        Grade.ACCEPTABLE,
        f"size shrank {_pct(reduction)} (acceptable: good needs {_pct(t.size_reduction_good)} or more)",
    )


def _grade_speed(
    reduction: float | None, base: float | None, p50: float | None, t: Thresholds, where: str | None = None
) -> tuple[Grade, str]:
    if reduction is None or base is None or p50 is None:
        return Grade.UNKNOWN, "speed unknown"
    where = where or f"median {p50:.3g} ms vs {base:.3g} ms"
    if reduction >= t.latency_reduction_good:
        return Grade.GOOD, f"latency fell {_pct(reduction)}, {where} (good: {_pct(t.latency_reduction_good)} or more)"
    if -reduction > t.latency_increase_bad:
        return Grade.BAD, f"latency rose {_pct(-reduction)}, {where} (bad: over {_pct(t.latency_increase_bad)} slower)"
    verb = "fell" if reduction >= 0 else "rose"
    return (
        Grade.ACCEPTABLE,
        f"latency {verb} {_pct(abs(reduction))}, {where} "
        f"(acceptable: good needs {_pct(t.latency_reduction_good)} less)",
    )


def _overall(acc: Grade, size: Grade, speed: Grade) -> tuple[Grade, str]:
    if acc is Grade.BAD:
        return Grade.BAD, "overall bad: it loses too much accuracy"
    if size is Grade.BAD and speed is Grade.BAD:
        return Grade.BAD, "overall bad: it is both larger and slower than the baseline"
    if acc is Grade.UNKNOWN:
        return Grade.UNKNOWN, "overall unknown: accuracy could not be judged"
    if acc is Grade.GOOD and Grade.BAD in (size, speed):
        # A clear gain on one axis does not excuse a clear loss on the other.
        cost = "slower" if speed is Grade.BAD else "larger"
        return Grade.ACCEPTABLE, f"overall acceptable: keeps accuracy, but is clearly {cost} than the baseline"
    if acc is Grade.GOOD and (size is Grade.GOOD or speed is Grade.GOOD):
        gains = " and ".join(name for name, g in (("smaller", size), ("faster", speed)) if g is Grade.GOOD)
        return Grade.GOOD, f"overall good: keeps accuracy and is clearly {gains}"
    if acc is Grade.GOOD:
        return Grade.ACCEPTABLE, "overall acceptable: keeps accuracy but neither size nor speed improve enough"
    return Grade.ACCEPTABLE, "overall acceptable: some accuracy is lost"
