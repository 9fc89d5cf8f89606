"""Writing files the user asked for, and saying in one sentence why one could not be written.

Every writer of QuantBench (``--json``, ``--html``, ``--save-spec``, ``--save-variants``, the
history database, the window's exports) reports a failed write with ``could_not_write``:

    could not write out.json: no space left on device (the disk is full).

and checks a folder up front with ``check_folder``:

    --json out/r.json: the folder out is not writable (read-only file system).

``write_atomic`` writes through a temporary file beside the target, flushed to disk, then
renamed over it: a reader never sees half a file, and a write that fails (the disk fills up,
the folder turns out to be read-only) removes its temporary file and leaves whatever was at
the target before untouched. A symbolic link is followed (the file it points to is replaced,
the link stays), and what is not a plain file (``/dev/stdout``, ``/dev/null``, a named pipe)
is written to as it is: renaming over it would replace a device with a file. A file-size limit
(``ulimit -f``; EFBIG once SIGXFSZ is ignored) is reported like a full disk: to the user both mean
"there is no room for this file".
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from core.errors import BadInput

#: The reason given when a write found no room: ENOSPC, EFBIG (a file-size limit), SQLITE_FULL.
DISK_FULL = "no space left on device (the disk is full)"
_REASONS = {
    errno.ENOSPC: DISK_FULL,
    errno.EFBIG: DISK_FULL,
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.EIO: "a disk input/output error",
}


def os_reason(exc: OSError) -> str:
    """The cause of a failed file operation in a few lower-case words (no errno number, no path)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = (exc.strerror or str(exc) or type(exc).__name__).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def could_not_write(target: object, reason: str | OSError) -> str:
    """The one sentence for a write that failed: ``could not write TARGET: REASON.``"""
    if isinstance(reason, OSError):
        reason = os_reason(reason)
    return f"could not write {target}: {reason.rstrip('.')}."


def check_folder(folder: Path, name: str, *, create: bool = False, hint: str = "") -> Path:
    """Make sure a file can be created in ``folder`` (made with its parents when ``create``); else
    BadInput: ``{name} {folder} is not writable ({reason}){hint}.``

    It really creates (and removes) a file: ``os.access`` cannot see a read-only mount and always
    answers yes to root. ``name`` says what the folder is for, e.g. "--json out/r.json: the folder"
    or "QuantBench's home"."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{name} {folder} is not a folder{hint}.")
    if not folder.exists():
        if not create:
            raise BadInput(f"{name} {folder} does not exist{hint}.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"{name} {folder} cannot be created ({os_reason(exc)}){hint}.") from None
    try:
        with tempfile.NamedTemporaryFile(dir=str(folder), prefix=".quantbench-check-"):
            pass
    except OSError as exc:
        reason = os_reason(exc)
        if reason == DISK_FULL:
            raise BadInput(f"{name} {folder} is on a full disk (no space left on device){hint}.") from None
        raise BadInput(f"{name} {folder} is not writable ({reason}){hint}.") from None
    return folder


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; BadInput with ``could_not_write``'s sentence when
    it cannot be written, and then neither a partial file nor a temporary file is left behind.
    A link is followed; a device or a pipe is written to directly (see the module's docstring)."""
    path = Path(path)
    if is_special_file(path):
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise BadInput(could_not_write(path, exc)) from None
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    part = stage_text(target, text)
    try:
        os.replace(part, target)
    except OSError as exc:
        _remove(part)
        raise BadInput(could_not_write(path, exc)) from None


def is_special_file(path: Path) -> bool:
    """Whether ``path`` (its link followed) is there and is neither a plain file nor a folder: a device such
    as /dev/null or /dev/stdout's terminal, a named pipe, a socket."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def stage_text(dst: Path, text: str) -> Path:
    """``text`` (UTF-8) whole in a temporary file beside ``dst``, flushed to disk, for the caller to rename
    over ``dst``. BadInput naming ``dst`` when it fails, and then nothing is left behind."""
    dst = Path(dst)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=str(dst.parent))
    except OSError as exc:
        raise BadInput(could_not_write(dst, exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())  # a full disk may only tell at the flush; a crash must not leave an empty file
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a report is meant to be shared
    except BaseException as exc:
        _remove(Path(tmp))
        if isinstance(exc, OSError):
            raise BadInput(could_not_write(dst, exc)) from None
        raise
    return Path(tmp)


def stage_copy(src: Path, dst: Path) -> Path:
    """A whole copy of ``src`` beside ``dst`` under a temporary name (``.NAME.part``), for the caller to
    rename over ``dst``: a hard link when both are on one file system (it needs no room), else a copy.
    BadInput with ``could_not_write``'s sentence when it fails, and then nothing is left behind."""
    dst = Path(dst)
    part = dst.with_name(f".{dst.name}.part")
    _remove(part)
    try:
        try:
            os.link(src, part)
        except OSError:
            shutil.copyfile(src, part)
    except OSError as exc:
        _remove(part)
        raise BadInput(could_not_write(dst, exc)) from None
    except BaseException:
        _remove(part)
        raise
    return part


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def check_output_file(option: str, path: str) -> Path:
    """The output file of ``option`` as a Path, once its folder is known to take a new file; else BadInput
    naming the option (the one writability check of every output the user asks for)."""
    if not path.strip():
        raise BadInput(f"{option} needs a file name.")
    out = Path(path).expanduser()
    if out.is_dir():
        raise BadInput(f"{option} {path} is a folder; give a file name.")
    if is_special_file(out):  # /dev/stdout, /dev/null, a named pipe: written to as it is
        if not os.access(out, os.W_OK):
            raise BadInput(f"{option} {path} is not writable (permission denied).")
        return out
    target = Path(os.path.realpath(out)) if out.is_symlink() else out
    folder = target.parent if str(target.parent) else Path(".")
    check_folder(folder, f"{option} {path}: the folder")
    return out


def check_distinct(outputs: dict[str, Path | None]) -> None:
    """BadInput when two of the outputs (option -> file) are the same file: the second would overwrite the
    first. Devices and pipes (/dev/null, /dev/stdout) may take several."""
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None or is_special_file(path):
            continue
        key = Path(os.path.realpath(path))
        if key in seen:
            raise BadInput(f"{seen[key]} and {option} both name {path}: give each its own file.")
        seen[key] = option


def read_json(path: Path, source: str, what: str) -> object:
    """The JSON value in ``path``; else BadInput naming ``source`` (the words the user gave for the file) and
    what was wrong, for a file meant to be ``what`` ("a project file"): missing, a folder, not UTF-8 text,
    not JSON (with the line), unreadable."""
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{source}: no such file.") from None
    except IsADirectoryError:
        raise BadInput(f"{source}: is a folder, not {what}.") from None
    except UnicodeDecodeError:
        raise BadInput(f"{source}: not {what} (not UTF-8 JSON text).") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    except OSError as exc:
        raise BadInput(f"{source}: cannot be read ({os_reason(exc)}).") from None
