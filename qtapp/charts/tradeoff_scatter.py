"""Accuracy (or error) against median latency, one bubble per variant, sized by the file.

Up and to the left is better for accuracy; for regression the y-axis is the
mean squared error and down-left is better. Latency is on a log axis (variants
often differ tenfold). The scatter item, the name tags and their leader lines
are made once per study and moved with ``setData``/``setPos``.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF

from core.reports.format import format_bytes, format_ms, format_percent
from qtapp.charts.export import install_export_menu
from qtapp.charts.log_axis import LogMsAxis
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import bold_font, set_axis_label, style_axes, with_alpha
from qtapp.window.theme import Theme

TAG_POINT_SIZE = 10
MIN_TAG_POINT_SIZE = 8
LEGEND_POINT_SIZE = 9
MIN_PLOT_PX = 240  # the chart's height above its key
TAG_GAP_PX = 3  # between a bubble and a name beside it
MIN_BUBBLE_PX = 12
MAX_BUBBLE_PX = 40


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
        self._tag_points = TAG_POINT_SIZE
        # Where the names cannot all fit beside their bubbles (many studies compared), a key by
        # colour under the chart names them instead.
        self._legend = pg.LabelItem(justify="left")
        self._legend.hide()
        self._min_height = self.minimumHeight()
        self._y_name = "accuracy (%)"
        self._x_name = "median latency, ms (log)"
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
        what = f"accuracy {format_percent(value / 100)}" if self._accuracy else f"{self._y_name.split()[0]} {value:.4g}"
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
        self._show_legend([])
        self.setMinimumHeight(self._min_height)
        self._y_name = {"regression": "MSE (lower is better)",
                        "causal-lm": "perplexity (lower is better)"}.get(task, "accuracy (%)")
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

    def set_paired(self, paired: bool) -> None:
        """Whether the latencies are the paired rounds' (the table's ‡ figures, when the machine's speed changed
        during the study): the axis says so, as the table's column does."""
        from core.measures.drift_notes import PAIRED_MARK

        name = f"median latency{PAIRED_MARK}, ms (log)" if paired else "median latency, ms (log)"
        if name != self._x_name:
            self._x_name = name
            set_axis_label(self.getPlotItem(), "bottom", name, self._theme)

    def set_point(self, label: str, latency_ms: float, y: float, size_bytes: int) -> None:
        """y is accuracy as a fraction (shown in %), or the MSE (regression), or the perplexity (causal-lm)."""
        if label in self._tags and latency_ms > 0:
            self._points[label] = (latency_ms, y * 100 if self._accuracy else y, size_bytes)

    def redraw(self) -> None:
        labels = [label for label in self._labels if label in self._points]
        biggest = max((self._points[label][2] for label in labels), default=1) or 1
        spots = []
        for label in labels:
            ms, y, size = self._points[label]
            spots.append(
                {
                    "pos": (math.log10(ms), y),
                    "size": _bubble_px(size, biggest),
                    "brush": pg.mkBrush(with_alpha(self._palette.hex(label), 170)),
                    "pen": pg.mkPen(self._palette.hex(label), width=2),
                    "data": label,
                }
            )
        self._scatter.setData(spots)
        self._bubbles = {label: spot["size"] for label, spot in zip(labels, spots, strict=True)}
        self._fit(labels)
        self._place_tags()

    def _fit(self, labels: list[str]) -> None:
        self._show_values(bool(labels))
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
        """Give every bubble its name, beside it where there is room, else at the nearest free spot
        with a thin leader line back to it; smaller type when crowded. No name covers another name
        or a bubble, and none runs past the chart. Positions depend on the zoom and the chart's size,
        so this runs again whenever either changes."""
        vb = self.getPlotItem().getViewBox()
        labels = [label for label in self._tags if label in self._points]
        for label in self._tags:
            if label not in self._points:
                self._tags[label].setVisible(False)
                self._leaders[label].setVisible(False)
        if not labels or vb.width() <= 0 or vb.height() <= 0:
            return
        view = vb.mapRectToScene(vb.boundingRect())
        centres = {
            label: vb.mapViewToScene(pg.Point(math.log10(self._points[label][0]), self._points[label][1]))
            for label in labels
        }
        radii = {label: self._bubbles.get(label, MIN_BUBBLE_PX) / 2 for label in labels}
        bubbles = np.array(
            [
                [
                    centres[la].x() - radii[la],
                    centres[la].y() - radii[la],
                    centres[la].x() + radii[la],
                    centres[la].y() + radii[la],
                ]
                for la in labels
            ]
        )
        boxes: dict[str, QRectF | None] = {}
        # Smaller type before a name nearer another bubble than its own; that before the key under the chart.
        for strict in (True, False):
            for points in range(TAG_POINT_SIZE, MIN_TAG_POINT_SIZE - 1, -1):
                sizes = {}
                for label in labels:
                    tag = self._tags[label]
                    tag.setFont(bold_font(points))
                    rect = tag.textItem.boundingRect()
                    sizes[label] = (rect.width(), rect.height())
                boxes = _greedy_boxes(labels, centres, radii, sizes, bubbles, view, strict)
                if all(box is not None for box in boxes.values()):
                    break
            if all(box is not None for box in boxes.values()):
                break
        self._tag_points = points
        crowded = any(box is None for box in boxes.values())
        for label in labels:
            self._show_tag(label, None if crowded else boxes[label], centres[label], radii[label])
        self._show_legend(labels if crowded else [])

    def _show_legend(self, labels: list[str]) -> None:
        """The key by colour under the chart, listing ``labels`` (none: no key)."""
        layout = self.getPlotItem().layout
        shown = self._legend.isVisible()
        if not labels:
            if shown:
                layout.removeItem(self._legend)
                self._legend.hide()
            return
        # Lines break between entries only, never inside a name.
        entries = [
            f"<span style='color:{self._palette.hex(label)}'>●&nbsp;{_unbroken(label)}</span>" for label in labels
        ]
        text = " &nbsp; ".join(entries)
        # As wide as the plot when the chart has its width (the view box may not have it yet).
        self._legend.item.setTextWidth(max(150.0, self.width() - self.getPlotItem().getAxis("left").width() - 16))
        if text != self._legend.text:
            self._legend.setText(text, color=self._theme.plot_fg, size=f"{LEGEND_POINT_SIZE}pt", bold=True)
        if not shown:
            layout.addItem(self._legend, 4, 1)
            self._legend.show()
        # The chart grows by the key's height (the results tab scrolls then) rather than squeezing the
        # plot until its axis title is cut. Without the key it keeps that height for the study, so the
        # key cannot come and go as the chart resizes.
        self.setMinimumHeight(max(self._min_height, int(self._legend.minimumHeight()) + MIN_PLOT_PX))

    def _show_tag(self, label: str, box: QRectF | None, centre: QPointF, radius: float) -> None:
        tag, leader = self._tags[label], self._leaders[label]
        if box is None:  # no free spot even in the smallest type: the bubble names itself on hover
            tag.setVisible(False)
            leader.setVisible(False)
            return
        vb = self.getPlotItem().getViewBox()
        tag.setAnchor((0, 0))
        tag.setPos(vb.mapSceneToView(box.topLeft()))
        tag.setVisible(True)
        near = QPointF(min(max(centre.x(), box.left()), box.right()), min(max(centre.y(), box.top()), box.bottom()))
        gap = math.hypot(near.x() - centre.x(), near.y() - centre.y())
        if gap <= radius + TAG_GAP_PX + 2:
            leader.setVisible(False)
            return
        # A thin line from the bubble's edge to its displaced name.
        start = centre + (near - centre) * (radius / gap)
        a, b = vb.mapSceneToView(start), vb.mapSceneToView(near)
        leader.setData([a.x(), b.x()], [a.y(), b.y()])
        leader.setVisible(True)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        set_axis_label(plot, "bottom", self._x_name, theme)  # short: the panel can be narrow
        set_axis_label(plot, "left", self._y_name, theme)
        style_axes(plot, theme)
        self._show_values(bool(self._points))

    def _show_values(self, shown: bool) -> None:
        """Tick values only once there is a bubble: before, the axes' titles say what will be drawn, without
        a made-up scale."""
        for side in ("left", "bottom"):
            axis = self.getPlotItem().getAxis(side)
            if axis.style["showValues"] != shown:  # setStyle lays the axis out again: only on a change
                axis.setStyle(showValues=shown)

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

    def bubble_boxes(self) -> dict[str, QRectF]:
        """Scene rectangles around the drawn bubbles."""
        vb = self.getPlotItem().getViewBox()
        out = {}
        for label, (ms, y, _) in self._points.items():
            r = self._bubbles.get(label, MIN_BUBBLE_PX) / 2
            c = vb.mapViewToScene(pg.Point(math.log10(ms), y))
            out[label] = QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r)
        return out

    def view_box_scene_rect(self) -> QRectF:
        vb = self.getPlotItem().getViewBox()
        return vb.mapRectToScene(vb.boundingRect())

    def leader_visible(self, label: str) -> bool:
        return self._leaders[label].isVisible()

    def tag_point_size(self) -> int:
        return self._tag_points

    def legend_text(self) -> str:
        """The key by colour under the chart, as plain text ('' when the names sit beside their bubbles)."""
        return self._legend.item.toPlainText() if self._legend.isVisible() else ""


