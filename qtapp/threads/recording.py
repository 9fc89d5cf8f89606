"""The window's adapter around the one study recorder: its news as Qt signals, its folders.

``QtStudyRecording.wrap`` turns an engine function into one whose events pass
through a ``core.history.recorder.StudyRecording`` (the same recorder
``quantbench run`` uses): each finished variant is committed to the history at
once and, for the real engine, each built variant is kept. The wrapped generator
is iterated by the StudyWorker, so the store's fsyncs and the variant copies happen
in the worker thread, never in the GUI thread; the signals arrive in the GUI thread.

Why copy the variants during the study rather than keep the engine's work
folder: the saver writes each built variant in its runtime's own format with
its sidecar, exactly what ``quantbench run --save-variants`` writes, into
``HOME/cache/variants/<study id>``; "Save quantized variants…" is then a plain
folder copy, and the work folder with its intermediate files (calibration data,
pre-processed graphs) is removed at the end of the study as usual. Only the
newest ``KEEP_STUDIES`` studies keep their variants.

A store that cannot be opened or written never stops the study: it is reported
once per study through ``store_failed`` and the study goes on unrecorded.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.history.recorder import StudyRecording
from core.history.saved_variants import VariantSaver
from core.study.cancel import CancelToken
from core.study.events import Event
from core.study.spec import StudySpec
from qtapp.threads.worker import RunStudy

log = logging.getLogger(__name__)

#: Studies whose built variants stay on disk for "Save quantized variants…".
KEEP_STUDIES = 5


_opening = threading.Lock()


def open_store() -> Any:
    """The history (core.history.store.StudyStore) for any of the window's threads.

    Opened one at a time: two first openings of a new history race in SQLite (turning
    WAL on needs the file to itself); the store retries the loser, and within the window
    taking turns spares it the retries."""
    from core.history.store import StudyStore

    with _opening:
        return StudyStore()


def home() -> Path:
    """QuantBench's data folder, as the store resolves it ($QUANTBENCH_HOME, else the user data folder)."""
    from core.files.home import resolve_home

    return resolve_home()


def variants_root() -> Path:
    return home() / "cache" / "variants"


def kept_variants_dir(study_id: str) -> Path:
    """Where the variants built by the window's study ``study_id`` are kept (it may not exist)."""
    return variants_root() / study_id


def forget_variants(study_id: str) -> None:
    """Remove the kept variants of a study (it was deleted from the history)."""
    shutil.rmtree(kept_variants_dir(study_id), ignore_errors=True)


def prune_kept_variants(keep: int = KEEP_STUDIES) -> None:
    """Keep the variants of the newest ``keep`` studies only."""
    root = variants_root()
    try:
        folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


class QtStudyRecording(QObject):
    """Wraps engine functions so their studies are recorded; signals arrive in the GUI thread."""

    #: The history could not be written (one sentence); the study goes on without it.
    store_failed = Signal(str)
    #: The history now holds a new state of this study (started, a variant, the end).
    recorded = Signal(str)

    def __init__(self, pid: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pid = os.getpid() if pid is None else pid
        self.enabled = True

    def wrap(self, run_study: RunStudy, keep_variants: bool = False) -> RunStudy:
        """``run_study`` recording into the history; with ``keep_variants`` (only for engines that take a
        ``workdir`` keyword, i.e. ``engine_run_study`` and ``isolated_run_study``) the built variants are kept."""

        def recorded(spec: StudySpec, cancel: CancelToken) -> Iterator[Event]:
            return self._run(run_study, spec, cancel, keep_variants)

        return recorded

    def _run(self, run_study: RunStudy, spec: StudySpec, cancel: CancelToken, keep_variants: bool) -> Iterator[Event]:
        saver = _open_saver(spec.study_id) if keep_variants else None
        recording = StudyRecording(
            spec,
            open_store=open_store if self.enabled else None,
            saver=saver,
            pid=self.pid,
            on_store_failed=self._store_failed,
            on_save_failed=_save_failed,
            on_recorded=self.recorded.emit,
        )
        try:
            yield from recording.record(_engine_events(run_study, spec, cancel, recording.workdir))
        finally:
            if saver is not None and not saver.saved:  # nothing built to keep (a failed or cancelled start)
                shutil.rmtree(saver.dest, ignore_errors=True)

    def _store_failed(self, sentence: str) -> None:
        log.warning("%s", sentence)
        self.store_failed.emit(sentence[:1].upper() + sentence[1:])


def _engine_events(run_study: RunStudy, spec: StudySpec, cancel: CancelToken, workdir: Path | None) -> Iterator[Event]:
    """The engine's events, the engine called on the first ``next``: one that fails at once is recorded
    like one that fails later."""
    if workdir is not None:
        yield from run_study(spec, cancel, workdir=workdir)  # type: ignore[call-arg]
    else:
        yield from run_study(spec, cancel)


def _open_saver(study_id: str) -> VariantSaver | None:
    try:
        prune_kept_variants(KEEP_STUDIES - 1)
        return VariantSaver(kept_variants_dir(study_id))
    except Exception as exc:  # noqa: BLE001 - the study runs in the engine's own temporary folder instead
        log.warning("the variants of study %s will not be kept: %s", study_id, exc)
        return None


def _save_failed(sentence: str) -> None:
    log.warning("a variant could not be kept: %s", sentence)
