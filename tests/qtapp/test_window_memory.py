"""The window fits a small screen the first time, and reopens as the user left it (issue 14, item 14)."""

from __future__ import annotations

from helpers import close_window
from PySide6.QtCore import QRect, QSettings

from qtapp.window import window_memory
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


def test_a_new_window_is_fitted_to_a_1280x800_screen():
    assert window_memory.fitted_size((1600, 1000), QRect(0, 0, 1280, 800)) == (1216, 760)
    assert window_memory.fitted_size((1600, 1000), QRect(0, 0, 2560, 1440)) == (1600, 1000)
    assert window_memory.fitted_size((1600, 1000), None) == (1600, 1000)


def test_geometry_and_splitters_come_back_as_they_were_left(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "memory.ini"), QSettings.Format.IniFormat)
    first = MainWindow(LIGHT)
    assert not window_memory.restore(first, (800, 700), settings)  # nothing remembered yet
    first.show()
    first.resize(800, 700)  # the offscreen screen is 800x800 (the window keeps its minimum width)
    qtbot.waitExposed(first)
    first.splitter.setSizes([300, 600])
    left = first.splitter.sizes()
    window_memory.remember(first, settings)
    close_window(qtbot, first)

    second = MainWindow(LIGHT)
    assert window_memory.restore(second, (1600, 1000), settings)
    second.show()
    qtbot.waitExposed(second)
    assert second.height() == 700
    assert second.splitter.sizes() == left
    close_window(qtbot, second)
