"""Text taken from a file, made safe to show: control characters written out, never obeyed.

A file name, ONNX metadata, a label column or a runtime's error can hold ANSI escape
sequences (clear the screen, recolour or hide text), carriage returns that overwrite
what was printed, or Unicode direction overrides that make text read differently from
what it is. Every face (the command line, the window, the reports) shows such text
through ``printable``: each of those characters becomes a visible escape (``\\x1b``,
``\\n``, ``\\u202e``) and everything else is left as it is. Markup escaping (HTML,
XML) is a separate, later step that each report does on its own.
"""

from __future__ import annotations

import re
from typing import TextIO

#: C0 controls, DEL, C1 controls, and the Unicode bidirectional overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: The same, but keeping newlines and tabs: for whole blocks of output (a table, a listing).
_UNSAFE_IN_BLOCK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as one safe line: every control character (newlines too) written out as an escape."""
    return _UNSAFE.sub(_escape, str(text))


def printable_block(text: object) -> str:
    """``text`` with control characters written out, but its own newlines and tabs kept."""
    return _UNSAFE_IN_BLOCK.sub(_escape, str(text))


class PrintableStream:
    """Wraps a text stream so that nothing written through it can drive the terminal.

    The command line writes all its output through one of these: whatever reached a
    message from a file is shown, escaped, instead of being obeyed by the terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable_block(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def markup_escape(text: object) -> str:
    """``text`` for HTML or SVG: control characters written out, then ``& < > " '`` escaped.

    XML forbids most control characters outright, so an SVG holding one would not even open."""
    from html import escape

    return escape(printable_block(text))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: ``"1 conversion"``, ``"2 conversions"``, ``"0 conversions"``.

    ``plural``: the plural form where adding an ``s`` is wrong (``counted(2, "matrix", "matrices")``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
