"""Study ▸ Find the best variant…: the accuracy-aware search (``core.tune.search.tune``) in a dialog.

The search runs on a worker moved to a QThread; each finished candidate comes back through a queued
signal and is added to a scatter of accuracy lost (points) against the objective (p50 latency or file
size) and to a table. Cancel sets the search's token (it stops within about a second) and keeps what
was measured; closing the dialog cancels and waits for the thread, so no search outlives its dialog.
The frontier and the best candidate are the search's own (``core.tune.frontier``), recomputed as
candidates arrive, so the live chart and the final result cannot disagree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QCloseEvent, QColor, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.errors import QuantBenchError
from core.files.scratch import Scratch
from core.reports.format import format_ms, format_percent
from core.study.cancel import CancelToken
from core.study.spec import StudySpec
from core.tune.frontier import OBJECTIVES, best_candidate, mark_frontier, objective_value
from core.tune.record import SearchStudy, save_best, study_name
from qtapp.charts.export import install_export_menu
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import bold_font, set_axis_label, style_axes, with_alpha
from qtapp.threads.background import SHUTDOWN_WAIT_MS, BackgroundJob
from qtapp.window.errors import first_line
from qtapp.window.theme import Theme

log = logging.getLogger(__name__)

SpecProvider = Callable[[], StudySpec]

DEFAULT_MAX_DROP_PT = 0.5
DEFAULT_TIME_LIMIT_MIN = 10.0  # the command line's --time-limit default (10m)
#: The scheme string comes last: it is the longest, and stays whole with the numbers still in sight.
COLUMNS = ("label", "accuracy", "drop (pt)", "p50 (ms)", "size (kB)", "on frontier", "scheme")
NUMERIC_COLUMNS = range(1, 6)
#: The objective's value on the chart's x-axis: (axis title, candidate -> value).
X_AXES: dict[str, tuple[str, Callable[[dict[str, Any]], float | None]]] = {
    "latency": ("median latency (ms)", lambda c: objective_value(c, "latency")),
    "size": ("file size (kB)", lambda c: None if (v := objective_value(c, "size")) is None else v / 1000),
}
POINT_PX = 12
BEST_RING_PX = 24


class TuneWorker(QObject):
    """Loads the model and the dataset of a spec and runs the search; plain data out, one run per worker."""

    #: (run number, candidate dict), from the worker thread for each finished candidate.
    candidate_measured = Signal(int, object)
    #: (run number, the ``kind: "tune"`` dict); the search ended (met, missed or cancelled).
    search_finished = Signal(int, object)
    #: (run number, one sentence); the search could not run.
    search_failed = Signal(int, str)
    #: A study id; the history now holds a new state of the search (recorded as a study).
    study_recorded = Signal(str)
    #: One sentence: the history could not be written; the search goes on unrecorded.
    store_failed = Signal(str)

    def __init__(self, run: int, spec: StudySpec, max_drop_pt: float, objective: str, time_limit_s: float,
                 cancel: CancelToken, study: SearchStudy | None = None, workdir: Path | None = None) -> None:
        super().__init__()
        self._run, self._spec, self._cancel = run, spec, cancel
        self._max_drop_pt, self._objective, self._time_limit_s = max_drop_pt, objective, time_limit_s
        #: The search as a study in the history (None: not recorded); its variants keep their built files in
        #: ``workdir`` (the dialog's, removed with it) for "Save the best variant…".
        self._study, self._workdir = study, workdir

    @Slot()
    def run(self) -> None:
        try:
            self.search_finished.emit(self._run, self._search())
        except QuantBenchError as exc:  # BadInput and friends already speak one sentence
            self.search_failed.emit(self._run, first_line(str(exc)) or type(exc).__name__)
        except Exception as exc:  # a bug or a runtime's error: one line here, the traceback in the log
            log.exception("the search stopped")
            self.search_failed.emit(self._run, f"the search stopped: {first_line(str(exc)) or type(exc).__name__}")

    def _search(self) -> dict[str, Any]:
        from core.datasets import load_dataset
        from core.models import load_model
        from core.tune.search import tune

        spec = self._spec
        loaded = load_model(spec.model)
        dataset = load_dataset(spec.dataset, loaded.input, spec.seed)
        budget = {"max_drop": self._max_drop_pt, "objective": self._objective}
        if self._cancel.cancelled:  # cancelled while loading: nothing measured
            return {"kind": "tune", "status": "cancelled", "candidates": [], "best": None, "budget": budget}
        classification = dataset.y is not None and dataset.task.value == "classification"
        recording = self._recording()
        study = self._study
        try:
            if study is not None:
                study.sink = recording.handle if recording is not None else _drop
                study.start(loaded, dataset, spec.timing.resolved_threads, budget)
            result = tune(
                loaded.path, dataset.x, dataset.y if classification else None,
                lambda n: dataset.calibration_samples(n, spec.seed), self._max_drop_pt, self._objective,
                self._time_limit_s, self._cancel, lambda c: self.candidate_measured.emit(self._run, c),
                threads=spec.timing.resolved_threads, model=loaded, workdir=self._workdir,
                on_variant=None if study is None else study.variant,
            )
            if study is not None:
                study.finish(result)
            return result
        finally:
            if recording is not None:
                recording.close("interrupted")

    def _recording(self) -> Any:
        """The window's history, as its studies are recorded (core.history.recorder.StudyRecording)."""
        if self._study is None:
            return None
        from core.history.recorder import StudyRecording
        from qtapp.threads.recording import open_store

        return StudyRecording(
            self._spec, open_store=open_store, name=study_name(self._max_drop_pt, self._objective),
            on_store_failed=self.store_failed.emit, on_recorded=self.study_recorded.emit,
        )


