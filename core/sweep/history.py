"""The sweep's side of the history: which studies it already holds (resume), and recording a study's events
with where it ran, the same way ``quantbench run`` records them (``core.history.recorder``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.history.recorder import StudyRecording
from core.history.store import StudyStore
from core.study.events import Event, StudyFinished, StudyStarted
from core.study.spec import StudySpec
from core.sweep.file import spec_fingerprint


def finished_fingerprints(home: Path | str | None) -> dict[str, str]:
    """Spec fingerprint -> id of the newest finished study in the history with that spec."""
    store = StudyStore(home)
    found: dict[str, str] = {}
    for summary in store.list_studies():  # newest first
        if summary.status != "finished":
            continue
        try:
            fingerprint = spec_fingerprint(store.spec_dict(summary.id))
        except Exception:  # noqa: BLE001 - a study stored without a readable spec is simply not matched
            continue
        found.setdefault(fingerprint, summary.id)
    return found


def with_placement(event: Event, placement: dict[str, Any]) -> Event:
    """``event`` with ``placement`` written into its environment block (StudyStarted, StudyFinished), so the
    history and the result JSON say where every figure was measured."""
    if isinstance(event, StudyStarted):
        event.environment["placement"] = dict(placement)
    elif isinstance(event, StudyFinished):
        event.result.environment["placement"] = dict(placement)
    return event


def record_events(
    spec: StudySpec, events: Iterable[Event], home: Path | str | None, placement: dict[str, Any],
    on_store_failed: Callable[[str], None],
) -> Any:
    """Record a study's events (already run elsewhere) into the history; return its StudyFinished (or None)."""
    recording = StudyRecording(spec, open_store=lambda: StudyStore(home), on_store_failed=on_store_failed)
    finished = None
    try:
        for event in events:
            recording.handle(with_placement(event, placement))
            if isinstance(event, StudyFinished):
                finished = event
    finally:
        recording.close("interrupted")
    return finished
