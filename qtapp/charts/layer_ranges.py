"""One layer's float value histograms, activation and weight, with the variant's quantization range over them.

Fed the ``ranges`` record of a layer (core.layers: streamed histograms with equal bins, the representable
range of the variant's scale and zero point, the share of float values outside it). Counts are drawn on a
log scale: a ReLU's spike at zero would otherwise flatten the tails where clipping happens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from core.reports.format import MISSING
from qtapp.charts.export import install_export_menu
from qtapp.charts.style import set_axis_label, style_axes, with_alpha
from qtapp.window.theme import Theme

KINDS = ("activation", "weight")
TITLES = {"activation": "Activation (float output)", "weight": "Weight (float)"}
NO_RANGE = {"activation": "not measured for this layer", "weight": "this layer has no quantized weight"}


def edges_of(record: dict[str, Any]) -> np.ndarray:
    """The bin edges of a ``ranges`` histogram record (equal bins from ``low`` to ``high``)."""
    return np.linspace(record["low"], record["high"], len(record["counts"]) + 1)


def range_caption(record: dict[str, Any] | None, kind: str) -> str:
    """One line under a histogram: the quantization range and the share of float values it clips."""
    if record is None:
        return NO_RANGE[kind]
    quant = record.get("quant_range")
    if quant is None:
        return "quantization range not known for this tensor (float in the variant, or per-channel activations)"
    which = "widest channel's range" if record.get("per_channel") else "quantization range"
    clipped = record.get("clipped_fraction")
    share = MISSING if clipped is None else f"{100.0 * clipped:.2f} %"
    return f"{which} [{quant[0]:.4g}, {quant[1]:.4g}] · clipped {share} of values"


class _RangePlot:
    """One histogram plot: the step curve, the shaded quantization range and its two edges."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        self.curve = plot.plot([0.0, 1.0], [0.0], stepMode="center", fillLevel=0)
        self.region = pg.LinearRegionItem(values=(0.0, 1.0), movable=False)
        self.region.setZValue(-10)
        self.edges = (pg.InfiniteLine(angle=90, movable=False), pg.InfiniteLine(angle=90, movable=False))
        plot.addItem(self.region)
        for line in self.edges:
            plot.addItem(line)

    def show(self, record: dict[str, Any] | None, theme: Theme, color: str) -> None:
        if record is None:
            self.curve.setData([0.0, 1.0], [0.0])
            self._show_range(None)
            return
        edges = edges_of(record)
        heights = np.log10(1.0 + np.asarray(record["counts"], dtype=float))
        self.curve.setData(edges, heights, stepMode="center", fillLevel=0, pen=pg.mkPen(color, width=2),
                           brush=with_alpha(color, 90))
        quant = record.get("quant_range")
        self._show_range(quant)
        low, high = float(edges[0]), float(edges[-1])
        if quant is not None:  # both the values and the range in view, whichever is wider
            low, high = min(low, quant[0]), max(high, quant[1])
        pad = 0.04 * (high - low or 1.0)
        self.plot.setXRange(low - pad, high + pad, padding=0)
        self.plot.setYRange(0.0, max(1.0, float(heights.max())) * 1.1, padding=0)
        self.region.setBrush(with_alpha(theme.good, 40))
        for line in self.edges:
            line.setPen(pg.mkPen(theme.bad, width=2, style=Qt.PenStyle.DashLine))

    def _show_range(self, quant: list[float] | None) -> None:
        visible = quant is not None and all(math.isfinite(v) for v in quant)
        self.region.setVisible(visible)
        for line in self.edges:
            line.setVisible(visible)
        if visible:
            self.region.setRegion((quant[0], quant[1]))
            self.edges[0].setValue(quant[0])
            self.edges[1].setValue(quant[1])


class LayerRangesChart(QWidget):
    """A layer's activation and weight histograms side by side, the variant's quantization range shaded."""

    def __init__(self, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        self._theme = theme
        self._records: dict[str, dict[str, Any] | None] = {kind: None for kind in KINDS}
        self._color = theme.accent
        self.title = QLabel()
        self.title.setObjectName("chartTitle")
        self.title.setWordWrap(True)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.title, 0, 0, 1, 2)
        grid.addWidget(self.legend, 1, 0, 1, 2)
        self.views: dict[str, pg.PlotWidget] = {}
        self._plots: dict[str, _RangePlot] = {}
        self.captions: dict[str, QLabel] = {}
        for column, kind in enumerate(KINDS):
            view = pg.PlotWidget(enableMenu=False)
            view.setMinimumHeight(220)
            install_export_menu(view, f"layer-{kind}-range")
            view.getPlotItem().setTitle(TITLES[kind])
            view.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
            self.views[kind] = view
            self._plots[kind] = _RangePlot(view.getPlotItem())
            caption = QLabel()
            caption.setWordWrap(True)
            caption.setObjectName("mutedLabel")
            self.captions[kind] = caption
            grid.addWidget(view, 2, column)
            grid.addWidget(caption, 3, column)
        self.apply_theme(theme)

    def show_layer(self, variant: str, layer: dict[str, Any], color: str) -> None:
        """Draw ``layer``'s ``ranges`` record (a layer of variant ``variant``, drawn in ``color``)."""
        ranges = layer.get("ranges") or {}
        self._color = color
        self._records = {kind: ranges.get(kind) for kind in KINDS}
        self.title.setText(f"Ranges of {layer['name']} ({layer.get('op_type', '')}) in {variant}: float values, "
                           "count on a log scale")
        self._draw()

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        for view in self.views.values():
            view.setBackground(theme.plot_bg)
            plot = view.getPlotItem()
            style_axes(plot, theme)
            set_axis_label(plot, "bottom", "float value", theme)
            set_axis_label(plot, "left", "log₁₀(1 + count)", theme)
            plot.titleLabel.setText(plot.titleLabel.text, color=theme.plot_fg)
        self.legend.setText(f"<span style='color:{theme.good}'>▮</span> what the variant's integers can represent"
                            f" &nbsp; <span style='color:{theme.bad}'>- -</span> its limits: float values beyond "
                            "them are clipped")
        self._draw()

    def _draw(self) -> None:
        for kind in KINDS:
            self._plots[kind].show(self._records[kind], self._theme, self._color)
            self.captions[kind].setText(range_caption(self._records[kind], kind))

    # --- reading (tests) ----------------------------------------------
    def drawn(self, kind: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None]:
        """(edges, log counts, the shaded range or None) of ``kind``'s plot."""
        plot = self._plots[kind]
        x, y = plot.curve.getData()
        region = tuple(float(v) for v in plot.region.getRegion()) if plot.region.isVisible() else None
        return np.asarray(x), np.asarray(y), region
