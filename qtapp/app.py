"""Start the window: ``quantbench [MODEL] [--demo] [--screenshot FILE.png] [--theme dark]``.

``--screenshot`` runs the study (the demo's, or the one the panels describe),
renders the finished window to a PNG and exits; it works with
``QT_QPA_PLATFORM=offscreen``, so a headless machine can make the images.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

SCREENSHOT_MIN_SIZE = (1280, 800)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quantbench", description="Open the QuantBench window.")
    parser.add_argument("model", nargs="?", help="a model file to open")
    parser.add_argument("--arch", help="architecture of a PyTorch state dict, e.g. torchvision:resnet18")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo and start its study")
    parser.add_argument("--screenshot", metavar="FILE", help="run the study, save the finished window as a PNG, exit")
    parser.add_argument("--size", default="1600x1000", help="window size for --screenshot, WIDTHxHEIGHT (min 1280x800)")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--max-time", type=float, metavar="S", help="time each variant for at most S seconds")
    from core.cli.main import add_safety_options

    add_safety_options(parser)
    return parser.parse_args(list(argv) if argv is not None else None)


def _window_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"quantbench: --size {text!r}: write it as WIDTHxHEIGHT, e.g. 1600x1000.") from None
    return max(w, SCREENSHOT_MIN_SIZE[0]), max(h, SCREENSHOT_MIN_SIZE[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window; returns the process exit code (0 ok, 1 the study failed, 2 bad input)."""
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.screenshot and not (args.demo or args.model):
        print("quantbench: --screenshot needs --demo or a model to study.", file=sys.stderr)
        return 2
    size = _window_size(args.size)
    from core.cli.main import safety_limits
    from core.errors import BadInput
    from core.printable import printable
    from qtapp.threads.worker import set_study_limits

    try:
        set_study_limits(**safety_limits(args))
    except BadInput as exc:
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
    app.setApplicationName("QuantBench")
    # The window quits the loop itself once its study threads are done ("closed"). Qt's own quit
    # on the last window closing would arrive as a posted event, possibly after exec() returned,
    # and then end every event loop started later in this process (tests run main() in-process).
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    app.setOrganizationName("QuantBench")
    collector = GuiThreadGarbageCollector(app)
    collector.start()
    theme = theme_named(args.theme)
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
    if not args.screenshot:  # a screenshot run quits after its study: nothing to start
        window.controller.threads_finished.connect(
            lambda: window.run_panel.isolated.isChecked() and not window.closing and prewarm(log_dir())
        )
    if args.max_time:
        window.run_panel.max_time.setValue(args.max_time)
    window.resize(*size)
    window.closed.connect(app.quit)
    window.show()

    outcome = {"code": 0}
    if args.screenshot:
        _arrange_screenshot(window, args.screenshot, outcome)
    if args.demo:
        window.open_demo(start=True)
    elif args.model:
        window.model_panel.open_path(args.model, arch=args.arch)
        if args.screenshot:
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
