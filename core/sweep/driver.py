"""``run_sweep``: a sweep's studies, here one after another or as Ray tasks, as a generator of SweepEvents.

Here, each study runs exactly as ``quantbench run`` runs one: in its own child process
(``run_study_isolated``), recorded into the history as it goes. On Ray, see ``core.sweep.ray_runner``.
Studies the history already holds as finished (same spec fingerprint) are skipped and say so.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.errors import QuantBenchError
from core.history.recorder import StudyRecording
from core.history.store import StudyStore
from core.study.cancel import CancelToken
from core.study.events import Event, StudyFinished, StudyStarted
from core.study.spec import StudySpec
from core.sweep.events import SweepEvent, SweepFinished, SweepNote, SweepStudyChanged
from core.sweep.file import spec_fingerprint
from core.sweep.history import finished_fingerprints, with_placement
from core.sweep.outcome import StudyOutcome, StudyState, conclude, failed
from core.sweep.where import Where


def run_sweep(
    specs: Sequence[StudySpec],
    where: Where | None = None,
    *,
    home: Path | str | None = None,
    cancel: CancelToken | None = None,
    resume: bool = True,
    isolation: dict[str, Any] | None = None,
) -> Iterator[SweepEvent]:
    """Run ``specs``; yields a SweepStudyChanged at each change of a study and ends with SweepFinished.

    ``resume``: skip studies already finished in the history. ``isolation``: ``run_study_isolated`` options
    (memory ceiling, hang timeout); on Ray, ``max_memory_bytes`` and ``hang_timeout_s`` guard each study's process
    on its node the same way (``core.sweep.guard``), a key left out meaning that node's default."""
    where = where or Where()
    cancel = cancel or CancelToken()
    outcomes = [StudyOutcome(i, spec, spec_fingerprint(spec)) for i, spec in enumerate(specs)]
    done = finished_fingerprints(home) if resume else {}
    for outcome in outcomes:
        if outcome.fingerprint in done:
            outcome.state = StudyState.SKIPPED
            outcome.study_id = done[outcome.fingerprint]
            outcome.error = f"already in the history as study {outcome.study_id}"
            yield SweepStudyChanged(outcome)
    pending = [o for o in outcomes if o.state is StudyState.QUEUED]
    if where.ray:
        from core.sweep.ray_runner import run_on_ray

        yield from run_on_ray(pending, where, home, cancel, isolation)
    else:
        yield from _run_here(pending, home, cancel, isolation or {})
    yield SweepFinished(outcomes, cancelled=cancel.cancelled, where=where.describe())


def _run_here(
    pending: list[StudyOutcome], home: Path | str | None, cancel: CancelToken, isolation: dict[str, Any]
) -> Iterator[SweepEvent]:
    for outcome in pending:
        if cancel.cancelled:
            outcome.state = StudyState.CANCELLED
            yield SweepStudyChanged(outcome)
            continue
        outcome.state = StudyState.RUNNING
        outcome.attempts = 1
        # One study at a time, in its own process: nothing else of the sweep runs beside its timing.
        outcome.placement = {"host": socket.gethostname(), "node": "here", "target": None, "others_meanwhile": [],
                             "timing_exclusive": True, "timed_alone": True}
        yield SweepStudyChanged(outcome)
        notes: list[str] = []
        try:
            _run_one_here(outcome, home, cancel, isolation, notes.append)
        except QuantBenchError as exc:
            failed(outcome, str(exc), "bad_input")
        except Exception as exc:  # noqa: BLE001 - one study's internal error never sinks the sweep
            failed(outcome, f"{type(exc).__name__}: {exc}", "internal")
        for note in notes:
            yield SweepNote(note)
        yield SweepStudyChanged(outcome)


def _run_one_here(
    outcome: StudyOutcome, home: Path | str | None, cancel: CancelToken, isolation: dict[str, Any], note: Any
) -> None:
    from core.engine.isolation import run_study_isolated

    spec = outcome.spec
    recording = StudyRecording(spec, open_store=lambda: StudyStore(home), on_store_failed=note)
    options = dict(isolation)
    if recording.store is not None:
        options.setdefault("log_dir", recording.store.logs_dir)
    finished = None
    events = placed(run_study_isolated(spec, cancel, **options), outcome.placement)
    for event in recording.record(events):
        if isinstance(event, StudyFinished):
            finished = event
    if finished is None:
        raise RuntimeError("the study ended without its result")
    conclude(outcome, finished)


def placed(events: Iterator[Event], placement: dict[str, Any]) -> Iterator[Event]:
    """``events`` with ``placement`` (completed with the CPU and thread count the study reports) written into the
    environment of its StudyStarted and StudyFinished, before they are recorded."""
    try:
        for event in events:
            if isinstance(event, StudyStarted):
                env = event.environment
                placement.setdefault("cpu", env.get("cpu"))
                placement.setdefault("threads", env.get("threads"))
            yield with_placement(event, placement)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
