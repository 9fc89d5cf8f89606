"""Accuracy (or error) against median latency, one bubble per variant, sized by the file.

Up and to the left is better for accuracy; for regression the y-axis is the
mean squared error and down-left is better. Latency is on a log axis (variants
often differ tenfold). The scatter item, the name tags and their leader lines
are made once per study and moved with ``setData``/``setPos``.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF

from core.reports.format import format_bytes, format_ms, format_percent
from qtapp.charts.export import install_export_menu
from qtapp.charts.log_axis import LogMsAxis
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import bold_font, set_axis_label, style_axes, with_alpha
from qtapp.window.theme import Theme

TAG_POINT_SIZE = 10
MIN_BUBBLE_PX = 12
MAX_BUBBLE_PX = 40
#: How far (in tag heights) a tag may be moved up or down to find a free spot.
MAX_TAG_SHIFT = 6


class TradeoffScatter(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False, axisItems={"bottom": LogMsAxis("bottom")})
        install_export_menu(self, "accuracy-vs-latency")
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._points: dict[str, tuple[float, float, int]] = {}  # label -> (latency ms, y, bytes)
        self._tags: dict[str, pg.TextItem] = {}
        self._leaders: dict[str, pg.PlotCurveItem] = {}
        self._bubbles: dict[str, float] = {}
        self._y_name = "accuracy (%)"
        self._scatter = pg.ScatterPlotItem(pxMode=True, hoverable=True, tip=self._tip)
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.addItem(self._scatter)
        plot.disableAutoRange()
        plot.getViewBox().sigRangeChanged.connect(self._place_tags)
        plot.getViewBox().sigResized.connect(self._place_tags)
        self.apply_theme(theme)

    def _tip(self, x: float, y: float, data: object) -> str:
        ms, value, size = self._points.get(str(data), (10**x, y, 0))
        what = f"accuracy {format_percent(value / 100)}" if self._accuracy else f"MSE {value:.4g}"
        return f"{data}\np50 {format_ms(ms)} ms · {what} · {format_bytes(size)}"

    @property
    def _accuracy(self) -> bool:
        return "accuracy" in self._y_name

    def set_variants(self, labels: list[str], task: str = "classification") -> None:
        plot = self.getPlotItem()
        for item in [*self._tags.values(), *self._leaders.values()]:
            plot.removeItem(item)
        self._labels = list(labels)
        self._points, self._tags, self._leaders = {}, {}, {}
        self._y_name = "MSE (lower is better)" if task == "regression" else "accuracy (%)"
        for label in labels:
            color = self._palette.hex(label)
            leader = pg.PlotCurveItem(pen=pg.mkPen(color, width=1))
            leader.setVisible(False)
            plot.addItem(leader)
            tag = pg.TextItem(label, anchor=(0, 0.5), color=color)
            tag.setFont(bold_font(TAG_POINT_SIZE))
            tag.setVisible(False)
            plot.addItem(tag)
            self._tags[label], self._leaders[label] = tag, leader
        self.apply_theme(self._theme)
        self.redraw()

    def set_point(self, label: str, latency_ms: float, y: float, size_bytes: int) -> None:
        """y is accuracy as a fraction (shown in %) or, for regression, the MSE."""
        if label in self._tags and latency_ms > 0:
            self._points[label] = (latency_ms, y * 100 if self._accuracy else y, size_bytes)

    def redraw(self) -> None:
        labels = [label for label in self._labels if label in self._points]
        biggest = max((self._points[label][2] for label in labels), default=1) or 1
        spots = []
        for label in labels:
            ms, y, size = self._points[label]
            spots.append({
                "pos": (math.log10(ms), y),
                "size": _bubble_px(size, biggest),
                "brush": pg.mkBrush(with_alpha(self._palette.hex(label), 170)),
                "pen": pg.mkPen(self._palette.hex(label), width=2),
                "data": label,
            })
        self._scatter.setData(spots)
        self._bubbles = {label: spot["size"] for label, spot in zip(labels, spots, strict=True)}
        self._fit(labels)
        self._place_tags()

    def _fit(self, labels: list[str]) -> None:
        if not labels:
            return
        xs = [math.log10(self._points[label][0]) for label in labels]
        ys = [self._points[label][1] for label in labels]
        x_pad = max((max(xs) - min(xs)) * 0.15, 0.1)
        y_pad = max((max(ys) - min(ys)) * 0.3, abs(max(ys)) * 0.01, 0.5 if self._accuracy else 1e-6)
        y_lo, y_hi = min(ys) - y_pad, max(ys) + 1.5 * y_pad
        if self._accuracy:  # no room above 100 % or below 0 %: nothing can be there
            y_lo, y_hi = max(y_lo, 0.0), min(y_hi, 100.0 + 0.3 * y_pad)
        # Extra room on the right for the name tags.
        self.getPlotItem().setXRange(min(xs) - x_pad, max(xs) + 2.5 * x_pad, padding=0)
        self.getPlotItem().setYRange(y_lo, y_hi, padding=0)

    def _place_tags(self, *_args) -> None:
        """Put each name tag beside its bubble where it covers no other tag or bubble.

        Tried in order: right, left, above, below the bubble, then right or left
        shifted up or down step by step with a leader line back to the bubble.
        Positions depend on the zoom, so this runs again whenever the view changes.
        """
        vb = self.getPlotItem().getViewBox()
        px_w, px_h = vb.viewPixelSize()
        if not px_w or not px_h:
            return
        px_h = abs(px_h)
        view = vb.mapRectToScene(vb.boundingRect())
        bubbles = []
        for label, (ms, y, _) in self._points.items():
            r = self._bubbles.get(label, MIN_BUBBLE_PX) / 2
            centre = vb.mapViewToScene(pg.Point(math.log10(ms), y))
            bubbles.append((label, QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r)))
        taken: list[QRectF] = []
        for label, tag in self._tags.items():
            leader = self._leaders[label]
            if label not in self._points:
                tag.setVisible(False)
                leader.setVisible(False)
                continue
            ms, y, _ = self._points[label]
            x = math.log10(ms)
            r = self._bubbles.get(label, MIN_BUBBLE_PX) / 2 + 4
            others = [rect for name, rect in bubbles if name != label]
            tag.setVisible(True)
            tag_h = tag.boundingRect().height() or 20
            candidates = [((0, 0.5), r, 0.0), ((1, 0.5), -r, 0.0), ((0.5, 1), 0.0, r), ((0.5, 0), 0.0, -r)]
            for k in range(1, MAX_TAG_SHIFT + 1):
                for sign in (1, -1):
                    candidates += [((0, 0.5), r, sign * k * tag_h), ((1, 0.5), -r, sign * k * tag_h)]
            chosen = None
            for anchor, dx, dy in candidates:
                tag.setAnchor(anchor)
                tag.setPos(x + dx * px_w, y + dy * px_h)
                box = tag.mapRectToScene(tag.boundingRect())
                if view.contains(box) and not any(box.intersects(o) for o in taken + others):
                    chosen = (box, dx, dy)
                    break
            if chosen is None:
                # Crowded everywhere: no tag rather than one printed over others; the bubble
                # keeps its colour (the same as in the table) and names itself on hover.
                tag.setVisible(False)
                leader.setVisible(False)
                continue
            box, dx, dy = chosen
            taken.append(box)
            shifted = abs(dy) > r
            if shifted:  # a thin line from the bubble to its displaced name
                leader.setData([x, x + dx * px_w], [y, y + dy * px_h])
            leader.setVisible(shifted)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        set_axis_label(plot, "bottom", "median latency (ms, log scale)", theme)
        set_axis_label(plot, "left", self._y_name, theme)
        style_axes(plot, theme)

    # --- reading -------------------------------------------------------
    def points(self) -> dict[str, tuple[float, float, float]]:
        """label -> (latency ms, y, bubble px) as drawn."""
        out = {}
        for spot in self._scatter.points():
            out[spot.data()] = (10 ** float(spot.pos().x()), float(spot.pos().y()), float(spot.size()))
        return out

    def tag_boxes(self) -> dict[str, QRectF]:
        """Scene rectangles of the visible name tags (to check they do not overlap)."""
        return {label: tag.mapRectToScene(tag.boundingRect()) for label, tag in self._tags.items() if tag.isVisible()}


def _bubble_px(size: int, biggest: int) -> float:
    # Area, not diameter, follows the file size.
    return MIN_BUBBLE_PX + (MAX_BUBBLE_PX - MIN_BUBBLE_PX) * math.sqrt(max(size, 0) / biggest)
