"""Refuse files that ask for more than the machine has, before anything allocates it."""

from __future__ import annotations

import zipfile
from pathlib import Path

from core.errors import BadInput

#: No single dimension may claim more elements than this (2**40: far beyond any real model).
MAX_DIM = 1 << 40
#: A model may claim at most this share of the memory available now.
MEMORY_SHARE = 0.8
#: A zip member may inflate at most this many times. Deflate cannot pass about 1032:1, which only a long
#: run of one byte value reaches; real weights and datasets compress far less (a ratio this high is a bomb).
MAX_COMPRESSION_RATIO = 1000
#: Members smaller than this once inflated escape the ratio rule: a small constant array costs nothing.
RATIO_EXEMPT_BYTES = 4 << 20
#: Zip methods whose readers never inflate past the declared size: zipfile and PyTorch's miniz inflate
#: deflate in bounded steps, while zipfile decompresses bzip2 and LZMA data in steps of any size.
#: numpy writes stored or deflated members, torch.save stored ones only.
BOUNDED_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


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


def memory_ceiling_bytes() -> int | None:
    """This process's memory ceiling (a study's child process runs under one); None if unlimited."""
    from core.memory_limit import current_limit_bytes

    return current_limit_bytes()


def memory_budget_bytes() -> int | None:
    """The most a file may make this process allocate: ``MEMORY_SHARE`` of the memory free or of its ceiling."""
    known = [n for n in (available_memory_bytes(), memory_ceiling_bytes()) if n is not None]
    return int(min(known) * MEMORY_SHARE) if known else None


def check_claim(where: Path | str, what: str, claimed_bytes: int) -> None:
    """BadInput when ``claimed_bytes`` would not fit in the memory available; ``where`` names the file."""
    available = available_memory_bytes()
    if available is not None and claimed_bytes > available * MEMORY_SHARE:
        raise BadInput(
            f"{where}: {what} would need {claimed_bytes / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB "
            "of memory is free, so it is refused."
        )
    ceiling = memory_ceiling_bytes()
    if ceiling is not None and claimed_bytes > ceiling * MEMORY_SHARE:
        raise BadInput(
            f"{where}: {what} would need {claimed_bytes / 2**30:.1f} GiB but this process may use only "
            f"{ceiling / 2**30:.1f} GiB (its memory ceiling, --max-memory), so it is refused."
        )


def check_dims(path: Path | str, name: str, dims: list[int] | tuple[int, ...]) -> int:
    """Number of elements of a tensor whose declared dims are sane; BadInput otherwise."""
    n = 1
    for d in dims:
        if d < 0 or d > MAX_DIM:
            raise BadInput(
                f"{path}: tensor {name!r} declares an impossible dimension {d}; the file is malformed or hostile."
            )
        n *= int(d)
        if n > MAX_DIM:
            raise BadInput(f"{path}: tensor {name!r} declares {n:.3g}+ elements; the file is malformed or hostile.")
    return n


def check_zip_member(where: Path | str, info: zipfile.ZipInfo, archive_bytes: int) -> int:
    """The bytes zip member ``info`` declares once unpacked; BadInput when that is a lie or a decompression bomb.

    Judged from the archive's directory alone, before anything is inflated: the method must be
    one whose reader stops at the declared size, the compressed data must lie inside the
    archive (``archive_bytes`` long), a stored member must hold what it declares, and a
    deflated one must neither be larger than deflate would make it nor inflate more than
    ``MAX_COMPRESSION_RATIO`` times. ``where`` names the file in the message.
    """
    name, packed, size = info.filename, info.compress_size, info.file_size
    if info.compress_type not in BOUNDED_ZIP_METHODS:
        raise BadInput(
            f"{where}: member {name!r} is compressed with zip method {info.compress_type}, which is refused "
            "(only stored and deflated members are read)."
        )
    if info.flag_bits & 0x1:
        raise BadInput(f"{where}: member {name!r} is encrypted, which is refused.")
    if info.header_offset < 0 or info.header_offset + packed > archive_bytes:
        raise BadInput(
            f"{where}: member {name!r} claims {format_bytes(packed)} of data but the archive is only "
            f"{format_bytes(archive_bytes)} long; it is truncated or malformed."
        )
    if info.compress_type == zipfile.ZIP_STORED and packed != size:
        raise BadInput(
            f"{where}: member {name!r} is stored uncompressed in {format_bytes(packed)} but declares "
            f"{format_bytes(size)}; its sizes are a lie."
        )
    if info.compress_type == zipfile.ZIP_DEFLATED:
        # Any deflate encoder can fall back to stored blocks; even fixed Huffman codes grow data by 1/8 at most.
        if packed > size + size // 4 + 1024:
            raise BadInput(
                f"{where}: member {name!r} declares {format_bytes(size)} but holds {format_bytes(packed)} of "
                "compressed data, more than deflate ever writes for that; its sizes are a lie."
            )
        if size > RATIO_EXEMPT_BYTES and size > MAX_COMPRESSION_RATIO * packed:
            raise BadInput(
                f"{where}: member {name!r} would inflate from {format_bytes(packed)} to {format_bytes(size)} "
                f"({size / max(packed, 1):.0f}:1), far beyond what real data compresses to, so it is refused "
                "as a decompression bomb."
            )
    return size


def format_bytes(n: int) -> str:
    """``512 bytes``, ``3.4 MiB``, ``2.0 GiB``: a size for a message."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
