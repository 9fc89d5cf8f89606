"""The ``quantbench`` console script: the window, or a headless subcommand.

Headless commands go to ``core.cli.main`` without importing Qt, so ``quantbench run``
works (and ``quantbench --help`` answers at once) on a machine with no display.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from core.cli import main as cli
    args = list(sys.argv[1:] if argv is None else argv)
    if cli.wants_window(args):
        # Start the study process first: it imports torch and onnxruntime while Qt starts here.
        from core.engine.isolation import prewarm
        from core.files.logs import log_dir

        prewarm(log_dir(), allow_fork=True)  # nothing with threads is loaded yet: a fork is safe and quick
        from qtapp.app import main as window_main

        return window_main(args)
    return cli.main(args)


if __name__ == "__main__":
    raise SystemExit(main())
