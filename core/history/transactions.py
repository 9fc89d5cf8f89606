"""Write transactions on the history, and SQLite's errors told apart and put in words.

Several processes write one history at once (two or three ``quantbench run`` and
the window): every write is one ``BEGIN IMMEDIATE`` transaction (``transaction``),
and the store runs again whole any transaction that meets "busy" or "locked"
(``is_busy``). Any other SQLite error becomes one sentence naming the file
(``failure_sentence``): a write that fails for want of room (SQLITE_FULL; a
file-size limit, which SQLite reports as an I/O error) or on a read-only file is
``core.files.atomic.could_not_write``'s sentence, e.g. "could not write the history
database H/history.sqlite3: no space left on device (the disk is full)."
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.files.atomic import DISK_FULL, could_not_write
from core.files.home import ENV_HOME

# SQLite's primary result codes (an exception's sqlite_errorcode & 0xFF).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 6, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed whole or rolled back whole.

    IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
    deadlocking. On any error, a disk-full one included, the transaction is rolled back (SQLite may
    have rolled it back itself already) and the error goes on unchanged."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            # Closing the connection rolls it back all the same; the first error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.DatabaseError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection holds what this one needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def no_room_for_index(exc: sqlite3.DatabaseError) -> bool:
    """SQLite could not create or grow the WAL's shared-memory index (a full disk, typically)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return name.startswith("SQLITE_IOERR_SHM") or code == _SQLITE_FULL


def failure_sentence(exc: sqlite3.DatabaseError, path: Path, write: bool) -> str:
    """One sentence for an SQLite error other than busy on the history at ``path``: the file, and what
    went wrong in words."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    name = getattr(exc, "sqlite_errorname", "") or ""
    db = f"the history database {path}"
    if code == _SQLITE_FULL:
        return could_not_write(db, DISK_FULL)
    if code == _SQLITE_IOERR:
        if "READ" in name and write is False:
            return f"could not read {db}: a disk input/output error."
        return could_not_write(db, DISK_FULL if out_of_room(path) else "a disk input/output error")
    if code == _SQLITE_READONLY:
        return could_not_write(db, "the file or its folder is read-only")
    if code == _SQLITE_CANTOPEN:
        return f"{db} cannot be opened (check that its folder {path.parent} can be read and written)."
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or not isinstance(exc, sqlite3.OperationalError):
        return corrupt_message(path, exc)
    return f"{db} cannot be used ({exc})."


def out_of_room(path: Path) -> bool:
    """After an I/O error on the database at ``path``: is it a full disk? SQLite says "full" for ENOSPC
    but "I/O error" for EFBIG (a file-size limit), so look at the free space and at the limit."""
    with contextlib.suppress(OSError, AttributeError):  # no statvfs here: judge by the size limit alone
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < (1 << 20):
            return True
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return False
    if limit == resource.RLIM_INFINITY:
        return False
    sizes = []
    for suffix in ("", "-wal", "-journal"):
        with contextlib.suppress(OSError):
            sizes.append(os.path.getsize(str(path) + suffix))
    return any(size + (64 << 10) >= limit for size in sizes)


def corrupt_message(path: Path, detail: object) -> str:
    """The sentence for a history file that SQLite cannot read as ours."""
    return (
        f"the history database {path} is corrupt or not an SQLite file ({detail}); it was left untouched "
        f"(move it aside, or point {ENV_HOME} or --home elsewhere)."
    )
