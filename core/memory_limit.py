"""The memory ceiling of a study's child process, and how running into it is told.

A hostile or broken file can ask a runtime for any amount of memory (an ONNX
``ConstantOfShape`` of billions of elements, a tensor that inflates at run time).
The study's child process therefore runs under ``RLIMIT_DATA``: past the ceiling an
allocation fails inside the child (numpy raises ``MemoryError``, ONNX Runtime and
PyTorch raise their own allocation errors, a native library may abort), that study
or variant ends with "needed more than N GB", and the window or the command line
that drives it is unharmed.

``RLIMIT_DATA`` counts the private writable memory a process maps (heap, anonymous
mappings, thread stacks) but not reserved address space nor the code of the
libraries, so it follows what a study really uses; ``RLIMIT_AS`` would count the
gigabytes of address space PyTorch and ONNX Runtime reserve without touching.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: The default ceiling, as a share of the machine's physical memory.
DEFAULT_SHARE = 0.5
#: A ceiling below this cannot even hold the runtimes a study imports.
#: Decimal units, as every size QuantBench shows (core.reports.format); "GiB", "MiB" are binary.
MIN_BYTES = 10**9
_UNITS = {"": 10**9, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
#: Words with which the runtimes say that an allocation failed.
_ALLOCATION_FAILED = re.compile(
    r"bad[ _]alloc|bad allocation|can't allocate memory|cannot allocate memory|failed to allocate|"
    r"out of memory|allocation failed|unable to allocate|std::length_error",
    re.IGNORECASE,
)


def physical_memory_bytes() -> int | None:
    """The machine's physical memory, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def default_limit_bytes() -> int | None:
    """Half of physical memory (at least ``MIN_BYTES``); None where physical memory is unknown."""
    total = physical_memory_bytes()
    return None if total is None else max(MIN_BYTES, int(total * DEFAULT_SHARE))


def parse_size(text: str, option: str = "--max-memory") -> int:
    """``"8"``, ``"8G"``, ``"512M"``, ``"1.5g"`` (decimal) or ``"8GiB"`` (binary) in bytes; a bare number is GB.

    Raises ValueError with one sentence naming ``option`` when the text is not a size or too small."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?)b?\s*", text.lower())
    if not match:
        raise ValueError(f"{option} {text!r} is not a size; give it in GB (e.g. 8) or with a unit (e.g. 8G, 512M).")
    units = _BINARY if match.group(3) and match.group(2) else _UNITS
    value = int(float(match.group(1)) * units[match.group(2)])
    if value < MIN_BYTES:
        raise ValueError(f"{option} {text!r} is too small: a study needs at least {format_gb(MIN_BYTES)}.")
    return value


def ceiling_from_option(text: str | None, option: str = "--max-memory") -> int | None:
    """The memory ceiling a ``--max-memory`` value asks for; without one, the default share of this machine.

    The command line and the window both read their option through this. Raises ValueError (one
    sentence naming ``option``) for a value that is not a size or too small."""
    return parse_size(text, option) if text else default_limit_bytes()


def format_gb(n_bytes: int) -> str:
    """``12.3 GB`` (decimal gigabytes, one decimal; whole numbers without it)."""
    gb = n_bytes / 10**9
    return f"{gb:.0f} GB" if abs(gb - round(gb)) < 0.05 else f"{gb:.1f} GB"


def apply_limit(n_bytes: int | None) -> None:
    """Cap this process's private writable memory at ``n_bytes`` (None: leave it as it is).

    Lowering a limit is always allowed; where the platform has no RLIMIT_DATA it does nothing."""
    if n_bytes is None:
        return
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            n_bytes = min(n_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (n_bytes, hard))
    except (ImportError, AttributeError, ValueError, OSError):
        pass  # not a POSIX system with RLIMIT_DATA: the study runs without a ceiling


def current_limit_bytes() -> int | None:
    """The ceiling this process runs under, or None when it has none."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    except (ImportError, AttributeError, ValueError, OSError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def is_allocation_failure(exc: BaseException) -> bool:
    """True when ``exc`` says an allocation failed (numpy, PyTorch, ONNX Runtime, LiteRT wording)."""
    return isinstance(exc, MemoryError) or bool(_ALLOCATION_FAILED.search(str(exc)))


def needed_more_than(limit: int | None) -> str:
    """The words for running into the ceiling: ``needed more than 12 GB of memory (...)``."""
    if limit is None:
        return "needed more memory than this machine could give it"
    return f"needed more than {format_gb(limit)} of memory (the study's ceiling; --max-memory raises it)"


def give_memory_back() -> None:
    """Return the C heap's free pages to the system. glibc keeps them otherwise, so a study's resident memory
    would stay at the high-water mark of every large model it read or variant it built. Nothing happens where
    there is no glibc."""
    import contextlib

    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().malloc_trim(0)


def _libc() -> Any:
    import ctypes
    import ctypes.util

    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return _LIBC


_LIBC: Any = None
