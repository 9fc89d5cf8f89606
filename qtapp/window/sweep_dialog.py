"""Study ▸ Run a sweep…: many saved studies (SWEEP.json), here one after another or on a Ray cluster.

The sweep (``core.sweep.run_sweep``, a generator) runs on a worker moved to a QThread, as the tune dialog's search
does; each change of a study comes back through a queued signal and rewrites its row of the table, so the table
fills in as studies finish. A finished study opens from the history on a double-click. Cancel sets the sweep's
token (Ray tasks are ended at once; a study running here stops as a Cancel in the window stops it); closing the
dialog cancels and waits for the thread, so no sweep outlives its dialog.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import QuantBenchError
from core.study.cancel import CancelToken
from core.study.spec import StudySpec
from core.sweep import (
    StudyOutcome,
    StudyState,
    SweepFinished,
    SweepNote,
    SweepStudyChanged,
    Where,
    load_sweep,
    ray_problem,
)
from qtapp.panels.sweep_panel import SweepTable
from qtapp.threads.background import SHUTDOWN_WAIT_MS, BackgroundJob
from qtapp.threads.tasks import TaskRunner
from qtapp.window.errors import first_line
from qtapp.window.theme import Theme

log = logging.getLogger(__name__)

#: The "where" choices: (shown text, ``--ray`` value: None here, "local", or "" for the address field).
PLACES = (("here, one study after another", None), ("a local Ray instance", "local"),
          ("the Ray cluster at", ""))
HERE, LOCAL_RAY, CLUSTER = range(len(PLACES))
ANY_NODE = "(any node)"


class SweepWorker(QObject):
    """Runs one sweep; its events out as plain data, one run per worker."""

    #: (run number, a core.sweep SweepEvent).
    sweep_event = Signal(int, object)
    #: (run number, one sentence): the sweep could not run (Ray missing, a cluster unreachable, a bad target).
    sweep_failed = Signal(int, str)

    def __init__(self, run: int, specs: list[StudySpec], where: Where, cancel: CancelToken) -> None:
        super().__init__()
        self._run, self._specs, self._where, self._cancel = run, specs, where, cancel

    @Slot()
    def run(self) -> None:
        from core.sweep import run_sweep

        try:
            from qtapp.threads.worker import study_limits

            # The window's --hang-timeout and --max-memory guard a sweep's studies as they guard its own; without
            # --max-memory each study (here, or on its node) takes the default share of its machine's memory.
            limits = {k: v for k, v in study_limits().items() if not (k == "max_memory_bytes" and v is None)}
            for event in run_sweep(self._specs, self._where, cancel=self._cancel, isolation=limits):
                self.sweep_event.emit(self._run, event)
        except QuantBenchError as exc:
            self.sweep_failed.emit(self._run, first_line(str(exc)) or type(exc).__name__)
        except Exception as exc:  # a bug or Ray's own error: one line here, the traceback in the log
            log.exception("the sweep stopped")
            self.sweep_failed.emit(self._run, f"the sweep stopped: {first_line(str(exc)) or type(exc).__name__}")


class SweepDialog(QDialog):
    """Pick a sweep file and where it runs, start it, watch its table fill in, open any finished study."""

    #: A study id: the history holds a new study (the window refreshes its History panel).
    study_recorded = Signal(str)
    #: A study id: the user asked to open this finished study in the window.
    study_opened = Signal(str)
    #: The sweep ended: "finished", "cancelled" or "failed".
    sweep_ended = Signal(str)
    #: (the cluster as a core.sweep.Where, its target device names): List targets answered.
    targets_listed = Signal(object, list)

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run a sweep")
        self._run = 0
        self._job = BackgroundJob()
        self._cancel: CancelToken | None = None
        self._running = False
        self.outcomes: dict[int, StudyOutcome] = {}
        self._tasks = TaskRunner(self, max_threads=1)
        self._build()
        self.apply_theme(theme)
        self._place_changed()
        self._set_running(False)

    # --- layout --------------------------------------------------------
    def _build(self) -> None:
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText('SWEEP.json: {"studies": [SPEC, ...]}, each saved with "Save study…"')
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.ask_file)
        self.place = QComboBox()
        for text, _ in PLACES:
            self.place.addItem(text)
        self.address = QLineEdit()
        self.address.setPlaceholderText("HOST:PORT (default: $RAY_ADDRESS)")
        self.target = QComboBox()
        self.target.setEditable(True)
        self.target.addItem(ANY_NODE)
        self.target.setToolTip("A target device: the node carrying the resource device:NAME measures the studies")
        self.list_targets_button = QPushButton("List targets")
        self.list_targets_button.clicked.connect(self.list_targets)
        self.place.currentIndexChanged.connect(self._place_changed)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open study")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self._open_selected)
        top = QHBoxLayout()
        top.addWidget(QLabel("Sweep"))
        top.addWidget(self.file_edit, 1)
        top.addWidget(browse)
        where = QHBoxLayout()
        for widget in (QLabel("Run on"), self.place, self.address, QLabel("target"), self.target,
                       self.list_targets_button):
            where.addWidget(widget)
        where.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.open_button):
            where.addWidget(button)
        self.status = QLabel("Choose a sweep file and where it runs, then press Start.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = SweepTable()
        self.table.study_activated.connect(self.study_opened)
        self.table.itemSelectionChanged.connect(self._update_open_button)
        column = QVBoxLayout(self)
        column.addLayout(top)
        column.addLayout(where)
        column.addWidget(self.status)
        column.addWidget(self.table, 1)
        self.resize(1100, 520)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.table.set_colours(theme.good, theme.bad, theme.muted)
        for outcome in self.outcomes.values():
            self.table.show_outcome(outcome)

    # --- choices -------------------------------------------------------
    def where(self) -> Where:
        """Where the chosen sweep runs; BadInput (one sentence) for an unusable choice."""
        index = self.place.currentIndex()
        ray = PLACES[index][1]
        if ray == "":
            ray = self.address.text().strip() or "env"
        target = self.target.currentText().strip()
        return Where.from_option(ray, None if target in ("", ANY_NODE) or ray is None else target)

    def _place_changed(self) -> None:
        index = self.place.currentIndex()
        on_ray = index != HERE
        self.address.setVisible(index == CLUSTER)
        self.target.setEnabled(on_ray)
        self.list_targets_button.setEnabled(on_ray)
        problem = ray_problem() if on_ray else None
        if problem:
            self._say(problem + ".", error=True)
        elif not self._running:
            self._say("Choose a sweep file and where it runs, then press Start.")

    @Slot()
    def ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a sweep", "", "Sweep files (*.json)")
        if path:
            self.file_edit.setText(path)

    @Slot()
    def list_targets(self) -> None:
        """Ask the chosen cluster for its targets (in the background: joining Ray takes seconds)."""
        try:
            where = replace(self.where(), target=None)
        except QuantBenchError as exc:
            self._say(first_line(str(exc)), error=True)
            return
        if ray_problem():
            self._say(f"{ray_problem()}.", error=True)
            return
        from core.sweep.ray_runner import list_targets

        self.list_targets_button.setEnabled(False)
        self._say(f"Asking for the targets {where.describe()}…")
        self._tasks.submit(lambda: list_targets(where), lambda targets: self._show_targets(where, targets),
                           self._targets_failed)

    def _show_targets(self, where: Where, targets: list[str]) -> None:
        self.targets_listed.emit(where, list(targets))
        chosen = self.target.currentText()
        self.target.clear()
        self.target.addItems([ANY_NODE, *targets])
        if chosen in targets:
            self.target.setCurrentText(chosen)
        self.list_targets_button.setEnabled(self.place.currentIndex() != HERE)
        self._say(f"Targets: {', '.join(targets)}." if targets else "The cluster has no target devices "
                  "(nodes started with --resources '{\"device:NAME\": 1}').")

    def _targets_failed(self, message: str) -> None:
        self.list_targets_button.setEnabled(self.place.currentIndex() != HERE)
        self._say(first_line(message), error=True)

    # --- the sweep -----------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    @property
    def thread_alive(self) -> bool:
        return self._job.alive

    @Slot()
    def start(self) -> bool:
        """Start the chosen sweep; False (and one sentence) when it cannot start."""
        if self._running:
            return False
        try:
            where = self.where()
            if where.ray and ray_problem():
                raise QuantBenchError(f"{ray_problem()}.")
            path = self.file_edit.text().strip()
            if not path:
                raise QuantBenchError("Choose a sweep file first.")
            specs = load_sweep(path)
        except QuantBenchError as exc:
            self._say(first_line(str(exc)) or type(exc).__name__, error=True)
            return False
        self._job.join()
        self._run += 1
        self._cancel = CancelToken()
        from core.sweep import spec_fingerprint

        self.outcomes = {i: StudyOutcome(i, spec, spec_fingerprint(spec)) for i, spec in enumerate(specs)}
        self.table.set_outcomes(list(self.outcomes.values()))
        worker = SweepWorker(self._run, specs, where, self._cancel)
        thread = self._job.attach(f"sweep-{self._run}", worker, (worker.sweep_failed,))
        queued = Qt.ConnectionType.QueuedConnection
        worker.sweep_event.connect(self._on_event, queued)
        worker.sweep_failed.connect(self._on_failed, queued)
        worker.sweep_event.connect(lambda _run, event: thread.quit() if isinstance(event, SweepFinished) else None)
        self._say(f"Running {len(specs)} studies {where.describe()}…")
        self._set_running(True)
        self._job.start()
        return True

    @Slot()
    def cancel(self) -> None:
        if self._cancel is not None and self._running:
            self._cancel.cancel()
            self._say("Cancelling…")
            self.cancel_button.setEnabled(False)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel any sweep and wait for its thread; True when no thread is left running."""
        if self._cancel is not None:
            self._cancel.cancel()
        return self._job.join(timeout_ms)

    def done(self, result: int) -> None:
        self.shutdown()  # closing never leaves a sweep running
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    @Slot(int, object)
    def _on_event(self, run: int, event: Any) -> None:
        if run != self._run:
            return  # a late event of an earlier sweep
        if isinstance(event, SweepStudyChanged):
            outcome = event.outcome
            self.outcomes[outcome.index] = outcome
            self.table.show_outcome(outcome)
            if outcome.state is StudyState.DONE and outcome.study_id:
                self.study_recorded.emit(outcome.study_id)
            self._say(self._progress())
            self._update_open_button()
        elif isinstance(event, SweepNote):
            self._say(event.message, error=True)
        elif isinstance(event, SweepFinished):
            self._set_running(False)
            ending = "cancelled" if event.cancelled else "finished"
            self._say(("Cancelled: " if event.cancelled else "Finished: ") + self._progress())
            self.sweep_ended.emit(ending)

    @Slot(int, str)
    def _on_failed(self, run: int, message: str) -> None:
        if run != self._run:
            return
        self._set_running(False)
        self._say(message, error=True)
        self.sweep_ended.emit("failed")

    def _progress(self) -> str:
        counts: dict[StudyState, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        order = (StudyState.DONE, StudyState.SKIPPED, StudyState.RUNNING, StudyState.RETRYING, StudyState.QUEUED,
                 StudyState.FAILED, StudyState.CANCELLED)
        parts = [f"{counts[s]} {s.value}" for s in order if counts.get(s)]
        return f"{len(self.outcomes)} studies: " + ", ".join(parts) + "."

    def _open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        study = self.table.openable_study(rows[0].row()) if rows else None
        if study is not None:
            self.study_opened.emit(study)

    def _update_open_button(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.open_button.setEnabled(bool(rows) and self.table.openable_study(rows[0].row()) is not None)

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.place.setEnabled(not running)
        self.file_edit.setEnabled(not running)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {self._theme.bad};" if error else "")


def open_sweep_dialog(window: Any) -> SweepDialog:
    """Open the Sweep view over ``window`` (the main window): recorded studies refresh its History panel, a
    double-clicked study opens in it, and the targets it lists are offered by its Run panel."""
    dialog = SweepDialog(window.theme, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.study_recorded.connect(window.history.refresh_soon)
    dialog.study_opened.connect(window.history.open_study)
    dialog.targets_listed.connect(window.run_panel.set_targets)  # the Run panel's "Measure on"
    dialog.show()
    return dialog
