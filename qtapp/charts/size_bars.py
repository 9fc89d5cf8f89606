"""Size on disk of every variant as horizontal bars, with the saving written on each.

One BarGraphItem holds all bars and is updated with ``setOpts``; the text
items beside the bars are created once per study.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from qtapp.charts.style import bold_font, contrast_text, set_axis_label, style_axes, with_alpha
from qtapp.palette import VariantPalette
from qtapp.theme import Theme

BAR_HEIGHT = 0.62


def format_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


def reduction_text(size: int, baseline: int | None) -> str:
    """'−74 %' (smaller), '+3 %' (larger) or 'baseline'."""
    if baseline is None or baseline <= 0:
        return ""
    change = size / baseline - 1.0
    if abs(change) < 0.005:
        return "same size"
    return f"{'−' if change < 0 else '+'}{abs(change) * 100:.0f} %"


def _unit_for(largest: float) -> tuple[str, float]:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if largest >= scale:
            return unit, scale
    return "bytes", 1.0


def _bar_words(index: int, size: int | None, baseline: int | None, failed: bool) -> str:
    if size is None:
        return "failed" if failed else ""
    if index == 0:
        return f"{format_bytes(size)} · baseline"
    return f"{format_bytes(size)} · {reduction_text(size, baseline)}"


class SizeBars(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False)
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._sizes: dict[str, int | None] = {}
        self._failed: set[str] = set()
        self._texts: dict[str, pg.TextItem] = {}
        self._scale = 1e6
        self._bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getViewBox().invertY(True)
        plot.getAxis("bottom").enableAutoSIPrefix(False)
        plot.addItem(self._bars)
        self.apply_theme(theme)

    def set_variants(self, labels: list[str]) -> None:
        plot = self.getPlotItem()
        for text in self._texts.values():
            plot.removeItem(text)
        self._labels = list(labels)
        self._sizes = {label: None for label in labels}
        self._failed = set()
        self._texts = {}
        for i, label in enumerate(labels):
            text = pg.TextItem("", anchor=(0, 0.5), color=self._theme.plot_fg)
            text.setFont(bold_font())
            plot.addItem(text)
            self._texts[label] = text
        plot.getAxis("left").setTicks([[(i, label) for i, label in enumerate(labels)], []])
        plot.setYRange(-0.6, max(0, len(labels) - 1) + 0.6, padding=0)
        self.redraw()

    def set_size(self, label: str, size_bytes: int | None, failed: bool = False) -> None:
        if label not in self._sizes:
            return
        self._sizes[label] = size_bytes
        if failed:
            self._failed.add(label)
        else:
            self._failed.discard(label)

    def redraw(self) -> None:
        unit, scale = _unit_for(max((v or 0) for v in self._sizes.values()) if self._sizes else 0)
        lengths = np.asarray([(self._sizes[label] or 0) / scale for label in self._labels], dtype=float)
        brushes = [pg.mkBrush(with_alpha(self._palette.hex(label), 230)) for label in self._labels]
        pens = [pg.mkPen(self._palette.hex(label)) for label in self._labels]
        self._bars.setOpts(x0=np.zeros(len(lengths)), y=np.arange(len(lengths)), width=lengths, height=BAR_HEIGHT,
                           brushes=brushes, pens=pens)
        self._scale = scale
        top = float(lengths.max()) if lengths.size and lengths.max() > 0 else 1.0
        baseline = self._sizes.get(self._labels[0]) if self._labels else None
        for i, label in enumerate(self._labels):
            size = self._sizes[label]
            text = self._texts[label]
            words = _bar_words(i, size, baseline, label in self._failed)
            # Long bars carry their text inside (in a colour that reads on the bar), short ones beside.
            inside = lengths[i] > 0.55 * top
            if inside:
                text.setAnchor((1, 0.5))
                text.setPos(lengths[i] - top * 0.015, i)
                text.setText(words, color=contrast_text(with_alpha(self._palette.hex(label), 255)))
            else:
                text.setAnchor((0, 0.5))
                text.setPos(lengths[i] + top * 0.015, i)
                text.setText(words, color=self._theme.plot_fg)
        plot = self.getPlotItem()
        set_axis_label(plot, "bottom", f"size on disk ({unit})", self._theme)
        plot.setXRange(0, top * 1.04, padding=0)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        style_axes(plot, theme, grid=False)
        plot.showGrid(x=True, y=False, alpha=theme.grid_alpha)
        if self._labels:
            self.redraw()

    # --- reading -------------------------------------------------------
    def values(self) -> dict[str, int | None]:
        """Bytes per variant as drawn (None: no bar)."""
        return dict(self._sizes)

    def bar_lengths_bytes(self) -> np.ndarray:
        """The drawn bar lengths converted back to bytes."""
        return np.asarray(self._bars.opts["width"], dtype=float) * self._scale

    def bar_text(self, label: str) -> str:
        return self._texts[label].toPlainText()
