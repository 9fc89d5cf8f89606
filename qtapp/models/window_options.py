"""What the window's command line asks for, as plain data.

``quantbench``'s one parser (``core.cli.parser``, reached only through the launcher, the
composition root) defines and parses every option; the launcher hands the parsed values to
the window as a ``WindowOptions``, so ``qtapp.app`` neither defines an option nor imports the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class WindowOptions:
    """The window's options; each field is named after its option's destination (``--max-time`` -> max_time)."""

    model: str | None
    arch: str | None
    demo: bool
    screenshot: str | None
    size: tuple[int, int]
    theme: str | None  # None: the remembered theme (qtapp.window.window_memory.start_theme)
    max_time: float | None
    max_memory: str | None
    hang_timeout: float

    @classmethod
    def from_namespace(cls, args: Any) -> WindowOptions:
        """The window's options out of a parsed ``quantbench`` command line (an ``argparse.Namespace``)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
