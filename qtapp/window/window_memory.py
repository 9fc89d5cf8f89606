"""The window fits the screen it opens on, and comes back as the user left it.

The first time, the window takes the size it was asked for, shrunk to fit the screen's
available area (a 1600×1000 window on a 1280×800 laptop would put Run off screen). After
that it reopens with the geometry, the dock layout, every splitter, the History dock's
height and the theme chosen in View ▸ as they were when it closed, kept in the user's
QSettings. A ``--theme`` on the command line wins over the remembered one for that start
(``start_theme``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QRect, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from qtapp.window.theme import LIGHT, THEMES

if TYPE_CHECKING:
    from qtapp.window.main_window import MainWindow

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


def remember(window: MainWindow, settings: QSettings | None = None) -> None:
    """Keep the window's geometry, docks, splitters, History height and theme for the next start."""
    settings = settings or QSettings()
    settings.beginGroup(_GROUP)
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("state", window.saveState())
    settings.setValue("splitters", [s.saveState() for s in _splitters(window)])
    settings.setValue("history_height", window.history.dock_height())
    settings.setValue("theme", window.theme.name)
    settings.endGroup()
    settings.sync()


def remembered_theme(settings: QSettings | None = None) -> str | None:
    """The theme the window had when it last closed (None: none remembered)."""
    settings = settings or QSettings()
    name = settings.value(f"{_GROUP}/theme")
    return name if isinstance(name, str) and name in THEMES else None


def start_theme(option: str | None, settings: QSettings | None = None) -> str:
    """The theme to open with: ``option`` (``--theme``) when given, else the remembered one, else light."""
    return option or remembered_theme(settings) or LIGHT.name


def restore(window: MainWindow, requested: tuple[int, int], settings: QSettings | None = None) -> bool:
    """Put the window back as it was remembered; else size it to ``requested`` fitted to its screen.

    Returns whether a remembered layout was applied. (The theme is chosen before the window is
    made: ``start_theme``.)"""
    settings = settings or QSettings()
    settings.beginGroup(_GROUP)
    geometry, state, splitters = settings.value("geometry"), settings.value("state"), settings.value("splitters")
    history_height = settings.value("history_height")
    settings.endGroup()
    if isinstance(history_height, (int, str)) and str(history_height).isdigit():  # else the default height
        window.history.set_dock_height(int(history_height))
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