def _bubble_px(size: int, biggest: int) -> float:
    # Area, not diameter, follows the file size.
    return MIN_BUBBLE_PX + (MAX_BUBBLE_PX - MIN_BUBBLE_PX) * math.sqrt(max(size, 0) / biggest)


def _greedy_boxes(
    labels: list[str],
    centres: dict[str, QPointF],
    radii: dict[str, float],
    sizes: dict[str, tuple[float, float]],
    bubbles: np.ndarray,
    view: QRectF,
    strict: bool = True,
) -> dict[str, QRectF | None]:
    """Scene rectangles for the name tags, one label after the other: beside the bubble (right, left,
    above, below) if free, else the free spot nearest the bubble; None where no spot is free.

    A name goes where it is nearer its own bubble than any other it does not touch: a leader line is too thin
    to overrule the eye (the demo's "ort-int8-dynamic" sat beside the pruned variant's bubble, 13 points lower,
    as if it were its name). Not ``strict``, a name with no such spot free takes the nearest free one. The
    bubbles with the closest neighbours choose first, while the spots beside them are still free."""
    taken = np.empty((0, 4))
    leaders: list[np.ndarray] = []  # points along the leader lines drawn so far
    out: dict[str, QRectF | None] = {}
    points = np.array([[centres[la].x(), centres[la].y()] for la in labels]).reshape(-1, 2)
    edges = np.array([radii[la] for la in labels])
    gaps = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)) - edges[:, None] - edges[None, :]
    np.fill_diagonal(gaps, np.inf)
    for index in np.argsort(gaps.min(axis=1, initial=np.inf), kind="stable"):
        label = labels[index]
        w, h = sizes[label]
        c, r = centres[label], radii[label] + TAG_GAP_PX
        beside = np.array(
            [
                [c.x() + r, c.y() - h / 2],
                [c.x() - r - w, c.y() - h / 2],
                [c.x() - w / 2, c.y() - r - h],
                [c.x() - w / 2, c.y() + r],
            ]
        )
        xs = np.arange(view.left(), view.right() - w + 1e-6, max(2.0, w / 8))
        ys = np.arange(view.top(), view.bottom() - h + 1e-6, max(2.0, h / 3))
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        # The rest by how far their nearest point is from the bubble's centre.
        near_x = np.clip(c.x(), grid[:, 0], grid[:, 0] + w) - c.x()
        near_y = np.clip(c.y(), grid[:, 1], grid[:, 1] + h) - c.y()
        grid = grid[np.argsort(near_x**2 + near_y**2, kind="stable")]
        corners = np.concatenate([beside, grid])
        rects = np.column_stack([corners, corners + (w, h)])
        inside = (
            (rects[:, 0] >= view.left())
            & (rects[:, 1] >= view.top())
            & (rects[:, 2] <= view.right())
            & (rects[:, 3] <= view.bottom())
        )
        apart = gaps[index] > 0  # bubbles that touch this one: which of them a name is nearer says nothing
        free = inside & ~_hits(rects, bubbles) & ~_hits(rects, taken)
        own = free & _nearest_own(rects, index, points, apart)
        # Not ``strict``: where no free spot is nearer its own bubble, the nearest free one, with its leader line,
        # still beats sending every name to the key under the chart (out of sight in a scrolling tab).
        hit = np.flatnonzero(own if strict or own.any() else free)
        if not hit.size:
            out[label] = None
            continue
        # Among the free spots, the first whose leader line crosses no name and that lies on no
        # other leader line (else the first free spot: a crossed line beats a missing name).
        candidates = rects[hit]
        ends = np.column_stack(
            [np.clip(c.x(), candidates[:, 0], candidates[:, 2]), np.clip(c.y(), candidates[:, 1], candidates[:, 3])]
        )
        clear = ~_crosses(np.array([c.x(), c.y()]), ends, taken) & ~_covers_lines(candidates, leaders)
        best = candidates[np.flatnonzero(clear)[0]] if clear.any() else candidates[0]
        end = ends[np.flatnonzero(clear)[0]] if clear.any() else ends[0]
        x0, y0, x1, y1 = best
        out[label] = QRectF(x0, y0, x1 - x0, y1 - y0)
        taken = np.vstack([taken, best])
        if math.hypot(end[0] - c.x(), end[1] - c.y()) > r + 2:
            leaders.append(np.array([c.x(), c.y()]) + np.outer(LEADER_SAMPLES, end - (c.x(), c.y())))
    return out


