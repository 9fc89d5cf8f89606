"""Accuracy (or error) against median latency, one bubble per variant, sized by the file.

Up and to the left is better for accuracy; for regression the y-axis is the
mean squared error and down-left is better. The scatter item and the name
tags are made once per study and moved with ``setData``/``setPos``.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF

from qtapp.charts.style import TICK_POINT_SIZE, bold_font, set_axis_label, style_axes, with_alpha
from qtapp.palette import VariantPalette
from qtapp.theme import Theme

MIN_BUBBLE_PX = 12
MAX_BUBBLE_PX = 42


class TradeoffScatter(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False)
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._points: dict[str, tuple[float, float, int]] = {}  # label -> (latency ms, y, bytes)
        self._tags: dict[str, pg.TextItem] = {}
        self._bubbles: dict[str, float] = {}
        self._y_name = "accuracy (%)"
        self._scatter = pg.ScatterPlotItem(pxMode=True)
        plot = self.getPlotItem()
        plot.hideButtons()
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.addItem(self._scatter)
        plot.disableAutoRange()
        plot.getViewBox().sigRangeChanged.connect(self._place_tags)
        plot.getViewBox().sigResized.connect(self._place_tags)
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
            tag = pg.TextItem(label, anchor=(0, 0.5), color=self._palette.hex(label))
            tag.setFont(bold_font(TICK_POINT_SIZE))
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
        self._bubbles = {label: spot["size"] for label, spot in zip(labels, spots)}
        self._fit(labels)
        self._place_tags()

    def _place_tags(self, *_args) -> None:
        """Put each name tag beside its bubble where it covers no other tag or bubble.

        Candidates are right, left, above and below the bubble, in that order;
        positions depend on the zoom, so this runs again whenever the view changes.
        """
        vb = self.getPlotItem().getViewBox()
        px_w, px_h = vb.viewPixelSize()
        if not px_w or not px_h:
            return
        bubbles = []
        for label, (x, y, _) in self._points.items():
            r = self._bubbles.get(label, MIN_BUBBLE_PX) / 2
            centre = vb.mapViewToScene(pg.Point(x, y))
            bubbles.append((label, QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r)))
        view = vb.mapRectToScene(vb.boundingRect())
        taken: list[QRectF] = []
        for label, tag in self._tags.items():
            if label not in self._points:
                tag.setVisible(False)
                continue
            x, y, _ = self._points[label]
            r = self._bubbles.get(label, MIN_BUBBLE_PX) / 2 + 4
            others = [rect for name, rect in bubbles if name != label]
            choice = None
            for anchor, dx, dy in (((0, 0.5), r, 0), ((1, 0.5), -r, 0), ((0.5, 1), 0, -r), ((0.5, 0), 0, r)):
                tag.setAnchor(anchor)
                tag.setPos(x + dx * px_w, y - dy * abs(px_h))
                tag.setVisible(True)
                box = tag.mapRectToScene(tag.boundingRect())
                if view.contains(box) and not any(box.intersects(o) for o in taken + others):
                    choice = box
                    break
            if choice is None:  # crowded everywhere: the side of the plot with more room
                right = x < sum(vb.viewRange()[0]) / 2
                tag.setAnchor((0, 0.5) if right else (1, 0.5))
                tag.setPos(x + (r if right else -r) * px_w, y)
                choice = tag.mapRectToScene(tag.boundingRect())
            taken.append(choice)

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
