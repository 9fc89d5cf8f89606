"""Numbers a restless machine cannot skew: the baseline re-check and the paired rounds.

Each variant is timed in its own stretch of time. A shared or virtual machine can
change speed between stretches: this project's own 2-core VM flips between two
speeds about 1.5x apart every second or so, even when idle. Then a speed-up
compares two different machines. So once every variant has been timed, the
engine (``guard_against_drift``) times the baseline again, and every other
variant briefly; when a median moved by more than DRIFT_LIMIT (core.measures.drift_notes), it times every
variant again in short interleaved rounds and the speed-ups and speed verdicts
come from those. A variant timed with fewer than DRIFT_MIN_SAMPLES samples (a model taking
seconds per call) takes part in neither step: its few samples cannot tell a change of the
machine's speed from noise, and its calls would stretch every round. Both steps use the
runners the engine kept (or reopens: core.engine.state.RunnerPool), and stop at the cancel token.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from core.engine.timing import LatencyHarness
from core.errors import Cancelled
from core.measures.drift_notes import drift_note, recheck_note
from core.study.cancel import CancelToken
from core.study.events import Event, Progress
from core.study.result import VariantResult
from core.study.spec import StudySpec, TimingSpec

#: A variant timed with fewer samples than this (a pathologically slow one: seconds per call; or fewer than
#: the study's own ``min_samples``, when that is lower) says nothing about the machine's speed: it never sets
#: off the re-check or the paired rounds, and keeps its first timing.
DRIFT_MIN_SAMPLES = 20
#: The baseline is timed again for this long at the end of a study.
RECHECK_S = 0.5
RECHECK_MIN_SAMPLES = 30
#: When the re-check moved: every variant timed again in this many interleaved rounds of PAIRED_BURST_S each.
PAIRED_ROUNDS = 7
PAIRED_BURST_S = 0.1
PAIRED_MIN_SAMPLES = 3  # a slow model still gives a median per burst without stretching it


def guard_against_drift(
    spec: StudySpec, base: VariantResult | None, results: list[VariantResult], runners: Mapping[str, Any],
    x: np.ndarray, cancel: CancelToken, timing_info: dict[str, Any],
) -> Generator[Event, None, dict[str, Any] | None]:
    """Re-check the baseline and every variant and, if one moved, time them all again in interleaved rounds.

    The result's blocks go into ``timing_info`` as soon as each is complete (``baseline_recheck``,
    then ``paired``), so a study cancelled during the paired rounds keeps its re-check and its
    warning. Returns the ``paired`` block or None; a drift is noted on every measured variant."""
    recheck = yield from _recheck(spec, base, results, runners, x, cancel)
    if recheck is None:
        return None
    timing_info["baseline_recheck"] = recheck
    if not recheck["drifted"] or base is None:
        return None
    paired = yield from _paired_rounds(spec, base, results, runners, x, cancel)
    if paired is not None:
        timing_info["paired"] = paired
    _note_drift(results, recheck, paired["rounds"] if paired else None, spec.timing)
    return paired


def _recheck(
    spec: StudySpec, base: VariantResult | None, results: list[VariantResult], runners: Mapping[str, Any],
    x: np.ndarray, cancel: CancelToken,
) -> Generator[Event, None, dict[str, Any] | None]:
    """Time the baseline again (RECHECK_S), and every other variant for one short burst, once all
    have been timed.

    Each variant is timed in its own stretch of time. On a shared or virtual
    machine the CPU's speed can change between stretches (this project's own CI
    machine toggles between two speeds 1.5x apart, every second or so), and then
    a speed-up compares two different machines. Re-timing at the end shows whether
    that happened: each median should match its first one; "drifted" when the
    baseline's, or any variant's (``moved``: the one that moved most), moved by
    more than DRIFT_LIMIT (core.measures.drift_notes).
    Returns the ``timing.baseline_recheck`` block (None when there is nothing to compare).
    """
    timed = [r for r in results if _enough_samples(r, spec.timing) and r is not base and r.label in runners]
    if base is None or base.label not in runners or not _enough_samples(base, spec.timing) or not timed:
        return None
    timing = replace(spec.timing, max_time_s=min(spec.timing.max_time_s, RECHECK_S), min_samples=RECHECK_MIN_SAMPLES)
    steps = 1 + len(timed)
    yield Progress(spec.study_id, base.label, "re-checking", 0, steps,
                   "re-timing the baseline: did the machine's speed change?")
    # Not streamed: the baseline's histogram shows its first timing.
    again, samples = _median_ms(_prepared(runners, base.label, x), timing, cancel)
    if not samples:
        return None
    first = base.latency.p50
    change = again / first - 1 if first > 0 else 0.0
    # The baseline can be back at its first speed by the end while a variant was timed at another
    # (the machine changed speed and back): one short burst of every variant shows that too.
    variants: dict[str, dict[str, float]] = {}
    for i, r in enumerate(timed, start=1):
        yield Progress(spec.study_id, base.label, "re-checking", i, steps,
                       f"re-timing {r.label} briefly: did the machine's speed change?")
        v_again, n = _median_ms(_prepared(runners, r.label, x), _burst(spec.timing, r.latency.p50), cancel)
        _release(runners, r.label)  # a runner reopened for its burst goes again: the memory stays flat
        if n and r.latency.p50 > 0 and v_again > 0:
            variants[r.label] = {"first_p50_ms": round(r.latency.p50, 6), "p50_ms": round(v_again, 6),
                                 "change": round(v_again / r.latency.p50 - 1, 4)}
    # Whether the study drifted, and the warning, are read from the same stored figures.
    moving = [label for label, f in variants.items() if drift_note(f["first_p50_ms"], f["p50_ms"]) is not None]
    block: dict[str, Any] = {
        "p50_ms": round(again, 6), "first_p50_ms": round(first, 6), "change": round(change, 4), "samples": samples,
        "variants": variants, "moved": max(moving, key=lambda label: abs(variants[label]["change"]), default=None),
    }
    block["drifted"] = recheck_note(block) is not None
    return block


#: A burst lasts long enough for this many calls of the variant, up to MAX_BURST_S: with PAIRED_ROUNDS rounds,
#: a slow model's paired median still rests on PAIRED_ROUNDS x BURST_CALLS calls.
BURST_CALLS = 4
MAX_BURST_S = 2.0


def _burst(timing: TimingSpec, p50_ms: float = 0.0) -> TimingSpec:
    """A short timing: PAIRED_BURST_S (or, for a slow model, BURST_CALLS of its calls, up to MAX_BURST_S),
    after a brief warm-up (the runner is warm: one call, or 10 ms of calls for a fast model, brings its weights
    back into the caches the variant timed before it used)."""
    seconds = min(MAX_BURST_S, max(PAIRED_BURST_S, BURST_CALLS * p50_ms / 1000.0))
    return replace(timing, max_time_s=seconds, min_samples=PAIRED_MIN_SAMPLES, warmup_runs=1, warmup_s=0.01)


def _paired_rounds(
    spec: StudySpec, base: VariantResult, results: list[VariantResult], runners: Mapping[str, Any], x: np.ndarray,
    cancel: CancelToken,
) -> Generator[Event, None, dict[str, Any] | None]:
    """Time every variant again in PAIRED_ROUNDS short interleaved rounds, for speed-ups the
    machine's changes of speed cannot skew.

    Run only when the baseline's re-check moved. In each round every variant is timed
    for PAIRED_BURST_S (or BURST_CALLS of its own calls, when they take longer: see ``_burst``), the
    order reversed from one round to the next, so the
    baseline and each variant are measured within a second of each other. A
    variant's paired speed-up is the median over rounds of baseline median ÷ its
    median; its verdict's speed grade uses it. ``p50_ms`` keeps each variant's median over the
    rounds, the latency those speed-ups come from. Each variant's own latency
    figures and histogram stay those of its first timing.
    Returns the ``timing.paired`` block.
    """
    timed = {r.label: r for r in results if _enough_samples(r, spec.timing) and r.label in runners}
    labels = list(timed)
    if base.label not in labels or len(labels) < 2:
        return None
    # Each variant's burst lasts long enough for a few of its own calls (see _burst): the baseline and each
    # variant still meet the same machine within a round, and a slow variant no longer stretches every burst.
    bursts = {label: _burst(spec.timing, timed[label].latency.p50) for label in labels}
    calls = {label: _prepared(runners, label, x) for label in labels}
    medians: dict[str, list[float]] = {label: [] for label in labels}
    for round_index in range(PAIRED_ROUNDS):
        yield Progress(
            spec.study_id, base.label, "re-checking", round_index, PAIRED_ROUNDS,
            "the machine's speed changed: timing every variant again, in interleaved rounds",
        )
        for label in labels if round_index % 2 == 0 else labels[::-1]:
            medians[label].append(_median_ms(calls[label], bursts[label], cancel)[0])  # nan: no figure this round
    speedups: dict[str, dict[str, float]] = {}
    for label in labels:
        ratios = [b / v for b, v in zip(medians[base.label], medians[label], strict=True) if v > 0 and b > 0]
        if ratios:
            speedups[label] = {"median": round(float(np.median(ratios)), 4), "min": round(min(ratios), 4),
                               "max": round(max(ratios), 4)}
    # Each variant's median over the rounds: the latency the paired speed-ups were measured from.
    p50 = {label: round(float(np.nanmedian(m)), 6) for label, m in medians.items() if np.isfinite(m).any()}
    burst_s = max(b.max_time_s for b in bursts.values())  # the longest burst of a round
    return {"rounds": PAIRED_ROUNDS, "burst_s": burst_s, "speedup": speedups, "p50_ms": p50}


def _enough_samples(result: VariantResult, timing: TimingSpec) -> bool:
    """Whether ``result`` was timed with at least DRIFT_MIN_SAMPLES samples (or the study's own sample floor,
    when that is lower: a timing that converged there is settled): only then does a change of its median
    tell that the machine's speed changed (see DRIFT_MIN_SAMPLES)."""
    floor = min(DRIFT_MIN_SAMPLES, timing.min_samples)
    return result.ok and result.latency is not None and result.latency.n >= floor


