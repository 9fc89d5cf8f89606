"""Shared look of every chart: fonts big enough for a projector, theme colours."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF

from qtapp.window.theme import Theme

TICK_POINT_SIZE = 11
LABEL_POINT_SIZE = 12
TITLE_POINT_SIZE = 12


def tick_font() -> QFont:
    f = QFont()
    f.setPointSize(TICK_POINT_SIZE)
    return f


def bold_font(point_size: int = TITLE_POINT_SIZE) -> QFont:
    f = QFont()
    f.setPointSize(point_size)
    f.setBold(True)
    return f


def style_axes(plot: pg.PlotItem, theme: Theme, grid: bool = True) -> None:
    """Axis pens, tick fonts and grid of ``plot`` in ``theme``'s colours."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(theme.plot_fg, width=1))
        axis.setTextPen(pg.mkPen(theme.plot_fg))
        axis.setTickFont(tick_font())
        if axis.label is not None and axis.labelText:
            style = {"color": theme.plot_fg, "font-size": f"{LABEL_POINT_SIZE}pt"}
            axis.setLabel(axis.labelText, units=axis.labelUnits, **style)
    if grid:
        plot.showGrid(x=True, y=True, alpha=theme.grid_alpha)


def set_axis_label(plot: pg.PlotItem, side: str, text: str, theme: Theme) -> None:
    plot.setLabel(side, text, **{"color": theme.plot_fg, "font-size": f"{LABEL_POINT_SIZE}pt"})


def with_alpha(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def contrast_text(color: QColor) -> str:
    """Black or white, whichever reads better on ``color``."""
    luminance = 0.2126 * color.redF() + 0.7152 * color.greenF() + 0.0722 * color.blueF()
    return "#111111" if luminance > 0.55 else "#ffffff"


def short_name(label: str, metrics: QFontMetricsF, limit: float) -> str:
    """``label`` in at most ``limit`` pixels, shortened with "…". A compared study's "study / variant"
    keeps the variant whole where it can and shortens the study's name ("3f2a… / ort-int8-static")."""
    if metrics.horizontalAdvance(label) <= limit:
        return label
    head, sep, tail = label.partition(" / ")
    if sep:
        room = limit - metrics.horizontalAdvance(sep + tail)
        if room >= metrics.horizontalAdvance("…"):  # the variant matters more than which study
            return metrics.elidedText(head, Qt.TextElideMode.ElideRight, room) + sep + tail
    return metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, limit)
