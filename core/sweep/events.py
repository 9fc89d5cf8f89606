"""What a running sweep tells its driver (the CLI, the window's worker): plain dataclasses, like the engine's."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.sweep.outcome import StudyOutcome


@dataclass
class SweepEvent:
    """Base of the sweep's events."""


@dataclass
class SweepStudyChanged(SweepEvent):
    """One study of the sweep changed state (queued, running, done, skipped, failed, retrying, cancelled)."""

    outcome: StudyOutcome


@dataclass
class SweepFinished(SweepEvent):
    """The sweep ended; ``outcomes`` in the sweep file's order."""

    outcomes: list[StudyOutcome] = field(default_factory=list)
    cancelled: bool = False
    where: str = ""


@dataclass
class SweepNote(SweepEvent):
    """A sentence for the user that changes no study (e.g. the history could not be written)."""

    message: str
