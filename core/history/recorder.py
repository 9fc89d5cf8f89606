"""Recording a study into the history while it runs: the one recorder the CLI and the window share.

Two layers, the strict one inside the tolerant one:

- ``StudyRecorder`` writes a study's events into a ``StudyStore``: StudyStarted
  inserts it as "running", each VariantFinished / VariantFailed is committed the
  moment it arrives, StudyFinished stores the final result. A store error is
  raised to its caller.
- ``StudyRecording`` is what a driver (``quantbench run``, the window's worker)
  puts around the engine's event stream: it records through a ``StudyRecorder``,
  keeps the built variants through a ``VariantSaver``, marks a study whose stream
  ended before StudyFinished as interrupted (or cancelled, or failed), and turns
  every store failure into one warning sentence while the study goes on. The
  history is the run's record, not its result: what was committed before a
  failure stays readable, and nothing is written after it.

The drivers only say where the sentences go (stderr, a Qt signal) and which
folders to use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import Cancelled
from core.history.variant_rows import now
from core.study.events import Event, StudyFinished, StudyStarted, VariantFailed, VariantFinished

if TYPE_CHECKING:
    from core.history.saved_variants import VariantSaver
    from core.history.store import StudyStore
    from core.study.spec import StudySpec

#: The events that change what the history holds.
RECORDED_EVENTS = (StudyStarted, VariantFinished, VariantFailed, StudyFinished)


class StudyRecorder:
    """Feeds engine events into a StudyStore: ``recorder.handle(event)`` for every event.

    StudyStarted inserts the study as running; VariantFinished and VariantFailed
    commit that variant at once; StudyFinished stores the final result with
    status finished or cancelled. Events of another study are ignored.
    """

    def __init__(self, store: StudyStore, spec: StudySpec | None = None, pid: int | None = None) -> None:
        self.store = store
        self.spec = spec  # the StudySpec, so an interrupted study still records its spec and timing
        self.pid = os.getpid() if pid is None else pid
        self.study_id: str | None = None
        self.finished = False
        self._labels: list[str] = []

    def handle(self, event: Event) -> None:
        """Write what ``event`` changes in the history (nothing for progress, samples, other studies)."""
        if isinstance(event, StudyStarted):
            self._start(event)
        elif event.study_id != self.study_id or self.finished:
            return
        elif isinstance(event, (VariantFinished, VariantFailed)):
            result = event.result
            index = self._labels.index(result.label) if result.label in self._labels else len(self._labels)
            if index == len(self._labels):
                self._labels.append(result.label)
            self.store.add_variant(event.study_id, index, result)
        elif isinstance(event, StudyFinished):
            self.store.finish_study(event.result)
            self.finished = True

    def abandon(self, status: str = "interrupted") -> None:
        """The driver stopped before StudyFinished (an error, a crash of the engine): say so in the history."""
        if self.study_id is not None and not self.finished:
            self.store.set_status(self.study_id, status)
            self.finished = True

    def _start(self, event: StudyStarted) -> None:
        self.study_id = event.study_id
        self.finished = False
        self._labels = list(event.variants)
        spec = self.spec.to_dict() if self.spec is not None else {}
        self.store.begin_study(
            event.study_id,
            created=now(),
            model=event.model,
            dataset=event.dataset,
            environment=event.environment,
            timing=_timing_of(self.spec, event.environment),
            spec=spec,
            labels=self._labels,
            pid=self.pid,
        )


def _timing_of(spec: StudySpec | None, env: dict[str, Any]) -> dict[str, Any]:
    """The result's ``timing`` block as known at the start (the engine's own replaces it at the end)."""
    if spec is None:
        return {"threads": env.get("threads"), "mode": env.get("timing_mode"), "device": env.get("device")}
    t = spec.timing
    return {
        "threads": t.resolved_threads,
        "mode": t.mode.value,
        "batch_size": t.batch_size,
        "max_time_s": t.max_time_s,
        "min_samples": t.min_samples,
        "max_samples": t.max_samples,
        "device": spec.device.value,
    }


def _ignore(_message: str) -> None:
    """The default listener: a driver that does not care about a kind of news."""


class StudyRecording:
    """One study run recorded as its events go by: the history, the kept variants, and their failures.

    ``open_store`` is called at once (None: the study is not recorded); ``saver``
    keeps each built variant (the engine must then build in ``workdir``). Feed
    every event to ``handle`` and call ``close`` once the stream stops, or let
    ``record`` do both around a stream. The listeners get one sentence each:

    - ``on_store_failed``: the history could not be opened or written, e.g. "the
      study is not recorded in the history (could not write ...: no space left on
      device (the disk is full)); the run goes on." Said once; nothing more is
      written to the history for this study.
    - ``on_save_failed``: a variant could not be kept; the study goes on.
    - ``on_recorded``: the study's id, each time the history holds a new state of it.
    """

    def __init__(
        self,
        spec: StudySpec | None,
        *,
        open_store: Callable[[], StudyStore] | None,
        saver: VariantSaver | None = None,
        name: str = "",
        pid: int | None = None,
        on_store_failed: Callable[[str], None] = _ignore,
        on_save_failed: Callable[[str], None] = _ignore,
        on_recorded: Callable[[str], None] = _ignore,
    ) -> None:
        self.saver = saver
        self.name = name  # given to the study in the history as it starts
        self.on_store_failed = on_store_failed
        self.on_save_failed = on_save_failed
        self.on_recorded = on_recorded
        self.recorder: StudyRecorder | None = None
        self._started = False  # the study's start is in the history
        self._told = False
        if open_store is not None:
            try:
                self.recorder = StudyRecorder(open_store(), spec=spec, pid=pid)
            except Exception as exc:  # noqa: BLE001 - a broken history never stops a study
                self._store_failed(exc)

    @property
    def store(self) -> StudyStore | None:
        """The history being written (None when the study is not, or no longer, recorded)."""
        return self.recorder.store if self.recorder is not None else None

    @property
    def workdir(self) -> Path | None:
        """Where the engine should build the variants (None: its own temporary folder)."""
        return self.saver.workdir if self.saver is not None else None

    @property
    def finished(self) -> bool:
        """The history holds this study to its end (its result, or the status it stopped with)."""
        return self.recorder is not None and self.recorder.finished

    def handle(self, event: Event) -> None:
        """Record ``event`` and keep the variant it finished; a failure is told, never raised."""
        if self.recorder is not None and isinstance(event, RECORDED_EVENTS):
            self._record(self.recorder, event)
        if self.saver is not None:
            self._keep(self.saver, event)

    def close(self, ending: str = "interrupted") -> None:
        """The stream stopped: a study not recorded to its end gets status ``ending``; the work folder goes."""
        if self.saver is not None:
            self.saver.close()
        recorder = self.recorder
        if recorder is None or recorder.study_id is None or recorder.finished:
            return
        try:
            recorder.abandon(ending)
        except Exception as exc:  # noqa: BLE001 - the history is a convenience
            self._store_failed(exc)
            return
        self.on_recorded(recorder.study_id)

    def record(self, events: Iterable[Event]) -> Iterator[Event]:
        """Pass ``events`` on, recording each; closing the result early (or an error, or a cancel) ends the
        stored study as interrupted (failed, cancelled)."""
        ending = "interrupted"  # closed early (the driver went away) unless told otherwise below
        try:
            for event in events:
                self.handle(event)
                yield event
        except Cancelled:
            ending = "cancelled"
            raise
        except Exception:
            ending = "failed"
            raise
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the engine's own cleanup first: it may still be writing into the work folder
            self.close(ending)

    def _record(self, recorder: StudyRecorder, event: Event) -> None:
        try:
            recorder.handle(event)
            if isinstance(event, StudyStarted) and self.name:
                recorder.store.rename(event.study_id, self.name)
        except Exception as exc:  # noqa: BLE001 - stop recording this study; what was committed stays
            self._store_failed(exc)
            return
        self._started = self._started or recorder.study_id is not None
        self.on_recorded(event.study_id)

    def _keep(self, saver: VariantSaver, event: Event) -> None:
        told = len(saver.failed)
        try:
            saver.handle(event)
        except OSError as exc:
            self.on_save_failed(f"could not save a variant to {saver.dest} ({exc}).")
        for why in list(saver.failed.values())[told:]:  # e.g. the disk is full
            self.on_save_failed(f"{why.rstrip('.')}; the study goes on.")

    def _store_failed(self, exc: Exception) -> None:
        self.recorder = None
        if self._told:
            return
        self._told = True
        what = "the rest of the study" if self._started else "the study"
        why = str(exc).strip().rstrip(".") or type(exc).__name__  # one sentence, e.g. "could not write ...: full"
        self.on_store_failed(f"{what} is not recorded in the history ({why}); the run goes on.")
