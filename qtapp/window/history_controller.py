"""The window's history and files: the History dock, stored studies in the results view,
project files, reports and saved variants.

``HistoryController`` is made by the main window, which gives it its File and
View menus and wraps each engine it starts with ``recording.wrap``. Everything
that reads or writes files (the store, reports, project files, variant copies)
runs in the window's background tasks; this class only wires results back
into the panels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMenu

from core.errors import BadInput
from core.reports.format import local_time
from core.reports.names import study_title
from core.study.events import Event, StudyFinished, StudyStarted
from core.study.result import StudyResult
from core.study.spec import StudySpec
from qtapp.models.stored_study import Comparison, compare
from qtapp.panels.history_panel import HistoryPanel
from qtapp.threads.recording import QtStudyRecording, forget_variants
from qtapp.window import exports

PROJECT_FILTER = "QuantBench study (*.quantbench.json *.json)"
REFRESH_DELAY_MS = 250  # several store writes in a row make one list reload
DOCK_HEIGHT = 190
DOCK_MIN_HEIGHT = 80  # a remembered height is never less: the list keeps a row or two in sight


class HistoryController(QObject):
    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.recording = QtStudyRecording(parent=self)
        self.panel = HistoryPanel(window.tasks)
        self.dock = QDockWidget("History", window)
        self.dock.setObjectName("historyDock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.store_warning = QLabel("", window)
        self.store_warning.setObjectName("errorLabel")
        self.store_warning.hide()
        window.statusBar().addPermanentWidget(self.store_warning)
        #: What the results view shows: study ids in the history (one, or several compared), and names.
        self.shown_ids: list[str] = []
        self.comparison: Comparison | None = None
        self._stale = True
        self._sized = False
        #: The dock's height when it is next shown: DOCK_HEIGHT, else the user's (remembered) one.
        self._dock_height = DOCK_HEIGHT
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_DELAY_MS)
        self._refresh.timeout.connect(self._refresh_now)
        self._wire()

    def _wire(self) -> None:
        w = self.window
        self.recording.store_failed.connect(self._store_failed)
        self.recording.recorded.connect(self._recorded)
        self.dock.visibilityChanged.connect(self._dock_shown)
        self.panel.open_requested.connect(self.open_study)
        self.panel.compare_requested.connect(self.compare_studies)
        self.panel.rerun_requested.connect(self.rerun)
        self.panel.deleted.connect(self._deleted)
        w.controller.event_received.connect(self._event)
        w.controller.running_changed.connect(self._running_changed)
        w.closed.connect(self._refresh.stop)  # no list reload queued behind a closed window

    # --- menus ---------------------------------------------------------
    def add_file_actions(self, menu: QMenu) -> None:
        """Project files, reports and variants, for the File menu."""
        self.open_spec_action = self._action(menu, "Open study s&pec…", self.ask_open_spec, "Ctrl+Shift+P")
        self.save_spec_action = self._action(menu, "Save study spe&c…", self.ask_save_spec)
        menu.addSeparator()
        self.export_action = self._action(menu, "&Export report…", self.ask_export, "Ctrl+Shift+E")
        self.save_variants_action = self._action(menu, "Save &quantized variants…", self.ask_save_variants)

    def add_view_actions(self, menu: QMenu) -> None:
        toggle = self.dock.toggleViewAction()
        toggle.setText("&History")
        toggle.setShortcut(QKeySequence("Ctrl+H"))
        menu.addAction(toggle)
        self.window.addAction(toggle)

    def _action(self, menu: QMenu, text: str, slot, shortcut: str | None = None) -> QAction:
        act = QAction(text, self.window)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        menu.addAction(act)
        self.window.addAction(act)
        return act

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 15_000)

    # --- recording -----------------------------------------------------
    def _store_failed(self, message: str) -> None:
        self.store_warning.setText("⚠ not recorded in the history")
        self.store_warning.setToolTip(message)
        self.store_warning.show()
        self._say(message)

    def _event(self, event: Event) -> None:
        if isinstance(event, StudyStarted):
            self.shown_ids, self.comparison = [event.study_id], None
            self.window.setWindowTitle("QuantBench")  # a live study: no longer a stored one
        elif isinstance(event, StudyFinished):
            self.refresh_soon()

    def _running_changed(self, running: bool) -> None:
        self.panel.set_busy(running)
        if running:
            self.store_warning.hide()  # each study says again if it cannot be recorded
        else:
            self.refresh_soon()

    # --- the list ------------------------------------------------------
    def _recorded(self, _study_id: str) -> None:
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Reload the list shortly if it is on screen; else when it is next shown."""
        self._stale = True
        if self.dock.isVisible():
            self._refresh.start()

    def _refresh_now(self) -> None:
        self._stale = False
        self.panel.refresh()

    def _dock_shown(self, visible: bool) -> None:
        if visible and not self._sized:
            # A short strip under the results the first time (or as tall as the user last left
            # it); the user may drag it taller.
            self._sized = True
            self.window.resizeDocks([self.dock], [self._dock_height], Qt.Orientation.Vertical)
        elif not visible and self._sized:
            self._dock_height = self.dock.height()  # kept for the next start while it is hidden
        if visible and self._stale:
            self._refresh_now()

    def dock_height(self) -> int:
        """The History dock's height: as it is on screen, else as it will open."""
        return self.dock.height() if self.dock.isVisible() and self._sized else self._dock_height

    def set_dock_height(self, height: int) -> None:
        """Open the History dock at ``height`` (a remembered one): now if it is on screen, else when shown."""
        self._dock_height = max(DOCK_MIN_HEIGHT, height)
        if self.dock.isVisible():
            self._sized = True
            self.window.resizeDocks([self.dock], [self._dock_height], Qt.Orientation.Vertical)

    def _deleted(self, ids: list[str]) -> None:
        self.window.tasks.submit(lambda: [forget_variants(i) for i in ids], lambda _r: None, lambda _m: None)
        self._say(f"Deleted {len(ids)} stud{'y' if len(ids) == 1 else 'ies'} from the history.")

    # --- stored studies in the results view ----------------------------
    def open_study(self, study_id: str) -> None:
        """Show a stored study in the results view, drawn from its stored numbers, and put its
        setup (model, dataset, schemes, settings) into the panels as if the user had opened it;
        nothing runs until Run."""
        def job():
            studies, names = exports.load_studies([study_id])
            return studies[0], names, stored_setup(studies[0])

        self.window.tasks.submit(job, self._show_study, self._refused)

    def _show_study(self, payload: tuple[Any, dict[str, str], StoredSetup]) -> None:
        study, names, setup = payload
        if self._results_taken():
            return
        self.window.show_stored(study)
        self.shown_ids, self.comparison = [study.study_id], None
        title = study_title(study, names.get(study.study_id))
        self.window.setWindowTitle(f"QuantBench — {title}")
        if setup.spec is not None:
            self.window.show_study_setup(setup.spec, setup.model_missing)
        when = f", {local_time(study.created)}" if names.get(study.study_id) else ""  # else the title says when
        self._say(f"Showing the study {title} from the history ({study.status}{when}).")

    def compare_studies(self, ids: list[str]) -> None:
        """Show several stored studies side by side: every variant, labelled "study / variant"."""
        def job():
            studies, names = exports.load_studies(list(ids))
            return compare(studies, names)

        self.window.tasks.submit(job, self._show_comparison, self._refused)

    def _show_comparison(self, comparison: Comparison) -> None:
        if self._results_taken():
            return
        self.window.show_stored(comparison.result, comparison)
        self.shown_ids, self.comparison = comparison.ids, comparison
        self.window.setWindowTitle(f"QuantBench — comparing {len(comparison.ids)} studies {comparison.names()}")
        self._say(comparison.header() + ".")

    def _results_taken(self) -> bool:
        if self.window.controller.running:
            self._say("A study is running: open stored studies once it has ended.")
            return True
        return False

    def _refused(self, message: str) -> None:
        self._say(message)

    # --- re-running and project files ------------------------------------
    def rerun(self, study_id: str) -> None:
        """Load a stored study's setup into the panels and run it again (a new study)."""
        def job():
            from qtapp.threads.recording import open_store

            return checked_trust(open_store().load_spec(study_id))

        def loaded(spec: StudySpec) -> None:
            self.window.show_spec(spec)
            self.window.start_when_ready(spec)

        self.window.tasks.submit(job, loaded, self._refused)

    def ask_open_spec(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open study spec", "", PROJECT_FILTER + ";;All files (*)")
        if path:
            self.open_spec(path)

    def open_spec(self, path: str) -> None:
        def job():
            from core.study.project import load_spec

            return checked_trust(load_spec(Path(path)))  # errors name the file, as the window knows it

        def loaded(spec: StudySpec) -> None:
            self.window.show_spec(spec)
            self._say(f"Opened the study spec {path}: check the setup, then Run.")

        self.window.tasks.submit(job, loaded, self._refused)

    def current_spec(self) -> StudySpec | None:
        """What the panels describe, else the spec of the single study on show."""
        try:
            return self.window.study_spec()
        except BadInput:
            result = self.window.shown_result
            if self.comparison is None and result is not None and result.spec:
                from core.study.project import spec_from_dict

                return spec_from_dict(result.spec)
        return None

    def ask_save_spec(self) -> None:
        if self.current_spec() is None:
            self._say("Nothing to save yet: set up a study (model, dataset, schemes) first.")
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Save study spec", "study.quantbench.json", PROJECT_FILTER)
        if path:
            self.save_spec(path)

    def save_spec(self, path: str) -> None:
        spec = self.current_spec()
        if spec is None:
            self._say("Nothing to save yet: set up a study (model, dataset, schemes) first.")
            return

        def job():
            from core.study.project import save_spec

            save_spec(spec, Path(path))
            return path

        self.window.tasks.submit(job, lambda p: self._say(f"Saved the study spec to {p}."), self._refused)

    # --- reports and variants -------------------------------------------
    def ask_export(self) -> None:
        if not self.shown_ids:
            self._say("No study to export yet: run one, or open one from the History (Ctrl+H).")
            return
        filters = ";;".join(exports.REPORT_FILTERS.values())
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export report", "quantbench-report.html", filters)
        if path:
            kind = exports.report_kind(path, chosen)
            if not Path(path).suffix:
                path += "." + kind
            self.export_report(path, kind)

    def export_report(self, path: str, kind: str | None = None) -> None:
        """Write the report of what the results view shows (one study, or the comparison)."""
        ids = list(self.shown_ids)
        if not ids:
            self._say("No study to export yet.")
            return
        kind = kind or exports.report_kind(path)
        fallback = self.window.shown_result if self.comparison is None else None

        def job():
            studies, names = exports.load_studies(ids, fallback)
            return exports.write_report(studies, names, path, kind)

        self.window.tasks.submit(job, lambda p: self._say(f"Wrote {p}."), self._refused)

    def ask_save_variants(self) -> None:
        if len(self.shown_ids) != 1:
            self._say("Open one study (not a comparison) to save its quantized variants.")
            return
        folder = QFileDialog.getExistingDirectory(self.window, "Save quantized variants into")
        if folder:
            self.save_variants(folder)

    def save_variants(self, folder: str) -> None:
        """Copy the current study's built variants, each with its sidecar, into ``folder``."""
        if len(self.shown_ids) != 1:
            self._say("Open one study (not a comparison) to save its quantized variants.")
            return
        study_id = self.shown_ids[0]
        self.window.tasks.submit(
            lambda: exports.copy_kept_variants(study_id, folder),
            lambda written: self._say(f"Saved {len(written)} files into {folder}."),
            self._refused,
        )


def checked_trust(spec: StudySpec) -> StudySpec:
    """``spec`` with a file marked trusted only if the user's trust list holds its current bytes.

    A project file or a stored study cannot grant trust (its own word is never read back); a
    file the user trusted before is trusted again only while its bytes are unchanged, and the
    model panel asks again for any other."""
    from core.files.trust import with_trust_from_list

    return with_trust_from_list(spec)


@dataclass(frozen=True)
class StoredSetup:
    """A stored study's setup as the panels will show it (``spec``: None when none was stored or it
    no longer reads), and whether the model file it names is gone."""

    spec: StudySpec | None
    model_missing: bool = False


def stored_setup(study: StudyResult) -> StoredSetup:
    """In the background: the study's spec, trust checked, and whether its model file still exists."""
    from core.study.project import spec_from_dict
    from qtapp.panels.model_panel import is_torchvision_name

    if not study.spec or not study.spec.get("model"):
        return StoredSetup(None)
    try:
        spec = checked_trust(spec_from_dict(study.spec, source=f"study {study.study_id}"))
    except BadInput:
        return StoredSetup(None)  # an older or odd record: the results still show, the setup stays
    path = spec.model.path
    return StoredSetup(spec, model_missing=not (is_torchvision_name(path) or Path(path).exists()))
