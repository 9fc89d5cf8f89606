"""How every face writes a number: byte sizes, latencies, percentages, speed-ups, study times.

One convention, asked by the window, the CLI table, the HTML report and its SVG charts:

- sizes in decimal SI units (1 kB = 1 000 bytes, as file managers and the window show them):
  873 000 bytes is "873 kB", never a binary value labelled "KB";
- latencies in milliseconds with three significant digits (0.0593, 0.512, 1.50, 12.3, 123);
- percentages with a space before the sign ("12.3 %"), changes signed ("+4.0 %", "-74.5 %");
- a change graded against a threshold is rounded toward "not met" (``round_toward_worse``): a size
  change of -49.5 % reads "-49 %", never "-50 %" beside a "-50 % or more" rule; an accuracy change
  of -0.95 pt reads "-1.0 pt"; an interval is rounded inward, so it includes 0 exactly when the
  unrounded one does;
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


#: Values this close (in units of the last shown digit) to a rounding step count as on it, so
#: float noise (0.745 * 100 = 74.49999...) never moves a figure by a whole digit.
_GRID_TOLERANCE = 1e-6


def round_toward_worse(value: float, decimals: int, higher_is_better: bool) -> float:
    """``value`` rounded to ``decimals`` toward the worse side: down when higher is better, else up.

    A threshold written at that precision is then never read as met by a value that misses it."""
    scale = 10.0**decimals
    scaled = value * scale
    steps = math.floor(scaled + _GRID_TOLERANCE) if higher_is_better else math.ceil(scaled - _GRID_TOLERANCE)
    return steps / scale + 0.0  # + 0.0: no "-0.0"


def _signed(value: float, decimals: int, unit: str, typographic: bool) -> str:
    text = f"{value:+.{decimals}f}{unit}"
    return text.replace("-", _TYPOGRAPHIC_MINUS) if typographic else text


def format_percent(
    fraction: float | None,
    decimals: int = 1,
    signed: bool = False,
    typographic: bool = False,
    higher_is_better: bool = False,
) -> str:
    """``fraction`` as a percentage: '12.3 %'; ``signed`` for a change: '+4.0 %', '-74.5 %'.

    A change is rounded toward the worse side (``round_toward_worse``); every change the faces
    show in percent (size, latency, MSE) is better lower unless ``higher_is_better``."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    value = fraction * 100
    if not signed:
        return f"{value:.{decimals}f} %"
    return _signed(round_toward_worse(value, decimals, higher_is_better), decimals, " %", typographic)


def format_points(change: float | None, decimals: int = 2, typographic: bool = False) -> str:
    """An accuracy (or R²) change, a fraction, in points, rounded toward the worse side: '-1.25 pt'.

    The window's form (``typographic``) writes no change as '±0.0 pt'."""
    if change is None or not math.isfinite(change):
        return MISSING
    points = round_toward_worse(change * 100, decimals, higher_is_better=True)
    if typographic and points == 0:
        return f"±{0:.{decimals}f} pt"
    return _signed(points, decimals, " pt", typographic)


def format_points_interval(interval: object, decimals: int = 2, typographic: bool = False) -> str:
    """A change's interval (low, high fractions) in points, rounded inward: '[-2.10, +0.40]'; '' without one,
    and '' for exactly [0, 0] (no sample changed its outcome: the change itself says it all).

    Rounded inward, the interval shown includes 0 exactly when the measured one does."""
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return ""
    low, high = interval
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (low, high)) or low == high == 0:
        return ""
    lo = round_toward_worse(low * 100, decimals, higher_is_better=False)
    hi = round_toward_worse(high * 100, decimals, higher_is_better=True)
    while lo > hi and decimals < 6:  # narrower than one step: show another digit rather than cross 0
        decimals += 1
        lo = round_toward_worse(low * 100, decimals, higher_is_better=False)
        hi = round_toward_worse(high * 100, decimals, higher_is_better=True)
    return f"[{_signed(lo, decimals, '', typographic)}, {_signed(hi, decimals, '', typographic)}]"


def format_reduction(reduction: float, decimals: int = 0) -> str:
    """A size reduction (0.75: a quarter of the size) in words, rounded toward less saved: '49 % smaller'."""
    value = round_toward_worse(reduction * 100, decimals, higher_is_better=True)
    if value >= 0:
        return f"{value:.{decimals}f} % smaller"
    return f"{-value:.{decimals}f} % larger"


def format_size_change(size: float, baseline: float | None, typographic: bool = False) -> str:
    """A size against its baseline's: '-74 %' (smaller), '+3 %', '±0 %'; '' without one. In whole percent from
    1 % on, with one decimal below ('+0.1 %', '-0.8 %', as the CLI's table writes them): rounded toward the worse
    side at whole percent, a file 0.1 % larger would read '+1 %'."""
    if baseline is None or baseline <= 0:
        return ""
    change = size / baseline - 1.0
    decimals = 0 if abs(change) >= 0.01 else 1
    if round_toward_worse(change * 100, decimals, higher_is_better=False) == 0:
        return "±0 %"
    return format_percent(change, decimals=decimals, signed=True, typographic=typographic)


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
