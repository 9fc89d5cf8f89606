"""Qt tests run offscreen, with private settings, fail on Qt warnings, and never leak a thread."""

from __future__ import annotations

import os

# Before anything imports Qt: the platform plugin is chosen when the QApplication starts.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fake_study.py and helpers

# Harmless noise of the offscreen platform, which has no window manager to size or raise top-level windows;
# anything else Qt warns about fails the test.
IGNORED_QT_MESSAGES = ("propagateSizeHints", "This plugin does not support raise()")
THREAD_GRACE_S = 1.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*IGNORED_QT_MESSAGES))


@pytest.fixture(scope="session", autouse=True)
def gui_thread_gc(qapp):
    """As in the application: cycles are collected in the GUI thread only."""
    from qtapp.threads.gui_gc import GuiThreadGarbageCollector

    collector = GuiThreadGarbageCollector()
    collector.start()
    yield
    # Collect the session's cycles here, from plain Python. Re-enabled automatic collection
    # would run them later, possibly inside a Qt object's destructor (the collector's own),
    # where deleting more Qt objects can deadlock on Qt's connection locks.
    collector.collect_all()
    collector.stop()


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path):
    """Recent files and other QSettings go to a temporary folder, not the user's."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp):
    """Fail a test that leaves a study thread or a background job running.

    Threads that are already on their way out get a moment (their "finished"
    signals are queued); anything still running after that is a leak. It is
    then stopped and waited for, so the next test starts clean.
    """
    yield
    from qtapp.threads.controller import live_threads
    from qtapp.threads.tasks import busy_runners

    deadline = time.monotonic() + THREAD_GRACE_S
    while (live_threads() or busy_runners()) and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    threads, runners = live_threads(), busy_runners()
    for thread in threads:
        thread.requestInterruption()
        thread.wait(30_000)
    for runner in runners:
        runner.wait(30_000)
    qapp.processEvents()
    if threads or runners:
        names = [t.objectName() for t in threads] + [f"TaskRunner({r.active()} jobs)" for r in runners]
        pytest.fail(f"the test left threads running: {', '.join(names)}")


@pytest.fixture
def app_look(qapp):
    """The application's own font size, palette and style sheet (what ``quantbench`` applies; its Fusion style
    is the offscreen platform's own), for the tests that measure what fits on a screen; the test session's
    previous font, palette and style sheet come back after."""
    from qtapp.window.theme import LIGHT, apply_theme

    before = (qapp.font(), qapp.palette(), qapp.styleSheet())
    apply_theme(qapp, LIGHT)
    yield
    font, palette, sheet = before
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)
    qapp.setPalette(palette)
