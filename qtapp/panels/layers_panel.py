"""The Layers view of one study: where each variant loses accuracy and where it spends its time.

Fed plain dicts (the ``layers`` and ``profile`` records of core.layers), it draws the per-layer SQNR in
model order (a line per variant, the worst channel as a second mark), a sortable table of one variant's
layers, and time by op type, float against that variant. It calls no engine.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.layers import EXCLUDABLE_SCHEMES, keep_in_float
from core.layers.profile import CONVERSION_OPS, float_profile_for, layer_shares, layer_times
from core.layers.stats import DEPARTS_BELOW_DB, EXACT_SQNR_DB
from core.reports.chart_data import merged_layer_names
from core.reports.format import MISSING, format_ms
from qtapp.charts.export import install_export_menu
from qtapp.charts.layer_ranges import LayerRangesChart
from qtapp.charts.palette import BASELINE_COLOR, VariantPalette
from qtapp.charts.style import set_axis_label, short_name, style_axes, tick_font, with_alpha
from qtapp.panels.scroll_page import fill_with_scrolling
from qtapp.window.theme import Theme

COLUMNS = ("Layer", "Op type", "SQNR dB", "Worst ch. dB", "Outlier ch.", "Weight dB", "Float ms", "Variant ms",
           "Share")
COLUMN_TIPS = (
    "The layer (node or module) in model order; its output tensor in the tooltip",
    "Op type; a + joins an activation the quantizer folded into the layer",
    "Activation SQNR against the float model's tensor, whole tensor (higher is better; 'exact': identical)",
    "SQNR of the tensor's worst channel: a whole-tensor figure hides a channel the quantization destroyed",
    "Channels whose float range exceeds ten times the median channel's",
    "SQNR of the dequantized weight against the float weight",
    "Float model: ms per call in this layer (profiler run, not the timed runs)",
    "This variant: ms per call in this layer",
    "This layer's share of the variant's profiled time",
)
NO_LAYERS = "No layer analysis yet: it runs after a variant's evaluation when the study asks for it."
NAME_TICK_PX = 150  # the most a layer name takes under the chart
BAR_HEIGHT = 0.38
#: The SQNR axis ends here: layers the variant reproduces exactly (EXACT_SQNR_DB) sit on the chart's top edge.
CHART_TOP_DB = 100.0
CONVERSION_MARK = " ⇄"
LAYER_COLUMN_MAX_PX = 240
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def format_db(value: float | None) -> str:
    """An SQNR cell: one decimal, "exact" where the variant reproduced the float tensor."""
    if value is None or not math.isfinite(value):
        return MISSING
    return "exact" if value >= EXACT_SQNR_DB else f"{value:.1f}"


def format_share(share: float | None) -> str:
    return MISSING if share is None else f"{100.0 * share:.1f} %"


class _SortItem(QTableWidgetItem):
    """A cell that sorts by its number (missing values last), not by its text."""

    def __init__(self, text: str, key: float | str | None) -> None:
        super().__init__(text)
        self.setData(_SORT_ROLE, key)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(_SORT_ROLE), other.data(_SORT_ROLE)
        if a is None or b is None:
            return b is None and a is not None
        if isinstance(a, str) or isinstance(b, str):
            return str(a) < str(b)
        return a < b


class _LayerAxis(pg.AxisItem):
    """Layer names under the SQNR chart, as many as fit without touching."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.names: list[str] = []

    def tickValues(self, minVal: float, maxVal: float, size: float):
        if not self.names:
            return []
        font = self.style.get("tickFont") or self.font()
        widest = min(NAME_TICK_PX, max(QFontMetricsF(font).horizontalAdvance(n) for n in self.names)) + 12
        per_px = max(1e-9, (maxVal - minVal) / max(size, 1.0))
        step = max(1, math.ceil(widest * per_px))
        first = max(0, math.ceil(minVal))
        return [(step, list(range(first, min(len(self.names) - 1, int(maxVal)) + 1, step)))]

    def tickStrings(self, values, scale, spacing):
        metrics = QFontMetricsF(self.style.get("tickFont") or self.font())
        return [short_name(self.names[int(v)], metrics, NAME_TICK_PX) if 0 <= int(v) < len(self.names) else ""
                for v in values]


