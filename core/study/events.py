"""Events the engine yields while a study runs.

Every event is a small dataclass of plain values (numbers, strings, lists,
other result dataclasses) and carries the study id, so a driver can drop the
stale events of a study it has already replaced. Nothing here knows about Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.study.result import StudyResult, VariantResult


@dataclass
class Event:
    study_id: str


@dataclass
class StudyStarted(Event):
    model: dict[str, Any]  # format, path, params, file_bytes, inputs, outputs
    dataset: dict[str, Any]  # spec, samples, task, classes, preprocessing
    variants: list[str]  # labels, baseline first
    environment: dict[str, Any]
    advice: dict[str, list[str]] = field(default_factory=dict)  # label -> warnings before the run
    timing: dict[str, Any] = field(default_factory=dict)  # threads, mode, model/dataset load seconds


@dataclass
class VariantStarted(Event):
    index: int
    label: str
    scheme: str


@dataclass
class Progress(Event):
    """A step inside one variant: stage is building, calibrating, evaluating or timing."""

    label: str
    stage: str
    done: int
    total: int
    message: str


# DESIGN.md names the evaluation progress event; it is the same shape.
EvalProgress = Progress


@dataclass
class VariantBuilt(Event):
    label: str
    size_bytes: int
    coverage: dict[str, Any]
    build_s: float
    runtime: str
    notes: list[str] = field(default_factory=list)


@dataclass
class LatencySamples(Event):
    """A batch of new latency samples (ms per call), sent about every 50 ms."""

    label: str
    samples_ms: list[float]
    total: int  # samples so far for this variant, including these


@dataclass
class VariantFinished(Event):
    result: VariantResult


@dataclass
class VariantFailed(Event):
    label: str
    stage: str
    error: str  # one human sentence
    result: VariantResult  # the failed row, ready to display


@dataclass
class StudyFinished(Event):
    result: StudyResult
    cancelled: bool = False
