"""What the window knows about the running study, built from engine events.

Plain Python, no Qt: the results panel feeds it the events buffered since the
last redraw, then asks which variants changed and redraws only those charts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from core.measures.drift_notes import paired_block, paired_p50_ms, paired_speedup_range
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
from core.study.result import StudyResult, VariantResult


class Phase(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SampleBuffer:
    """A growing float array; appends are amortised O(1), reads are views."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def extend(self, values: list[float] | np.ndarray) -> None:
        new = np.asarray(values, dtype=np.float64).ravel()
        need = self._n + new.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = new
        self._n = need

    def replace(self, values: list[float] | np.ndarray) -> None:
        self._n = 0
        self.extend(values)

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n


@dataclass(frozen=True)
class PairedFigures:
    """A variant's figures from the paired rounds the engine runs when the machine's speed changed."""

    rounds: int
    p50_ms: float | None  # its median over the rounds
    speedup: tuple[float, float, float] | None  # (median, lowest, highest) of baseline ÷ variant


@dataclass
class VariantState:
    label: str
    index: int
    scheme: str = ""
    phase: Phase = Phase.WAITING
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    size_bytes: int | None = None
    runtime: str = ""
    result: VariantResult | None = None
    error: str | None = None
    error_stage: str | None = None
    samples: SampleBuffer = field(default_factory=SampleBuffer)
    #: Set when the study ends with paired rounds: its speed-up comes from those, not its first timing.
    paired: PairedFigures | None = None

    @property
    def is_baseline(self) -> bool:
        """Whether this is the variant the others are measured against (``VariantResult.is_baseline``)."""
        return self.result is not None and bool(self.result.is_baseline)

    @property
    def status_text(self) -> str:
        """Short status for the table while the variant is not finished."""
        if self.phase is Phase.RUNNING:
            # One word: the counts are in the progress line under Run.
            return f"{self.stage or 'starting'}…"
        return self.phase.value


@dataclass
class Changes:
    """What the events applied since the last ``take_changes`` touched."""

    started: bool = False
    samples: set[str] = field(default_factory=set)
    results: set[str] = field(default_factory=set)
    status: set[str] = field(default_factory=set)
    finished: bool = False

    def __bool__(self) -> bool:
        return self.started or self.finished or bool(self.samples or self.results or self.status)


