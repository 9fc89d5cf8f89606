"""Overall progress, the current step and the time left, from engine events.

Each variant counts equally; inside one, building (with calibration) takes the
first third, evaluation the second and timing the last. Time left is the
elapsed time scaled by the fraction still to do, which is rough for the first
variant and good after that; it is not shown until there is something to
extrapolate from. A cancelled study's bar stays where it stopped, and its
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
    VariantFailed,
    VariantFinished,
)

_STAGE_SLOT = {"evaluating": 1, "timing": 2}  # anything else (building, calibrating, exporting ...) is slot 0
_SLOTS = 3


class StudyProgress:
    def __init__(self, timing_max_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.timing_max_s = max(timing_max_s, 1e-3)
        self._reset()

    def _reset(self) -> None:
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
            self.step_text = "starting"
        elif isinstance(event, Progress):
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
        return min(1.0, (len(self._done_variants) + self._current_fraction) / self._n)

    @property
    def elapsed_s(self) -> float:
        return 0.0 if self._started_at is None else self._clock() - self._started_at

    @property
    def eta_s(self) -> float | None:
        f, elapsed = self.fraction, self.elapsed_s
        if self.finished or f < 0.03 or elapsed < 1.0:
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
