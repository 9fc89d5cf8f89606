"""One input's per-layer error, float against a variant, with the first layer where it departs marked.

Fed a record of ``core.layers.analyse_samples`` (``{"index", "layers": [{"name", "sqnr_db", ...}],
"departs_at"}``): the SQNR of each layer's output for that one sample in model order, the departure line
(``DEPARTS_BELOW_DB``) and a mark on the first layer under it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.layers.stats import DEPARTS_BELOW_DB, EXACT_SQNR_DB
from qtapp.charts.export import install_export_menu
from qtapp.charts.style import bold_font, set_axis_label, short_name, style_axes
from qtapp.window.theme import Theme

#: The SQNR axis ends here (layers reproduced exactly sit on the top edge), as in the Layers tab.
CHART_TOP_DB = 100.0
NAME_TICK_PX = 150


class _NameAxis(pg.AxisItem):
    """Layer names under the chart, as many as fit."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.names: list[str] = []

    def tickValues(self, minVal: float, maxVal: float, size: float):
        if not self.names:
            return []
        metrics = QFontMetricsF(self.style.get("tickFont") or self.font())
        widest = min(NAME_TICK_PX, max(metrics.horizontalAdvance(n) for n in self.names)) + 12
        step = max(1, math.ceil(widest * max(1e-9, (maxVal - minVal) / max(size, 1.0))))
        first = max(0, math.ceil(minVal))
        return [(step, list(range(first, min(len(self.names) - 1, int(maxVal)) + 1, step)))]

    def tickStrings(self, values, scale, spacing):
        metrics = QFontMetricsF(self.style.get("tickFont") or self.font())
        return [short_name(self.names[int(v)], metrics, NAME_TICK_PX) if 0 <= int(v) < len(self.names) else ""
                for v in values]


def departure_text(record: dict[str, Any], variant: str) -> str:
    """The sentence under the chart: where this sample's computation departs from the float model's."""
    where = record.get("departs_at")
    if where is None:
        return (f"Sample #{record['index']}: every layer of {variant} stays above {DEPARTS_BELOW_DB:g} dB; the small "
                "errors add up only at the end")
    layer = next(item for item in record["layers"] if item["name"] == where)
    return (f"Sample #{record['index']}: {variant} departs from the float model at {where} "
            f"({layer['sqnr_db']:.1f} dB, the first layer under {DEPARTS_BELOW_DB:g} dB)")


class SampleLayersChart(QWidget):
    """Per-layer SQNR of one sample in model order, the first departing layer marked."""

    def __init__(self, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        self._theme = theme
        self._record: dict[str, Any] | None = None
        self._variant = ""
        self._color = theme.accent
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self._axis = _NameAxis()
        self.view = pg.PlotWidget(enableMenu=False, axisItems={"bottom": self._axis})
        self.view.setMinimumHeight(220)
        install_export_menu(self.view, "sample-layers")
        plot = self.view.getPlotItem()
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        self.curve = pg.PlotDataItem()
        self.mark = pg.ScatterPlotItem()
        self.mark_label = pg.TextItem(anchor=(0.0, 1.2))
        self.mark_label.setFont(bold_font())
        self.line = pg.InfiniteLine(pos=DEPARTS_BELOW_DB, angle=0, movable=False)
        for item in (self.line, self.curve, self.mark, self.mark_label):
            plot.addItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view)
        self.apply_theme(theme)

    def show_record(self, record: dict[str, Any], variant: str, color: str | None = None) -> None:
        """Draw ``record`` (one sample's layers) of ``variant``."""
        self._record, self._variant = record, variant
        self._color = color or self._theme.accent
        self._draw()

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.view.setBackground(theme.plot_bg)
        plot = self.view.getPlotItem()
        style_axes(plot, theme)
        set_axis_label(plot, "left", "SQNR (dB)", theme)
        self.line.setPen(pg.mkPen(theme.bad, width=1.5, style=Qt.PenStyle.DashLine))
        self._draw()

    def _draw(self) -> None:
        record = self._record
        if record is None:
            return
        layers = record["layers"]
        self._axis.names = [layer["name"] for layer in layers]
        sqnr = np.array([np.nan if layer["sqnr_db"] is None else min(layer["sqnr_db"], CHART_TOP_DB)
                         for layer in layers], dtype=float)
        x = np.arange(len(layers), dtype=float)
        ok = np.isfinite(sqnr)
        self.curve.setData(x[ok], sqnr[ok], pen=pg.mkPen(self._color, width=3), symbol="o", symbolSize=8,
                           symbolBrush=self._color, symbolPen=pg.mkPen(self._color))
        where = record.get("departs_at")
        at = self._axis.names.index(where) if where in self._axis.names else None
        if at is not None:
            self.mark.setData([float(at)], [sqnr[at]], symbol="o", size=20, brush=None,
                              pen=pg.mkPen(self._theme.bad, width=3))
            self.mark_label.setText(f"departs: {where}", color=self._theme.bad)
            self.mark_label.setPos(float(at), float(sqnr[at]))
        else:
            self.mark.setData([], [])
            self.mark_label.setText("")
        self.mark_label.setVisible(at is not None)
        plot = self.view.getPlotItem()
        values = [v for v in sqnr if np.isfinite(v)]
        plot.setYRange(min([0.0, *values]) - 3, max([DEPARTS_BELOW_DB * 4, *values]) + 8, padding=0)
        plot.setXRange(-0.5, max(len(layers) - 0.5, 0.5), padding=0)
        self.caption.setText(departure_text(record, self._variant)
                             + (f" (layers reproduced exactly drawn at {CHART_TOP_DB:g} dB)"
                                if any((layer["sqnr_db"] or 0.0) >= EXACT_SQNR_DB for layer in layers) else ""))

    # --- reading (tests) ----------------------------------------------
    def drawn(self) -> tuple[list[str], np.ndarray, int | None]:
        """(layer names, drawn SQNR values, the marked layer's position or None)."""
        _, y = self.curve.getData()
        marked = self.mark.data["x"]
        return list(self._axis.names), np.asarray(y), (int(marked[0]) if len(marked) else None)