class StudyState:
    """The study as the window shows it; rebuilt from events, never from widgets."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.study_id: str | None = None
        self.model: dict[str, Any] = {}
        self.dataset: dict[str, Any] = {}
        self.environment: dict[str, Any] = {}
        self.advice: dict[str, list[str]] = {}
        self.variants: dict[str, VariantState] = {}
        self.result: StudyResult | None = None
        self.finished = False
        self.cancelled = False
        self.error: str | None = None
        #: label -> the label of its own study's baseline (a comparison of studies).
        self.baselines: dict[str, str] = {}
        self._changes = Changes()

    # --- reading -------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self.variants)

    @property
    def baseline(self) -> VariantState | None:
        """The study's baseline, wherever its row sits (None until its result has arrived)."""
        return next((v for v in self.variants.values() if v.is_baseline), None)

    def baseline_for(self, label: str) -> VariantState | None:
        """The variant ``label`` is measured against (None: it is a baseline itself)."""
        base = self.variants.get(self.baselines.get(label, "")) or self.baseline
        return None if base is None or base.label == label else base

    def set_baselines(self, baselines: dict[str, str]) -> None:
        """Measure each variant against its own study's baseline (a comparison); every row changes."""
        self.baselines = dict(baselines)
        self._changes.status.update(self.variants)

    @property
    def task(self) -> str:
        return str(self.dataset.get("task", "classification"))

    @property
    def has_paired(self) -> bool:
        """Whether some speed-ups come from paired rounds (the table then shows where from)."""
        return any(v.paired is not None for v in self.variants.values())

    def finished_results(self) -> list[VariantResult]:
        return [v.result for v in self.variants.values() if v.result is not None and v.result.ok]

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    # --- writing -------------------------------------------------------
    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def fail(self, message: str) -> None:
        """The engine stopped with an error before finishing the study."""
        self.error = message
        self.finished = True
        self._stop_unfinished(Phase.FAILED, message)
        self._changes.finished = True

    def _variant(self, label: str) -> VariantState:
        if label not in self.variants:
            self.variants[label] = VariantState(label=label, index=len(self.variants))
            self._changes.started = True
        return self.variants[label]

    def _on_started(self, ev: StudyStarted) -> None:
        self._reset()  # a new study replaces everything
        self.study_id = ev.study_id
        self.model, self.dataset, self.environment = dict(ev.model), dict(ev.dataset), dict(ev.environment)
        self.advice = dict(ev.advice)
        for i, label in enumerate(ev.variants):
            self.variants[label] = VariantState(label=label, index=i)
        self._changes.started = True

    def _on_variant_started(self, ev: VariantStarted) -> None:
        v = self._variant(ev.label)
        v.scheme, v.phase, v.stage = ev.scheme, Phase.RUNNING, "starting"
        self._changes.status.add(v.label)

    def _on_progress(self, ev: Progress) -> None:
        v = self._variant(ev.label)
        if v.result is not None:
            return  # e.g. the baseline re-timed at the end of the study: it stays finished
        v.phase = Phase.RUNNING
        v.stage, v.done, v.total, v.message = ev.stage, ev.done, ev.total, ev.message
        self._changes.status.add(v.label)

    def _on_built(self, ev: VariantBuilt) -> None:
        v = self._variant(ev.label)
        v.size_bytes, v.runtime = ev.size_bytes, ev.runtime
        self._changes.results.add(v.label)

    def _on_samples(self, ev: LatencySamples) -> None:
        v = self._variant(ev.label)
        if (v.phase, v.stage) != (Phase.RUNNING, "timing"):
            v.phase, v.stage = Phase.RUNNING, "timing"
            self._changes.status.add(v.label)  # its status reads "timing…" from now on
        v.samples.extend(ev.samples_ms)
        self._changes.samples.add(v.label)

    def _set_result(self, result: VariantResult) -> None:
        v = self._variant(result.label)
        v.result = result
        v.phase = Phase.OK if result.ok else Phase.FAILED
        if result.size_bytes is not None:
            v.size_bytes = result.size_bytes
        if result.ok and result.samples_ms and len(result.samples_ms) != len(v.samples):
            # The result holds every kept sample; trust it over what streamed in.
            v.samples.replace(result.samples_ms)
            self._changes.samples.add(v.label)
        if not result.ok:
            v.error, v.error_stage = result.error, result.error_stage
        self._changes.results.add(v.label)
        self._changes.status.add(v.label)

    def _on_finished(self, ev: VariantFinished) -> None:
        self._set_result(ev.result)

    def _on_failed(self, ev: VariantFailed) -> None:
        self._set_result(ev.result)
        v = self.variants[ev.result.label]
        v.phase, v.error, v.error_stage = Phase.FAILED, ev.error, ev.stage

    def _on_study_finished(self, ev: StudyFinished) -> None:
        self.result = ev.result
        self.cancelled = ev.cancelled
        self.finished = True
        # The final results are authoritative: verdicts are recomputed once every variant is known.
        for r in ev.result.results:
            self._set_result(r)
        self._set_paired(ev.result.timing)
        self._stop_unfinished(Phase.CANCELLED if ev.cancelled else Phase.FAILED, None)
        self._changes.finished = True

    def _set_paired(self, timing: dict[str, Any]) -> None:
        paired = paired_block(timing)
        if paired is None:
            return
        for v in self.variants.values():
            speedup, p50 = paired_speedup_range(timing, v.label), paired_p50_ms(timing, v.label)
            if v.result is not None and v.result.ok and (speedup or p50):
                v.paired = PairedFigures(int(paired.get("rounds") or 0), p50, speedup)
                self._changes.results.add(v.label)

    def _stop_unfinished(self, phase: Phase, message: str | None) -> None:
        for v in self.variants.values():
            if v.phase in (Phase.WAITING, Phase.RUNNING):
                v.phase = phase
                if message:
                    v.error = message
                self._changes.status.add(v.label)


_HANDLERS = {
    StudyStarted: StudyState._on_started,
    VariantStarted: StudyState._on_variant_started,
    Progress: StudyState._on_progress,
    VariantBuilt: StudyState._on_built,
    LatencySamples: StudyState._on_samples,
    VariantFinished: StudyState._on_finished,
    VariantFailed: StudyState._on_failed,
    StudyFinished: StudyState._on_study_finished,
}