def _drop(_event: object) -> None:
    """The sink of a search that is not recorded."""


class TuneDialog(QDialog):
    """Find the fastest (or smallest) variant that loses at most N accuracy points, measuring each candidate.

    ``spec_provider()`` gives the window's current study (its model and dataset are searched) or raises
    BadInput with a sentence. ``palette`` colours the candidates; the dialog resets it on every search, so
    give it a palette of its own, not the window's.
    """

    #: A candidate was added to the chart and the table (its dict).
    candidate_added = Signal(object)
    #: The search ended: "met", "missed", "cancelled" or "failed".
    search_ended = Signal(str)
    #: A study id: the history holds a new state of the search (the window refreshes its History panel).
    study_recorded = Signal(str)

    def __init__(self, spec_provider: SpecProvider, palette: VariantPalette, theme: Theme,
                 parent: QWidget | None = None, record: bool = True) -> None:
        super().__init__(parent)
        #: Whether searches are recorded in the history as studies.
        self.record = record
        self._study: SearchStudy | None = None
        self._workdir: Path | None = None
        self._scratch: Scratch | None = None
        self.setWindowTitle("Find the best variant")
        self._spec_provider, self._palette, self._theme = spec_provider, palette, theme
        self._run = 0
        self._job = BackgroundJob()
        self._cancel: CancelToken | None = None
        self._searching = False
        self._candidates: list[dict[str, Any]] = []
        self._best: dict[str, Any] | None = None
        self._budget = (DEFAULT_MAX_DROP_PT, OBJECTIVES[0])
        self.result: dict[str, Any] | None = None
        self._build()
        self.apply_theme(theme)
        self._set_running(False)

    # --- layout --------------------------------------------------------
    def _build(self) -> None:
        self.max_drop = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=100.0, singleStep=0.1, suffix=" points")
        self.max_drop.setValue(DEFAULT_MAX_DROP_PT)
        self.objective = QComboBox()
        self.objective.addItems(list(OBJECTIVES))
        self.objective.setToolTip("latency: the fastest variant; size: the smallest file")
        self.time_limit = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=24 * 60.0, singleStep=1.0, suffix=" min")
        self.time_limit.setValue(DEFAULT_TIME_LIMIT_MIN)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.copy_button = QPushButton("Copy scheme")
        self.copy_button.setToolTip("Put the best candidate's scheme string on the clipboard")
        self.save_button = QPushButton("Save the best variant…")
        self.save_button.setToolTip("Save the best candidate's model file, with a sidecar saying how it was made")
        self.save_button.clicked.connect(self.ask_save_best)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.copy_button.clicked.connect(self.copy_scheme)
        controls = QHBoxLayout()
        for widget in (QLabel("Lose at most"), self.max_drop, QLabel("by"), self.objective, QLabel("within"),
                       self.time_limit):
            controls.addWidget(widget)
        controls.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.copy_button, self.save_button):
            controls.addWidget(button)
        self.status = QLabel("Set the budget and press Start.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = pg.PlotWidget(enableMenu=False)
        install_export_menu(self.chart, "tune-frontier")
        self._build_chart()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Scheme strings stay whole on one line (they are what gets copied); the table scrolls sideways instead.
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.chart)
        split.addWidget(self.table)
        split.setSizes([360, 300])
        column = QVBoxLayout(self)
        column.addLayout(controls)
        column.addWidget(self.status)
        column.addWidget(split, 1)
        self.resize(1180, 760)

    def _build_chart(self) -> None:
        plot = self.chart.getPlotItem()
        plot.hideButtons()
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        self._frontier_line = pg.PlotCurveItem()
        self._budget_line = pg.InfiniteLine(angle=0, movable=False, label="budget",
                                            labelOpts={"position": 0.97, "anchors": [(1, 1), (1, 1)]})
        self._scatter = pg.ScatterPlotItem(pxMode=True, hoverable=True, tip=self._tip)
        self._best_ring = pg.ScatterPlotItem(pxMode=True)
        self._best_tag = pg.TextItem("", anchor=(0, 1))
        self._best_tag.setFont(bold_font(10))
        self._baseline_tag = pg.TextItem("fp32", anchor=(0.5, 1.4))
        self._baseline_tag.setFont(bold_font(10))
        for item in (self._budget_line, self._frontier_line, self._scatter, self._best_ring, self._best_tag,
                     self._baseline_tag):
            plot.addItem(item)
        self._budget_line.setVisible(False)
        self._baseline_tag.setVisible(False)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.chart.setBackground(theme.plot_bg)
        plot = self.chart.getPlotItem()
        set_axis_label(plot, "bottom", X_AXES[self._budget[1]][0], theme)
        set_axis_label(plot, "left", "accuracy lost (points)", theme)
        style_axes(plot, theme)
        self._budget_line.setPen(pg.mkPen(theme.bad, width=2, style=Qt.PenStyle.DashLine))
        self._budget_line.label.setColor(theme.bad)
        self._budget_line.label.setFont(bold_font(10))
        self._baseline_tag.setColor(theme.muted)
        self._frontier_line.setPen(pg.mkPen(theme.accent, width=2))
        self._best_tag.setColor(theme.good)
        self._redraw()
        self._fill_table()

    # --- the search ----------------------------------------------------
    @property
    def searching(self) -> bool:
        """A search is under way (its end has not arrived yet)."""
        return self._searching

    @property
    def thread_alive(self) -> bool:
        """The search's thread, under way or winding down, has not finished."""
        return self._job.alive

    @Slot()
    def start(self) -> bool:
        """Start a search of the window's current model and dataset; False (and one sentence) if it cannot."""
        if self._searching:
            return False
        try:
            spec = self._spec_provider()
        except QuantBenchError as exc:
            self._say(first_line(str(exc)) or type(exc).__name__, error=True)
            return False
        self._job.join()  # the previous search has ended; its thread may still be winding down
        self._run += 1
        self._budget = (self.max_drop.value(), self.objective.currentText())
        self._candidates, self._best, self.result = [], None, None
        self._palette.reset([])
        self.apply_theme(self._theme)  # the x-axis follows the objective
        self._cancel = CancelToken()
        self._remove_workdir()
        self._scratch = Scratch("search")
        self._workdir = self._scratch.path
        # Each search is a study of its own in the history, even when the window's spec has not changed.
        spec = replace(spec, study_id=uuid.uuid4().hex[:12])
        self._study = SearchStudy(spec, _drop)
        worker = TuneWorker(self._run, spec, *self._budget, self.time_limit.value() * 60.0, self._cancel,
                            self._study if self.record else None, self._workdir)
        # The thread's loop ends once the search returns; the worker is deleted on its own thread.
        self._job.attach(f"tune-search-{self._run}", worker, (worker.search_finished, worker.search_failed))
        queued = Qt.ConnectionType.QueuedConnection
        worker.study_recorded.connect(self.study_recorded, queued)
        worker.store_failed.connect(self._store_failed, queued)
        worker.candidate_measured.connect(self._on_candidate, queued)
        worker.search_finished.connect(self._on_finished, queued)
        worker.search_failed.connect(self._on_failed, queued)
        self._say("Loading the model and the dataset…")
        self._set_running(True)
        self._job.start()
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop the search; the candidates measured so far are kept."""
        if self._cancel is not None and self._searching:
            self._cancel.cancel()
            self._say("Cancelling…")
            self.cancel_button.setEnabled(False)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel any search and wait for its thread; True when no thread is left running."""
        if self._cancel is not None:
            self._cancel.cancel()
        return self._job.join(timeout_ms)

    def done(self, result: int) -> None:
        # Closing (Esc, the title bar's button, accept/reject) never leaves a search running.
        if self.shutdown():
            self._remove_workdir()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.shutdown():  # also when closed while hidden, where QDialog does not call done()
            self._remove_workdir()
        super().closeEvent(event)

    def _remove_workdir(self) -> None:
        """The built candidates of the last search go (called once its thread has finished)."""
        if self._scratch is not None:
            self._scratch.remove()
            self._scratch = self._workdir = None

    @Slot(str)
    def _store_failed(self, sentence: str) -> None:
        log.warning("%s", sentence)

    @Slot(int, object)
    def _on_candidate(self, run: int, candidate: dict[str, Any]) -> None:
        if run != self._run:
            return  # a late candidate of an earlier search
        self._candidates.append(candidate)
        self._refresh()
        measured = len(self._candidates)
        if not (self._cancel is not None and self._cancel.cancelled):
            best = f"; best so far: {self._best['scheme']}" if self._best is not None else ""
            self._say(f"Searching: {measured} candidate{'s' if measured != 1 else ''} measured{best}.")
        self.candidate_added.emit(candidate)

    @Slot(int, object)
    def _on_finished(self, run: int, result: dict[str, Any]) -> None:
        if run != self._run:
            return
        self.result = result
        # The search's own list: its frontier flags are final, and nothing queued can be missing.
        self._candidates = [dict(c) for c in result.get("candidates", [])]
        self._refresh()
        self._set_running(False)
        status = result.get("status", "missed")
        best = self._best
        if status == "cancelled":
            n = len(self._candidates)
            self._say(f"cancelled: {n} candidate{'s' if n != 1 else ''} kept")
        elif status == "met" and best is not None:
            self._say(f"budget met: best is {best['scheme']}")
        elif best is not None:
            self._say(f"budget missed: closest is {best['scheme']} "
                      f"({best['accuracy_drop_pt']:.2f} points lost)")
        else:
            self._say(f"budget missed: no candidate beat fp32 on {self._budget[1]}")
        self.search_ended.emit(status)

    @Slot(int, str)
    def _on_failed(self, run: int, message: str) -> None:
        if run != self._run:
            return
        self._set_running(False)
        self._say(message, error=True)
        self.search_ended.emit("failed")

    def _refresh(self) -> None:
        max_drop, objective = self._budget
        mark_frontier(self._candidates, objective)
        self._best = best_candidate(self._candidates, max_drop, objective)
        self._palette.reset([c["label"] for c in self._candidates])
        self._redraw()
        self._fill_table()
        self.copy_button.setEnabled(self._best is not None)

    def save_best_to(self, path: str | Path) -> Path:
        """Save the best candidate's file to ``path`` with its sidecar; BadInput (one sentence) if it cannot."""
        from core.errors import BadInput

        if self._best is None or self._study is None or self._searching:
            raise BadInput("there is no best variant to save yet.")
        variant = next((r for r in self._study.results if r.label == self._best["label"]), None)
        if variant is None:
            raise BadInput("the best variant's file was not kept (the search was not recorded).")
        return save_best(variant, path, self._study.sidecar_info())

    @Slot()
    def ask_save_best(self) -> None:
        """Ask where, then save the best candidate (its file and sidecar) there."""
        if self._best is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the best variant", "best.onnx", "ONNX model (*.onnx)")
        if not path:
            return
        try:
            saved = self.save_best_to(path)
        except QuantBenchError as exc:
            self._say(first_line(str(exc)) or type(exc).__name__, error=True)
            return
        self._say(f"saved {self._best['scheme']} to {saved} with its sidecar")

    @Slot()
    def copy_scheme(self) -> None:
        if self._best is not None:
            QGuiApplication.clipboard().setText(self._best["scheme"])

    # --- drawing -------------------------------------------------------
    def _xy(self, candidate: dict[str, Any]) -> tuple[float, float] | None:
        x = X_AXES[self._budget[1]][1](candidate)
        drop = candidate.get("accuracy_drop_pt")
        return None if x is None or drop is None else (float(x), float(drop))

    def _tip(self, x: float, y: float, data: object) -> str:
        return f"{data}\n{y:.2f} points lost · {x:.4g} {'ms' if self._budget[1] == 'latency' else 'kB'}"

    def _redraw(self) -> None:
        spots = []
        for c in self._candidates:
            xy = self._xy(c)
            if xy is not None:
                color = self._palette.hex(c["label"])
                spots.append({"pos": xy, "size": POINT_PX, "brush": pg.mkBrush(with_alpha(color, 200)),
                              "pen": pg.mkPen(color, width=2), "data": f"{c['label']}\n{c['scheme']}"})
        self._scatter.setData(spots)
        frontier = sorted(xy for c in self._candidates if c.get("on_frontier") and (xy := self._xy(c)))
        self._frontier_line.setData([p[0] for p in frontier], [p[1] for p in frontier])
        max_drop = self._budget[0]
        self._budget_line.setVisible(bool(self._candidates))
        self._budget_line.setValue(max_drop)
        # The label only follows the line while shown: written again here, after it is.
        self._budget_line.label.setFormat(f"budget {max_drop:.2f} points")
        baseline = self._xy(self._candidates[0]) if self._candidates else None
        self._baseline_tag.setVisible(baseline is not None)
        if baseline is not None:
            self._baseline_tag.setPos(*baseline)
        best = self._xy(self._best) if self._best is not None else None
        if best is None:
            self._best_ring.setData([])
            self._best_tag.setVisible(False)
        else:
            self._best_ring.setData([{"pos": best, "size": BEST_RING_PX, "brush": pg.mkBrush(None),
                                      "pen": pg.mkPen(self._theme.good, width=3)}])
            self._best_tag.setText(f" best: {self._best['label']}")
            self._best_tag.setPos(*best)
            self._best_tag.setVisible(True)
        self._fit(spots, max_drop)

    def _fit(self, spots: list[dict[str, Any]], max_drop: float) -> None:
        if not spots:
            return
        xs = [s["pos"][0] for s in spots]
        ys = [s["pos"][1] for s in spots] + [max_drop, 0.0]
        x_pad = max((max(xs) - min(xs)) * 0.15, abs(max(xs)) * 0.05, 1e-6)
        y_pad = max((max(ys) - min(ys)) * 0.15, 0.1)
        plot = self.chart.getPlotItem()
        # Room on the right for the best candidate's name.
        plot.setXRange(min(min(xs) - x_pad, 0.0 if min(xs) >= 0 else min(xs)), max(xs) + 3 * x_pad, padding=0)
        plot.setYRange(min(ys) - y_pad, max(ys) + y_pad, padding=0)

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self._candidates))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, c in enumerate(self._candidates):
            is_best = self._best is not None and c["scheme"] == self._best["scheme"]
            for col, text in enumerate(_cells(c)):
                item = QTableWidgetItem(text)
                if col in NUMERIC_COLUMNS:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 0:  # the candidate's colour on the chart, as a swatch
                    item.setData(Qt.ItemDataRole.DecorationRole, QColor(self._palette.hex(c["label"])))
                if is_best:
                    item.setFont(bold)
                    item.setBackground(QBrush(with_alpha(self._theme.good, 70)))
                item.setToolTip(c.get("error", "") if c.get("status") == "failed" else c["scheme"])
                self.table.setItem(row, col, item)
            if is_best:
                self.table.scrollToItem(self.table.item(row, 0))

    # --- state ---------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self._searching = running
        for widget in (self.max_drop, self.objective, self.time_limit, self.start_button):
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.copy_button.setEnabled(not running and self._best is not None)
        self.save_button.setEnabled(not running and self._best is not None and self._study is not None)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {self._theme.error_text}; font-weight: bold;" if error else "")
        self.status.setText(text)

    # --- reading (tests) -------------------------------------------------
    def candidates(self) -> list[dict[str, Any]]:
        """The candidates shown, in the order they were measured."""
        return [dict(c) for c in self._candidates]

    def best(self) -> dict[str, Any] | None:
        return None if self._best is None else dict(self._best)

    def table_rows(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def highlighted_rows(self) -> list[int]:
        """Rows drawn as the best (bold)."""
        return [r for r in range(self.table.rowCount()) if self.table.item(r, 0).font().bold()]

    def chart_points(self) -> list[tuple[float, float]]:
        return [(float(s.pos().x()), float(s.pos().y())) for s in self._scatter.points()]

    def best_ring(self) -> tuple[float, float] | None:
        points = self._best_ring.points()
        return None if len(points) == 0 else (float(points[0].pos().x()), float(points[0].pos().y()))

    def frontier_line(self) -> list[tuple[float, float]]:
        xs, ys = self._frontier_line.getData()
        return [] if xs is None else [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]

    def budget_line(self) -> tuple[float, bool, str]:
        """The dashed budget line's height (points lost), whether it is shown, and its label."""
        line = self._budget_line
        return float(line.value()), line.isVisible(), line.label.toPlainText()


def _cells(c: dict[str, Any]) -> list[str]:
    """A candidate's table row, in ``COLUMNS`` order."""
    if c.get("status") == "failed":
        return [c["label"], "failed", "", "", "", "", c["scheme"]]
    latency = c.get("latency_ms") or {}
    size = c.get("size_bytes")
    return [
        c["label"],
        format_percent(c.get("accuracy"), decimals=2),
        f"{c['accuracy_drop_pt']:.2f}",
        format_ms(latency.get("p50")),
        "" if size is None else f"{size / 1000:,.0f}",
        "yes" if c.get("on_frontier") else "",
        c["scheme"],
    ]
