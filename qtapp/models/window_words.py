"""Messages from core said in the window's words: its controls, not command-line options.

core's errors are written for ``quantbench run`` and name its options ("name its architecture
with --arch"). In the window the same sentence names the control that does the same thing, or
drops an option the window has no control for. The one table of option → control is here.
"""

from __future__ import annotations

import re

#: (pattern, replacement), tried in order; the most specific phrasing first.
_CONTROLS: tuple[tuple[str, str], ...] = (
    (r"give a state dict with --model FILE --arch (\S+)", r"open a state dict file and choose \1 as its Architecture"),
    (r"name its architecture with --arch", "choose its architecture in the Model panel's Architecture box"),
    (r"--arch\b", "the Architecture box"),
    (r"\(--trust [^)]*\)", "(tick “Trust this file”)"),
    (r"--trust\b", "“Trust this file”"),
    (r"give --input-shape or a dataset that sets it", "choose a dataset whose samples set it"),
    (r"give --input-shape", "choose a dataset whose samples set the shape"),
    (r"pass --limit N to evaluate only its first N rows",
     "set the Dataset panel's Limit to evaluate only its first rows"),
    (r"--limit N", "the Dataset panel's Limit"),
    (r"[;,] --max-memory raises it", ""),
    (r", --max-memory\)", ")"),
    (r" \(--hang-timeout changes this limit\)", ""),
    (r" or --home elsewhere", " elsewhere"),
    (r" \(set (\S+) or --home\)", r" (set \1)"),
    (r"a --variant\b", "an extra variant file"),
    (r"--variant\b", "extra variant file"),
    (r"--calibration-data\b", "the Dataset panel's Calibration"),
    (r"--device cuda\b", "the CUDA GPU device"),
    (r"--device\b", "the Device choice"),
    (r"--threads\b", "Threads"),
    (r"--batch-size\b", "Batch size"),
    (r"--seed\b", "Seed"),
)
_COMPILED = tuple((re.compile(p), r) for p, r in _CONTROLS)


def in_window_words(message: str) -> str:
    """``message`` with each command-line option it names replaced by the window's control for it."""
    if "--" not in message:
        return message
    for pattern, replacement in _COMPILED:
        message = pattern.sub(replacement, message)
    return message
