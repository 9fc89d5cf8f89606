"""Latency histograms of every variant, stacked, on one shared x-axis.

All variants use the same bin edges, so bars line up across rows; the bins, the
range and what happens to samples beyond it come from ``core.reports.chart_data``,
as in the HTML report (samples past the axis are counted apart and the caption
says "+N beyond the axis"; they are never piled into the end bins). Each row is
a step-mode filled curve (several times faster to paint than bar items) with
p50 and p99 marked; rows are created once per study and then only fed new
counts with ``setData``.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QGraphicsItem

from core.reports.chart_data import (
    LATENCY_BINS,
    beyond_text,
    bin_latencies,
    latency_edges,
    latency_extent,
    round_log_range,
)
from core.reports.format import format_ms
from qtapp.charts.export import install_export_menu
from qtapp.charts.log_axis import LogMsAxis
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import (
    LABEL_POINT_SIZE,
    TICK_POINT_SIZE,
    TITLE_POINT_SIZE,
    bold_font,
    short_name,
    style_axes,
    with_alpha,
)
from qtapp.window.theme import Theme

BINS = LATENCY_BINS
GROWTH_MARGIN = 10**0.15  # extra room when the shared range grows (0.15 decade)
AXIS_WIDTH = 8  # fixed so every row's plot area starts at the same x
CAPTION_WIDTH = 200  # the captions' width when their names are short
#: Long names (studies compared side by side) widen the captions up to this share of the chart;
#: beyond it they are shortened with "…", so a caption never runs into its histogram.
CAPTION_SHARE = 0.4
FAILED_ROW_PX = 34
AXIS_PX = 40  # the last row's tick labels
QWIDGETSIZE_MAX = 16_777_215
AXIS_TITLE = "latency per call (ms, log scale)"
Y_TOP = 1.1  # the tallest bin of a row is 1.0
#: The lines' key, under the axis title (names on the lines themselves covered the bars).
P50_MARK, P99_MARK = "┃", "╏"
LIVE_CAPTION_INTERVAL_S = 0.4  # a row's caption follows its live p50/p99 at most this often


@dataclass
class _Row:
    plot: pg.PlotItem
    curve: pg.PlotDataItem
    p50_line: pg.InfiniteLine
    p99_line: pg.InfiniteLine
    caption: pg.LabelItem
    samples: np.ndarray
    p50: float | None = None
    p99: float | None = None
    counts: np.ndarray | None = None
    caption_text: str = ""
    shown: tuple[float | None, float | None] = (None, None)  # the p50/p99 on screen
    failed: bool = False
    extent: tuple[float, float] | None = None  # (min, p99.5) of the samples
    extent_n: int = 0  # samples already folded into ``extent``
    binned: int = 0  # samples already counted in ``counts`` (for the current edges)
    beyond: int = 0  # of those, samples slower than the axis reaches (not in ``counts``)
    below: int = 0  # and samples faster than it starts
    heights: np.ndarray | None = None  # the bar heights on screen (counts / tallest)
    caption_at: float = 0.0  # time.monotonic() of the last live caption update

    def forget_counts(self) -> None:
        """Count this row's samples again from scratch at the next redraw."""
        self.counts, self.binned, self.extent, self.extent_n, self.heights = None, 0, None, 0, None
        self.beyond = self.below = 0
        self.caption_at = 0.0

    def clear(self, failed: bool) -> None:
        """No samples and nothing drawn (a new study, or a variant that failed)."""
        self.samples, self.failed = np.empty(0), failed
        self.forget_counts()
        for item in (self.curve, self.p50_line, self.p99_line):
            item.setVisible(False)


