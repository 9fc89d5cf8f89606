"""Peak resident memory of the study process while one variant is loaded, built and run.

On Linux the kernel keeps the process's peak resident set (``VmHWM`` in ``/proc/self/status``) and lets a
process reset it to the current resident set by writing ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and
later). Resetting it before each variant and reading it after gives that variant's own peak: what the
process held at its highest while the variant was built, evaluated and timed, the study's model and
dataset included (they are resident throughout). Where the counter cannot be reset (other systems, or a
kernel that refuses the write) the process's lifetime peak (``getrusage``) is the only figure, and it
cannot go down between variants: it is then reported with a method that says so, never as a per-variant
figure.
"""

from __future__ import annotations

import re
import sys
from typing import Any

#: ``memory.method`` values.
METHOD_RESET = "VmHWM, reset per variant (/proc/self/clear_refs)"
METHOD_LIFETIME = "process lifetime peak (getrusage; not resettable here, so not per variant)"

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_FIELD = re.compile(r"^(VmHWM|VmRSS):\s+(\d+)\s+kB", re.MULTILINE)


def _status_kb() -> dict[str, int]:
    try:
        with open(_STATUS, encoding="ascii") as f:
            return {m.group(1): int(m.group(2)) for m in _FIELD.finditer(f.read())}
    except OSError:
        return {}


#: Whether the last reset worked (a window opened without its own reset reads it).
_resets_worked = [False]


def reset_peak() -> bool:
    """Set the kernel's peak counter to the current resident set; False where it cannot be reset."""
    worked = False
    if sys.platform.startswith("linux"):
        try:
            with open(_CLEAR_REFS, "w", encoding="ascii") as f:
                f.write("5")
            worked = True
        except OSError:
            worked = False
    _resets_worked[-1] = worked
    return worked


def _lifetime_peak_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB elsewhere


class PeakMemory:
    """One variant's window: ``start()`` before loading or building it, ``result()`` once it has run."""

    def __init__(self) -> None:
        self.reset = False
        self.rss_before: int | None = None

    def start(self, reset: bool = True) -> None:
        """Open the window; ``reset=False`` when the caller reset the counter earlier (the baseline's window
        opens before the model is loaded, so its peak includes loading it)."""
        self.reset = reset_peak() if reset else _resets_worked[-1]
        self.rss_before = _status_kb().get("VmRSS", 0) * 1024 or None

    def result(self) -> dict[str, Any] | None:
        """``{"peak_rss_bytes", "rss_before_bytes", "method"}`` (None where nothing can be read)."""
        if self.reset:
            peak = _status_kb().get("VmHWM")
            if peak is not None:
                return {"peak_rss_bytes": peak * 1024, "rss_before_bytes": self.rss_before, "method": METHOD_RESET}
        lifetime = _lifetime_peak_bytes()
        if lifetime is None:
            return None
        return {"peak_rss_bytes": lifetime, "rss_before_bytes": self.rss_before, "method": METHOD_LIFETIME}
