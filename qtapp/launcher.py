"""The ``quantbench`` console script, the composition root: one parse, then the window or a headless command.

The command line is parsed once, by the one parser (``core.cli.parser``), before Qt is imported:
``quantbench --help`` answers at once and lists the window's options too, and ``quantbench run``
works on a machine with no display. The window receives what was parsed as a ``WindowOptions``.
This is the one module of ``qtapp`` that imports ``core.cli``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``quantbench`` with ``argv`` (default: this process's arguments); returns the exit code."""
    from core.cli import main as cli
    from core.files.logs import quiet_runtime_consoles

    quiet_runtime_consoles()  # before any runtime loads here or in a study process started from here (the window)

    args_list = list(sys.argv[1:] if argv is None else argv)
    args = cli.parse_command_line(args_list)  # --help, --version and usage errors end here, before Qt
    if args.command is not None:
        return cli.main(args_list, args=args)
    from core.engine.isolation import discard_prewarmed, prewarm
    from core.files.logs import log_dir
    from qtapp.models.window_options import WindowOptions

    options = WindowOptions.from_namespace(args)
    problem = _option_problem(options)
    if problem:
        print(f"quantbench: {problem}", file=sys.stderr)
        return 2
    if not _platform_ready(options):
        return 2  # before the study process starts: a window that cannot open leaves nothing running
    # Start the study process first: it imports torch and onnxruntime while Qt starts here.
    prewarm(log_dir(), allow_fork=True)  # nothing with threads is loaded yet: a fork is safe and quick
    try:
        from qtapp.app import main as window_main

        return window_main(options)
    finally:
        discard_prewarmed()  # the window's own end discards it too, unless it returned before using it


#: What --screenshot can write (by the file's suffix), as Qt's image writers do on every platform.
SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _option_problem(options) -> str | None:
    """The window's options checked before anything starts, in one sentence (a screenshot that could not be
    written was only told after the whole study had run)."""
    import math

    from core.errors import BadInput
    from core.files.atomic import check_output_file

    if options.max_time is not None and not (math.isfinite(options.max_time) and options.max_time > 0):
        return "--max-time must be positive."
    if options.screenshot is not None:
        try:
            check_output_file("--screenshot", options.screenshot)
        except BadInput as exc:
            return str(exc)
        if Path(options.screenshot).suffix.lower() not in SCREENSHOT_SUFFIXES:
            return (f"--screenshot {options.screenshot}: the picture's format is chosen by its suffix, one of "
                    f"{', '.join(SCREENSHOT_SUFFIXES)}.")
    return None


def _platform_ready(options) -> bool:
    """False (after telling the user why) when Qt could not open its window here: no display, or
    libraries its platform plugin needs are missing. Qt itself would abort, naming a guess."""
    from qtapp import platform_check

    if options.screenshot:
        platform_check.use_offscreen_without_display(os.environ)
    problem = platform_check.platform_problem()
    if problem:
        print(problem, file=sys.stderr)
    return problem is None


if __name__ == "__main__":
    raise SystemExit(main())
