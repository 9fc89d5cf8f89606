"""The main window: composes the panels and wires them to the controller; owns no logic of its own."""

from __future__ import annotations

from dataclasses import replace

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.errors import BadInput
from core.printable import printable
from core.study.events import Event, StudyFinished
from core.study.result import StudyResult
from core.study.spec import StudySpec, Thresholds, VariantSpec
from qtapp.charts.palette import VariantPalette
from qtapp.models import loading
from qtapp.models.progress import outcome_text
from qtapp.models.stored_study import Comparison, replay_events
from qtapp.models.window_words import in_window_words
from qtapp.panels.compact import compact_combos
from qtapp.panels.dataset_panel import DatasetPanel
from qtapp.panels.model_panel import ModelPanel
from qtapp.panels.results_panel import ResultsPanel
from qtapp.panels.run_panel import RunPanel
from qtapp.panels.schemes_panel import SchemesPanel
from qtapp.panels.wheel_guard import guard_wheel
from qtapp.threads.controller import StudyController
from qtapp.threads.live_buffer import LiveBuffer
from qtapp.threads.tasks import TaskRunner
from qtapp.threads.worker import RunStudy, engine_run_study, isolated_run_study
from qtapp.window.history_controller import HistoryController
from qtapp.window.theme import LIGHT, Theme, apply_theme, theme_named

SETUP_WIDTH = 390