class _OpAxis(pg.AxisItem):
    """Op-type names beside the time bars."""

    def __init__(self) -> None:
        super().__init__("left")
        self.names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        self.names = names
        metrics = QFontMetricsF(self.style.get("tickFont") or tick_font())
        self.setWidth(int(max([40.0, *(metrics.horizontalAdvance(n) for n in names)]) + 18))
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float):
        return [(1, list(range(len(self.names))))]

    def tickStrings(self, values, scale, spacing):
        return [self.names[int(v)] if 0 <= int(v) < len(self.names) else "" for v in values]


class LayersPanel(QWidget):
    """Per-layer SQNR chart, layer table and op-type time bars for the variants of one study."""

    #: "Keep in float and re-run": the scheme (a core SchemeSpec) of the chosen variant with the layer excluded.
    keep_in_float_requested = Signal(object)

    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        #: label -> (scheme id, params) of each variant, for "Keep in float and re-run".
        self._schemes: dict[str, tuple[str, dict[str, str]]] = {}
        self._palette = palette
        self._theme = theme
        self._variants: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {}
        self._float_profile: dict[str, Any] | None = None
        self._curves: dict[str, tuple[pg.PlotDataItem, pg.ScatterPlotItem]] = {}

        self.title = QLabel("Error per layer: activation SQNR in model order (higher is better)")
        self.title.setObjectName("chartTitle")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.empty = QLabel(NO_LAYERS)
        self.empty.setObjectName("mutedLabel")
        self.empty.setWordWrap(True)
        self._axis = _LayerAxis()
        self.chart = pg.PlotWidget(enableMenu=False, axisItems={"bottom": self._axis})
        install_export_menu(self.chart, "layers-sqnr")
        self.chart.setMinimumHeight(280)
        plot = self.chart.getPlotItem()
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        self._departs = pg.InfiniteLine(pos=DEPARTS_BELOW_DB, angle=0, movable=False)
        plot.addItem(self._departs)

        self.variant_choice = QComboBox()
        self.variant_choice.currentTextChanged.connect(self._show_variant)
        self.table_title = QLabel("Layers of")
        self.table_title.setObjectName("chartTitle")
        choice_row = QHBoxLayout()
        choice_row.addWidget(self.table_title)
        choice_row.addWidget(self.variant_choice)
        choice_row.addStretch(1)
        self.keep_float_button = QPushButton("Keep in float and re-run")
        self.keep_float_button.setToolTip("Add a variant of this scheme with the selected layer left in float "
                                          "(exclude=) and run the study again")
        self.keep_float_button.setEnabled(False)
        self.keep_float_button.clicked.connect(lambda: self.request_keep_in_float())
        choice_row.addWidget(self.keep_float_button)
        self.table = _table(list(COLUMNS))
        self.table.cellClicked.connect(self._row_clicked)
        self.table.itemSelectionChanged.connect(self._update_keep_float)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.ranges_hint = QLabel("Click a layer for its value histograms with the variant's quantization range.")
        self.ranges_hint.setObjectName("mutedLabel")
        self.ranges = LayerRangesChart(theme)
        self.ranges.setVisible(False)
        self._ranges_layer: str | None = None  # the layer whose ranges are open, kept across variants

        self.bars_title = QLabel("Time by op type, ms per call (profiler runs, not the timed ones)")
        self.bars_title.setObjectName("chartTitle")
        self.bars_legend = QLabel()
        self.bars_legend.setTextFormat(Qt.TextFormat.RichText)
        self._op_axis = _OpAxis()
        self.bars = pg.PlotWidget(enableMenu=False, axisItems={"left": self._op_axis})
        self.bars.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        install_export_menu(self.bars, "layers-op-time")
        bars_plot = self.bars.getPlotItem()
        bars_plot.hideButtons()
        bars_plot.setMouseEnabled(x=False, y=False)
        bars_plot.getViewBox().invertY(True)
        self._float_bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        self._variant_bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        bars_plot.addItem(self._float_bars)
        bars_plot.addItem(self._variant_bars)

        page = QWidget()
        layout = QVBoxLayout(page)
        for widget in (self.title, self.empty, self.legend, self.chart):
            layout.addWidget(widget)
        layout.addLayout(choice_row)
        for widget in (self.table, self.ranges_hint, self.ranges, self.bars_title, self.bars_legend, self.bars):
            layout.addWidget(widget)
        layout.addStretch(1)
        fill_with_scrolling(self, page)
        self.apply_theme(theme)
        self._refresh_visibility()

    # --- feeding -------------------------------------------------------
    def clear(self) -> None:
        """Forget every variant (a new study)."""
        plot = self.chart.getPlotItem()
        for curve, marks in self._curves.values():
            plot.removeItem(curve)
            plot.removeItem(marks)
        self._curves = {}
        self._variants = {}
        self._float_profile = None
        self.variant_choice.clear()
        self._schemes = {}
        self._ranges_layer = None
        self._axis.names = []
        self._fill_table(None)
        self._draw_bars(None)
        self._refresh_visibility()

    def _float_for(self, profile: dict[str, Any] | None) -> dict[str, Any] | None:
        """The float model's profile beside a variant's: the one made in the variant's own runtime (its
        ``float`` entry: an ONNX Runtime variant of a PyTorch model is compared with the ONNX export), else
        the study's baseline's."""
        return float_profile_for(profile, self._float_profile)

    def show_variant(self, label: str) -> None:
        """Show ``label``'s layers when it has any (the baseline and unanalysed variants leave the choice as is)."""
        index = self.variant_choice.findText(label)
        if index >= 0:
            self.variant_choice.setCurrentIndex(index)

    def set_float_profile(self, profile: dict[str, Any] | None) -> None:
        """The float model's profile (made once per study): the "Float ms" column and the float bars."""
        self._float_profile = profile
        self._show_variant(self.variant_choice.currentText())

    def set_layers(self, label: str, layers: list[dict[str, Any]], profile: dict[str, Any] | None,
                   scheme: tuple[str, dict[str, str]] | None = None) -> None:
        """Show (or replace) variant ``label``'s layer records and profile; ``scheme`` (its id and parameters)
        lets a layer be kept in float and the study re-run."""
        self._variants[label] = (list(layers), profile)
        if scheme is not None:
            self._schemes[label] = (scheme[0], dict(scheme[1]))
        self._draw_curves([label])
        if self.variant_choice.findText(label) < 0:
            self.variant_choice.addItem(label)
        if self.variant_choice.currentText() == label:
            self._show_variant(label)
        self._refresh_visibility()

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        for view in (self.chart, self.bars):
            view.setBackground(theme.plot_bg)
            style_axes(view.getPlotItem(), theme)
        set_axis_label(self.chart.getPlotItem(), "left", "SQNR (dB)", theme)
        set_axis_label(self.bars.getPlotItem(), "bottom", "ms per call", theme)
        self.bars.getPlotItem().showGrid(x=True, y=False, alpha=theme.grid_alpha)
        self._departs.setPen(pg.mkPen(theme.bad, width=1.5, style=Qt.PenStyle.DashLine))
        if self._variants:
            self._draw_curves(list(self._variants))
        self.ranges.apply_theme(theme)
        self._show_variant(self.variant_choice.currentText())

    # --- drawing -------------------------------------------------------
    def _shown(self) -> list[str]:
        """The variants drawn: those whose layers share names with the one chosen below the chart (an ONNX
        Runtime variant's nodes and a PyTorch variant's modules are not one axis), all when none is chosen."""
        current = self.variant_choice.currentText()
        if current not in self._variants:
            return list(self._variants)
        mine = {layer["name"] for layer in self._variants[current][0]}
        return [label for label, (layers, _) in self._variants.items()
                if label == current or mine & {layer["name"] for layer in layers}]

    def _draw_curves(self, labels: list[str]) -> None:
        """Draw ``labels``' curves, or every shown curve when the layer axis changed (a variant brought new
        layers, or another variant was chosen); the variants not shown are hidden."""
        shown = self._shown()
        names = merged_layer_names([self._variants[label][0] for label in shown])
        if names != self._axis.names:
            self._axis.names = names
            labels = shown
        position = {name: i for i, name in enumerate(names)}
        for label in labels:
            if label in shown:
                self._draw_curve(label, position)
        for label, items in self._curves.items():
            for item in items:
                item.setVisible(label in shown)
        self._fit_y()
        self.chart.getPlotItem().setXRange(-0.5, max(len(names) - 0.5, 0.5), padding=0)
        others = len(self._variants) - len(shown)
        self.legend.setText(_legend_html([(name, self._palette.hex(name), "━●") for name in shown])
                            + f" &nbsp; ▽ its worst channel &nbsp; <span style='color:{self._theme.bad}'>- - -</span>"
                            f" {DEPARTS_BELOW_DB:g} dB: the output departs from the float model"
                            + (f" &nbsp; exact copies drawn at {CHART_TOP_DB:g}" if self._has_exact() else "")
                            + (f" &nbsp; ({others} more in another runtime: choose one below)" if others else ""))

    def _has_exact(self) -> bool:
        return any((layer["activation"].get("sqnr_db") or 0.0) >= CHART_TOP_DB
                   for layers, _ in self._variants.values() for layer in layers)

    def _draw_curve(self, label: str, position: dict[str, int]) -> None:
        layers, _ = self._variants[label]
        x = np.array([position[layer["name"]] for layer in layers], dtype=float)
        sqnr = np.array([_number(layer["activation"].get("sqnr_db")) for layer in layers], dtype=float)
        worst = np.array([_number(layer["activation"].get("min_channel_sqnr_db")) for layer in layers], dtype=float)
        color = self._palette.color(label)
        if label not in self._curves:
            self._curves[label] = (pg.PlotDataItem(), pg.ScatterPlotItem())
            for item in self._curves[label]:
                self.chart.getPlotItem().addItem(item)
        curve, marks = self._curves[label]
        ok = np.isfinite(sqnr)
        curve.setData(x[ok], np.minimum(sqnr[ok], CHART_TOP_DB), pen=pg.mkPen(color, width=3), symbol="o",
                      symbolSize=8, symbolBrush=color, symbolPen=pg.mkPen(color))
        ok = np.isfinite(worst)
        marks.setData(x[ok], np.minimum(worst[ok], CHART_TOP_DB), symbol="t", size=11,
                      brush=with_alpha(color.name(), 110), pen=pg.mkPen(color, width=1.5))

    def _fit_y(self) -> None:
        """From just under the lowest mark of any variant to just over the highest (at most CHART_TOP_DB)."""
        values = [min(CHART_TOP_DB, v) for layers, _ in self._variants.values() for layer in layers
                  for v in (layer["activation"].get("sqnr_db"), layer["activation"].get("min_channel_sqnr_db"))
                  if v is not None and math.isfinite(v)]
        top = max([DEPARTS_BELOW_DB * 4, *values])
        bottom = min([0.0, *values])
        self.chart.getPlotItem().setYRange(bottom - 3, top + 8, padding=0)

    def _show_variant(self, label: str) -> None:
        entry = self._variants.get(label)
        if self._variants:
            self._draw_curves([])  # the chart follows the chosen variant's runtime
        self.table_title.setText("Layers of" if entry else "Layers")
        self._fill_table(entry)
        self._draw_bars(label if entry else None)
        self._draw_ranges()
        self._update_keep_float()

    def _fill_table(self, entry: tuple[list[dict[str, Any]], dict[str, Any] | None] | None) -> None:
        layers, profile = entry if entry else ([], None)
        float_ms = layer_times(layers, self._float_for(profile))
        variant_ms = layer_times(layers, profile)
        shares = layer_shares(layers, profile)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(layers))
        for row, layer in enumerate(layers):
            act = layer["activation"]
            weight = layer.get("weight") or {}
            name = layer["name"]
            f_ms, v_ms = float_ms[row], variant_ms[row]
            outliers = act.get("outlier_channels") or []
            cells = [
                (name, row), (layer["op_type"], layer["op_type"]),
                (format_db(act.get("sqnr_db")), act.get("sqnr_db")),
                (format_db(act.get("min_channel_sqnr_db")), act.get("min_channel_sqnr_db")),
                (", ".join(str(c) for c in outliers[:8]) + (" …" if len(outliers) > 8 else ""), len(outliers)),
                (format_db(weight.get("sqnr_db")), weight.get("sqnr_db")),
                (format_ms(f_ms), f_ms), (format_ms(v_ms), v_ms),
                (format_share(shares[row]), shares[row]),
            ]
            for col, (text, key) in enumerate(cells):
                item = _SortItem(text, key)
                if col > 1:
                    item.setTextAlignment(_RIGHT)
                if col in (2, 3) and key is not None and key < DEPARTS_BELOW_DB:
                    item.setForeground(QColor(self._theme.bad))
                if col == 0:
                    item.setToolTip(f"{name}\ntensor {layer.get('tensor', '')}")
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), LAYER_COLUMN_MAX_PX))  # long names: elided
        # Wider than the tab, the table scrolls sideways on its own: a page as wide as the table (1,237 px in
        # the demo) carried the charts past the tab's edge, their axes and legends out of sight.
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(min(len(layers), 14)))
        height += self.table.horizontalScrollBar().sizeHint().height()
        self.table.setFixedHeight(height + 2)

    def _draw_bars(self, label: str | None) -> None:
        profile = self._variants[label][1] if label in self._variants else None
        f_ops = (self._float_for(profile) or {}).get("by_op_type", {})
        v_ops = (profile or {}).get("by_op_type", {})
        ops = list(dict.fromkeys([*v_ops, *f_ops]))
        self._op_axis.set_names([op + (CONVERSION_MARK if op in CONVERSION_OPS else "") for op in ops])
        y = np.arange(len(ops), dtype=float)
        f_ms = [f_ops.get(op, {}).get("ms", 0.0) for op in ops]
        v_ms = [v_ops.get(op, {}).get("ms", 0.0) for op in ops]
        self._float_bars.setOpts(x0=np.zeros(len(ops)), y=y - BAR_HEIGHT / 2, width=f_ms, height=BAR_HEIGHT,
                                 brush=with_alpha(BASELINE_COLOR, 220), pen=pg.mkPen(None))
        color = self._palette.hex(label) if label else self._theme.accent
        self._variant_bars.setOpts(x0=np.zeros(len(ops)), y=y + BAR_HEIGHT / 2, width=v_ms, height=BAR_HEIGHT,
                                   brush=with_alpha(color, 230), pen=pg.mkPen(None))
        self.bars_legend.setText(_legend_html([("float", BASELINE_COLOR, "■"), (label or "variant", color, "■")])
                                 + f" &nbsp; {CONVERSION_MARK.strip()} marks a conversion")
        plot = self.bars.getPlotItem()
        plot.setYRange(-0.6, max(len(ops) - 0.4, 0.6), padding=0)
        plot.setXRange(0, max([*f_ms, *v_ms, 1e-6]) * 1.08, padding=0)
        rows_px = QFontMetricsF(tick_font()).height() * 2.2
        self.bars.setFixedHeight(int(max(160, 70 + rows_px * len(ops))))

    # --- one layer's ranges ----------------------------------------------
    def _row_clicked(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.show_ranges(item.text())

    def show_ranges(self, layer_name: str) -> None:
        """Open ``layer_name``'s histograms (of the chosen variant) with its quantization range."""
        self._ranges_layer = layer_name
        self._draw_ranges()

    # --- keep a layer in float -------------------------------------------
    def selected_layer(self) -> str | None:
        """The layer of the table's selected row, or None."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        item = self.table.item(min(rows), 0) if rows else None
        return item.text() if item is not None else None

    def keep_in_float_scheme(self, layer: str | None = None) -> Any:
        """The chosen variant's scheme with ``layer`` (default: the selected one) excluded, or None when its scheme
        cannot leave a layer in float."""
        layer = layer or self.selected_layer()
        scheme = self._schemes.get(self.variant_choice.currentText())
        if layer is None or scheme is None or scheme[0] not in EXCLUDABLE_SCHEMES:
            return None
        try:
            return keep_in_float(scheme[0], scheme[1], layer)
        except ValueError:
            return None

    def request_keep_in_float(self, layer: str | None = None) -> None:
        """Ask for the chosen variant with ``layer`` (default: the selected one) in float (keep_in_float_requested)."""
        scheme = self.keep_in_float_scheme(layer)
        if scheme is not None:
            self.keep_in_float_requested.emit(scheme)

    def _update_keep_float(self) -> None:
        scheme = self._schemes.get(self.variant_choice.currentText())
        self.keep_float_button.setEnabled(self.keep_in_float_scheme() is not None)
        if scheme is not None and scheme[0] not in EXCLUDABLE_SCHEMES:
            self.keep_float_button.setToolTip(f"{scheme[0]} cannot leave one layer in float (only "
                                              f"{', '.join(EXCLUDABLE_SCHEMES)} can)")

    def _table_menu(self, pos) -> None:
        item = self.table.itemAt(pos)
        if item is None:
            return
        layer = self.table.item(item.row(), 0).text()
        menu = QMenu(self)
        action = menu.addAction(f"Keep {layer} in float and re-run")
        action.setEnabled(self.keep_in_float_scheme(layer) is not None)
        action.triggered.connect(lambda: self.request_keep_in_float(layer))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _draw_ranges(self) -> None:
        label = self.variant_choice.currentText()
        layers = self._variants.get(label, ([], None))[0]
        layer = next((entry for entry in layers if entry["name"] == self._ranges_layer), None)
        self.ranges.setVisible(layer is not None)
        if layer is not None:
            self.ranges.show_layer(label, layer, self._palette.hex(label))

    def _refresh_visibility(self) -> None:
        has = bool(self._variants)
        self.empty.setVisible(not has)
        for widget in (self.legend, self.chart, self.table, self.table_title, self.variant_choice, self.bars_title,
                       self.bars_legend, self.bars, self.ranges_hint, self.keep_float_button):
            widget.setVisible(has)
        if not has:
            self.ranges.setVisible(False)

    # --- reading (tests) ----------------------------------------------
    def labels(self) -> list[str]:
        return list(self._variants)

    def layer_axis(self) -> list[str]:
        """The layer names under the chart, in model order (every variant's layers)."""
        return list(self._axis.names)

    def table_rows(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def curve_data(self, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        curve, marks = self._curves[label]
        x, y = curve.getData()
        return x, y, marks.data["y"]

    def bar_widths(self) -> tuple[list[str], list[float], list[float]]:
        return (list(self._op_axis.names), [float(w) for w in self._float_bars.opts["width"]],
                [float(w) for w in self._variant_bars.opts["width"]])


def _legend_html(entries: list[tuple[str, str, str]]) -> str:
    return " &nbsp; ".join(f"<span style='color:{color}'>{mark}</span> {escape(name)}" for name, color, mark in entries)


def _number(value: float | None) -> float:
    return float(value) if value is not None else float("nan")


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    for column, tip in enumerate(COLUMN_TIPS):
        table.horizontalHeaderItem(column).setToolTip(tip)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    header = table.horizontalHeader()
    header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # the Layer column sorts in model order
    table.setSortingEnabled(True)
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table