LEADER_SAMPLES = np.linspace(0.15, 0.95, 12)  # points along a leader line checked against names


def _nearest_own(rects: np.ndarray, own: int, centres: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each rectangle, whether no bubble of ``others`` (a mask) has its centre nearer to the rectangle's
    middle than bubble ``own`` has: which point a name is read as naming."""
    mid_x, mid_y = (rects[:, 0] + rects[:, 2]) / 2, (rects[:, 1] + rects[:, 3]) / 2
    reach = np.hypot(mid_x[:, None] - centres[None, :, 0], mid_y[:, None] - centres[None, :, 1])
    if not others.any():
        return np.ones(len(rects), dtype=bool)
    return reach[:, own] <= reach[:, others].min(axis=1)


def _crosses(start: np.ndarray, ends: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """For each line from ``start`` to one of ``ends``, whether it runs through any of ``rects``."""
    if not rects.size:
        return np.zeros(len(ends), dtype=bool)
    points = start + LEADER_SAMPLES[None, :, None] * (ends - start)[:, None, :]  # (lines, samples, 2)
    x, y = points[..., 0, None], points[..., 1, None]
    inside = (x > rects[:, 0]) & (x < rects[:, 2]) & (y > rects[:, 1]) & (y < rects[:, 3])
    return inside.any(axis=(1, 2))


def _covers_lines(rects: np.ndarray, leaders: list[np.ndarray]) -> np.ndarray:
    """For each rectangle, whether any point of the ``leaders`` drawn so far lies in it."""
    if not leaders:
        return np.zeros(len(rects), dtype=bool)
    points = np.concatenate(leaders)
    x, y = points[None, :, 0], points[None, :, 1]
    inside = (x > rects[:, 0, None]) & (x < rects[:, 2, None]) & (y > rects[:, 1, None]) & (y < rects[:, 3, None])
    return inside.any(axis=1)


def _hits(rects: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """For each (x0, y0, x1, y1) rectangle, whether it overlaps any of ``obstacles``."""
    if not obstacles.size:
        return np.zeros(len(rects), dtype=bool)
    a, b = rects[:, None, :], obstacles[None, :, :]
    overlap = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2]) & (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
    return overlap.any(axis=1)


def _unbroken(label: str) -> str:
    """``label`` as rich text that never breaks across lines (non-breaking spaces and hyphens)."""
    return html.escape(label).replace(" ", "&nbsp;").replace("-", "\u2011")
