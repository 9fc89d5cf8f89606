"""Refuse files that ask for more than the machine has, before anything allocates it."""

from __future__ import annotations

from pathlib import Path

from core.errors import BadInput

#: No single dimension may claim more elements than this (2**40: far beyond any real model).
MAX_DIM = 1 << 40
#: A model may claim at most this share of the memory available now.
MEMORY_SHARE = 0.8


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_claim(where: Path | str, what: str, claimed_bytes: int) -> None:
    """BadInput when ``claimed_bytes`` would not fit in the memory available; ``where`` names the file."""
    available = available_memory_bytes()
    if available is not None and claimed_bytes > available * MEMORY_SHARE:
        raise BadInput(
            f"{where}: {what} would need {claimed_bytes / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB "
            "of memory is free, so it is refused."
        )


def check_dims(path: Path | str, name: str, dims: list[int] | tuple[int, ...]) -> int:
    """Number of elements of a tensor whose declared dims are sane; BadInput otherwise."""
    n = 1
    for d in dims:
        if d < 0 or d > MAX_DIM:
            raise BadInput(f"{path}: tensor {name!r} declares an impossible dimension {d}; the file is malformed or hostile.")
        n *= int(d)
        if n > MAX_DIM:
            raise BadInput(f"{path}: tensor {name!r} declares {n:.3g}+ elements; the file is malformed or hostile.")
    return n
