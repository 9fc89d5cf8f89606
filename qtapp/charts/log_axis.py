"""An axis for latencies plotted as log10(ms), labelled in plain milliseconds.

Variants of one study often differ tenfold in speed, and latency has a long
tail; on a linear axis the fast variants collapse into one bin. The charts
plot log10 of the milliseconds and this axis writes 0.05, 0.1, 0.2, 0.5, 1 ...
at the matching places.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

from core.reports.format import format_tick

MIN_PX_PER_LABEL = 46


class LogMsAxis(pg.AxisItem):
    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float, size: float):
        if not (math.isfinite(minVal) and math.isfinite(maxVal)) or maxVal <= minVal:
            return []
        lo, hi = 10**minVal, 10**maxVal
        exps = range(math.floor(minVal) - 1, math.ceil(maxVal) + 1)

        def within(mantissas: tuple[int, ...]) -> list[float]:
            return [math.log10(m * 10**e) for e in exps for m in mantissas if lo <= m * 10**e <= hi]

        room = max(1, int(size / MIN_PX_PER_LABEL))
        for mantissas in ((1, 2, 5), (1, 3), (1,)):
            major = within(mantissas)
            if len(major) <= room:
                break
        minor = [v for v in within((1, 2, 3, 4, 5, 6, 7, 8, 9)) if v not in major]
        return [(1.0, major), (0.1, minor)]

    def tickStrings(self, values, scale, spacing):
        if spacing < 1.0:
            return ["" for _ in values]  # minor ticks: grid lines only
        return [format_tick(10**v) for v in values]
