"""Numbers a restless machine cannot skew: the baseline re-check and the paired rounds.

Each variant is timed in its own stretch of time. A shared or virtual machine can
change speed between stretches: this project's own 2-core VM flips between two
speeds about 1.5x apart every second or so, even when idle. Then a speed-up
compares two different machines. So once every variant has been timed, the
engine (``guard_against_drift``) times the baseline again, and every other
variant briefly; when a median moved by more than DRIFT_LIMIT (core.measures.drift_notes), it times every
variant again in short rounds interleaved with the baseline's, one variant at a time, and the speed-ups and
speed verdicts come from those. When the baseline itself moved, the rounds follow at once: each variant's
median at the end comes from its rounds instead of a burst of its own (``variants_from``: "paired").
A variant timed with fewer than DRIFT_MIN_SAMPLES samples (a model taking seconds per call) takes part in
neither step: its few samples cannot tell a change of the machine's speed from noise, and its calls would
stretch every round. Both steps use the runners the engine kept (or reopens: core.engine.state.RunnerPool),
and stop at the cancel token.
"""

from __future__ import annotations

import time
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
#: When the re-check moved: every variant timed again in this many bursts of PAIRED_BURST_S, each between two
#: of the baseline's.
PAIRED_ROUNDS = 3
#: A variant whose runner took longer than this to reopen has its rounds opened by a fresh burst of the baseline;
#: otherwise the previous variant's last baseline burst, just before, opens them.
REOPEN_GAP_S = 0.5
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
        if recheck.get("variants_from") == "paired":
            recheck.update(_moved(_variants_again(results, paired["p50_ms"], base.label)))
    _note_drift(results, recheck, paired["rounds"] if paired else None, spec.timing)
    return paired


def _recheck(
    spec: StudySpec, base: VariantResult | None, results: list[VariantResult], runners: Mapping[str, Any],
    x: np.ndarray, cancel: CancelToken,
) -> Generator[Event, None, dict[str, Any] | None]:
    """Time the baseline again (RECHECK_S), and every other variant for one short burst, once all
    have been timed; when the baseline itself moved, the paired rounds that follow time the variants
    (``variants`` is then filled from them by ``guard_against_drift``).

    Each variant is timed in its own stretch of time. On a shared or virtual
    machine the CPU's speed can change between stretches (this project's own CI
    machine toggles between two speeds 1.5x apart, every second or so), and then
    a speed-up compares two different machines. Re-timing at the end shows whether
    that happened: each median should match its first one; "drifted" when the
    baseline's, or any variant's (``moved``: the one that moved most), moved by
    more than DRIFT_LIMIT (core.measures.drift_notes).
    Returns the ``timing.baseline_recheck`` block (None when there is nothing to compare).
    """
    timed = [r for r in results if takes_part(r, spec.timing) and r is not base and r.label in runners]
    if base is None or base.label not in runners or not takes_part(base, spec.timing) or not timed:
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
    block: dict[str, Any] = {
        "p50_ms": round(again, 6), "first_p50_ms": round(first, 6), "change": round(change, 4), "samples": samples,
    }
    if drift_note(first, again) is not None:
        # The baseline itself moved: the paired rounds time every variant again anyway, so no burst of each is
        # taken here (each would reopen its runner once more); their medians fill ``variants`` afterwards.
        block.update(variants={}, moved=None, drifted=True, variants_from="paired")
        return block
    # The baseline can be back at its first speed by the end while a variant was timed at another
    # (the machine changed speed and back): one short burst of every variant shows that too.
    again_p50: dict[str, float] = {}
    for i, r in enumerate(timed, start=1):
        yield Progress(spec.study_id, base.label, "re-checking", i, steps,
                       f"re-timing {r.label} briefly: did the machine's speed change?")
        v_again, n = _median_ms(_prepared(runners, r.label, x), _burst(spec.timing, r.latency.p50, fresh=True),
                                cancel)
        _release(runners, r.label)  # a runner reopened for its burst goes again: the memory stays flat
        if n:
            again_p50[r.label] = v_again
    block.update(_moved(_variants_again(timed, again_p50, base.label)))
    # Whether the study drifted, and the warning, are read from the same stored figures.
    block["drifted"] = recheck_note(block) is not None
    return block


def _variants_again(results: list[VariantResult], again_p50: Mapping[str, float], base: str) -> dict[str, Any]:
    """Each variant's first median, its median at the end and the change, for those timed again (not the baseline)."""
    variants: dict[str, dict[str, float]] = {}
    for r in results:
        again = again_p50.get(r.label)
        if r.label != base and r.latency is not None and again is not None and r.latency.p50 > 0 and again > 0:
            variants[r.label] = {"first_p50_ms": round(r.latency.p50, 6), "p50_ms": round(again, 6),
                                 "change": round(again / r.latency.p50 - 1, 4)}
    return variants


