"""Size on disk of every variant as horizontal bars, with the saving written on each.

One BarGraphItem holds all bars and is updated with ``setOpts``; the text
items beside the bars are created once per study.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from qtapp.charts.style import bold_font, set_axis_label, style_axes, with_alpha
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


class SizeBars(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent)
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._sizes: dict[str, int | None] = {}
        self._failed: set[str] = set()
        self._texts: dict[str, pg.TextItem] = {}
        self._bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
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
        mb = [((self._sizes[label] or 0) / 1e6) for label in self._labels]
        brushes = [pg.mkBrush(with_alpha(self._palette.hex(label), 230)) for label in self._labels]
        pens = [pg.mkPen(self._palette.hex(label)) for label in self._labels]
        self._bars.setOpts(x0=np.zeros(len(mb)), y=np.arange(len(mb)), width=np.asarray(mb), height=BAR_HEIGHT,
                           brushes=brushes, pens=pens)
        top = max(mb) if mb and max(mb) > 0 else 1.0
        baseline = self._sizes.get(self._labels[0]) if self._labels else None
        for i, label in enumerate(self._labels):
            size = self._sizes[label]
            if label in self._failed and size is None:
                words = "failed"
            elif size is None:
                words = ""
            elif i == 0:
                words = f"{format_bytes(size)}  baseline"
            else:
                words = f"{format_bytes(size)}  {reduction_text(size, baseline)}"
            self._texts[label].setText(words, color=self._theme.plot_fg)
            self._texts[label].setPos(mb[i] + top * 0.02, i)
        # Room on the right for the longest text.
        self.getPlotItem().setXRange(0, top * 1.45, padding=0)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        set_axis_label(plot, "bottom", "size on disk (MB)", theme)
        style_axes(plot, theme, grid=False)
        plot.showGrid(x=True, y=False, alpha=theme.grid_alpha)
        for text in self._texts.values():
            text.setColor(theme.plot_fg)

    # --- reading -------------------------------------------------------
    def values(self) -> dict[str, int | None]:
        """Bytes per variant as drawn (None: no bar)."""
        return dict(self._sizes)

    def bar_lengths_mb(self) -> np.ndarray:
        return np.asarray(self._bars.opts["width"], dtype=float)

    def bar_text(self, label: str) -> str:
        return self._texts[label].toPlainText()
