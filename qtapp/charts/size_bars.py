"""Size on disk of every variant as horizontal bars, with the saving written on each, and on the right
axis, facing each bar, the peak resident memory of the study process while that variant was loaded, built
and run (where measured; what it includes and the method are in the tooltip).

One BarGraphItem holds all bars and is updated with ``setOpts``; the text
items beside the bars are created once per study. The bars own the width: the
axis ends just past the largest bar, the variant names take at most a share of
the chart (shortened in the middle, full in the tooltip), and a bar's text goes
inside it, after it, shortened or, when there is no room at all, into the
tooltip only; it never covers another row or runs past the chart.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF

from core.reports.format import byte_unit, format_bytes, format_size_change, format_tick
from qtapp.charts.export import install_export_menu
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import (
    LABEL_POINT_SIZE,
    bold_font,
    contrast_text,
    set_axis_label,
    short_name,
    style_axes,
    tick_font,
    with_alpha,
)
from qtapp.window.theme import Theme

BAR_HEIGHT = 0.62
#: The variant names take at most this share of the chart's width; the bars get the rest.
NAME_SHARE = 0.4
MIN_NAME_PX = 60
PAD_PX = 6  # between a bar's end and its text
MIN_POINT_SIZE = 7
#: Round tick steps (times a power of ten) and the gap between two tick labels.
NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
TICK_GAP_PX = 14


#: The right axis's title: what the figures facing the bars are (the whole study process's peak while the variant
#: was measured, its libraries included, not what the variant alone needs: the tooltip gives the growth).
MEMORY_AXIS = "process peak RAM"
#: The right axis's title where the plot is too short for MEMORY_AXIS (a few variants in a short window).
MEMORY_AXIS_SHORT = "peak RAM"


def memory_words(memory: dict | None) -> str:
    """'561 MB' for a variant's ``memory`` block (core.measures.peak_memory); '' when not measured."""
    peak = (memory or {}).get("peak_rss_bytes")
    if not peak:
        return ""
    return format_bytes(int(peak))


def memory_tooltip(memory: dict | None) -> str:
    """The memory figure with what it includes and how it was measured, for the tooltip."""
    words = memory_words(memory)
    if not words:
        return ""
    before = (memory or {}).get("rss_before_bytes")
    added = f", {format_bytes(max(0, int(memory['peak_rss_bytes']) - int(before)))} above the resident set " \
        "when the variant started" if before else ""
    return f"{MEMORY_AXIS} {words}{added} ({memory.get('method', 'method unknown')})"


def _bar_words(size: int | None, baseline: int | None, failed: bool, is_baseline: bool) -> str:
    if size is None:
        return "failed" if failed else ""
    if is_baseline:
        return f"{format_bytes(size)} · baseline"
    return f"{format_bytes(size)} · {format_size_change(size, baseline, typographic=True)}"


