"""Is the process that owns a "running" study still there?

A study is inserted as "running" with its writer's process id, that process's start
time and the machine's boot id; once that process is gone (killed, crashed, the
machine rebooted) the study is shown as "interrupted".
"""

from __future__ import annotations

import os
import sys


def boot_id() -> str:
    """This boot of this machine ("" where the system does not say)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot ("" where unknown)."""
    # The start time tells a reused pid from the original process.
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def owner_alive(pid: int | None, start: str, boot: str) -> bool:
    """Whether the process recorded as (``pid``, ``start``) on boot ``boot`` still runs."""
    # The boot id, not the host name, tells the machine and its uptime apart (containers rename hosts freely).
    if boot and boot != boot_id():
        return False
    if not pid:
        return False
    fields = _proc_stat(pid)
    if fields is not None:  # Linux: procfs says it all, zombies included
        if not fields or fields[0] in ("Z", "X"):
            return False
        return not start or len(fields) <= 19 or fields[19] == start
    return _pid_exists(pid)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None without procfs."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
