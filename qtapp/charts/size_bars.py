"""Size on disk of every variant as horizontal bars, with the saving written on each.

One BarGraphItem holds all bars and is updated with ``setOpts``; the text
items beside the bars are created once per study.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from core.reports.format import byte_unit, format_bytes, format_size_change
from qtapp.charts.export import install_export_menu
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import bold_font, contrast_text, set_axis_label, style_axes, tick_font, with_alpha
from qtapp.window.theme import Theme

BAR_HEIGHT = 0.62


def _bar_words(index: int, size: int | None, baseline: int | None, failed: bool) -> str:
    if size is None:
        return "failed" if failed else ""
    if index == 0:
        return f"{format_bytes(size)} · baseline"
    return f"{format_bytes(size)} · {format_size_change(size, baseline, typographic=True)}"


class SizeBars(pg.PlotWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False)
        install_export_menu(self, "size-on-disk")
        self._palette = palette
        self._theme = theme
        self._labels: list[str] = []
        self._sizes: dict[str, int | None] = {}
        self._failed: set[str] = set()
        self._texts: dict[str, pg.TextItem] = {}
        self._baselines: dict[str, str] = {}  # label -> its baseline, where not the first bar (a comparison)
        self._scale = 1e6
        self._points = 0  # font size of the bar texts
        self._bars = pg.BarGraphItem(x0=[], y=[], height=BAR_HEIGHT, width=[])
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getViewBox().invertY(True)
        plot.getAxis("bottom").enableAutoSIPrefix(False)
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
        self._sizes = {label: None for label in labels}
        self._failed = set()
        self._texts = {}
        self._points = 0
        for label in labels:
            text = pg.TextItem("", anchor=(0, 0.5), color=self._theme.plot_fg)
            text.setFont(bold_font())
            plot.addItem(text)
            self._texts[label] = text
        plot.getAxis("left").setTicks([[(i, label) for i, label in enumerate(labels)], []])
        plot.setYRange(-0.6, max(0, len(labels) - 1) + 0.6, padding=0)
        self.redraw()

    def set_baselines(self, baselines: dict[str, str]) -> None:
        """Each bar's change is against its own baseline (studies compared side by side); then ``redraw``."""
        self._baselines = dict(baselines)

    def set_size(self, label: str, size_bytes: int | None, failed: bool = False) -> None:
        if label not in self._sizes:
            return
        self._sizes[label] = size_bytes
        if failed:
            self._failed.add(label)
        else:
            self._failed.discard(label)

    def redraw(self) -> None:
        unit, scale = byte_unit(max((v or 0) for v in self._sizes.values()) if self._sizes else 0)
        lengths = np.asarray([(self._sizes[label] or 0) / scale for label in self._labels], dtype=float)
        brushes = [pg.mkBrush(with_alpha(self._palette.hex(label), 230)) for label in self._labels]
        pens = [pg.mkPen(self._palette.hex(label)) for label in self._labels]
        # pyqtgraph's BarGraphItem raises on empty ``pens`` (UnboundLocalError): a study with no
        # variant, e.g. one stopped before its first from the history, has no bars and no colours.
        colours = {"brushes": brushes, "pens": pens} if self._labels else {"brushes": None, "pens": None}
        self._bars.setOpts(x0=np.zeros(len(lengths)), y=np.arange(len(lengths)), width=lengths, height=BAR_HEIGHT,
                           **colours)
        self._scale = scale
        self._lengths = lengths
        self._place_texts()
        set_axis_label(self.getPlotItem(), "bottom", f"size on disk ({unit})", self._theme)
        self._fit_fonts()

    def _place_texts(self) -> None:
        """Each bar's text inside the bar when it fits there, else just after it; the x-range
        leaves room for the texts outside (it depends on the pixel width, so resizing re-runs it)."""
        lengths = getattr(self, "_lengths", None)
        if lengths is None or not self._labels:
            return
        top = float(lengths.max()) if lengths.size and lengths.max() > 0 else 1.0
        width_px = max(50.0, self.getPlotItem().getViewBox().width())
        metrics = QFontMetricsF(bold_font(self._points or 12))
        words = [self._words(i, label) for i, label in enumerate(self._labels)]
        pad_px = 6.0
        text_px = [metrics.horizontalAdvance(w) + 2 * pad_px if w else 0.0 for w in words]
        # A text goes inside its bar if it fits there; outside texts need the x-range to reach past
        # their bar's end: span >= length / (1 - text share of the width). Widening the range
        # shortens every bar, which may push more texts outside, so settle it in a few rounds.
        span = top
        for _ in range(len(words) + 1):
            inside = [text_px[i] <= lengths[i] / span * width_px for i in range(len(words))]
            wanted = top
            for i in range(len(words)):
                if not inside[i] and text_px[i]:
                    share = min(0.9, text_px[i] / width_px)
                    wanted = max(wanted, lengths[i] / (1.0 - share))
            if wanted <= span:
                break
            span = wanted
        unit_px = span / width_px
        for i, label in enumerate(self._labels):
            text = self._texts[label]
            if inside[i]:
                text.setAnchor((1, 0.5))
                text.setPos(lengths[i] - pad_px * unit_px, i)
                text.setText(words[i], color=contrast_text(with_alpha(self._palette.hex(label), 255)))
            else:
                text.setAnchor((0, 0.5))
                text.setPos(lengths[i] + pad_px * unit_px, i)
                text.setText(words[i], color=self._theme.plot_fg)
        self.getPlotItem().setXRange(0, span * 1.02, padding=0)

    def _words(self, index: int, label: str) -> str:
        base = self._baselines.get(label, self._labels[0])
        index = 0 if base == label else max(index, 1)
        return _bar_words(index, self._sizes[label], self._sizes.get(base), label in self._failed)

    def _view_resized(self, *_args) -> None:
        self._fit_fonts()
        self._place_texts()

    def _fit_fonts(self) -> None:
        """Text no taller than its bar: many variants in a short chart get smaller type."""
        if not getattr(self, "_labels", None):  # resize events arrive during construction
            return
        bar_px = self.getPlotItem().getViewBox().height() / max(1, len(self._labels))
        points = max(7, min(12, int(bar_px * 0.5)))
        if points == self._points:
            return
        self._points = points
        for text in self._texts.values():
            text.setFont(bold_font(points))
        self._place_texts()
        axis_font = tick_font()
        axis_font.setPointSize(min(points, 11))
        self.getPlotItem().getAxis("left").setTickFont(axis_font)

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
