"""One colour per variant, the same in every chart, table and legend, and in the HTML report.

The colours themselves are written once, in ``core.reports.chart_data``; this only remembers
which label got which, in the order the study announced them.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

from core.reports.chart_data import BASELINE_COLORS, variant_color, variant_colors

BASELINE_COLOR = BASELINE_COLORS[0]


class VariantPalette:
    """Maps variant labels to colours in the order the study announced them."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def reset(self, labels: list[str]) -> None:
        """Assign colours for a new study; the first label is the baseline."""
        self._colors = variant_colors(labels)

    def hex(self, label: str) -> str:
        if label not in self._colors:
            # A label the study did not announce (should not happen): give it the next free colour.
            used = len(self._colors)
            self._colors[label] = variant_color(max(0, used - 1))
        return self._colors[label]

    def color(self, label: str, alpha: int = 255) -> QColor:
        c = QColor(self.hex(label))
        c.setAlpha(alpha)
        return c

    def labels(self) -> list[str]:
        return list(self._colors)
