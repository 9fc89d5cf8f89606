"""The window fits the screen it opens on, and comes back as the user left it.

The first time, the window takes the size it was asked for, shrunk to fit the screen's
available area (a 1600×1000 window on a 1280×800 laptop would put Run off screen). After
that it reopens with the geometry, the dock layout and every splitter as they were when it
closed, kept in the user's QSettings.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

#: Share of the available screen a new window may take, leaving room for the task bar and decorations.
SCREEN_SHARE = 0.95
_GROUP = "window"


def fitted_size(requested: tuple[int, int], available: QRect | None) -> tuple[int, int]:
    """``requested``, shrunk where needed to ``SCREEN_SHARE`` of the screen's ``available`` area."""
    if available is None or available.isEmpty():
        return requested
    return (
        min(requested[0], int(available.width() * SCREEN_SHARE)),
        min(requested[1], int(available.height() * SCREEN_SHARE)),
    )


def _splitters(window: QMainWindow) -> list[QSplitter]:
    # findChildren walks the widget tree in creation order, which is the same every run.
    return window.findChildren(QSplitter)


def remember(window: QMainWindow, settings: QSettings | None = None) -> None:
    """Keep the window's geometry, docks and splitters for the next start."""
    settings = settings or QSettings()
    settings.beginGroup(_GROUP)
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("state", window.saveState())
    settings.setValue("splitters", [s.saveState() for s in _splitters(window)])
    settings.endGroup()
    settings.sync()


def restore(window: QMainWindow, requested: tuple[int, int], settings: QSettings | None = None) -> bool:
    """Put the window back as it was remembered; else size it to ``requested`` fitted to its screen.

    Returns whether a remembered layout was applied."""
    settings = settings or QSettings()
    settings.beginGroup(_GROUP)
    geometry, state, splitters = settings.value("geometry"), settings.value("state"), settings.value("splitters")
    settings.endGroup()
    if isinstance(geometry, QByteArray) and window.restoreGeometry(geometry):
        if isinstance(state, QByteArray):
            window.restoreState(state)
        if isinstance(splitters, list):
            for splitter, saved in zip(_splitters(window), splitters, strict=False):  # a newer layout may add some
                if isinstance(saved, QByteArray):
                    splitter.restoreState(saved)
        return True
    screen = window.screen()
    window.resize(*fitted_size(requested, screen.availableGeometry() if screen is not None else None))
    return False