def _moved(variants: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The re-check's ``variants`` and ``moved`` (the variant whose median moved most past the drift limit)."""
    moving = [label for label, f in variants.items() if drift_note(f["first_p50_ms"], f["p50_ms"]) is not None]
    return {"variants": variants, "moved": max(moving, key=lambda label: abs(variants[label]["change"]), default=None)}


#: A burst lasts long enough for this many calls of the variant, up to MAX_BURST_S: with PAIRED_ROUNDS rounds,
#: a slow model's paired median still rests on PAIRED_ROUNDS x BURST_CALLS calls.
BURST_CALLS = 3
MAX_BURST_S = 2.0


#: Before a burst, the runner's calls run untimed for about this long (the harness's first call included).
BURST_WARMUP_S = 0.01


def _burst(timing: TimingSpec, p50_ms: float = 0.0, fresh: bool = False) -> TimingSpec:
    """A short timing: PAIRED_BURST_S (or, for a slow model, BURST_CALLS of its calls, up to MAX_BURST_S),
    after a brief warm-up: the runner is warm, so its weights need only be brought back into the caches the
    variant timed before it used, which the harness's first, untimed call does for a model that takes
    BURST_WARMUP_S or more; a faster one runs that long. A ``fresh`` runner (just reopened or rebuilt) also
    gets one more untimed call, its first ones allocating what later calls reuse."""
    seconds = min(MAX_BURST_S, max(PAIRED_BURST_S, BURST_CALLS * p50_ms / 1000.0))
    warmup_s = max(0.0, BURST_WARMUP_S - p50_ms / 1000.0)
    return replace(timing, max_time_s=seconds, min_samples=PAIRED_MIN_SAMPLES, warmup_runs=1 if fresh else 0,
                   warmup_s=warmup_s)


def _paired_rounds(
    spec: StudySpec, base: VariantResult, results: list[VariantResult], runners: Mapping[str, Any], x: np.ndarray,
    cancel: CancelToken,
) -> Generator[Event, None, dict[str, Any] | None]:
    """Time every variant again against the baseline, in PAIRED_ROUNDS short bursts each bracketed by two of
    the baseline's, for speed-ups the machine's changes of speed cannot skew.

    Run only when the re-check moved. One variant at a time: its runner opens (core.engine.state.RunnerPool
    reopens it), then variant, baseline, … variant, baseline, each burst PAIRED_BURST_S (or BURST_CALLS of its
    own calls, when they take longer: see ``_burst``), the first variant burst preceded by the previous
    variant's last baseline burst (or a fresh one, for the first variant or one that took over REOPEN_GAP_S to
    open); it closes again before the next variant opens, so only the baseline and one variant are ever open:
    the memory stays that of the largest variant however many the study has. Each of a variant's rounds gives a
    ratio: the mean of the two baseline medians around its burst ÷ its median (a change of speed that is steady
    over the round cancels); its paired speed-up is the median of those ratios, and its verdict's speed grade
    uses it. ``p50_ms`` keeps each variant's median over its rounds (the baseline's over all its bursts), the
    latencies those speed-ups come from. Each variant's own latency figures and histogram stay those of its
    first timing.
    Returns the ``timing.paired`` block.
    """
    timed = {r.label: r for r in results if takes_part(r, spec.timing) and r.label in runners}
    others = [label for label in timed if label != base.label]
    if base.label not in timed or not others:
        return None
    base_burst = _burst(spec.timing, base.latency.p50)
    base_call = _prepared(runners, base.label, x)
    base_medians: list[float] = []
    speedups: dict[str, dict[str, float]] = {}
    p50: dict[str, float] = {}
    longest = base_burst.max_time_s
    before: float | None = None  # the baseline's last burst
    for index, label in enumerate(others):
        yield Progress(
            spec.study_id, base.label, "re-checking", index, len(others),
            f"the machine's speed changed: timing {label} again, in {PAIRED_ROUNDS} interleaved rounds with the "
            "baseline",
        )
        burst = _burst(spec.timing, timed[label].latency.p50)
        opening = _burst(spec.timing, timed[label].latency.p50, fresh=True)  # the first, after reopening
        longest = max(longest, burst.max_time_s)
        opened = time.perf_counter()
        call = _prepared(runners, label, x)
        if before is None or time.perf_counter() - opened > REOPEN_GAP_S:
            # The previous variant's last baseline burst opens this one's rounds, unless reopening took long.
            before = _median_ms(base_call, base_burst, cancel)[0]
            base_medians.append(before)
        ratios, medians = [], []
        for round_ in range(PAIRED_ROUNDS):
            median = _median_ms(call, burst if round_ else opening, cancel)[0]  # nan: no figure this round
            after = _median_ms(base_call, base_burst, cancel)[0]
            around = (before + after) / 2
            if median > 0 and around > 0:
                ratios.append(around / median)
            medians.append(median)
            base_medians.append(after)
            before = after
        del call
        _release(runners, label)  # closed before the next variant opens
        if ratios:
            speedups[label] = {"median": round(float(np.median(ratios)), 4), "min": round(min(ratios), 4),
                               "max": round(max(ratios), 4)}
        if np.isfinite(medians).any():
            p50[label] = round(float(np.nanmedian(medians)), 6)
    if np.isfinite(base_medians).any():
        p50[base.label] = round(float(np.nanmedian(base_medians)), 6)
        speedups[base.label] = {"median": 1.0, "min": 1.0, "max": 1.0}
    return {"rounds": PAIRED_ROUNDS, "burst_s": longest, "speedup": speedups, "p50_ms": p50}


def takes_part(result: VariantResult, timing: TimingSpec) -> bool:
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
        text = note if takes_part(r, timing) else unpaired
        if r.ok and text:
            r.notes.append(text)
