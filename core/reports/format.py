"""How every face writes a number: byte sizes, latencies, percentages, speed-ups, study times.

One convention, asked by the window, the CLI table, the HTML report and its SVG charts:

- sizes in decimal SI units (1 kB = 1 000 bytes, as file managers and the window show them):
  873 000 bytes is "873 kB", never a binary value labelled "KB";
- latencies in milliseconds with three significant digits (0.0593, 0.512, 1.50, 12.3, 123);
- percentages with a space before the sign ("12.3 %"), changes signed ("+4.0 %", "-74.5 %");
- speed-ups with three significant digits and a times sign ("1.23x", "12.3x", "0.012x");
- a study's time stamp in the reader's local time, "YYYY-MM-DD HH:MM".

Plain faces (terminal, CSV, HTML) write ASCII "-" and "x" so the text survives any console
encoding and pastes into a spreadsheet; the window asks for the typographic minus and times
sign (``typographic=True``).
"""

from __future__ import annotations

import math
from datetime import datetime

MISSING = "-"
#: Decimal SI units, largest first; below a kilobyte sizes are whole bytes.
BYTE_UNITS: tuple[tuple[str, float], ...] = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
_TYPOGRAPHIC_MINUS = "\u2212"
_TYPOGRAPHIC_TIMES = "\u00d7"


def byte_unit(largest: float) -> tuple[str, float]:
    """The unit (name, bytes per unit) a chart axis holding sizes up to ``largest`` is labelled in."""
    for unit, scale in BYTE_UNITS:
        if largest >= scale:
            return unit, scale
    return "B", 1.0


def format_bytes(n: float | None) -> str:
    """A file size: '999 B', '1.5 MB', '873 kB' (three significant digits from 100 units up)."""
    if n is None:
        return MISSING
    unit, scale = byte_unit(n)
    if scale == 1.0:
        return f"{n:.0f} B"
    value = n / scale
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def format_ms(x: float | None) -> str:
    """A latency in milliseconds, three significant digits, no exponent: '0.0593', '1.50', '123'."""
    if x is None or not math.isfinite(x):
        return MISSING
    if x <= 0:
        return "0"
    decimals = _decimals_for(x, significant=3)
    return f"{x:.{decimals}f}"


def _decimals_for(x: float, significant: int) -> int:
    """Decimals that show ``x`` with ``significant`` digits (at most 6, none for large numbers)."""
    decimals = max(0, significant - 1 - math.floor(math.log10(x)))
    # 9.996 rounds to "10.00": one digit too many, so drop a decimal once rounding crossed a power of ten.
    if decimals and round(x, decimals) >= 10 ** (significant - decimals):
        decimals -= 1
    return min(decimals, 6)


def format_tick(value: float) -> str:
    """The label of a round axis tick (0.05, 0.2, 1, 500, 2000): no trailing zeros, no exponent."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.4g}"


def format_percent(fraction: float | None, decimals: int = 1, signed: bool = False, typographic: bool = False) -> str:
    """``fraction`` as a percentage: '12.3 %'; ``signed`` for a change: '+4.0 %', '-74.5 %'."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    value = fraction * 100
    if not signed:
        return f"{value:.{decimals}f} %"
    text = f"{value:+.{decimals}f} %"
    return text.replace("-", _TYPOGRAPHIC_MINUS) if typographic else text


def format_size_change(size: float, baseline: float | None, typographic: bool = False) -> str:
    """A size against its baseline's, in whole percent: '-74 %' (smaller), '+3 %', '±0 %'; '' without one."""
    if baseline is None or baseline <= 0:
        return ""
    change = size / baseline - 1.0
    if abs(change) < 0.005:
        return "±0 %"
    return format_percent(change, decimals=0, signed=True, typographic=typographic)


def format_speedup(x: float | None, typographic: bool = False) -> str:
    """How many times faster: '1.23x', '12.3x'; below 0.1 two significant digits ('0.012x', not '0.00x')."""
    if x is None or not math.isfinite(x):
        return MISSING
    sign = _TYPOGRAPHIC_TIMES if typographic else "x"
    if x >= 10:
        return f"{x:.1f}{sign}"
    return f"{x:.2f}{sign}" if x >= 0.1 else f"{x:.2g}{sign}"


def local_time(created: str) -> str:
    """A study's ISO time stamp (stored in UTC) as the reader's local 'YYYY-MM-DD HH:MM'.

    Text that is not a time stamp comes back unchanged, so an odd record still shows something."""
    try:
        return datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return created


def local_time_with_zone(created: str) -> str:
    """``local_time`` followed by the UTC offset ('2024-05-01 16:03 UTC+02:00'), for a file that travels."""
    try:
        moment = datetime.fromisoformat(created).astimezone()
    except (TypeError, ValueError):
        return created
    offset = moment.strftime("%z")
    return f"{moment.strftime('%Y-%m-%d %H:%M')} UTC{offset[:3]}:{offset[3:]}"