def setup_width(window_width: int) -> int:
    """A quarter of the window, within 300..400 px: the results get the rest."""
    return max(300, min(400, window_width // 4))


class MainWindow(QMainWindow):
    #: The window really closed (after any running study stopped).
    closed = Signal()
    #: A study asked for with ``start_when_ready`` could not start (the reason).
    start_refused = Signal(str)

    def __init__(self, theme: Theme = LIGHT, run_study: RunStudy | None = None) -> None:
        """``run_study`` fixes the engine (tests pass a fake); None lets the Run panel choose."""
        super().__init__()
        self.setWindowTitle("QuantBench")
        self.setAcceptDrops(True)
        self.theme = theme
        self.palette_ = VariantPalette()
        self.tasks = TaskRunner(self)
        self._run_study = run_study
        self.controller = StudyController(run_study or engine_run_study, self)
        self.buffer = LiveBuffer(parent=self)
        self._close_when_stopped = False
        self._last_failure: str | None = None
        #: A study waiting for the panels to finish loading: (spec or None,).
        self._pending_start: tuple[StudySpec | None] | None = None
        #: Say "Loaded …" in the status bar when the model has loaded (not after the demo's study).
        self._announce_load = True

        self.model_panel = ModelPanel(self.tasks)
        self.dataset_panel = DatasetPanel(self.tasks)
        self.schemes_panel = SchemesPanel()
        self.run_panel = RunPanel()
        self.results = ResultsPanel(self.palette_, theme)

        self.setCentralWidget(self._build_layout())
        self._setup_sized_by_user = False
        self.splitter.splitterMoved.connect(self._splitter_moved)
        self._make_actions()
        self._wire()
        self.tasks.submit(loading.load_catalogue, self._catalogue_loaded, self._catalogue_failed)
        self._update_blocker()
        self.statusBar().showMessage("Open a model (Ctrl+O), drop one on the window, or open the demo (Ctrl+D).")

    # --- layout --------------------------------------------------------
    def _build_layout(self) -> QSplitter:
        """Setup panels in a scrolling column with Run pinned below it, results on the right."""
        setup = QWidget()
        column = QVBoxLayout(setup)
        column.setContentsMargins(4, 4, 4, 4)
        for panel in (self.model_panel, self.dataset_panel, self.schemes_panel, self.run_panel.settings):
            column.addWidget(panel)
        column.addStretch(1)
        compact_combos(setup)
        guard_wheel(setup)  # scrolling the column never changes a setting
        scroll = QScrollArea()
        scroll.setWidget(setup)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Never narrower than what the setup panels need: they would be clipped, not wrapped.
        scroll.setMinimumWidth(setup.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.setup_area = scroll
        # Run, Cancel and the progress stay in sight below the scrolling setup.
        left = QWidget()
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.addWidget(scroll, 1)
        left_column.addWidget(self.run_panel)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.results)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([SETUP_WIDTH, 1200])
        self.splitter.setCollapsible(1, False)
        return self.splitter

    # --- wiring --------------------------------------------------------
    def _make_actions(self) -> None:
        def action(menu, text: str, slot, shortcut=None, checkable: bool = False) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
            act.setCheckable(checkable)
            act.triggered.connect(slot)
            menu.addAction(act)
            self.addAction(act)  # shortcuts work even with the menu bar hidden
            return act

        file_menu = self.menuBar().addMenu("&File")
        self.open_action = action(
            file_menu, "&Open model…", self.model_panel.choose_file, QKeySequence.StandardKey.Open
        )
        action(file_menu, "Open Hugging Face &folder…", self.model_panel.choose_folder)
        self.demo_action = action(file_menu, "Open &demo", lambda: self.open_demo(), QKeySequence("Ctrl+D"))
        action(file_menu, "Add &variant file…", self.model_panel.variant_files.choose, QKeySequence("Ctrl+Shift+O"))
        file_menu.addSeparator()
        # The History dock, project files, reports and saved variants; it records every study run here.
        self.history = HistoryController(self)
        self.history.add_file_actions(file_menu)
        file_menu.addSeparator()
        action(file_menu, "Save &screenshot…", self._save_screenshot_dialog, QKeySequence("Ctrl+Shift+S"))
        action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        study_menu = self.menuBar().addMenu("&Study")
        self.run_action = action(study_menu, "&Run", self.start_study, [QKeySequence("Ctrl+R"), QKeySequence("F5")])
        self.cancel_action = action(
            study_menu, "&Cancel", self.cancel_study, [QKeySequence("Esc"), QKeySequence("Ctrl+.")]
        )
        study_menu.addSeparator()
        self.tune_action = action(study_menu, "&Find the best variant within a budget…", self.open_tune_dialog)
        self.sweep_action = action(study_menu, "Run a s&weep…", self.open_sweep_dialog)
        self.knob_sweeps_action = action(study_menu, "Calibration and &batch-size sweeps…", self.open_sweeps_dialog)
        view_menu = self.menuBar().addMenu("&View")
        self.dark_action = action(view_menu, "&Dark theme", self._toggle_dark, QKeySequence("Ctrl+T"), checkable=True)
        self.dark_action.setChecked(self.theme.name == "dark")
        action(view_menu, "&Difference against baseline", self._toggle_difference, QKeySequence("Ctrl+E"))
        action(view_menu, "Show/hide &setup", self.toggle_setup, QKeySequence("Ctrl+B"))
        self.history.add_view_actions(view_menu)

    def _wire(self) -> None:
        self.model_panel.demo_button.clicked.connect(lambda: self.open_demo())
        self.model_panel.model_changed.connect(self._model_changed)
        self.model_panel.variants_changed.connect(self._update_blocker)
        self.dataset_panel.dataset_changed.connect(self._dataset_changed)
        self.schemes_panel.selection_changed.connect(self._update_blocker)
        self.run_panel.threads.valueChanged.connect(self._update_blocker)
        self.run_panel.target_box.currentIndexChanged.connect(self._update_blocker)
        self.run_panel.run_requested.connect(self.start_study)
        self.run_panel.cancel_requested.connect(self.cancel_study)
        self.controller.event_received.connect(self.buffer.push)
        self.controller.study_failed.connect(self._study_failed)
        self.controller.running_changed.connect(self._running_changed)
        self.controller.threads_finished.connect(self._threads_finished)
        self.buffer.drained.connect(self._events_drained)
        self.results.layers.keep_in_float_requested.connect(self.rerun_with_scheme)

    # --- model, dataset, schemes ---------------------------------------
    def _catalogue_loaded(self, schemes) -> None:
        self.schemes_panel.set_catalogue([s.info for s in schemes])
        guard_wheel(self.schemes_panel)  # its option boxes are new
        load = self.model_panel.loaded
        if load is not None:
            self.schemes_panel.set_applicability(load.applicability)
        self._schemes_wait_for_model()
        self._try_pending_start()

    def _schemes_wait_for_model(self) -> None:
        # A model is on screen, still loading (or held until the study ends): not "Open a model".
        if self.model_panel.busy and self.model_panel.loaded is None and self.schemes_panel.rows:
            self.schemes_panel.status.setText("Which schemes apply is shown once the model has loaded.")

    def _catalogue_failed(self, message: str) -> None:
        self.schemes_panel.set_catalogue_error(message)
        self._try_pending_start()

    def _model_changed(self, load) -> None:
        self.dataset_panel.set_model(None if load is None else load.model)
        self.schemes_panel.set_applicability(None if load is None else load.applicability)
        self._schemes_wait_for_model()
        if load is not None:
            if self._announce_load:
                self.statusBar().showMessage(f"Loaded {load.spec.path}")
            self._announce_load = True  # quiet once: a held load ends after the study it waited for
        self._update_blocker()
        if load is not None or not self.model_panel.busy:
            self._try_pending_start()

    def _dataset_changed(self, load) -> None:
        if load is not None:
            self.results.set_dataset(load.dataset.spec, load.dataset)
        self._update_blocker()
        if not self.dataset_panel.busy:
            self._try_pending_start()

    def blocker(self) -> str | None:
        """Why Run is disabled (None: it is enabled)."""
        panels = (self.model_panel, self.dataset_panel, self.schemes_panel, self.run_panel)
        for problem in (panel.problem() for panel in panels):
            if problem:
                return problem
        if self.schemes_panel.rows and not self.schemes_panel.selected() and not self.model_panel.variant_specs():
            return "tick at least one scheme or add a variant file"
        return None

    def _update_blocker(self, *_args) -> None:
        self.run_panel.set_blocker(self.blocker(), self.controller.running)

    # --- the spec the panels describe ------------------------------------
    def study_spec(self) -> StudySpec:
        """The study the panels describe; raises BadInput if they do not describe one yet.

        The inverse of ``show_spec``: each panel reads its own part (tests/qtapp/test_spec_round_trip.py).
        """
        reason = self.blocker()
        if reason:
            raise BadInput(f"Cannot run: {reason}.")
        model = self.model_panel.model_spec()
        assert model is not None  # blocker() checked it
        variants = [VariantSpec(scheme=s) for s in self.schemes_panel.selected()]
        variants += self.model_panel.variant_specs()
        return StudySpec(
            model=model,
            dataset=self.dataset_panel.dataset_spec(),
            variants=tuple(variants),
            timing=self.run_panel.timing_spec(),
            thresholds=self.run_panel.thresholds(),
            device=self.run_panel.device(),
            seed=self.run_panel.seed(),
            layer_samples=self.run_panel.layer_samples(),
        )

    def show_spec(self, spec: StudySpec, model_missing: bool = False) -> None:
        """Put a study's setup into the panels, each its own part; the model and data load in the
        background, and the schemes are ticked once the catalogue and the model are in. With
        ``model_missing`` the Model panel says the model file is gone instead of opening it."""
        if model_missing:
            self.model_panel.show_missing(spec.model, [v.path for v in spec.variants if v.path is not None])
        else:
            self.model_panel.set_spec(spec.model, spec.variants)
        self.dataset_panel.set_spec(spec.dataset)
        self.schemes_panel.set_spec([v.scheme for v in spec.variants if v.scheme is not None])
        self.run_panel.set_spec(spec.timing, spec.thresholds, spec.device, spec.seed, spec.layer_samples)

    def show_study_setup(self, spec: StudySpec, model_missing: bool = False) -> None:
        """A past study's setup in the panels, as if the user had opened it; nothing runs.

        When its model file no longer exists (``model_missing``), the Model panel says so in one
        sentence instead of opening it; the dataset, schemes and settings are still shown."""
        if self.controller.running:
            return  # the panels describe the study being measured
        # The status bar keeps naming the study on show when its model has loaded, not "Loaded …".
        self._announce_load = model_missing  # (a missing model loads nothing: the next open is announced)
        self.show_spec(spec, model_missing)

    # --- stored studies --------------------------------------------------
    def show_stored(self, study: StudyResult, comparison: Comparison | None = None) -> None:
        """Show a stored study in the results view, replayed from its stored numbers; with
        ``comparison`` (whose ``result`` is ``study``), several studies side by side."""
        self.buffer.clear()
        thresholds = (study.spec or {}).get("thresholds")
        self.results.set_thresholds(Thresholds(**thresholds) if thresholds else Thresholds())
        self.results.apply_events(replay_events(study))
        if comparison is not None:
            self.results.show_comparison(comparison.header(), comparison.baselines, comparison.drift_warnings())

    @property
    def shown_result(self) -> StudyResult | None:
        """The study the results view shows (live, or opened from the history), if any."""
        return self.results.state.result

    # --- running -------------------------------------------------------

    def start_study(self, spec: StudySpec | None = None) -> str | None:
        """Run ``spec`` (default: what the panels describe); returns the study id, or None if it cannot run."""
        if self.controller.running:
            return None
        if not isinstance(spec, StudySpec):
            try:
                spec = self.study_spec()
            except BadInput as exc:
                self.statusBar().showMessage(in_window_words(str(exc)))
                self.run_panel.set_blocker(str(exc), False)
                return None
        self._last_failure = None
        self.buffer.clear()
        self.results.set_thresholds(spec.thresholds)
        self.run_panel.start_progress(spec.timing.max_time_s)
        engine = self._run_study
        if engine is None:
            engine = isolated_run_study if self.run_panel.isolated.isChecked() else engine_run_study
        target = self.run_panel.target_where() if self._run_study is None else None
        if target is not None:  # measured on a target device of the cluster, streamed back (core.sweep.target)
            from core.sweep.target import target_engine

            engine = target_engine(target)
        # Recorded in the history; the built-in engines also keep the variants they build.
        engine = self.history.recording.wrap(engine, keep_variants=self._run_study is None and target is None)
        study_id = self.controller.start(spec, engine)
        self.statusBar().showMessage("Study running. Esc cancels; finished variants stay on screen.")
        return study_id

    def rerun_with_scheme(self, scheme) -> str | None:
        """Run the study the panels describe again with one more variant, ``scheme`` (a SchemeSpec, e.g. the Layers
        tab's "Keep in float and re-run"); returns the study id, or None if it cannot run now."""
        if self.controller.running:
            self.statusBar().showMessage("A study is running: re-run once it has finished.")
            return None
        try:
            spec = self.study_spec()
        except BadInput as exc:
            self.statusBar().showMessage(in_window_words(str(exc)))
            return None
        if all(v.scheme != scheme for v in spec.variants):
            spec = replace(spec, variants=(*spec.variants, VariantSpec(scheme=scheme)))
        return self.start_study(spec)

    def cancel_study(self) -> None:
        if self.controller.running and not self.controller.cancel_requested:
            self.controller.cancel()
            self.run_panel.show_cancelling()
            self.statusBar().showMessage("Cancelling: the current step finishes, then the study stops.")

    def _events_drained(self, events: list[Event]) -> None:
        self.results.apply_events(events)
        self.run_panel.apply_events(events)
        for event in events:
            if isinstance(event, StudyFinished):
                failure = event.result.baseline_failure()
                if failure is not None:  # the model itself does not run: said as the command line says it
                    self._study_failed(failure)
                    continue
                # Counted against the plan, not against the rows that happened to run before Cancel.
                ok = sum(1 for r in event.result.results if r.ok)
                planned = max(self.run_panel.progress.planned, len(event.result.results))
                self.statusBar().showMessage(f"Study {outcome_text(event.cancelled, ok, planned)}.")

    def _study_failed(self, message: str) -> None:
        message = printable(in_window_words(message))  # it may quote a file name or a runtime's words
        self._last_failure = message
        self.buffer.flush()
        self.results.fail(message)
        self.run_panel.show_failure(message)
        self.statusBar().showMessage(f"The study stopped: {message}")

    def _running_changed(self, running: bool) -> None:
        if not running:
            self.buffer.flush()
            self.tasks.release()  # the panels' loading held back while the demo study ran
        self.run_panel.set_running(running)
        self._update_blocker()

    def _threads_finished(self) -> None:
        if self._close_when_stopped:
            self.close()

    @property
    def last_failure(self) -> str | None:
        return self._last_failure

    # --- demo ----------------------------------------------------------
    def open_demo(self, start: bool = False, spec: StudySpec | None = None) -> None:
        """Show the bundled demo study in the panels (model, data, schemes); with ``start``, run it
        once they are loaded. ``spec`` replaces the demo's own study (tests shorten its timing)."""
        if spec is None:
            from core.engine.run import demo_study_spec

            spec = demo_study_spec(self.run_panel.timing_spec())
        if start and not self.controller.running:
            # The demo's study is known without loading anything, so it starts at once; the
            # panels' own loading (torch and scikit-learn, two seconds of imports) waits until
            # the study has ended instead of sharing the machine with its timing.
            self.tasks.hold()
            self._announce_load = False  # the status bar will be saying how the study ended
        self.model_panel.open_demo()
        self.dataset_panel.set_spec(spec.dataset)
        self.tasks.seal()  # only the demo's own loading waits; what the user opens next does not
        self.schemes_panel.set_spec([v.scheme for v in spec.variants if v.scheme is not None])
        if start and self.tasks.holding:
            if self.start_study(spec) is None:
                self.tasks.release()
        elif start:
            self.start_when_ready(spec)

    def start_when_ready(self, spec: StudySpec | None = None) -> None:
        """Start the study (``spec``, or what the panels describe) once the model, dataset and
        scheme catalogue have loaded and checked out, as Run would. Loading first also keeps
        the window's own loading off the CPU while the study is being timed.
        """
        self._pending_start = (spec,)
        self._try_pending_start()

    def _try_pending_start(self) -> None:
        if self._pending_start is None:
            return
        if self.model_panel.busy or self.dataset_panel.busy or self.schemes_panel.loading:
            return  # still loading; called again when each load ends
        (spec,) = self._pending_start
        self._pending_start = None
        reason = self.blocker()
        if reason is None and self.start_study(spec) is not None:
            return
        reason = reason or "a study is already running"
        self.statusBar().showMessage(f"Cannot run: {in_window_words(reason)}")
        self.start_refused.emit(reason)

    # --- drag and drop -------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        self.open_dropped(paths)

    def open_dropped(self, paths: list[str]) -> None:
        """The first file becomes the model; more files become variant files to compare."""
        self.model_panel.open_path(paths[0])
        for extra in paths[1:]:
            self.model_panel.variant_files.add(extra)

    # --- the accuracy-budget search ------------------------------------
    def search_spec(self) -> StudySpec:
        """The model and dataset the panels describe, for the search (it picks its own schemes)."""
        for problem in (self.model_panel.problem(), self.dataset_panel.problem(), self.run_panel.problem()):
            if problem:
                raise BadInput(f"Cannot search: {problem}.")
        model = self.model_panel.model_spec()
        assert model is not None  # problem() checked it
        return StudySpec(model=model, dataset=self.dataset_panel.dataset_spec(), timing=self.run_panel.timing_spec(),
                         seed=self.run_panel.seed())

    def open_tune_dialog(self) -> None:
        """Study ▸ Find the best variant: every candidate built, evaluated and timed, the frontier drawn live."""
        from qtapp.charts.palette import VariantPalette
        from qtapp.window.tune_dialog import TuneDialog

        if self._raise_open("tune_dialog"):
            return
        dialog = TuneDialog(self.search_spec, VariantPalette(), self.theme, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.study_recorded.connect(self.history.refresh_soon)  # the search is a study in the History panel
        dialog.show()
        self.tune_dialog = dialog

    def open_sweep_dialog(self) -> None:
        """Study ▸ Run a sweep: many saved studies, here or on a Ray cluster; a finished one opens from its table."""
        from qtapp.window.sweep_dialog import open_sweep_dialog

        if not self._raise_open("sweep_dialog"):
            self.sweep_dialog = open_sweep_dialog(self)

    def open_sweeps_dialog(self) -> None:
        """Study ▸ Calibration and batch-size sweeps: accuracy against calibration, throughput against batch."""
        from qtapp.window.sweeps_dialog import SweepsDialog

        if self._raise_open("sweeps_dialog"):
            return
        dialog = SweepsDialog(self.search_spec, self.theme, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.sweeps_dialog = dialog

    def _raise_open(self, name: str) -> bool:
        """Bring the dialog kept as ``name`` to the front if it is still open: one of each at a time, so two
        searches never compete for the cores nor leave the window unsure which one it follows."""
        dialog = getattr(self, name, None)
        if dialog is None or not shiboken6.isValid(dialog) or not dialog.isVisible():
            return False
        dialog.raise_()
        dialog.activateWindow()
        return True

    # --- theme, screenshots --------------------------------------------
    def set_theme(self, name: str) -> None:
        self.theme = theme_named(name)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        self.results.apply_theme(self.theme)
        self.dark_action.setChecked(name == "dark")
        dialog = getattr(self, "tune_dialog", None)
        if dialog is not None and shiboken6.isValid(dialog):  # an open search follows the theme too
            dialog.apply_theme(self.theme)
        sweep = getattr(self, "sweep_dialog", None)
        if sweep is not None and shiboken6.isValid(sweep):
            sweep.apply_theme(self.theme)

    def _toggle_dark(self) -> None:
        self.set_theme("dark" if self.dark_action.isChecked() else "light")

    def _toggle_difference(self) -> None:
        button = self.results.show_counts if self.results.show_difference.isChecked() else self.results.show_difference
        button.setChecked(True)
        self.results.tabs.setCurrentIndex(1)

    def save_screenshot(self, path: str) -> bool:
        QApplication.processEvents()
        return self.grab().save(path)

    def _save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "quantbench.png", "PNG images (*.png)")
        if path:
            self.save_screenshot(path)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._setup_sized_by_user:
            sizes = self.splitter.sizes()
            if sizes[0] > 0:  # collapsed on purpose: leave it
                wanted = setup_width(self.width())
                self.splitter.setSizes([wanted, max(1, sum(sizes) - wanted)])

    def _splitter_moved(self, *_args) -> None:
        self._setup_sized_by_user = True

    def toggle_setup(self) -> None:
        sizes = self.splitter.sizes()
        wanted = 0 if sizes[0] > 0 else setup_width(self.width())
        self.splitter.setSizes([wanted, max(1, sum(sizes) - wanted)])

    # --- closing -------------------------------------------------------
    @property
    def closing(self) -> bool:
        """Close was asked for while a study ran; the window closes once its thread has finished."""
        return self._close_when_stopped

    def closeEvent(self, event: QCloseEvent) -> None:
        """Mid-run: cancel, keep the window until the worker thread has finished, then close."""
        if self.controller.threads_alive:
            self._close_when_stopped = True
            self.cancel_study()
            self.statusBar().showMessage("Stopping the study before closing…")
            event.ignore()
            return
        self.tasks.wait(30_000)  # a model still loading finishes; its result is dropped
        for dialog in self.findChildren(QDialog):
            dialog.close()  # a search or sweep stops, and what it built goes with it
        event.accept()
        self.closed.emit()

