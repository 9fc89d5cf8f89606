"""Fidelity: how far a variant's raw outputs are from the baseline's, sample by sample.

Plain JSON-ready numbers; never ``inf`` or ``NaN`` (``None`` for "cannot be computed").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.measures.task_metrics import binary_threshold, predicted_labels

#: SQNR reported when the variant's outputs equal the baseline's exactly (no noise
#: at all). float32 rounding alone gives about 140 dB, so 200 dB reads as "identical"
#: while staying a finite number that JSON and charts can hold.
SQNR_CAP_DB = 200.0



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
        threshold = binary_threshold(b2) if b2.shape[1] == 1 else None
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




def logit_fidelity(baseline: np.ndarray, variant: np.ndarray, chunk: int = 16) -> dict[str, Any]:
    """``fidelity(baseline, variant, classification=False)`` computed ``chunk`` samples at a time, so that a
    language model's logits ([N, sequence, vocabulary], often gigabytes) are never copied whole to float64.

    Same keys and values (up to float64 summation order) as ``fidelity``."""
    if baseline.shape != variant.shape or baseline.ndim == 0:
        raise ValueError(f"baseline outputs {baseline.shape} and variant outputs {variant.shape} do not match")
    n = baseline.shape[0]
    sums = {"abs": 0.0, "sq": 0.0, "signal": 0.0, "count": 0, "cos": 0.0, "rows": 0}
    max_abs: float | None = None
    nonfinite = baseline_nonfinite = nonfinite_samples = 0
    for start in range(0, n, chunk):
        b = np.asarray(baseline[start : start + chunk], dtype=np.float64).reshape(-1, int(np.prod(baseline.shape[1:])))
        v = np.asarray(variant[start : start + chunk], dtype=np.float64).reshape(b.shape)
        rows = np.all(np.isfinite(b), axis=1) & np.all(np.isfinite(v), axis=1)
        nonfinite += int(np.count_nonzero(~np.isfinite(v)))
        baseline_nonfinite += int(np.count_nonzero(~np.isfinite(b)))
        nonfinite_samples += int(np.count_nonzero(~rows))
        b, v = b[rows], v[rows]
        if not len(b):
            continue
        diff = b - v
        sums["abs"] += float(np.sum(np.abs(diff)))
        sums["sq"] += float(np.sum(diff * diff))
        sums["signal"] += float(np.sum(b * b))
        sums["count"] += int(diff.size)
        if b.shape[1] > 1:
            sums["cos"] += _mean_cosine(b, v) * len(b)
        sums["rows"] += len(b)
        worst = float(np.max(np.abs(diff)))
        max_abs = worst if max_abs is None else max(max_abs, worst)
    out: dict[str, Any] = {
        "samples": int(n), "nonfinite": nonfinite, "baseline_nonfinite": baseline_nonfinite,
        "nonfinite_samples": nonfinite_samples,
    }
    if not sums["rows"]:
        out.update({"mae": None, "mse": None, "max_abs": None, "sqnr_db": None, "cosine": None, "identical": False})
        return out
    out.update({
        "mae": sums["abs"] / sums["count"],
        "mse": sums["sq"] / sums["count"],
        "max_abs": max_abs,
        "sqnr_db": _sqnr_db(sums["signal"], sums["sq"]),
        "cosine": float(np.clip(sums["cos"] / sums["rows"], -1.0, 1.0)),
        "identical": sums["sq"] == 0.0,
    })
    return out
