"""A page that scrolls as a whole: a panel's content taller (or wider) than the room it is given."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget


def scrolling(page: QWidget, parent: QWidget | None = None) -> QScrollArea:
    """``page`` in a frameless scroll area that resizes it to the visible width."""
    area = QScrollArea(parent)
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def fill_with_scrolling(owner: QWidget, page: QWidget) -> QScrollArea:
    """Make ``page``, scrolling, the whole of ``owner`` (no margins); returns the scroll area."""
    area = scrolling(page, owner)
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return area