class LatencyHistogram(pg.GraphicsLayoutWidget):
    """One row per variant; ``update_variant`` then ``redraw`` (from a timer).

    The x-axis is logarithmic (log10 of ms, labelled in ms) with log-spaced bins."""

    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent)
        self._palette = palette
        self._theme = theme
        self._rows: dict[str, _Row] = {}
        self._slots: list[_Row] = []  # every row built, by layout slot; beyond len(_rows): out of the layout
        self._range: tuple[float, float] | None = None
        self._edges = latency_edges(0.1, 1.0, BINS)
        self._dirty: set[str] = set()
        self._caption_width = float(CAPTION_WIDTH)
        # The axis title spans the captions and the plots under the last row, right-aligned: under
        # the narrow plots alone it was cut at both ends.
        self._axis_title = pg.LabelItem(justify="right")
        self.setBackground(theme.plot_bg)
        self.ci.layout.setVerticalSpacing(2)
        install_export_menu(self, "latency-histogram")

    # --- building (once per study) ------------------------------------
    def set_variants(self, labels: list[str]) -> None:
        """One row per label.

        Rows are kept from study to study and only relabelled: building a pyqtgraph plot
        costs 15-30 ms, so a new study of six variants used to freeze the window for a
        fifth of a second as its samples began to stream (``prebuild`` makes them ahead,
        when the window is idle). Row k always sits in layout slot k; rows a smaller
        study does not need wait outside the layout."""
        if list(self._rows) == list(labels):
            self._reuse_rows()
            return
        if self._axis_title in self.ci.items:  # it moves to the row under the last
            self.ci.removeItem(self._axis_title)
        while len(self._slots) < len(labels):
            self._slots.append(self._new_row(len(self._slots)))
        used, spare = self._slots[: len(labels)], self._slots[len(labels) :]
        for row in spare:
            if row.plot in self.ci.items:
                self.ci.removeItem(row.caption)
                self.ci.removeItem(row.plot)
        for slot, row in enumerate(used):
            if row.plot not in self.ci.items:
                self.ci.addItem(row.caption, row=slot, col=0)
                self.ci.addItem(row.plot, row=slot, col=1)
        self._rows = dict(zip(labels, used, strict=True))
        for slot, (label, row) in enumerate(self._rows.items()):
            color = self._palette.hex(label)
            row.curve.setPen(pg.mkPen(color, width=2))
            row.curve.setBrush(with_alpha(color, 120))
            last = slot == len(labels) - 1
            axis = row.plot.getAxis("bottom")
            axis.setStyle(showValues=last)
            axis.showLabel(False)
        if labels:
            self.ci.addItem(self._axis_title, row=len(labels), col=0, colspan=2)
        self._style_title()
        self._reuse_rows()
        self._fit_captions(force=True)  # to the new names

    def prebuild(self, rows: int) -> bool:
        """Build one more spare row, up to ``rows``; False when there are that many (call it when idle,
        so the first study's rows are ready before its samples stream)."""
        if len(self._slots) >= rows:
            return False
        self._slots.append(self._new_row(len(self._slots)))
        return len(self._slots) < rows

    def _new_row(self, slot: int) -> _Row:
        """The plot items of layout slot ``slot`` (``set_variants`` puts them in the layout)."""
        caption = pg.LabelItem(justify="left")
        caption.setFixedWidth(CAPTION_WIDTH)
        plot = pg.PlotItem(enableMenu=False, axisItems={"bottom": LogMsAxis("bottom")})
        plot.setMouseEnabled(x=True, y=False)
        plot.hideButtons()
        # Counts per bin say little across rows of different sample counts; the shape does
        # (each row is drawn relative to its tallest bin).
        plot.getAxis("left").setWidth(AXIS_WIDTH)
        plot.getAxis("left").setStyle(showValues=False, tickLength=0)
        plot.setLimits(yMin=0)
        plot.setYRange(0, Y_TOP, padding=0)
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
            # The bottom axis draws the x grid across the row, so each new count repainted it
            # (0.7 ms a row, most of a streaming redraw). Cached as a pixmap it is only blitted,
            # and drawn again when its range, size or style changes.
            plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        if slot > 0:
            plot.setXLink(self._slots[0].plot)
        curve = plot.plot([0.0, 1.0], [0.0], stepMode="center", fillLevel=0)
        curve.setVisible(False)  # shown with the first samples
        # The lines carry no names (they covered the bars): the key under the axis title says solid p50, dashed p99.
        p50 = pg.InfiniteLine(angle=90)
        p99 = pg.InfiniteLine(angle=90)
        for line in (p50, p99):
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
        row = _Row(plot, curve, p50, p99, caption, np.empty(0))
        caption.item.setTextWidth(self._caption_width)
        caption.setFixedWidth(self._caption_width)
        self._style_row(row)
        return row

    def _fit_captions(self, force: bool = False) -> None:
        """Captions as wide as their longest name, up to CAPTION_SHARE of the chart (then shortened);
        a caption's text wraps inside its width and never runs into its histogram."""
        if not getattr(self, "_rows", None):  # resize events arrive during construction
            return
        metrics = QFontMetricsF(bold_font(TITLE_POINT_SIZE))
        widest = max(metrics.horizontalAdvance(label) for label in self._rows) + 12
        limit = max(float(CAPTION_WIDTH), CAPTION_SHARE * self.width())
        width = float(math.ceil(min(max(widest, CAPTION_WIDTH), limit)))
        if width == self._caption_width and not force:
            return
        self._caption_width = width
        for label, row in self._rows.items():
            row.caption.item.setTextWidth(width)
            row.caption.setFixedWidth(width)
            self._set_caption(label, row, *row.shown, force=True)
        self._fit_height()

    def _fit_height(self) -> None:
        """At least as tall as every caption (the results tab scrolls then): squeezed below that, the
        rows ran out of the chart and took the axis and its title with them."""
        captions = sum(row.caption.minimumHeight() for row in self._rows.values())
        spacing = self.ci.layout.verticalSpacing() * len(self._rows)
        self.setMinimumHeight(int(captions + spacing + AXIS_PX + self._axis_title.minimumHeight() + 24))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_captions()

    def _style_title(self) -> None:
        key = f"<span style='font-size:{TICK_POINT_SIZE}pt'>{P50_MARK} p50 &nbsp; {P99_MARK} p99</span>"
        self._axis_title.setText(f"{AXIS_TITLE}<br>{key}", color=self._theme.plot_fg, size=f"{LABEL_POINT_SIZE}pt")

    def _reuse_rows(self) -> None:
        self._range = None
        self._dirty = set()
        for label, row in self._rows.items():
            row.clear(failed=False)
            row.shown = (None, None)
            row.p50 = row.p99 = None
            row.plot.setMaximumHeight(QWIDGETSIZE_MAX)
            self._set_caption(label, row)

    def _style_row(self, row: _Row) -> None:
        style_axes(row.plot, self._theme, grid=False)
        row.plot.showGrid(x=True, y=False, alpha=self._theme.grid_alpha)
        for line, style in ((row.p50_line, Qt.PenStyle.SolidLine), (row.p99_line, Qt.PenStyle.DashLine)):
            line.setPen(pg.mkPen(self._theme.plot_fg, width=2, style=style))

    # --- feeding -------------------------------------------------------
    def update_variant(
        self, label: str, samples: np.ndarray, p50: float | None = None, p99: float | None = None
    ) -> None:
        """New samples (all of them, not only the latest) and, once final, the engine's p50/p99."""
        row = self._rows.get(label)
        if row is None:
            return
        samples = np.asarray(samples, dtype=np.float64)
        if samples.size < row.binned or samples.size < row.extent_n:
            # Not the same stream grown longer: count this row again from scratch.
            row.forget_counts()
        row.samples = samples
        row.p50, row.p99 = p50, p99
        self._dirty.add(label)

    def settle_captions(self) -> None:
        """Every row's caption shows what its lines show (a live caption lags by up to
        LIVE_CAPTION_INTERVAL_S; a study cancelled mid-timing sends no final figures)."""
        for label, row in self._rows.items():
            if row.shown != (None, None) and not row.failed:
                self._set_caption(label, row, *row.shown)

    def set_failed(self, label: str) -> None:
        """The variant failed before (or while) timing: an empty row that says so."""
        row = self._rows.get(label)
        if row is None:
            return
        row.clear(failed=True)
        row.plot.setMaximumHeight(FAILED_ROW_PX)  # nothing to draw: leave the room to the others
        self._set_caption(label, row)

    def redraw(self) -> None:
        """Count the dirty rows' new samples (everything again only if the shared range grew) and
        update the plot items in place. The cost of a redraw follows the samples that arrived since
        the last one, not all the samples so far (10^5 per variant stay cheap)."""
        if not self._dirty:
            return
        if self._grow_range():
            self._dirty = {label for label, row in self._rows.items() if row.samples.size}
            for row in self._rows.values():
                row.counts, row.binned, row.beyond, row.below = None, 0, 0, 0
        for label in self._dirty:
            self._draw_row(label, self._rows[label])
        self._dirty = set()

    def _grow_range(self) -> bool:
        for label in self._dirty:
            row = self._rows[label]
            new = row.samples[row.extent_n :]
            if new.size:
                # The top of the range is the largest p99.5 (chart_data), so one stray spike cannot
                # squash every row; samples above it are counted beyond the axis. Only the samples
                # that arrived since the last redraw are looked at.
                extent = latency_extent(new)
                if extent is None:
                    continue
                lo, hi = extent
                if row.extent is not None:
                    lo, hi = min(lo, row.extent[0]), max(hi, row.extent[1])
                row.extent, row.extent_n = (lo, hi), row.samples.size
        extents = [r.extent for r in self._rows.values() if r.extent is not None and r.samples.size]
        if not extents:
            return False
        lo = min(e[0] for e in extents)
        hi = max(e[1] for e in extents)
        if self._range is not None:
            lo, hi = min(lo, self._range[0]), max(hi, self._range[1])
            if (lo, hi) == self._range or (lo >= self._range[0] and hi <= self._range[1]):
                return False
        if self._range is not None:
            # Growing: leave room for the next few stragglers too. Every growth recounts every
            # row and re-lays out the axes (the longest redraws while samples stream).
            lo = lo / GROWTH_MARGIN if lo < self._range[0] else lo
            hi = hi * GROWTH_MARGIN if hi > self._range[1] else hi
        lo, hi = round_log_range(lo, hi)
        self._range = (lo, hi)
        self._edges = latency_edges(lo, hi, BINS)
        first = next(iter(self._rows.values()))
        first.plot.setXRange(math.log10(lo), math.log10(hi), padding=0.02)
        return True

    def _quantile_from_counts(self, row: _Row, q: float) -> float:
        """The q-quantile read off the histogram: the geometric middle of the bin that holds it (the
        samples beyond either end count towards the total; a quantile among them sits in the end bin)."""
        counts = row.counts
        cdf = row.below + np.cumsum(counts)
        i = int(np.searchsorted(cdf, q * (cdf[-1] + row.beyond)))
        i = min(i, len(counts) - 1)
        return float(math.sqrt(self._edges[i] * self._edges[i + 1]))

    @property
    def _log_edges(self) -> np.ndarray:
        return np.log10(self._edges)

    def _draw_row(self, label: str, row: _Row) -> None:
        if not row.samples.size:
            return
        lo = self._edges[0]
        added = bin_latencies(row.samples[row.binned :], self._edges)
        fresh = row.counts is None  # first counts, or counted again on new edges
        counts = added.counts if fresh else row.counts + added.counts
        row.counts, row.binned = counts, row.samples.size
        row.beyond = added.beyond if fresh else row.beyond + added.beyond
        row.below = added.below if fresh else row.below + added.below
        # Each row is scaled to its tallest bin: rows of different sample counts compare by shape,
        # and a y-range that never moves spares re-laying out and repainting the axes while
        # the counts stream in.
        heights = counts / max(1, int(counts.max()))
        # Once a few thousand samples are in, new ones move no bar by a whole pixel: the row is
        # then left as it is on screen instead of being repainted for nothing.
        px_per_unit = row.plot.getViewBox().height() / Y_TOP
        if fresh or row.heights is None or float(np.abs(heights - row.heights).max()) * px_per_unit >= 0.5:
            row.curve.setData(self._log_edges, heights)
            row.heights = heights
        row.curve.setVisible(True)
        # While samples stream, the marks come from the counts (to within a bin); the engine's
        # exact p50/p99 replace them when the variant finishes.
        p50 = row.p50 if row.p50 is not None else self._quantile_from_counts(row, 0.50)
        p99 = row.p99 if row.p99 is not None else self._quantile_from_counts(row, 0.99)
        row.p50_line.setValue(math.log10(max(p50, lo)))
        row.p99_line.setValue(math.log10(max(p99, lo)))
        row.p50_line.setVisible(True)
        row.p99_line.setVisible(True)
        row.shown = (p50, p99)
        # Re-laying out the caption's rich text costs ~0.7 ms; while samples stream, its live numbers
        # change at most a few times a second (the table beside it shows them too).
        now = time.monotonic()
        if row.p50 is not None or row.caption_at == 0.0 or now - row.caption_at >= LIVE_CAPTION_INTERVAL_S:
            self._set_caption(label, row, p50, p99)
            row.caption_at = now

    def _set_caption(
        self, label: str, row: _Row, p50: float | None = None, p99: float | None = None, force: bool = False
    ) -> None:
        if row.failed:
            stats = "failed: no timing"
        elif p50 is not None and p99 is not None:
            stats = f"p50 {format_ms(p50)} · p99 {format_ms(p99)}"
            if row.beyond:
                stats += f"\n{beyond_text(row.beyond)}"
        else:
            stats = "waiting for samples"
        text = f"{label}\n{stats}"
        if text == row.caption_text and not force:
            return  # re-laying out a label is not free; most redraws leave the numbers unchanged
        row.caption_text = text
        color = self._palette.hex(label)
        name = html.escape(short_name(label, QFontMetricsF(bold_font(TITLE_POINT_SIZE)), self._caption_width - 10))
        row.caption.setToolTip(label)
        row.caption.setText(
            f"<span style='color:{color}; font-weight:bold; font-size:{TITLE_POINT_SIZE}pt'>{name}</span><br>"
            f"<span style='color:{self._theme.plot_fg}; font-size:{TICK_POINT_SIZE}pt'>"
            f"{_unbroken(stats).replace(chr(10), '<br>')}</span>"
        )
        self._fit_height()

    # --- theme ---------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        for row in self._slots[len(self._rows) :]:
            self._style_row(row)
        for label, row in self._rows.items():
            self._style_row(row)
            self._set_caption(label, row, *row.shown, force=True)
        self._style_title()

    # --- reading (tests, screenshots) ----------------------------------
    def edges(self) -> np.ndarray:
        return self._edges.copy()

    def counts(self, label: str) -> np.ndarray:
        """Samples per bin inside the axis."""
        row = self._rows[label]
        return np.zeros(BINS, dtype=int) if row.counts is None else row.counts.copy()

    def beyond(self, label: str) -> int:
        """Samples slower than the axis reaches (counted apart, not in ``counts``)."""
        return self._rows[label].beyond

    def marks(self, label: str) -> tuple[float, float]:
        """Where p50 and p99 are marked, in ms."""
        row = self._rows[label]
        return 10 ** float(row.p50_line.value()), 10 ** float(row.p99_line.value())

    def caption(self, label: str) -> str:
        return self._rows[label].caption_text

    def caption_item(self, label: str) -> pg.LabelItem:
        return self._rows[label].caption

    def plot_item(self, label: str) -> pg.PlotItem:
        return self._rows[label].plot

    def axis_title_item(self) -> pg.LabelItem:
        return self._axis_title

    def labels(self) -> list[str]:
        return list(self._rows)


def _unbroken(stats: str) -> str:
    """A caption's figures wrap only between each other ("p50 0.2 · p99 0.3" at the "·"), never inside one."""
    return " · ".join(part.replace(" ", "&nbsp;") for part in stats.split(" · "))
