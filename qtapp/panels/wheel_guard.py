"""Scrolling the setup column never changes a setting on its way past.

A spin box or combo box under the pointer takes the wheel only once it has focus (a click or
Tab); otherwise the wheel goes on to the scrolling column, as it does over a label.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget


class _WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # not accepted: Qt passes it on to the parents (the scroll area)
            return True  # and the box itself never sees it
        return False


_GUARD: _WheelGuard | None = None


def guard_wheel(root: QWidget) -> None:
    """Make every spin box and combo box under ``root`` take the wheel only when focused (idempotent)."""
    global _GUARD
    if _GUARD is None:
        _GUARD = _WheelGuard()
    for box in root.findChildren(QAbstractSpinBox) + root.findChildren(QComboBox):
        box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone does not give it focus
        box.removeEventFilter(_GUARD)
        box.installEventFilter(_GUARD)
