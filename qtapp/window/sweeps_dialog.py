"""Study ▸ Calibration and batch-size sweeps…: ``core.tune.sweeps`` in a dialog with a tab per sweep.

Calibration: ``ort-int8-static`` for each method × sample count, accuracy and output SQNR against the
sample count, one line per method. Batch size: the float model and the chosen schemes timed at each
batch size, latency per call and throughput, each variant's best throughput within the latency limit
ringed. A sweep runs on a worker moved to a QThread (as the search dialog's); points arrive through
queued signals and the charts redraw from the same series the HTML report draws
(``core.tune.sweep_report``). Cancel keeps what was measured; closing cancels and waits for the thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.errors import BadInput, QuantBenchError
from core.reports.chart_data import variant_colors
from core.study.cancel import CancelToken
from core.study.spec import StudySpec
from core.tune.sweep_report import batch_series, best_points, calibration_series, render_sweeps_html
from core.tune.sweeps import BATCH_SIZES, DEFAULT_BATCH_SCHEMES, SAMPLE_COUNTS, parse_sizes
from qtapp.charts.sweep_charts import SweepLines
from qtapp.threads.background import SHUTDOWN_WAIT_MS, BackgroundJob
from qtapp.window.errors import first_line
from qtapp.window.theme import Theme

log = logging.getLogger(__name__)

KINDS = ("calibration", "batch")


def _sizes_text(sizes: tuple[int, ...]) -> str:
    return ",".join(str(s) for s in sizes)


class SweepWorker(QObject):
    """Loads the spec's model and dataset and runs one sweep; plain dicts out."""

    point_measured = Signal(int, object)
    sweep_finished = Signal(int, object)
    sweep_failed = Signal(int, str)

    def __init__(self, run: int, kind: str, spec: StudySpec, options: dict[str, Any], cancel: CancelToken) -> None:
        super().__init__()
        self._run, self._kind, self._spec, self._options, self._cancel = run, kind, spec, options, cancel

    @Slot()
    def run(self) -> None:
        try:
            self.sweep_finished.emit(self._run, self._sweep())
        except QuantBenchError as exc:
            self.sweep_failed.emit(self._run, first_line(str(exc)) or type(exc).__name__)
        except Exception as exc:  # a bug or a runtime's error: one line here, the traceback in the log
            log.exception("the sweep stopped")
            self.sweep_failed.emit(self._run, f"the sweep stopped: {first_line(str(exc)) or type(exc).__name__}")

    def _sweep(self) -> dict[str, Any]:
        from core.datasets import load_dataset
        from core.models import load_model
        from core.tune.sweeps import batch_sweep, calibration_sweep

        spec = self._spec
        loaded = load_model(spec.model)
        dataset = load_dataset(spec.dataset, loaded.input, spec.seed)

        def calib(n: int) -> Any:
            return dataset.calibration_samples(n, spec.seed)

        def emit(point: dict[str, Any]) -> None:
            self.point_measured.emit(self._run, point)

        threads = spec.timing.resolved_threads
        if self._kind == "calibration":
            labels = dataset.y if dataset.task.value == "classification" else None
            return calibration_sweep(loaded.path, dataset.x, labels, calib, counts=self._options["counts"],
                                     cancel=self._cancel, on_point=emit, threads=threads, model=loaded)
        return batch_sweep(loaded.path, dataset.x, calib, schemes=self._options["schemes"],
                           batch_sizes=self._options["sizes"], latency_limit_ms=self._options["limit"],
                           cancel=self._cancel, on_point=emit, threads=threads, model=loaded)


