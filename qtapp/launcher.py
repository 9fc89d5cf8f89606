"""The ``quantbench`` console script, the composition root: one parse, then the window or a headless command.

The command line is parsed once, by the one parser (``core.cli.parser``), before Qt is imported:
``quantbench --help`` answers at once and lists the window's options too, and ``quantbench run``
works on a machine with no display. The window receives what was parsed as a ``WindowOptions``.
This is the one module of ``qtapp`` that imports ``core.cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``quantbench`` with ``argv`` (default: this process's arguments); returns the exit code."""
    from core.cli import main as cli

    args_list = list(sys.argv[1:] if argv is None else argv)
    args = cli.parse_command_line(args_list)  # --help, --version and usage errors end here, before Qt
    if args.command is not None:
        return cli.main(args_list, args=args)
    from core.engine.isolation import discard_prewarmed, prewarm
    from core.files.logs import log_dir
    from qtapp.models.window_options import WindowOptions

    options = WindowOptions.from_namespace(args)
    # Start the study process first: it imports torch and onnxruntime while Qt starts here.
    prewarm(log_dir(), allow_fork=True)  # nothing with threads is loaded yet: a fork is safe and quick
    try:
        from qtapp.app import main as window_main

        return window_main(options)
    finally:
        discard_prewarmed()  # the window's own end discards it too, unless it returned before using it


if __name__ == "__main__":
    raise SystemExit(main())
