"""Task metrics: how well a variant does its task against the labels (classification, regression).

Everything returned is plain JSON-ready data: Python floats, ints, lists, never ``inf`` or ``NaN``.
The counting is done here rather than with scikit-learn: importing ``sklearn.metrics`` costs about a
second in every study process (the definitions are the same; tests check them against it).
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
            threshold = binary_threshold(s)
        return (s[:, 0] > threshold).astype(np.int64)
    return np.argmax(s, axis=1).astype(np.int64)


def binary_threshold(scores: np.ndarray) -> float:
    """The cut for one binary score per sample: 0.5 when every finite score lies in [0, 1] (a
    probability), else 0 (a logit)."""
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




#: Resamples of the paired bootstrap behind ``accuracy_delta_ci95``, and its fixed seed: the same
#: study gives the same interval every time.
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0


def accuracy_delta_ci95(y_true: np.ndarray, baseline_scores: np.ndarray, scores: np.ndarray) -> list[float]:
    """95 % interval [low, high] of the accuracy change (variant − baseline, a fraction), paired on the samples.

    A paired bootstrap: the samples are drawn again with replacement, each keeping both its
    outcomes, so only the samples one model gets right and the other wrong move the change.
    Resampling the counts of those two kinds (a multinomial draw) is the same bootstrap, at a
    cost that does not grow with the dataset. The seed is fixed."""
    y = _as_labels(y_true)
    base_right = predicted_labels(baseline_scores) == y
    right = predicted_labels(scores) == y
    n = int(y.shape[0])
    if n == 0 or base_right.shape != right.shape:
        return [0.0, 0.0]
    gained = int(np.count_nonzero(right & ~base_right))
    lost = int(np.count_nonzero(base_right & ~right))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    counts = rng.multinomial(n, [gained / n, lost / n, 1.0 - (gained + lost) / n], size=BOOTSTRAP_RESAMPLES)
    low, high = np.quantile((counts[:, 0] - counts[:, 1]) / n, [0.025, 0.975])
    return [float(low), float(high)]
