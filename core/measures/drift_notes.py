"""The words a restless machine calls for: the drift warnings, read from a study's stored timing blocks.

The engine (``core.engine.drift``) measures the re-check and the paired rounds and stores them in
``timing.baseline_recheck`` / ``timing.paired``; the engine, the window and every report then say
the same sentence, written here from those stored figures.
"""

from __future__ import annotations

from typing import Any

#: A baseline whose median moved by more than this between its first timing and the re-check at
#: the end of the study makes the study's speed-ups suspect.
DRIFT_LIMIT = 0.10
DRIFT_PREFIX = "the machine's speed changed during the study"
#: Marks a figure measured in the paired rounds rather than in the variant's first timing.
PAIRED_MARK = "\u2021"


def drift_note(
    first_p50: float, again_p50: float, limit: float = DRIFT_LIMIT, paired_rounds: int | None = None,
    subject: str = "the baseline",
) -> str | None:
    """The warning for a variant (the baseline unless ``subject`` names another) whose median moved by
    more than ``limit`` between its first timing and the re-check at the end of the study; None when it
    held still. ``paired_rounds``: the speed-ups were then measured again in that many interleaved rounds."""
    if not (first_p50 > 0 and again_p50 > 0):  # also None for NaN
        return None
    change = again_p50 / first_p50 - 1
    if abs(change) <= limit:
        return None
    said = (
        f"{DRIFT_PREFIX}: {subject}'s median was {first_p50:.4g} ms when first timed and {again_p50:.4g} ms at "
        f"the end ({change:+.0%})"
    )
    if paired_rounds:
        return (
            f"{said}, so each variant with enough timing samples was timed again in {paired_rounds} interleaved "
            f"rounds with the baseline: the speed-ups marked {PAIRED_MARK} and their verdicts come from those, "
            "p50/p99 and histograms from the first timing"
        )
    return f"{said}, so speed-ups can be off by that much; run the study again, or on a quieter machine"


def study_drift_warning(timing: dict) -> str | None:
    """The drift warning of a finished study, from its ``timing.baseline_recheck`` block."""
    recheck = (timing or {}).get("baseline_recheck") or {}
    return recheck_note(recheck, ((timing or {}).get("paired") or {}).get("rounds"))


def recheck_note(recheck: dict[str, Any], paired_rounds: int | None = None) -> str | None:
    """The warning a ``timing.baseline_recheck`` block calls for: the baseline's own move, else the
    variant that moved most (``moved``); None when everything held still."""
    moved = drift_subject(recheck)
    if moved is None:
        return None
    subject, first, again = moved
    return drift_note(first, again, paired_rounds=paired_rounds, subject=subject)


def drift_subject(recheck: dict[str, Any], limit: float = DRIFT_LIMIT) -> tuple[str, float, float] | None:
    """(who moved, first p50, p50 at the end) for a ``timing.baseline_recheck`` block: the baseline when it
    moved past ``limit``, else the variant that moved most when it did; None when everything held still
    (or the file is damaged)."""
    first, again = recheck.get("first_p50_ms"), recheck.get("p50_ms")
    if first and again and drift_note(float(first), float(again), limit) is not None:
        return "the baseline", float(first), float(again)
    moved = recheck.get("moved")
    figures = (recheck.get("variants") or {}).get(moved) if moved else None
    if not isinstance(figures, dict) or not figures.get("first_p50_ms") or not figures.get("p50_ms"):
        return None
    first, again = float(figures["first_p50_ms"]), float(figures["p50_ms"])
    return (str(moved), first, again) if drift_note(first, again, limit) is not None else None


def paired_block(timing: dict | None) -> dict[str, Any] | None:
    """A study's ``timing.paired`` block when the speed-ups were measured in paired rounds, else None."""
    paired = (timing or {}).get("paired")
    return paired if isinstance(paired, dict) and paired.get("speedup") else None


def paired_p50_ms(timing: dict | None, label: str) -> float | None:
    """``label``'s median latency over the paired rounds (ms), or None (no rounds, or an older file)."""
    value = ((paired_block(timing) or {}).get("p50_ms") or {}).get(label)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def paired_speedup_range(timing: dict | None, label: str) -> tuple[float, float, float] | None:
    """(median, lowest, highest) of ``label``'s baseline ÷ variant ratio over the paired rounds, or None."""
    figures = ((paired_block(timing) or {}).get("speedup") or {}).get(label)
    if not isinstance(figures, dict):
        return None
    try:
        return float(figures["median"]), float(figures["min"]), float(figures["max"])
    except (KeyError, TypeError, ValueError):
        return None


def paired_footnote(timing: dict | None, labels: list[str], format_ms: Any) -> str | None:
    """The line under a table whose speed-ups carry ``PAIRED_MARK``: where they came from, and each
    variant's median in those rounds (the latencies they agree with); None without paired rounds."""
    paired = paired_block(timing)
    if paired is None:
        return None
    medians = [f"{label} {format_ms(p50)}" for label in labels if (p50 := paired_p50_ms(timing, label))]
    said = (
        f"{PAIRED_MARK} speed-up: median over {paired.get('rounds', '?')} interleaved rounds of the baseline's "
        "median (its bursts either side) ÷ the variant's"
    )
    return f"{said}; p50 in those rounds (ms): {', '.join(medians)}" if medians else said
