"""One colour per variant, the same in every chart, table and legend.

The order is Okabe-Ito's colour-blind-safe set (yellow moved to the end, it
reads badly on white), so the baseline and the first few variants stay
distinguishable for everyone and on a washed-out projector.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

BASELINE_COLOR = "#7a7a7a"
_VARIANT_COLORS = (
    "#0072b2",  # blue
    "#e69f00",  # orange
    "#009e73",  # bluish green
    "#d55e00",  # vermillion
    "#cc79a7",  # reddish purple
    "#56b4e9",  # sky blue
    "#8c564b",  # brown
    "#f0e442",  # yellow
)


def variant_color(index: int) -> str:
    """The colour of the ``index``-th variant after the baseline.

    The fixed set first; past it (a comparison of several studies) hues spaced by
    the golden angle at a mid lightness, so no two variants share a colour."""
    if index < len(_VARIANT_COLORS):
        return _VARIANT_COLORS[index]
    hue = (index - len(_VARIANT_COLORS)) * 137.508 + 15.0
    return QColor.fromHsl(int(hue) % 360, 170, 105).name()


class VariantPalette:
    """Maps variant labels to colours in the order the study announced them."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def reset(self, labels: list[str]) -> None:
        """Assign colours for a new study; the first label is the baseline."""
        self._colors = {}
        for i, label in enumerate(labels):
            self._colors[label] = BASELINE_COLOR if i == 0 else variant_color(i - 1)

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