def _prepared(runners: Mapping[str, Any], label: str, x: np.ndarray) -> Any:
    """``runners[label].prepare_call(x)``, or None when the runtime fails now, reopening its file included
    (``_median_ms`` then gives nan)."""
    try:
        return runners[label].prepare_call(x)
    except Exception:
        return None


def _release(runners: Mapping[str, Any], label: str) -> None:
    """Give a reopened runner's memory back (core.engine.state.RunnerPool); a plain dict keeps its runners."""
    release = getattr(runners, "release", None)
    if callable(release):
        release(label)


def _median_ms(call: Any, timing: TimingSpec, cancel: CancelToken) -> tuple[float, int]:
    """(median ms per call, samples) of one harness run of ``call``; (nan, 0) without samples, or
    when the runtime fails now: that variant keeps its first timing and the study goes on."""
    if call is None:
        return float("nan"), 0
    try:
        run = LatencyHarness(call, timing, cancel=cancel).measure()
    except Cancelled:
        raise
    except Exception:  # a runtime failing in the re-check must not sink the study's results
        return float("nan"), 0
    if run.stop_reason == "cancelled":
        raise Cancelled("the study was cancelled")
    if not run.samples_ms:
        return float("nan"), 0
    return float(np.median(run.samples_ms)), len(run.samples_ms)


def _note_drift(
    results: list[VariantResult], recheck: dict[str, Any], paired_rounds: int | None, timing: TimingSpec
) -> None:
    """Every measured variant says the machine's speed changed, and whether the speed-ups were re-measured."""
    note = recheck_note(recheck, paired_rounds)
    # A variant with too few samples for the rounds keeps its first timing: its note does not claim rounds.
    unpaired = recheck_note(recheck, None)
    for r in results:
        text = note if _enough_samples(r, timing) else unpaired
        if r.ok and text:
            r.notes.append(text)
