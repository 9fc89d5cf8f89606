"""Temporary folders that do not outlive their owner, even one that was killed.

A study's folders hold what it built: copies of the model shipped to a cluster node, exported and
quantized variants, calibration caches; hundreds of megabytes for a large model. A process that is
killed (a sweep task cancelled by force, a window ended with SIGKILL, the kernel's out-of-memory killer)
cannot remove them, and on a cluster node they would pile up study after study.

So each such folder holds a lock file its owner keeps locked (``flock``) for as long as the folder is
in use. The kernel lets go of the lock when the owner's process ends, however it ends, and
``remove_orphans`` removes the folders whose lock it can take: nobody holds them any more. A folder
without a lock file (another program's, or one still being made) is never touched. Where ``fcntl``
does not exist (Windows) folders are made the same way, without the lock, and nothing is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

#: Every folder made here is named quantbench-<kind>-<random>.
PREFIX = "quantbench-"
LOCK_NAME = ".owner.lock"


class Scratch:
    """A new folder ``quantbench-<kind>-…`` in ``parent`` (the system's temporary folder by default), locked
    by this process until ``remove()``; a context manager that removes it on the way out. Making one first
    removes the orphans beside it (``remove_orphans``), so what killed processes left goes at the next study."""

    def __init__(self, kind: str, parent: str | Path | None = None) -> None:
        remove_orphans(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=parent))
        self._fd: int | None = _lock(self.path)

    def remove(self) -> None:
        """Delete the folder and what is in it; let go of its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()


def _lock(folder: Path) -> int | None:
    """Lock a new file in ``folder`` and only then give it LOCK_NAME, so that ``remove_orphans`` never finds
    the lock file before it is locked; the open descriptor, or None without ``fcntl``."""
    try:
        import fcntl
    except ImportError:
        return None
    making = folder / (LOCK_NAME + ".new")
    fd = os.open(making, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(making, folder / LOCK_NAME)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_orphans(parent: str | Path | None = None) -> list[Path]:
    """Remove the ``quantbench-*`` folders in ``parent`` (the temporary folder by default) whose owner has
    ended without removing them; returns those removed."""
    try:
        import fcntl
    except ImportError:
        return []
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR)
        except OSError:  # no lock file (not made here, or not finished), or not ours to open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refused while the owner lives
        except OSError:
            os.close(fd)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