def axis_end(top: float) -> float:
    """Where the size axis ends: just past the largest bar, on a round number (917 -> 940)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    fine = 10.0 ** math.floor(math.log10(top)) / 10
    return math.ceil(top * 1.02 / fine) * fine


def tick_step(span: float, width_px: float, label_px: float) -> float:
    """The smallest round step (1, 2, 2.5, 5 x 10^k) whose labels fit side by side in ``width_px``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    room = max(2, int(width_px // (label_px + TICK_GAP_PX)))
    exponent = math.floor(math.log10(span / room)) - 1
    for e in range(exponent, exponent + 4):
        for m in NICE_STEPS:
            step = m * 10.0**e
            # Zero sits on the axis's left end, where no label is drawn.
            if math.floor(span / step + 1e-9) <= room:
                return step
    return 10.0 ** (exponent + 4)


class SizeAxis(pg.AxisItem):
    """Round ticks from zero, only as many as fit without touching (fewer when narrow)."""

    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def _label_px(self, value: float) -> float:
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).horizontalAdvance(format_tick(value))

    def tickValues(self, minVal: float, maxVal: float, size: float):
        if not (math.isfinite(minVal) and math.isfinite(maxVal)) or maxVal <= minVal:
            return []
        lo = max(0.0, minVal)
        # The widest label is about that of the largest round value shown.
        step = tick_step(maxVal - lo, size, self._label_px(maxVal))
        first = math.ceil(lo / step - 1e-9)
        values = [k * step for k in range(first, int(math.floor(maxVal / step + 1e-9)) + 1)]
        return [(step, values)]

    def tickStrings(self, values, scale, spacing):
        return [format_tick(v) for v in values]


class SizeBars(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False, axisItems={"bottom": SizeAxis("bottom")})
        install_export_menu(self, "size-on-disk")
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._sizes: dict[str, int | None] = {}
        self._failed: set[str] = set()
        self._memory: dict[str, dict | None] = {}  # label -> its ``memory`` block (peak resident memory)
        self._memory_ticks: list[str] = []
        self._texts: dict[str, pg.TextItem] = {}
        self._words_of: dict[str, str] = {}  # label -> its full text (also in the tooltip)
        self._baselines: dict[str, str] = {}  # label -> its baseline, where not the first bar (a comparison)
        self._baseline: str | None = None  # the study's own baseline, once its result said so
        self._names: list[str] = []  # the names on the left axis, as shortened
        self._lengths = np.zeros(0)
        self._scale = 1e6
        self._end = 1.0
        self._points = 0  # font size of the bar texts
        self._bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getViewBox().invertY(True)
        plot.addItem(self._bars)
        # Font size and text placement depend on the plot's pixel size.
        plot.getViewBox().sigResized.connect(self._view_resized)
        self.apply_theme(theme)

    def set_variants(self, labels: list[str]) -> None:
        plot = self.getPlotItem()
        for text in self._texts.values():
            plot.removeItem(text)
        self._labels = list(labels)
        self._baselines = {}
        self._baseline = None
        self._sizes = {label: None for label in labels}
        self._memory = {}
        self._failed = set()
        self._texts = {}
        self._words_of = {}
        self._names = []
        self._points = 0
        for label in labels:
            text = pg.TextItem("", anchor=(0, 0.5), color=self._theme.plot_fg)
            text.setFont(bold_font())
            plot.addItem(text)
            self._texts[label] = text
        self._fit_names()
        plot.setYRange(-0.6, max(0, len(labels) - 1) + 0.6, padding=0)
        self.redraw()

    def set_baselines(self, baselines: dict[str, str]) -> None:
        """Each bar's change is against its own baseline (studies compared side by side); then ``redraw``."""
        self._baselines = dict(baselines)

    def set_size(self, label: str, size_bytes: int | None, failed: bool = False, is_baseline: bool = False) -> None:
        """The variant's file size (None: no bar); ``is_baseline`` marks the study's baseline, which
        the other bars are measured against (until then, the first bar is)."""
        if label not in self._sizes:
            return
        self._sizes[label] = size_bytes
        if is_baseline:
            self._baseline = label
        if failed:
            self._failed.add(label)
        else:
            self._failed.discard(label)

    def set_memory(self, label: str, memory: dict | None) -> None:
        """The variant's peak resident memory (its result's ``memory`` block; None: not measured); then ``redraw``."""
        if label in self._sizes:
            self._memory[label] = memory

    def redraw(self) -> None:
        unit, scale = byte_unit(max((v or 0) for v in self._sizes.values()) if self._sizes else 0)
        lengths = np.asarray([(self._sizes[label] or 0) / scale for label in self._labels], dtype=float)
        brushes = [pg.mkBrush(with_alpha(self._palette.hex(label), 230)) for label in self._labels]
        pens = [pg.mkPen(self._palette.hex(label)) for label in self._labels]
        # pyqtgraph's BarGraphItem raises on empty ``pens`` (UnboundLocalError): a study with no
        # variant, e.g. one stopped before its first from the history, has no bars and no colours.
        colours = {"brushes": brushes, "pens": pens} if self._labels else {"brushes": None, "pens": None}
        self._bars.setOpts(
            x0=np.zeros(len(lengths)), y=np.arange(len(lengths)), width=lengths, height=BAR_HEIGHT, **colours
        )
        self._scale = scale
        self._lengths = lengths
        self._end = axis_end(float(lengths.max()) if lengths.size else 0.0)
        self.getPlotItem().setXRange(0, self._end, padding=0)
        self._show_axes(bool(self._labels))
        self._words_of = {label: self._words(label) for label in self._labels}
        self._update_tooltip()
        self._show_memory()
        set_axis_label(self.getPlotItem(), "bottom", f"size on disk ({unit})", self._theme)
        self._fit_fonts()
        self._place_texts()

    def _show_memory(self) -> None:
        """Each variant's peak RAM on the right axis, facing its bar; the axis shows only once one is measured."""
        plot = self.getPlotItem()
        ticks = [(i, memory_words(self._memory.get(label))) for i, label in enumerate(self._labels)]
        shown = any(words for _, words in ticks)
        self._memory_ticks = [words for _, words in ticks] if shown else []
        if plot.getAxis("right").isVisible() != shown:  # showing an axis lays the plot out anew: only on a change
            plot.showAxis("right", shown)
        if not shown:
            return
        axis = plot.getAxis("right")
        axis.setTicks([ticks, []])
        axis.setTickFont(self.getPlotItem().getAxis("left").style.get("tickFont") or tick_font())
        set_axis_label(plot, "right", self._memory_title(), self._theme)
        font = axis.style.get("tickFont") or tick_font()
        widest = max((QFontMetricsF(font).horizontalAdvance(w) for _, w in ticks), default=0.0)
        axis.setWidth(int(math.ceil(widest)) + axis.style["tickTextOffset"][0] + 30)

    def _memory_title(self) -> str:
        """MEMORY_AXIS where the plot is tall enough for it (the title runs along the axis), else the short one."""
        font = QFont()
        font.setPointSize(LABEL_POINT_SIZE)
        height = self.getPlotItem().getViewBox().height()
        return MEMORY_AXIS if QFontMetricsF(font).horizontalAdvance(MEMORY_AXIS) <= height else MEMORY_AXIS_SHORT

    def memory_ticks(self) -> list[str]:
        """The peak RAM written facing each bar, in bar order ('' where not measured; [] when the axis is hidden)."""
        return list(self._memory_ticks)

    def _place_texts(self) -> None:
        """Each bar's text inside the bar where it fits, else just after it, else shorter (the change
        only) or in smaller type; where nothing fits, the tooltip alone has it."""
        if not self._labels or self._lengths.size != len(self._labels):
            return
        width_px = self.getPlotItem().getViewBox().width()
        if width_px <= 0:
            return
        px_per_unit = width_px / self._end
        for i, label in enumerate(self._labels):
            text = self._texts[label]
            fit = self._fit_text(label, float(self._lengths[i]) * px_per_unit, width_px, text)
            if fit is None:
                text.setText("")
                continue
            words, points, inside = fit
            text.setFont(bold_font(points))
            margin = PAD_PX / px_per_unit
            if inside:
                text.setAnchor((1, 0.5))
                text.setPos(self._lengths[i] - margin, i)
                text.setText(words, color=contrast_text(with_alpha(self._palette.hex(label), 255)))
            else:
                text.setAnchor((0, 0.5))
                text.setPos(self._lengths[i] + margin, i)
                text.setText(words, color=self._theme.plot_fg)

    def _fit_text(self, label: str, bar_px: float, width_px: float, text: pg.TextItem) -> tuple[str, int, bool] | None:
        """(words, point size, inside the bar) of the first way the bar's text fits; None: no way does."""
        full = self._words_of.get(label, "")
        if not full:
            return None
        choices = [full]
        if " · " in full:
            choices.append(full.split(" · ", 1)[1])  # the change alone: the axis gives the size
        margin = 2 * text.textItem.document().documentMargin()
        largest = self._points or 12
        # The whole text a little smaller before the change alone, and that before the smallest type.
        tries = [(full, p) for p in range(largest, max(MIN_POINT_SIZE, largest - 2) - 1, -1)]
        tries += [(words, p) for p in range(largest, MIN_POINT_SIZE - 1, -1) for words in choices[1:]]
        tries += [(full, p) for p in range(largest - 3, MIN_POINT_SIZE - 1, -1)]
        for words, points in tries:
            need = QFontMetricsF(bold_font(points)).horizontalAdvance(words) + margin
            if need + PAD_PX <= bar_px:
                return words, points, True
            if bar_px + PAD_PX + need <= width_px:
                return words, points, False
        return None

    def _words(self, label: str) -> str:
        base = self._baseline_of(label)
        return _bar_words(self._sizes[label], self._sizes.get(base), label in self._failed, base == label)

    def _baseline_of(self, label: str) -> str:
        if label in self._baselines:
            return self._baselines[label]
        return self._baseline if self._baseline is not None else self._labels[0]

    def _update_tooltip(self) -> None:
        lines = []
        for label in self._labels:
            memory = memory_tooltip(self._memory.get(label))
            if self._words_of.get(label) or memory:
                lines.append(f"{label}: {self._words_of.get(label, '')}" + (f"; {memory}" if memory else ""))
        self.setToolTip("\n".join(lines))

    def _view_resized(self, *_args) -> None:
        self._fit_fonts()
        self._place_texts()
        axis = self.getPlotItem().getAxis("right")
        if self._memory_ticks and axis.labelText != self._memory_title():
            set_axis_label(self.getPlotItem(), "right", self._memory_title(), self._theme)

    def resizeEvent(self, event) -> None:
        self._fit_names()  # before the layout: the names decide how wide the left axis is
        super().resizeEvent(event)

    def _fit_names(self) -> None:
        """Variant names on the left axis, shortened in the middle to at most NAME_SHARE of the width."""
        plot = self.getPlotItem()
        if not hasattr(self, "_labels") or plot is None:  # resize events arrive during construction and closing
            return
        axis = plot.getAxis("left")
        font = axis.style.get("tickFont") or tick_font()
        limit = max(MIN_NAME_PX, NAME_SHARE * self.width())
        metrics = QFontMetricsF(font)
        names = [short_name(label, metrics, limit) for label in self._labels]
        if names == self._names:
            return
        self._names = names
        axis.setTicks([list(enumerate(names)), []])
        # The axis grows to its widest name on its own, but never shrinks back: set it.
        widest = max((metrics.horizontalAdvance(n) for n in names), default=0.0)
        axis.setWidth(int(math.ceil(widest)) + axis.style["tickTextOffset"][0] + 8)

    def _fit_fonts(self) -> None:
        """Text no taller than its bar: many variants in a short chart get smaller type."""
        if not getattr(self, "_labels", None):  # resize events arrive during construction
            return
        bar_px = self.getPlotItem().getViewBox().height() / max(1, len(self._labels))
        points = max(MIN_POINT_SIZE, min(12, int(bar_px * 0.5)))
        if points == self._points:
            return
        self._points = points
        axis_font = tick_font()
        axis_font.setPointSize(min(points, 11))
        self.getPlotItem().getAxis("left").setTickFont(axis_font)
        self._names = []
        self._fit_names()

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        style_axes(plot, theme, grid=False)
        plot.showGrid(x=True, y=False, alpha=theme.grid_alpha)
        if self._labels:
            self._points = 0
            self.redraw()
        else:
            self._show_axes(False)

    def _show_axes(self, shown: bool) -> None:
        """The size and name axes, once there are variants: before a study, no made-up scale from 0 to 1. Only on
        a change: an axis shown again measures its labels and lays the plot out anew."""
        plot = self.getPlotItem()
        for side in ("left", "bottom"):
            if plot.getAxis(side).isVisible() != shown:
                plot.showAxis(side, shown)

    # --- reading -------------------------------------------------------
    def values(self) -> dict[str, int | None]:
        """Bytes per variant as drawn (None: no bar)."""
        return dict(self._sizes)

    def bar_lengths_bytes(self) -> np.ndarray:
        """The drawn bar lengths converted back to bytes."""
        return np.asarray(self._bars.opts["width"], dtype=float) * self._scale

    def axis_end_bytes(self) -> float:
        """Where the size axis ends, in bytes."""
        return float(self.getPlotItem().getViewBox().viewRange()[0][1]) * self._scale

    def memory_of(self, label: str) -> dict | None:
        """The ``memory`` block drawn for ``label`` (None: not measured)."""
        return self._memory.get(label)

    def bar_text(self, label: str) -> str:
        """The bar's whole text (size and change); the chart may show it shorter, or in the tooltip only."""
        return self._words_of.get(label, "")

    def drawn_text(self, label: str) -> str:
        """The text written beside (or on) the bar, as drawn."""
        return self._texts[label].toPlainText()

    def text_item(self, label: str) -> pg.TextItem:
        return self._texts[label]

    def names(self) -> list[str]:
        """The variant names on the left axis, as drawn."""
        return list(self._names)
