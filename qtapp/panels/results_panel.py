"""Every variant side by side: the summary table over tabs of charts.

The panel owns the StudyState. ``apply_events`` gets the events buffered since
the last redraw (at most ~15 times a second), applies them, and updates only
the chart items of the variants that changed.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.printable import printable
from core.study.events import Event
from core.study.result import VariantResult
from core.study.spec import Thresholds
from qtapp.charts.confusion_matrix import COUNTS, DIFFERENCE, ConfusionMatrices
from qtapp.charts.latency_histogram import LatencyHistogram
from qtapp.charts.palette import VariantPalette
from qtapp.charts.size_bars import SizeBars
from qtapp.charts.tradeoff_scatter import TradeoffScatter
from qtapp.models.study_state import StudyState, VariantState
from qtapp.models.variant_details import variant_details
from qtapp.panels.column_chooser import ColumnChooser
from qtapp.panels.details_panel import DetailsPanel
from qtapp.panels.elided_label import ElidedLabel
from qtapp.panels.flipped_panel import FlippedPanel
from qtapp.panels.layers_panel import LayersPanel
from qtapp.panels.scroll_page import scrolling
from qtapp.panels.summary_table import SummaryTable
from qtapp.window.theme import Theme

# Smallest readable sizes of the charts (pixels); below them the tab scrolls.
HIST_ROW_PX = 46
SIZE_ROW_PX = 24
SCATTER_MIN_PX = 220
MATRIX_PX = 300
#: How long after the charts the table's live latency cells are refreshed (see apply_events).
LIVE_TABLE_DELAY_MS = 20
#: Between two queued chart updates: long enough for the first one's repaint to go through.
JOB_GAP_MS = 2
#: Histogram rows made while the window is idle (a study with more variants builds the rest).
PREBUILT_ROWS = 8
PREBUILD_GAP_MS = 30


class ResultsPanel(QWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        self.state = StudyState()
        self._palette = palette
        self._theme = theme
        self._dataset_spec: str | None = None
        self._dataset = None

        self.table = SummaryTable(self.state, palette, theme, self)
        self.columns = ColumnChooser(self.table)  # right-click the table's header
        self._live_rows: set[str] = set()
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(LIVE_TABLE_DELAY_MS)
        self._live_timer.timeout.connect(self.flush_live)
        self._jobs: list = []
        self._job_timer = QTimer(self)
        self._job_timer.setSingleShot(True)
        self._job_timer.setInterval(JOB_GAP_MS)
        self._job_timer.timeout.connect(self._next_job)
        # The histogram's rows are built ahead, one per pass of an idle event loop.
        self._prebuild_timer = QTimer(self)
        self._prebuild_timer.setInterval(PREBUILD_GAP_MS)
        self._prebuild_timer.timeout.connect(self._prebuild_row)
        self._prebuild_timer.start()
        self.histogram = LatencyHistogram(palette, theme)
        self.sizes = SizeBars(palette, theme)
        self.scatter = TradeoffScatter(palette, theme)
        self.matrices = ConfusionMatrices(palette, theme)
        self.flipped = FlippedPanel(theme=theme)
        self.flipped.clear()

        self.side = QSplitter(Qt.Orientation.Vertical)
        self.side.addWidget(_titled("Size on disk", self.sizes))
        self.side.addWidget(_titled("Accuracy against latency (bubble: file size)", self.scatter))
        overview = QSplitter(Qt.Orientation.Horizontal)
        overview.addWidget(_titled("Latency per call (ms), every sample", self.histogram))
        overview.addWidget(self.side)
        overview.setStretchFactor(0, 3)
        overview.setStretchFactor(1, 2)

        self.matrix_page = QStackedWidget()
        self.matrix_page.addWidget(self._matrix_tab())
        self.no_matrix = QLabel("Confusion matrices are drawn for classification studies.")
        self.no_matrix.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_matrix.setObjectName("mutedLabel")
        self.matrix_page.addWidget(self.no_matrix)

        self.tabs = QTabWidget()
        # Charts keep a readable size; when the window is too small for them, the tab scrolls.
        self.tabs.addTab(scrolling(overview), "Latency && size")
        self.tabs.addTab(self.matrix_page, "Confusion matrices")
        self.tabs.addTab(self.flipped, "Flipped samples")
        # The variant selected in the table, in full (double-click a row to open it).
        self.details = DetailsPanel()
        self.tabs.addTab(self.details, "Details")
        # Where each variant loses accuracy and spends its time, layer by layer (``quantbench run --layers``).
        self.layers = LayersPanel(palette, theme)
        self.tabs.addTab(self.layers, "Layers")
        self.table.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.view.activated.connect(lambda _index: self.tabs.setCurrentWidget(self.details))

        # One line each, shortened with "…" when narrow (the tooltip has it all): wrapping lines
        # would change the table's height under it.
        self.header = ElidedLabel("No study yet: set up the model, dataset and schemes on the left, then Run.")
        self.header.setObjectName("studyTitle")
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(4, 4, 4, 0)
        top_layout.addWidget(self.header)
        # Said above the table when the machine's speed changed during the study (the baseline,
        # timed again at the end, moved): the speed-ups below compare two different machines.
        self.drift = QLabel("")
        self.drift.setWordWrap(True)  # a warning is read whole, never cut short with "…"
        self.drift.setObjectName("errorLabel")
        self.drift.hide()
        top_layout.addWidget(self.drift)
        top_layout.addWidget(self.table, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self._top_width: int | None = None  # the width the top part was last fitted at (_fit_top)
        top.installEventFilter(self)  # narrower (the History dock opened), the warning wraps to more lines
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def _matrix_tab(self) -> QWidget:
        page = QWidget()
        counts = QRadioButton("Counts")
        counts.setToolTip("How many samples of each true class were predicted as each class; one colour scale "
                          "for all the matrices.")
        diff = QRadioButton("Difference from the baseline")
        diff.setToolTip("Each variant's matrix minus the baseline's, coloured by harm: red where it makes more "
                        "mistakes (fewer on the diagonal, more off it), blue where it makes fewer.")
        counts.setChecked(True)
        self.matrix_mode = QButtonGroup(page)
        self.matrix_mode.addButton(counts)
        self.matrix_mode.addButton(diff)
        counts.toggled.connect(lambda on: self.matrices.set_mode(COUNTS if on else DIFFERENCE))
        self.show_difference = diff
        self.show_counts = counts
        row = QHBoxLayout()
        row.addWidget(counts)
        row.addWidget(diff)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(scrolling(self.matrices), 1)
        return page

    # --- feeding -------------------------------------------------------
    def set_thresholds(self, thresholds: Thresholds) -> None:
        self.table.set_thresholds(asdict(thresholds))

    def set_dataset(self, spec: str, dataset) -> None:
        """The loaded evaluation data (core Dataset), so flipped samples can show their inputs."""
        self._dataset_spec, self._dataset = spec, dataset
        self._feed_dataset()

    def _feed_dataset(self) -> None:
        ds = self._dataset
        spec = self.state.dataset.get("spec")
        if spec is not None and (ds is None or spec != self._dataset_spec):
            # A stored study keeps which samples flipped, not the samples: never show another dataset's.
            self.flipped.set_inputs_missing(
                f"No pictures: a past study keeps the numbers of its flipped samples, not the samples. "
                f"Open its dataset ({spec}) in the Dataset panel to see them.",
                self.state.dataset.get("class_names"),
            )
            return
        if ds is None:
            return
        self.flipped.set_dataset(ds.x, ds.y, ds.class_names, ds.image_shape)

    def _queue_jobs(self, *jobs) -> None:
        self._jobs.extend(job for job in jobs if job not in self._jobs)

    def apply_events(self, events: list[Event]) -> None:
        for event in events:
            self.state.apply(event)
        changes = self.state.take_changes()
        if not changes:
            return
        if changes.started:
            self._new_study()
        for label in changes.samples:
            self._feed_samples(label)
        for label in changes.results:
            self._feed_result(label)
        if changes.samples or changes.results:
            self.histogram.redraw()
        whole = changes.status | changes.results
        self._live_rows -= whole
        if whole:
            self.table.refresh(whole)
        if changes.results:
            # A finished variant touches every chart and refits the table's columns: together
            # 20-40 ms, enough to stall the window while the next variant streams. Each runs in
            # its own pass of the event loop instead (with its repaint), a few ms at a time.
            self._queue_jobs(self.sizes.redraw, self.scatter.redraw, self.matrices.redraw, self.table.fit_columns)
        if changes.finished:
            self._study_ended()
        elif self._jobs and not self._job_timer.isActive():
            self._job_timer.start()
        if changes.samples - whole:
            # The table's live latency is repainted a moment after the histogram, not in the same
            # pass: two shorter stretches of work instead of one keep the GUI thread answering
            # input within a few milliseconds while samples stream.
            self._live_rows |= changes.samples - whole
            if not self._live_timer.isActive():
                self._live_timer.start()
        if changes.finished:
            self._show_most_flipped()
        if changes.started or changes.finished or self.selected_label() in whole:
            self._show_details()

    def _study_ended(self) -> None:
        if self.table.model.columns_stale():
            self.table.reset()  # paired rounds ran: their p50 column and the marked Speed appear
        self.histogram.settle_captions()
        self._show_drift()
        self._queue_jobs(self.table.fit_columns)
        self.run_pending()  # the study is over: nothing left to keep smooth

    def selected_label(self) -> str | None:
        """The variant selected in the summary table (None: none is)."""
        selection = self.table.view.selectionModel()
        rows = [index.row() for index in selection.selectedRows()]
        current = selection.currentIndex().row()
        row = current if current in rows else (rows[0] if rows else -1)  # several selected: the one clicked last
        labels = self.state.labels
        return labels[row] if 0 <= row < len(labels) else None

    def _selection_changed(self, *_args) -> None:
        label = self.selected_label()
        if label is not None:
            self.flipped.show_variant(label)
            self.layers.show_variant(label)  # the Layers tab follows the table, as Details does
        self._show_details()

    def _show_details(self) -> None:
        self.details.show_details(variant_details(self.state, self.selected_label()))

    def _prebuild_row(self) -> None:
        if self.state.labels or not self.histogram.prebuild(PREBUILT_ROWS):
            self._prebuild_timer.stop()  # a study began (it builds what it needs) or all are built

    def run_pending(self) -> None:
        """Run every chart update still queued by ``apply_events`` now (tests, screenshots, the study's end)."""
        self._job_timer.stop()
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job()

    def _next_job(self) -> None:
        if self._jobs:
            self._jobs.pop(0)()
        if self._jobs:
            self._job_timer.start()

    def flush_live(self) -> None:
        """Refresh the table's live cells now (the timer would do it within LIVE_TABLE_DELAY_MS)."""
        self._live_timer.stop()
        rows, self._live_rows = self._live_rows & set(self.state.labels), set()
        if rows:
            self.table.refresh(rows, live=True)

    def fail(self, message: str) -> None:
        self.state.fail(message)
        self.table.refresh(set(self.state.labels), resize=True)
        self.run_pending()

    def show_comparison(self, title: str, baselines: dict[str, str], drift: list[str] | None = None) -> None:
        """After a comparison's events were applied: each study's variants measured against its
        own baseline (``baselines``: variant label -> its baseline's label), under ``title``;
        ``drift``: the studies' own drift warnings, each naming its study."""
        self.state.set_baselines(baselines)
        self.sizes.set_baselines(baselines)
        self.sizes.redraw()
        self.matrices.set_baselines(baselines)
        self.matrices.redraw()
        self.table.refresh(set(self.state.labels), resize=True)
        self.header.setText(title)
        self.header.setToolTip(title)
        if drift:
            self._set_drift("\n".join(f"⚠ {line}." for line in drift))

    def _new_study(self) -> None:
        self._job_timer.stop()
        self._jobs = []  # the last study's updates: every chart is rebuilt below
        self.drift.hide()
        self._live_timer.stop()
        self._live_rows = set()
        labels = self.state.labels
        self._palette.reset(labels)
        self.table.reset()
        self.table.fit_height()
        self._fit_splitters(len(labels))
        self.histogram.set_variants(labels)
        self.sizes.set_variants(labels)
        self.scatter.set_variants(labels, self.state.task)
        classification = self.state.task == "classification"
        self.matrix_page.setCurrentIndex(0 if classification else 1)
        self.matrices.set_variants(labels, self.state.dataset.get("class_names"))
        self.flipped.clear()
        self.layers.clear()
        self._feed_dataset()
        title = printable(study_title(self.state.model, self.state.dataset, self.state.environment))
        self.header.setText(title)
        self.header.setToolTip(title)

    def _show_drift(self) -> None:
        from core.measures.drift_notes import study_drift_warning

        result = self.state.result
        warning = study_drift_warning(result.timing) if result is not None else None
        self._set_drift(f"⚠ {warning[0].upper()}{warning[1:]}." if warning else "")

    def _set_drift(self, text: str) -> None:
        self.drift.setText(text)
        self.drift.setToolTip(text)
        self.drift.setVisible(bool(text))
        self._fit_top()  # a wrapped warning takes lines: the table below it keeps every row

    def _fit_top(self) -> None:
        """Give the title, the drift warning (at the lines it wraps to), the table and its legend their height,
        and never less: squeezed (a narrower panel wrapping the warning to more lines, the splitter dragged up),
        the legend line was drawn over the table's last row."""
        total = sum(self.splitter.sizes())
        top = self.splitter.widget(0)
        layout = top.layout()
        width = top.width() if top.width() > 0 else self.width()
        needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else top.sizeHint().height()
        needed = max(needed, top.sizeHint().height())
        self._top_width = width
        least = (layout.totalMinimumHeightForWidth(width) if layout.hasHeightForWidth()
                 else layout.totalMinimumSize().height())
        top.setMinimumHeight(least)
        self.splitter.setSizes([needed, max(1, total - needed)])

    def eventFilter(self, watched, event) -> bool:
        if (event.type() == QEvent.Type.Resize and watched is self.splitter.widget(0)
                and watched.width() != self._top_width):
            self._fit_top()
        return super().eventFilter(watched, event)

    def _fit_splitters(self, variants: int) -> None:
        """Give the table every row it needs and the charts a readable height per variant."""
        self._fit_top()
        self.histogram.setMinimumHeight(HIST_ROW_PX * variants + 50)
        self.sizes.setMinimumHeight(SIZE_ROW_PX * variants + 60)
        self.scatter.setMinimumHeight(SCATTER_MIN_PX)
        self.matrices.setMinimumHeight(self.matrices.rows_for(variants) * MATRIX_PX)
        side = sum(self.side.sizes())
        bars = SIZE_ROW_PX * variants + 90
        self.side.setSizes([bars, max(SCATTER_MIN_PX, side - bars)])

    def _show_most_flipped(self) -> None:
        """Open the flipped-samples view on the variant that changed the most predictions."""
        counts = {r.label: int((r.fidelity or {}).get("flipped_count") or 0) for r in self.state.finished_results()}
        if counts and max(counts.values()) > 0:
            self.flipped.show_variant(max(counts, key=lambda label: counts[label]))

    def _feed_samples(self, label: str) -> None:
        v = self.state.variants[label]
        final = v.result.latency if v.result is not None and v.result.ok else None
        p50, p99 = (final.p50, final.p99) if final else (None, None)
        self.histogram.update_variant(label, v.samples.values, p50, p99)

    def _feed_result(self, label: str) -> None:
        v = self.state.variants[label]
        r = v.result
        self.sizes.set_size(label, v.size_bytes, failed=r is not None and not r.ok, is_baseline=v.is_baseline)
        self.sizes.set_memory(label, r.memory if r is not None else None)  # peak RAM beside the size
        if r is None:
            return
        if not r.ok:
            self.matrices.set_matrix(label, None)
            self.histogram.set_failed(label)
            return
        self._feed_samples(label)
        metrics = r.metrics or {}
        if r.latency is not None and r.size_bytes is not None:
            y = {"classification": metrics.get("accuracy"),
                 "causal-lm": metrics.get("perplexity")}.get(self.state.task, metrics.get("mse"))
            if y is not None:
                # Where the machine's speed changed, the table's latencies (‡) come from the paired rounds: so do
                # the bubbles', or a variant slower in the table would sit left of its baseline here.
                paired = v.paired.p50_ms if v.paired is not None and v.paired.p50_ms else None
                self.scatter.set_point(label, paired or r.latency.p50, float(y), r.size_bytes)
                self.scatter.set_paired(any(s.paired is not None for s in self.state.variants.values()))
        if metrics.get("confusion_matrix") is not None:
            self.matrices.set_matrix(label, np.asarray(metrics["confusion_matrix"]), is_baseline=v.is_baseline)
        if v.index > 0:
            self.flipped.set_flips(label, r.fidelity)
            self.flipped.set_sources(label, self.state.model, r.source_path, r.runtime)
        self._feed_layers(v, r)

    def _feed_layers(self, v: VariantState, r: VariantResult) -> None:
        if v.is_baseline and r.profile is not None:
            self.layers.set_float_profile(r.profile)  # the float model's time by op, beside each variant's
        elif r.layers:
            self.layers.set_layers(v.label, r.layers, r.profile, scheme=(r.scheme, dict(r.params)))

    # --- theme ---------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.table.set_theme(theme)
        for chart in (self.histogram, self.sizes, self.scatter, self.matrices, self.layers, self.flipped):
            chart.apply_theme(theme)


def study_title(model: dict, dataset: dict, env: dict) -> str:
    """One line naming what is compared, on what data, on which machine."""
    name = os.path.basename(str(model.get("path", ""))) or "model"
    parts = [f"{name} ({model.get('format', '?')}, {int(model.get('params') or 0):,} parameters)"]
    data = f"{dataset.get('spec', '?')}: {int(dataset.get('samples') or 0):,} samples, {dataset.get('task', '?')}"
    parts.append(data)
    if env:
        threads = env.get("threads")
        parts.append(f"{env.get('cpu', 'CPU')}, {threads} thread{'s' if threads != 1 else ''}")
        if env.get("placement"):  # a sweep's study: the host, node and target its figures came from
            from core.sweep.outcome import measured_where

            parts.append(measured_where(env))
    return "  ·  ".join(parts)


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    label = QLabel(title, box)
    label.setObjectName("chartTitle")
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 0)
    layout.setSpacing(2)
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box
