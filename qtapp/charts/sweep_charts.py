"""Line charts of the sweeps (``core.tune.sweeps``): one line per calibration method or per variant against
the sample count or the batch size (log-2 axis), the best batch ringed, a latency limit dashed.

The lines come from ``core.tune.sweep_report``'s series functions, the same the HTML report draws, and
are updated in place (``setData``) as points arrive.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt

from qtapp.charts.export import install_export_menu
from qtapp.charts.style import bold_font, set_axis_label, style_axes
from qtapp.window.theme import Theme

#: Lines that lie on top of each other stay told apart by their dashes (as in the HTML report).
PEN_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
POINT_PX = 8
RING_PX = 20


class SweepLines(pg.PlotWidget):
    """One chart: y against a power-of-two x (sample count or batch size), a line per name."""

    def __init__(self, title: str, x_title: str, y_title: str, theme: Theme, export_name: str, parent=None) -> None:
        super().__init__(parent=parent, enableMenu=False)
        install_export_menu(self, export_name)
        self._titles = (title, x_title, y_title)
        self._theme = theme
        self._lines: dict[str, list[tuple[float, float]]] = {}
        self._colors: dict[str, str] = {}
        self._rings: dict[str, tuple[float, float]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setLogMode(x=True, y=False)
        plot.addLegend(offset=(-10, 10))
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        self._ring_item = pg.ScatterPlotItem(pxMode=True)
        self._limit = pg.InfiniteLine(angle=0, movable=False, label="limit {value:g} ms",
                                      labelOpts={"position": 0.9, "anchors": [(1, 1), (1, 1)]})
        self._limit.setVisible(False)
        plot.addItem(self._ring_item)
        plot.addItem(self._limit)
        self.apply_theme(theme)

    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        plot = self.getPlotItem()
        plot.setTitle(self._titles[0], color=theme.plot_fg, bold=True)
        set_axis_label(plot, "bottom", self._titles[1], theme)
        set_axis_label(plot, "left", self._titles[2], theme)
        style_axes(plot, theme)
        self._limit.setPen(pg.mkPen(theme.bad, width=2, style=Qt.PenStyle.DashLine))
        self._limit.label.setColor(theme.bad)
        self._limit.label.setFont(bold_font(9))
        self.set_lines(self._lines, self._colors, self._rings)

    def set_lines(
        self, lines: dict[str, list[tuple[float, float]]], colors: dict[str, str],
        rings: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        """Draw ``lines`` (name -> [(x, y)]) in ``colors``; ``rings`` circles one point per name (the best)."""
        self._lines, self._colors, self._rings = dict(lines), dict(colors), dict(rings or {})
        plot = self.getPlotItem()
        for name in [n for n in self._curves if n not in lines]:
            plot.removeItem(self._curves.pop(name))
        for i, (name, points) in enumerate(lines.items()):
            color = colors.get(name, self._theme.plot_fg)
            pen = pg.mkPen(color, width=2, style=PEN_STYLES[i % len(PEN_STYLES)])
            curve = self._curves.get(name)
            if curve is None:
                curve = plot.plot([], [], name=name)
                self._curves[name] = curve
            curve.setData([p[0] for p in points], [p[1] for p in points], pen=pen, symbol="o",
                          symbolSize=POINT_PX, symbolBrush=color, symbolPen=pg.mkPen(color))
        self._ring_item.setData([
            {"pos": (math.log10(x), y), "size": RING_PX, "brush": pg.mkBrush(None),
             "pen": pg.mkPen(colors.get(name, self._theme.plot_fg), width=3)}
            for name, (x, y) in self._rings.items()
        ])

    def set_limit(self, value: float | None) -> None:
        """A dashed horizontal line at ``value`` (None: none)."""
        self._limit.setVisible(value is not None)
        if value is not None:
            self._limit.setValue(value)
            self._limit.label.setFormat(f"limit {value:g} ms")

    # --- reading (tests) ---------------------------------------------------
    def line_points(self) -> dict[str, list[tuple[float, float]]]:
        """The drawn lines, in data units."""
        out = {}
        for name, curve in self._curves.items():
            xs, ys = curve.getData()
            # In log mode the curve reports log10(x): back to the data's own units.
            pairs = [] if xs is None else zip(xs, ys, strict=True)
            out[name] = [(round(10 ** float(x), 6), float(y)) for x, y in pairs]
        return out

    def ring_points(self) -> list[tuple[float, float]]:
        return [(round(10 ** float(p.pos().x()), 6), float(p.pos().y())) for p in self._ring_item.points()]

    def limit(self) -> float | None:
        return float(self._limit.value()) if self._limit.isVisible() else None
