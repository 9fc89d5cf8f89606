"""Numbers written in the cells of a matrix image, all painted by one graphics item.

One item per matrix instead of one TextItem per cell: a 10x10 matrix would
otherwise add a hundred items to build, lay out and update. The text keeps its
point size whatever the zoom, because it is drawn in device coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

MIN_POINT_SIZE = 7


class CellLabels(pg.GraphicsObject):
    def __init__(self, font: QFont) -> None:
        super().__init__()
        self._font = font
        self._texts: list[list[str]] = []
        self._colors: list[list[QColor]] = []
        self._rows = self._cols = 0

    def set_cells(self, texts: list[list[str]], colors: list[list[QColor]]) -> None:
        """Text and colour per cell; cell (r, c) is centred on x=c, y=r."""
        self.prepareGeometryChange()
        self._texts, self._colors = texts, colors
        self._rows = len(texts)
        self._cols = len(texts[0]) if texts else 0
        self.update()

    def set_font(self, font: QFont) -> None:
        self._font = font
        self.update()

    def _fitted_font(self, cell_w: float, cell_h: float) -> QFont | None:
        """The item's font, made smaller until the widest number fits a cell; None below 7 pt."""
        widest = max((t for row in self._texts for t in row), key=len, default="")
        font = QFont(self._font)
        size = font.pointSizeF()
        while size >= MIN_POINT_SIZE:
            font.setPointSizeF(size)
            metrics = QFontMetricsF(font)
            if metrics.horizontalAdvance(widest) <= cell_w - 2 and metrics.height() <= cell_h:
                return font
            size -= 1
        return None

    def text(self, row: int, col: int) -> str:
        return self._texts[row][col] if self._texts else ""

    def color(self, row: int, col: int) -> QColor:
        """The colour of the number in cell (row, col), chosen from the cell's own colour."""
        return QColor(self._colors[row][col])

    def boundingRect(self) -> QRectF:
        return QRectF(-0.5, -0.5, max(self._cols, 1), max(self._rows, 1))

    def paint(self, painter: QPainter, *_args) -> None:
        if not self._texts:
            return
        transform = painter.transform()
        cell = transform.mapRect(QRectF(0, 0, 1, 1))
        font = self._fitted_font(abs(cell.width()), abs(cell.height()))
        if font is None:
            return  # cells too small to hold a readable number
        painter.save()
        painter.resetTransform()
        painter.setFont(font)
        half_w, half_h = abs(cell.width()) / 2, abs(cell.height()) / 2
        flags = int(Qt.AlignmentFlag.AlignCenter)
        for r, row in enumerate(self._texts):
            for c, text in enumerate(row):
                if not text:
                    continue
                centre = transform.map(QPointF(c, r))
                painter.setPen(self._colors[r][c])
                painter.drawText(QRectF(centre.x() - half_w, centre.y() - half_h, 2 * half_w, 2 * half_h), flags, text)
        painter.restore()


def contrast_colors(cell_colors: np.ndarray) -> list[list[QColor]]:
    """Black or white text for each (rows, cols, 3|4) uint8 cell colour, whichever reads better."""
    rgb = cell_colors[..., :3].astype(np.float64) / 255.0
    luminance = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    dark, light = QColor("#111111"), QColor("#ffffff")
    return [[dark if value > 0.55 else light for value in row] for row in luminance]
