"""Accuracy (or error) against median latency, one bubble per variant, sized by the file.

Up and to the left is better for accuracy; for regression the y-axis is the
mean squared error and down-left is better. The scatter item and the name
tags are made once per study and moved with ``setData``/``setPos``.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

from qtapp.charts.style import bold_font, set_axis_label, style_axes, with_alpha
from qtapp.palette import VariantPalette
from qtapp.theme import Theme

MIN_BUBBLE_PX = 14
MAX_BUBBLE_PX = 54


class TradeoffScatter(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent)
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._points: dict[str, tuple[float, float, int]] = {}  # label -> (latency ms, y, bytes)
        self._tags: dict[str, pg.TextItem] = {}
        self._y_name = "accuracy (%)"
        self._scatter = pg.ScatterPlotItem(pxMode=True)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.addItem(self._scatter)
        self.apply_theme(theme)

    def set_variants(self, labels: list[str], task: str = "classification") -> None:
        plot = self.getPlotItem()
        for tag in self._tags.values():
            plot.removeItem(tag)
        self._labels = list(labels)
        self._points = {}
        self._tags = {}
        self._y_name = "MSE (lower is better)" if task == "regression" else "accuracy (%)"
        for label in labels:
            tag = pg.TextItem(label, anchor=(0, 1.0), color=self._palette.hex(label))
            tag.setFont(bold_font())
            tag.setVisible(False)
            plot.addItem(tag)
            self._tags[label] = tag
        self.apply_theme(self._theme)
        self.redraw()

    def set_point(self, label: str, latency_ms: float, y: float, size_bytes: int) -> None:
        """y is accuracy as a fraction (shown in %) or, for regression, the MSE."""
        if label in self._tags:
            self._points[label] = (latency_ms, y * 100 if "accuracy" in self._y_name else y, size_bytes)

    def redraw(self) -> None:
        labels = [label for label in self._labels if label in self._points]
        biggest = max((self._points[label][2] for label in labels), default=1) or 1
        spots = []
        for label in labels:
            x, y, size = self._points[label]
            spots.append({
                "pos": (x, y),
                "size": _bubble_px(size, biggest),
                "brush": pg.mkBrush(with_alpha(self._palette.hex(label), 170)),
                "pen": pg.mkPen(self._palette.hex(label), width=2),
                "data": label,
            })
        self._scatter.setData(spots)
        for label, tag in self._tags.items():
            if label in self._points:
                x, y, _ = self._points[label]
                tag.setPos(x, y)
                tag.setVisible(True)
            else:
                tag.setVisible(False)
        self._fit(labels)

    def _fit(self, labels: list[str]) -> None:
        if not labels:
            return
        xs = [self._points[label][0] for label in labels]
        ys = [self._points[label][1] for label in labels]
        x_lo, x_hi = min(xs), max(xs)
        y_lo, y_hi = min(ys), max(ys)
        x_pad = max((x_hi - x_lo) * 0.25, x_hi * 0.1, 1e-3)
        y_pad = max((y_hi - y_lo) * 0.3, abs(y_hi) * 0.01, 0.5 if "accuracy" in self._y_name else 1e-6)
        # Extra room on the right and top for the name tags.
        self.getPlotItem().setXRange(max(0.0, x_lo - x_pad), x_hi + 2 * x_pad, padding=0)
        self.getPlotItem().setYRange(y_lo - y_pad, y_hi + 1.5 * y_pad, padding=0)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        set_axis_label(plot, "bottom", "median latency (ms)", theme)
        set_axis_label(plot, "left", self._y_name, theme)
        style_axes(plot, theme)

    # --- reading -------------------------------------------------------
    def points(self) -> dict[str, tuple[float, float, float]]:
        """label -> (x, y, bubble px) as drawn."""
        out = {}
        for spot in self._scatter.points():
            out[spot.data()] = (float(spot.pos().x()), float(spot.pos().y()), float(spot.size()))
        return out


def _bubble_px(size: int, biggest: int) -> float:
    # Area, not diameter, follows the file size.
    return MIN_BUBBLE_PX + (MAX_BUBBLE_PX - MIN_BUBBLE_PX) * math.sqrt(max(size, 0) / biggest)
