"""How busy the rest of the machine was while a study timed (read from /proc/stat)."""

from __future__ import annotations

import time


class OtherLoad:
    """How many cores the rest of the machine kept busy while this process timed: the machine's busy CPU time
    (``/proc/stat``) less this process's own, over the wall time of the timing runs. None where /proc/stat is
    not readable (not Linux)."""

    def __init__(self) -> None:
        self.other_s = 0.0
        self.wall_s = 0.0
        self.readable = _machine_busy_s() is not None

    def mark(self) -> tuple[float, float, float] | None:
        busy = _machine_busy_s()
        return None if busy is None else (busy, time.process_time(), time.perf_counter())

    def add(self, mark: tuple[float, float, float] | None) -> None:
        busy = _machine_busy_s()
        if mark is None or busy is None:
            self.readable = False
            return
        self.other_s += max(0.0, (busy - mark[0]) - (time.process_time() - mark[1]))
        self.wall_s += time.perf_counter() - mark[2]

    def merge(self, other_s: float, wall_s: float, readable: bool) -> None:
        """Add what another process measured over its own timing runs (the study process's, on a node)."""
        self.other_s += other_s
        self.wall_s += wall_s
        self.readable = self.readable and readable

    @property
    def cores(self) -> float | None:
        """Mean cores busy with other work during the timings (None: unknown)."""
        if not self.readable or self.wall_s <= 0:
            return None
        return round(self.other_s / self.wall_s, 3)


def _machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (user, nice, system, irq, softirq, steal)."""
    import os

    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
    return busy / ticks
