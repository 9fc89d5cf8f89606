"""Degenerate outputs: a model whose outputs barely depend on its input, or whose class scores tie.

Untrained weights are the usual cause: every sample gets (nearly) the same output, or every
class (nearly) the same score, so the predicted class is decided by ties and rounding noise.
Accuracy and agreement then mean nothing, and a variant that is numerically faithful can look
as if it lost everything; such a model is graded on output fidelity only.
"""

from __future__ import annotations

import numpy as np

#: Differences below this fraction of the outputs' largest magnitude count as equal: about a
#: hundred float32 rounding steps, far below what any quantization changes.
RELATIVE_TOLERANCE = 1e-5
#: ... and below this, whatever the magnitude (all-zero outputs).
ABSOLUTE_TOLERANCE = 1e-12
#: Class scores tie on at least this fraction of the samples for the model to count as degenerate.
TIED_FRACTION = 0.5


def degenerate_outputs(outputs: np.ndarray, classification: bool) -> str | None:
    """Why ``outputs`` (one row per sample) are degenerate, in one sentence; None when they are not.

    Degenerate: every output value is the same for every sample (within ``RELATIVE_TOLERANCE``
    of the largest magnitude), or, for class scores, the top two scores of at least
    ``TIED_FRACTION`` of the samples are equal within that tolerance. Samples holding NaN or
    infinity are left out.
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim == 0 or out.shape[0] == 0:
        return None
    rows = out.reshape(out.shape[0], -1)
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return None
    tolerance = RELATIVE_TOLERANCE * float(np.max(np.abs(rows))) + ABSOLUTE_TOLERANCE
    if rows.shape[0] >= 2 and float(np.max(np.ptp(rows, axis=0))) <= tolerance:
        return f"its outputs are the same for all {rows.shape[0]} samples (to within {tolerance:.2g})"
    if classification and rows.shape[1] >= 2:
        top2 = np.sort(rows, axis=1)[:, -2:]
        tied = float(np.mean(top2[:, 1] - top2[:, 0] <= tolerance))
        if tied >= TIED_FRACTION:
            return f"its top two class scores are equal (to within {tolerance:.2g}) on {tied:.0%} of the samples"
    return None


def degenerate_note(reason: str) -> str:
    """The note a study with degenerate baseline outputs carries (``reason`` from ``degenerate_outputs``)."""
    return (
        f"Degenerate outputs: the baseline's {reason.removeprefix('its ')}; untrained weights? Its predictions "
        "say nothing about its input, so variants are graded on output fidelity only, not accuracy."
    )


def relative_output_error(fidelity: dict | None) -> float | None:
    """A variant's RMS output error as a fraction of the baseline's RMS output, from its fidelity's SQNR."""
    sqnr = (fidelity or {}).get("sqnr_db")
    return None if sqnr is None else float(10.0 ** (-float(sqnr) / 20.0))


#: What the verdict's sentences say of accuracy, and what they mean for a model graded on fidelity only.
_ON_FIDELITY = (
    ("loses too much accuracy", "strays too far from the baseline's outputs"),
    ("keeps accuracy", "keeps the baseline's outputs"),
    ("some accuracy is lost", "its outputs stray somewhat from the baseline's"),
)


def on_fidelity(reason: str) -> str:
    """A verdict sentence reworded for a variant graded on fidelity only (its accuracy means nothing)."""
    for accuracy_words, fidelity_words in _ON_FIDELITY:
        reason = reason.replace(accuracy_words, fidelity_words)
    return reason