class SweepsDialog(QDialog):
    """The calibration and batch-size sweeps of the window's current model and dataset."""

    #: A sweep ended: (kind, "finished" | "cancelled" | "failed").
    sweep_ended = Signal(str, str)

    def __init__(self, spec_provider: Callable[[], StudySpec], theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibration and batch-size sweeps")
        self._spec_provider, self._theme = spec_provider, theme
        self._run = 0
        self._job = BackgroundJob()
        self._cancel: CancelToken | None = None
        self._running: str | None = None
        self._points: list[dict[str, Any]] = []
        #: The last finished (or cancelled) result of each sweep.
        self.results: dict[str, dict[str, Any] | None] = {k: None for k in KINDS}
        self._build()
        self._set_running(None)

    # --- layout --------------------------------------------------------
    def _build(self) -> None:
        self.counts = QLineEdit(_sizes_text(SAMPLE_COUNTS))
        self.counts.setToolTip("Calibration sample counts, separated by commas")
        self.batch_sizes = QLineEdit(_sizes_text(BATCH_SIZES))
        self.batch_sizes.setToolTip("Batch sizes, separated by commas (each variant stops early at the time or "
                                    "memory limit)")
        self.schemes = QLineEdit(" ".join(DEFAULT_BATCH_SCHEMES))
        self.schemes.setToolTip("Scheme strings timed besides the float model, separated by spaces")
        self.latency_limit = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1e6, singleStep=1.0, suffix=" ms")
        self.latency_limit.setSpecialValueText("none")
        self.latency_limit.setToolTip("The best throughput of each variant is marked among batches within this "
                                      "latency per call")
        self.calibration_button = QPushButton("Sweep calibration")
        self.batch_button = QPushButton("Sweep batch size")
        self.cancel_button = QPushButton("Cancel")
        self.html_button = QPushButton("Save HTML…")
        self.calibration_button.clicked.connect(lambda: self.start("calibration"))
        self.batch_button.clicked.connect(lambda: self.start("batch"))
        self.cancel_button.clicked.connect(self.cancel)
        self.html_button.clicked.connect(self.ask_save_html)
        grid = QGridLayout()
        grid.addWidget(QLabel("Calibration samples"), 0, 0)
        grid.addWidget(self.counts, 0, 1)
        grid.addWidget(self.calibration_button, 0, 2)
        grid.addWidget(QLabel("Batch sizes"), 1, 0)
        grid.addWidget(self.batch_sizes, 1, 1)
        grid.addWidget(self.batch_button, 1, 2)
        grid.addWidget(QLabel("Variants"), 2, 0)
        grid.addWidget(self.schemes, 2, 1)
        grid.addWidget(QLabel("Latency limit"), 3, 0)
        grid.addWidget(self.latency_limit, 3, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.html_button)
        self.status = QLabel("Choose a sweep and press its button.")
        self.status.setWordWrap(True)
        theme = self._theme
        self.accuracy_chart = SweepLines("Accuracy", "calibration samples", "accuracy (%)", theme, "sweep-accuracy")
        self.sqnr_chart = SweepLines("Output SQNR", "calibration samples", "SQNR vs float (dB)", theme, "sweep-sqnr")
        self.latency_chart = SweepLines("Latency per call", "batch size", "median ms per call", theme, "sweep-latency")
        self.throughput_chart = SweepLines("Throughput", "batch size", "samples per second", theme,
                                           "sweep-throughput")
        self.tabs = QTabWidget()
        for title, charts in (("Calibration", (self.accuracy_chart, self.sqnr_chart)),
                              ("Batch size", (self.latency_chart, self.throughput_chart))):
            page = QWidget()
            row = QHBoxLayout(page)
            for chart in charts:
                row.addWidget(chart)
            self.tabs.addTab(page, title)
        column = QVBoxLayout(self)
        column.addLayout(grid)
        column.addLayout(buttons)
        column.addWidget(self.status)
        column.addWidget(self.tabs, 1)
        self.resize(1100, 720)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        for chart in self.charts():
            chart.apply_theme(theme)

    def charts(self) -> tuple[SweepLines, ...]:
        return (self.accuracy_chart, self.sqnr_chart, self.latency_chart, self.throughput_chart)

    # --- running ---------------------------------------------------------
    def _options(self, kind: str) -> dict[str, Any]:
        if kind == "calibration":
            return {"counts": parse_sizes(self.counts.text(), "Calibration samples")}
        schemes = tuple(self.schemes.text().split())
        from core.schemes.params import check_params
        from core.schemes.registry import get_scheme
        from core.study.spec import SchemeSpec

        for text in schemes:
            spec = SchemeSpec.parse(text)
            check_params(spec, get_scheme(spec.id).info)  # BadInput names an unknown scheme or a bad option
        limit = self.latency_limit.value()
        return {"sizes": parse_sizes(self.batch_sizes.text(), "Batch sizes"), "schemes": schemes,
                "limit": limit if limit > 0 else None}

    @Slot()
    def start(self, kind: str) -> bool:
        """Start the ``kind`` sweep ("calibration" or "batch"); False (and one sentence) if it cannot."""
        if self._running is not None:
            return False
        try:
            options = self._options(kind)
            spec = self._spec_provider()
        except QuantBenchError as exc:
            self._say(first_line(str(exc)) or type(exc).__name__, error=True)
            return False
        self._job.join()
        self._run += 1
        self._points = []
        self._cancel = CancelToken()
        self.tabs.setCurrentIndex(KINDS.index(kind))
        worker = SweepWorker(self._run, kind, spec, options, self._cancel)
        self._job.attach(f"sweep-{kind}-{self._run}", worker, (worker.sweep_finished, worker.sweep_failed))
        queued = Qt.ConnectionType.QueuedConnection
        worker.point_measured.connect(self._on_point, queued)
        worker.sweep_finished.connect(self._on_finished, queued)
        worker.sweep_failed.connect(self._on_failed, queued)
        self._say("Loading the model and the dataset…")
        self._set_running(kind)
        if kind == "batch":
            self.latency_chart.set_limit(options["limit"])
        self._job.start()
        return True

    @Slot()
    def cancel(self) -> None:
        if self._cancel is not None and self._running is not None:
            self._cancel.cancel()
            self._say("Cancelling…")

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        if self._cancel is not None:
            self._cancel.cancel()
        return self._job.join(timeout_ms)

    @property
    def thread_alive(self) -> bool:
        return self._job.alive

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    @Slot(int, object)
    def _on_point(self, run: int, point: dict[str, Any]) -> None:
        if run != self._run or self._running is None:
            return
        self._points.append(point)
        kind = self._running
        if kind == "calibration":
            partial = {"methods": list(dict.fromkeys(p["method"] for p in self._points)), "points": self._points}
        else:
            labels = list(dict.fromkeys(p["label"] for p in self._points))
            partial = {"variants": [{"label": label, "points": [p for p in self._points if p["label"] == label]}
                                    for label in labels]}
        self._draw(kind, partial)
        self._say(f"Sweeping: {len(self._points)} point{'s' if len(self._points) != 1 else ''} measured.")

    @Slot(int, object)
    def _on_finished(self, run: int, result: dict[str, Any]) -> None:
        if run != self._run:
            return
        kind = "calibration" if result.get("kind") == "calibration_sweep" else "batch"
        self.results[kind] = result
        self._draw(kind, result)
        self._set_running(None)
        self._say(self._summary(kind, result))
        self.sweep_ended.emit(kind, result.get("status", "finished"))

    @Slot(int, str)
    def _on_failed(self, run: int, message: str) -> None:
        if run != self._run:
            return
        kind = self._running or "calibration"
        self._set_running(None)
        self._say(message, error=True)
        self.sweep_ended.emit(kind, "failed")

    def _draw(self, kind: str, sweep: dict[str, Any]) -> None:
        if kind == "calibration":
            colors = variant_colors(sweep.get("methods", []), baselines=())
            self.accuracy_chart.set_lines(calibration_series(sweep, "accuracy"), colors)
            self.sqnr_chart.set_lines(calibration_series(sweep, "sqnr_db"), colors)
            return
        colors = variant_colors([v["label"] for v in sweep.get("variants", [])])
        self.latency_chart.set_lines(batch_series(sweep, "latency"), colors, best_points(sweep, "latency"))
        self.throughput_chart.set_lines(batch_series(sweep, "throughput"), colors, best_points(sweep, "throughput"))

    def _summary(self, kind: str, result: dict[str, Any]) -> str:
        status = result.get("status", "finished")
        if kind == "calibration":
            ok = [p for p in result.get("points", []) if p["status"] == "ok"]
            if not ok:
                return f"calibration sweep {status}: no point measured"
            top = max(ok, key=lambda p: (p["accuracy"], p["sqnr_db"] or 0.0))
            return f"calibration sweep {status}: most accurate {top['scheme']} (SQNR {top['sqnr_db']} dB)"
        best = [f"{v['label']} at batch {v['best_batch_size']}" for v in result.get("variants", [])
                if v.get("best_batch_size")]
        return f"batch sweep {status}: best throughput " + (", ".join(best) if best else "none within the limit")

    # --- HTML ----------------------------------------------------------
    def save_html(self, path: str) -> None:
        """The sweeps run so far as one HTML page (BadInput when none has)."""
        from pathlib import Path

        from core.files.atomic import write_atomic

        if not any(self.results.values()):
            raise BadInput("run a sweep first: there is nothing to save.")
        model = next(r["model"] for r in self.results.values() if r)
        write_atomic(Path(path), render_sweeps_html(self.results["calibration"], self.results["batch"],
                                                    Path(model).name))

    @Slot()
    def ask_save_html(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the sweeps", "sweeps.html", "HTML page (*.html)")
        if not path:
            return
        try:
            self.save_html(path)
        except (QuantBenchError, OSError) as exc:
            self._say(first_line(str(exc)) or type(exc).__name__, error=True)
            return
        self._say(f"saved {path}")

    # --- state ---------------------------------------------------------
    def _set_running(self, kind: str | None) -> None:
        self._running = kind
        idle = kind is None
        for widget in (self.counts, self.batch_sizes, self.schemes, self.latency_limit, self.calibration_button,
                       self.batch_button):
            widget.setEnabled(idle)
        self.cancel_button.setEnabled(not idle)
        self.html_button.setEnabled(idle and any(self.results.values()))

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {self._theme.error_text}; font-weight: bold;" if error else "")
        self.status.setText(text)
