"""Start the window: ``quantbench [MODEL] [--demo] [--screenshot FILE.png] [--theme dark]``.

The options are defined and parsed by ``quantbench``'s one parser; ``qtapp.launcher`` hands
them over as a ``WindowOptions``.

``--screenshot`` runs the study (the demo's, or the one the panels describe),
renders the finished window to a PNG and exits; it works with
``QT_QPA_PLATFORM=offscreen``, so a headless machine can make the images.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from qtapp.models.window_options import WindowOptions

SCREENSHOT_MIN_SIZE = (1280, 800)
#: The application's id: the name of its desktop entry (packaging/<id>.desktop), metainfo and themed icon.
APP_ID = "org.quantbench.QuantBench"
#: Where the icon drawn for QuantBench is, in the icon theme's layout (packaging/render_icons.py renders the PNGs):
#: beside the code (a source tree, the bundle), else where a wheel installs it (pyproject's data-files).
ICON_THEME_DIRS = (
    Path(__file__).resolve().parents[1] / "resources" / "icons" / "hicolor",
    Path(sys.prefix) / "share" / "icons" / "hicolor",
)


def application_icon() -> QIcon:
    """QuantBench's icon: the scalable one and every rendered size; the desktop theme's if neither folder has it."""
    for folder in ICON_THEME_DIRS:
        icon = QIcon()
        for path in sorted(folder.glob(f"*/apps/{APP_ID}.*")):
            icon.addFile(str(path))
        if not icon.isNull():
            return icon
    return QIcon.fromTheme(APP_ID)


def _identify(app: QApplication) -> None:
    """Name the application: the settings' folder (organisation / application), the task bar's icon and the
    desktop entry a Wayland compositor matches the window with."""
    from core import quantbench_version

    app.setApplicationName("QuantBench")
    app.setOrganizationName("QuantBench")
    app.setApplicationVersion(quantbench_version())
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(application_icon())


def _window_size(requested: tuple[int, int]) -> tuple[int, int]:
    # Smaller than this, the panels and charts no longer fit side by side (and a screenshot would show that).
    return max(requested[0], SCREENSHOT_MIN_SIZE[0]), max(requested[1], SCREENSHOT_MIN_SIZE[1])


def main(options: WindowOptions) -> int:
    """Open the window; returns the process exit code (0 ok, 1 the study failed, 2 bad input).

    ``options`` come from ``quantbench``'s one parser: ``qtapp.launcher.main`` parses the command line."""
    if options.screenshot and not (options.demo or options.model):
        print("quantbench: --screenshot needs --demo or a model to study.", file=sys.stderr)
        return 2
    size = _window_size(options.size)
    if size != tuple(options.size):
        print(f"quantbench: the window opens at {size[0]}x{size[1]}, not {options.size[0]}x{options.size[1]}: "
              "smaller, its panels and charts no longer fit side by side.", file=sys.stderr)
    from core.memory_limit import ceiling_from_option
    from core.printable import printable
    from qtapp.threads.worker import set_study_limits

    try:
        set_study_limits(hang_timeout_s=options.hang_timeout, max_memory_bytes=ceiling_from_option(options.max_memory))
    except ValueError as exc:
        print(f"quantbench: {printable(exc)}", file=sys.stderr)
        return 2

    from qtapp.threads.gui_gc import GuiThreadGarbageCollector
    from qtapp.window.errors import ErrorReporter, enable_fault_log, setup_app_logging
    from qtapp.window.main_window import MainWindow
    from qtapp.window.theme import apply_theme, theme_named

    # First of all, so that even a native crash while the window is built leaves a trace.
    setup_app_logging()
    enable_fault_log()

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "quantbench"])
    assert isinstance(app, QApplication)
    _identify(app)
    # The window quits the loop itself once its study threads are done ("closed"). Qt's own quit
    # on the last window closing would arrive as a posted event, possibly after exec() returned,
    # and then end every event loop started later in this process (tests run main() in-process).
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    collector = GuiThreadGarbageCollector(app)
    collector.start()
    from qtapp.window import window_memory

    # A picture is made in the theme asked for (light by default), never in one a user left.
    theme = theme_named((options.theme or "light") if options.screenshot else window_memory.start_theme(options.theme))
    apply_theme(app, theme)
    # A study process that imports torch and onnxruntime while the user looks at the window:
    # Run then starts measuring at once instead of after seconds of imports.
    from core.engine.isolation import discard_prewarmed, prewarm
    from core.files.logs import log_dir

    prewarm(log_dir())
    window = MainWindow(theme)
    reporter = ErrorReporter(window)
    reporter.install()
    # The end of a study is a quiet moment for the full garbage collection the timer never does,
    # and for starting the next study process (the last one has ended), so the next Run is quick too.
    window.controller.running_changed.connect(lambda running: running or collector.collect_all())
    if not options.screenshot:  # a screenshot run quits after its study: nothing to start
        window.controller.threads_finished.connect(
            lambda: window.run_panel.isolated.isChecked() and not window.closing and prewarm(log_dir())
        )
    if options.max_time:
        window.run_panel.max_time.setValue(options.max_time)
    if options.screenshot:
        window.resize(*size)  # a picture is made at exactly the size asked for
    else:
        # As the user left it; the first time, the asked size fitted to the screen.
        window_memory.restore(window, size)
        window.closed.connect(lambda: window_memory.remember(window))
    window.closed.connect(app.quit)
    window.show()

    outcome = {"code": 0}
    if options.screenshot:
        _arrange_screenshot(window, options.screenshot, outcome)
    if options.demo:
        window.open_demo(start=True)
    elif options.model:
        window.model_panel.open_path(options.model, arch=options.arch)
        if options.screenshot:
            window.start_when_ready()
    try:
        code = app.exec()
    finally:
        # Normally the window only closes once its threads are done; make sure before Python tears down.
        window.controller.shutdown()
        window.tasks.wait()
        discard_prewarmed()
        reporter.uninstall()
        collector.stop()
        app.setQuitOnLastWindowClosed(quit_on_close)
    return outcome["code"] or code


SCREENSHOT_SETTLE_S = 60.0


def _arrange_screenshot(window, path: str, outcome: dict) -> None:
    """When the study ends (or cannot start), give the charts a moment to paint, save the window, quit."""

    deadline = {"at": 0.0}

    def done(running: bool) -> None:
        if running:
            return
        if window.last_failure:
            outcome["code"] = 1
        deadline["at"] = time.monotonic() + SCREENSHOT_SETTLE_S
        settle()

    def settle() -> None:
        # The panels may still be loading (the demo loads them after its study): wait for them,
        # up to SCREENSHOT_SETTLE_S, so the picture shows the whole window filled in.
        if window.tasks.pending() and time.monotonic() < deadline["at"]:
            QTimer.singleShot(100, settle)
        else:
            QTimer.singleShot(300, save)

    def refused(reason: str) -> None:
        print(f"quantbench: cannot run: {reason}", file=sys.stderr)
        outcome["code"] = 2
        save()

    def save() -> None:
        if not window.save_screenshot(path):
            print(f"quantbench: could not write {path}.", file=sys.stderr)
            outcome["code"] = 1
        window.close()  # closes (and quits) once the study's thread has wound down

    window.controller.running_changed.connect(done)
    window.start_refused.connect(refused)
