"""Overall progress, the current step and the time left, from engine events.

Each variant counts equally; inside one, building (with calibration) takes the
first third, evaluation the second and timing the last. Time left, until the first
variant has finished, is the elapsed time scaled by the fraction still to do; it is
not shown until there is something to extrapolate from. From then on it is a sum of
what each stage still needs (``_StageClock``): the finished variants' mean build and
timing times, their evaluation time per sample scaled by each variant's expected
slowdown (``timing.expected_slowdown``, measured before the run), and for the
variant under way its own evaluation rate. So a slow variant still to come, or a
slow one already done, does not throw the estimate off for the others; the bar
then follows the same sums. A cancelled study's bar stays where it stopped, and its
outcome counts what was measured against what was planned ("cancelled: 1 of 13
measured"), never against what happened to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.study.events import (
    Event,
    LatencySamples,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)

_STAGE_SLOT = {"evaluating": 1, "timing": 2}  # anything else (building, calibrating, exporting ...) is slot 0
_SLOTS = 3


class StudyProgress:
    def __init__(self, timing_max_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.timing_max_s = max(timing_max_s, 1e-3)
        self._reset()

    def _reset(self) -> None:
        self._stages = _StageClock(self._clock)
        self._seen_fraction = 0.0
        self._n = 1
        self._planned = 0  # unknown until the study starts
        self._done_variants: set[str] = set()
        self._current: str | None = None
        self._current_fraction = 0.0
        self._timing_since: float | None = None
        self._started_at: float | None = None
        self._measured = 0
        self.step_text = ""
        self.finished = False
        self.cancelled = False

    def apply(self, event: Event) -> None:
        if isinstance(event, StudyStarted):
            self._reset()
            self._n = max(1, len(event.variants))
            self._planned = len(event.variants)
            self._started_at = self._clock()
            self._stages.start(event, self.timing_max_s)
            self.step_text = "starting"
            return
        self._stages.apply(event)
        if isinstance(event, Progress):
            self._enter(event.label)
            slot = _STAGE_SLOT.get(event.stage, 0)
            inner = event.done / event.total if event.total else 0.0
            self._advance((slot + min(1.0, inner)) / _SLOTS)
            count = f" {event.done}/{event.total}" if event.total else ""
            self.step_text = f"{event.stage} {event.label}{count}"
        elif isinstance(event, LatencySamples):
            self._enter(event.label)
            if self._timing_since is None:
                self._timing_since = self._clock()
            inner = min(1.0, (self._clock() - self._timing_since) / self.timing_max_s)
            self._advance((_STAGE_SLOT["timing"] + inner) / _SLOTS)
            self.step_text = f"timing {event.label} {event.total} samples"
        elif isinstance(event, (VariantFinished, VariantFailed)):
            label = event.result.label
            self._done_variants.add(label)
            self._measured += isinstance(event, VariantFinished) and event.result.ok
            if self._current == label:
                self._current, self._current_fraction = None, 0.0
        elif isinstance(event, StudyFinished):
            self.finished = True
            self.cancelled = event.cancelled
            self.step_text = "finished"
            if event.cancelled:
                # Only what finished: the rows that never ran are no part of the bar or the count.
                self._current, self._current_fraction = None, 0.0
                self.step_text = outcome_text(True, self._measured, self.planned)

    def _enter(self, label: str) -> None:
        if label != self._current:
            self._current, self._current_fraction, self._timing_since = label, 0.0, None

    def _advance(self, fraction: float) -> None:
        # Never move backwards: a variant's stages can report out of order.
        self._current_fraction = max(self._current_fraction, min(1.0, fraction))

    @property
    def planned(self) -> int:
        """How many rows (the baseline among them) the study set out to measure; 0 before it started."""
        return self._planned

    @property
    def measured(self) -> int:
        """How many rows finished with figures."""
        return self._measured

    @property
    def fraction(self) -> float:
        if self.finished and not self.cancelled:
            return 1.0
        fraction = (len(self._done_variants) + self._current_fraction) / self._n
        if self.finished:  # cancelled: the bar counts what was measured against the plan
            return min(1.0, fraction)
        left = self._stages.left_s()
        if left is not None and self.elapsed_s > 0:
            fraction = self.elapsed_s / (self.elapsed_s + left)
        # Never backwards: a new figure can make the rest look longer than it did a moment ago.
        self._seen_fraction = max(self._seen_fraction, min(1.0, fraction))
        return self._seen_fraction

    @property
    def elapsed_s(self) -> float:
        return 0.0 if self._started_at is None else self._clock() - self._started_at

    @property
    def eta_s(self) -> float | None:
        if self.finished:
            return None
        left = self._stages.left_s()
        if left is not None:
            return left
        f, elapsed = self.fraction, self.elapsed_s
        if f < 0.03 or elapsed < 1.0:
            return None
        return elapsed * (1.0 - f) / f

    @property
    def eta_text(self) -> str:
        eta = self.eta_s
        if eta is None:
            return ""
        if eta < 60:
            return f"about {max(1, round(eta))} s left"
        return f"about {eta / 60:.0f} min left" if eta >= 120 else f"about {round(eta)} s left"


def outcome_text(cancelled: bool, measured: int, planned: int) -> str:
    """How a study ended, counted against its plan: "cancelled: 1 of 13 measured"."""
    if planned == 0:
        return "cancelled before anything was measured" if cancelled else "finished: nothing was planned"
    if cancelled:
        return f"cancelled: {measured} of {planned} measured"
    return f"finished: {measured} of {planned} measured"


#: A typical variant's build in seconds, and a typical build that calibrates (``timing.calibrating`` names
#: those variants), each weighing as much as PRIOR_WEIGHT finished builds of its kind in the estimate.
PRIOR_BUILD_S = 2.0
PRIOR_CALIBRATING_BUILD_S = 10.0
PRIOR_WEIGHT = 2


class _StageClock:
    """How long each variant's stages took, and what the study still needs from them (``left_s``).

    A variant's build runs from its start (VariantStarted, or its first event) to VariantBuilt (or its
    first evaluation event), its evaluation from there to its first timing event (a timing Progress or LatencySamples),
    and its timing from there to its end. Evaluation time is kept per sample and divided by the
    variant's expected slowdown, so that one slow variant does not make the others look slow."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._labels: list[str] = []
        self._slowdown: dict[str, float] = {}
        self._samples = 0
        self._timing_max_s = 2.0
        self._done: dict[str, tuple[float, float, float]] = {}  # label -> build, eval per sample (normalized), timing
        self._current: str | None = None
        self._stage = "building"
        self._stage_at = 0.0
        self._spent: dict[str, float] = {}
        self._eval_done = 0
        self._eval_total = 0
        self._base_per_sample: float | None = None
        self._calibrating: set[str] = set()

    def start(self, event: StudyStarted, timing_max_s: float) -> None:
        self._labels = list(event.variants)
        expected = (event.timing or {}).get("expected_slowdown") or {}
        self._slowdown = {str(k): float(v) for k, v in expected.items() if isinstance(v, (int, float)) and v > 0}
        self._calibrating = {str(label) for label in (event.timing or {}).get("calibrating") or ()}
        self._samples = int((event.dataset or {}).get("samples") or 0)
        self._timing_max_s = timing_max_s

    def apply(self, event: Event) -> None:
        if isinstance(event, VariantStarted):
            self._enter(event.label)
        elif isinstance(event, VariantBuilt):  # evaluation starts now; its first Progress comes after a call
            self._enter(event.label)
            self._move_to("evaluating")
        elif isinstance(event, Progress):
            if event.stage == "re-checking":
                return
            self._enter(event.label)
            if event.stage == "evaluating":
                self._move_to("evaluating")
                self._eval_done, self._eval_total = event.done, event.total
            elif event.stage == "timing":
                self._move_to("timing")
        elif isinstance(event, LatencySamples):
            self._enter(event.label)
            self._move_to("timing")
        elif isinstance(event, (VariantFinished, VariantFailed)):
            self._finish(event.result.label)

    def _enter(self, label: str) -> None:
        if label != self._current and label not in self._done:
            if self._current is not None:
                self._finish(self._current)
            self._current, self._stage, self._stage_at, self._spent = label, "building", self._clock(), {}
            self._eval_done = self._eval_total = 0

    def _move_to(self, stage: str) -> None:
        order = ("building", "evaluating", "timing")
        if order.index(stage) > order.index(self._stage):
            now = self._clock()
            self._spent[self._stage] = now - self._stage_at
            self._stage, self._stage_at = stage, now

    def _finish(self, label: str) -> None:
        if label != self._current:
            return
        self._spent[self._stage] = self._clock() - self._stage_at
        samples = max(1, self._eval_total or self._samples)
        per_sample = self._spent.get("evaluating", 0.0) / samples
        self._done[label] = (self._spent.get("building", 0.0), per_sample, self._spent.get("timing", 0.0))
        if self._base_per_sample is None:
            self._base_per_sample = per_sample  # the baseline comes first: the slowdowns are against it
        self._current = None

    def _per_sample(self, label: str, typical: float) -> float:
        """Expected evaluation seconds per sample of ``label``: the baseline's times its measured slowdown,
        or the typical variant's."""
        factor = self._slowdown.get(label)
        if factor is not None and self._base_per_sample is not None:
            return self._base_per_sample * factor
        return typical

    def left_s(self) -> float | None:
        """Seconds the study still needs, or None until one variant has finished (nothing to go by)."""
        if not self._done:
            return None
        _, evals, timings = zip(*self._done.values(), strict=True)
        timing = sum(timings) / len(timings)
        # The typical variant's pace: those whose slowdown was measured before the run do not count.
        plain = [e for label, (_, e, _) in self._done.items() if label not in self._slowdown] or list(evals)
        per_sample = sum(plain) / len(plain)
        samples = max(1, self._samples)
        left = 0.0
        for label in self._labels:
            if label in self._done or label == self._current:
                continue
            left += self._build(label) + self._per_sample(label, per_sample) * samples + timing
        if self._current is not None:
            left += self._current_left(self._build(self._current), self._per_sample(self._current, per_sample),
                                       timing)
        return left

    def _build(self, label: str) -> float:
        """Expected build seconds of ``label``: the mean of the finished builds of its kind (calibrating or
        not), with a typical build of that kind weighing in until several have finished (the first few
        finished builds say little about the rest: a cast takes milliseconds, a calibration many seconds)."""
        calibrates = label in self._calibrating
        builds = [b for other, (b, _, _) in self._done.items() if (other in self._calibrating) == calibrates]
        prior = PRIOR_CALIBRATING_BUILD_S if calibrates else PRIOR_BUILD_S
        return (prior * PRIOR_WEIGHT + sum(builds)) / (PRIOR_WEIGHT + len(builds))

    def _current_left(self, build: float, per_sample: float, timing: float) -> float:
        in_stage = self._clock() - self._stage_at
        total = self._eval_total or self._samples
        if self._stage == "building":
            return max(0.0, build - in_stage) + per_sample * total + timing
        if self._stage == "evaluating":
            if self._eval_done > 0:  # its own pace so far
                return in_stage * (total - self._eval_done) / self._eval_done + timing
            return max(0.0, per_sample * total - in_stage) + timing
        return max(0.0, timing - in_stage)
