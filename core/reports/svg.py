"""The report's charts as inline SVG, drawn from plain numbers (no Qt, no plotting library).

Each function takes already-extracted data and returns one ``<svg>`` element
that scales to its container (a viewBox, width 100 %), so the HTML report stays
one self-contained file and prints sharply. Every chart carries
``data-chart`` and per-variant ``data-variant`` attributes, which tests (and
anyone scripting the report) can read back. Colours come from
``core.reports.chart_data`` (``variant_colors``), the same as the window's, so a
variant has the same colour in every chart and on every face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.layers.stats import DEPARTS_BELOW_DB
from core.printable import markup_escape as escape
from core.reports.chart_data import LAYER_CHART_TOP_DB, latency_histogram
from core.reports.format import byte_unit, format_bytes, format_ms, format_percent, format_tick

INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d8dee4"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_DIAG_DARK = "#0b4f8a"  # correct predictions
_OFF_DARK = "#b42318"  # confusions
_CHAR_W = 0.56  # average glyph width as a fraction of the font size, for layout estimates


# ---- latency histograms ------------------------------------------------------------------------


@dataclass
class LatencySeries:
    label: str
    color: str
    samples_ms: list[float]
    p50: float
    p99: float


def latency_histograms(series: list[LatencySeries], width: int = 900) -> str:
    """One histogram row per variant on a shared logarithmic ms axis, p50 (solid) and p99 (dashed) marked.

    Bins and range come from ``chart_data`` (the window draws the same); samples beyond the axis are
    written as "+N" at the row's end, never piled into the end bins."""
    series = [s for s in series if any(x > 0 for x in s.samples_ms)]
    binned = latency_histogram([s.samples_ms for s in series])
    if binned is None:
        return _empty_chart("latency", width, "No latency samples were recorded.")
    edges, rows = binned
    lo, hi = float(edges[0]), float(edges[-1])
    caption_w, right, row_h, gap, top = 230, 24, 46, 10, 12
    x0, x1 = caption_w, width - right
    axis_y = top + len(series) * (row_h + gap)
    height = axis_y + 58
    scale = _LogScale(lo, hi, x0, x1)

    parts = [_svg_open("latency", width, height, "Latency histograms, one row per variant, shared log axis")]
    for tick in scale.ticks():
        x = scale(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(x, axis_y + 16, format_tick(tick), size=11, anchor="middle", fill=MUTED))
    parts.append(
        _text((x0 + x1) / 2, axis_y + 36, "milliseconds per call (log scale)", size=12, anchor="middle", fill=MUTED)
    )

    for i, (s, (counts, over, under)) in enumerate(zip(series, rows, strict=True)):
        y_top = top + i * (row_h + gap)
        base = y_top + row_h
        peak = int(counts.max()) or 1
        parts.append(
            f'<g data-variant="{escape(s.label)}" data-n="{len(s.samples_ms)}"'
            f' data-binned="{int(counts.sum()) + over + under}" data-beyond="{over}"'
            f' data-counts="{" ".join(str(int(c)) for c in counts)}"'
            f' data-p50="{s.p50:.6g}" data-p99="{s.p99:.6g}">'
        )
        parts.append(f'<line x1="{x0}" y1="{base}" x2="{x1}" y2="{base}" stroke="{MUTED}" stroke-width="1"/>')
        path = []
        for j, c in enumerate(counts):
            if c:
                xa, xb = scale(edges[j]), scale(edges[j + 1])
                h = max(1.0, (row_h - 4) * c / peak)
                path.append(f"M{xa:.1f},{base:.1f}h{xb - xa:.2f}v{-h:.1f}h{xa - xb:.2f}z")
        parts.append(f'<path d="{"".join(path)}" fill="{s.color}" fill-opacity="0.8"/>')
        for value, dash in ((s.p50, ""), (s.p99, ' stroke-dasharray="4 3"')):
            if lo <= value <= hi:
                x = scale(value)
                parts.append(
                    f'<line x1="{x:.1f}" y1="{y_top - 2}" x2="{x:.1f}" y2="{base}"'
                    f' stroke="{INK}" stroke-width="1.6"{dash}/>'
                )
        if over:
            parts.append(_text(x1 + 2, base - 2, f"+{over}", size=10, anchor="start", fill=MUTED))
        parts.append(_swatch(8, y_top + 6, s.color))
        parts.append(_text(24, y_top + 16, _clip(s.label, 30), size=13, weight="600"))
        parts.append(
            _text(
                24,
                y_top + 33,
                f"p50 {format_ms(s.p50)} · p99 {format_ms(s.p99)} ms · n={len(s.samples_ms)}",
                size=11,
                fill=MUTED,
            )
        )
        parts.append("</g>")
    ly = height - 10
    parts.append(f'<line x1="{x0}" y1="{ly - 4}" x2="{x0 + 22}" y2="{ly - 4}" stroke="{INK}" stroke-width="1.6"/>')
    parts.append(_text(x0 + 28, ly, "median (p50)", size=11, fill=MUTED))
    parts.append(
        f'<line x1="{x0 + 130}" y1="{ly - 4}" x2="{x0 + 152}" y2="{ly - 4}"'
        f' stroke="{INK}" stroke-width="1.6" stroke-dasharray="4 3"/>'
    )
    parts.append(_text(x0 + 158, ly, "p99; +N: samples beyond the axis", size=11, fill=MUTED))
    parts.append("</svg>")
    return "".join(parts)


# ---- confusion matrices ------------------------------------------------------------------------


@dataclass
class ConfusionItem:
    label: str
    color: str
    matrix: list[list[int]]
    accuracy: float | None = None
    #: The baseline's matrix: cells that differ from it are outlined (None for the baseline itself).
    reference: list[list[int]] | None = None


def confusion_matrices(items: list[ConfusionItem], class_names: list[str] | None = None, width: int = 900) -> str:
    """Small multiples on one shared colour scale: correct counts in blue, confusions in red.

    Cells whose count differs from the item's ``reference`` (its baseline's
    matrix) are outlined, so what quantization changed stands out.
    """
    items = [it for it in items if it.matrix]
    if not items:
        return _empty_chart("confusion", width, "No confusion matrix: the dataset has no class labels.")
    k = len(items[0].matrix)
    if k > 40:
        return _top_confusions(items, class_names, width)
    names = [str(c) for c in (class_names or range(k))][:k]
    vmax = max(max(max(row) for row in it.matrix) for it in items) or 1
    cell = max(7.0, min(26.0, 250.0 / k))
    margin = 34 if k <= 20 else 12
    block_w = margin + k * cell + 14
    per_row = max(1, int(width // block_w))
    block_h = 44 + margin + k * cell + 10
    rows = math.ceil(len(items) / per_row)
    height = int(rows * block_h + 64)
    parts = [_svg_open("confusion", width, height, "Confusion matrices, one per variant, shared colour scale")]
    for n, it in enumerate(items):
        ox = (n % per_row) * block_w + 4
        oy = (n // per_row) * block_h + 4
        total = sum(sum(r) for r in it.matrix)
        parts.append(f'<g data-variant="{escape(it.label)}" data-total="{total}" data-classes="{len(it.matrix)}">')
        parts.append(_swatch(ox, oy + 3, it.color))
        parts.append(
            _text(ox + 16, oy + 13, _clip(it.label, int((block_w - 20) / (13 * _CHAR_W))), size=13, weight="600")
        )
        if it.accuracy is not None:
            accuracy = f"accuracy {format_percent(it.accuracy, decimals=2)}"
            parts.append(_text(ox + 16, oy + 29, accuracy, size=11, fill=MUTED))
        gx, gy = ox + margin, oy + 40 + margin
        if k <= 20:
            parts.append(_text(gx + k * cell / 2, gy - 22, "predicted", size=10, anchor="middle", fill=MUTED))
            parts.append(_text(ox + 2, gy - 6, "true", size=10, fill=MUTED))
            for j, name in enumerate(names):
                parts.append(_text(gx + (j + 0.5) * cell, gy - 6, _clip(name, 3), size=9, anchor="middle", fill=MUTED))
                parts.append(_text(gx - 4, gy + (j + 0.5) * cell + 3, _clip(name, 4), size=9, anchor="end", fill=MUTED))
        ref = it.reference if it.reference is not None and len(it.reference) == len(it.matrix) else None
        for r, row in enumerate(it.matrix):
            for c, count in enumerate(row):
                t = math.sqrt(count / vmax) if count > 0 else 0.0
                fill = _mix("#ffffff", _DIAG_DARK if r == c else _OFF_DARK, t) if count else "#f6f8fa"
                changed = ref is not None and ref[r][c] != count
                stroke = f' stroke="{INK}" stroke-width="1.6"' if changed else ' stroke="#ffffff" stroke-width="0.5"'
                x, y = gx + c * cell, gy + r * cell
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" fill="{fill}"{stroke}'
                    f' data-count="{count}"/>'
                )
                if count and k <= 20 and cell >= 12:
                    ink = "#ffffff" if t > 0.55 else INK
                    parts.append(
                        _text(
                            x + cell / 2,
                            y + cell / 2 + 3.5,
                            str(count),
                            size=min(11, cell * 0.45),
                            anchor="middle",
                            fill=ink,
                        )
                    )
        parts.append("</g>")
    parts.append(_scale_legend(4, height - 52, vmax, any(it.reference is not None for it in items)))
    parts.append("</svg>")
    return "".join(parts)


def _scale_legend(x: float, y: float, vmax: int, outlined: bool) -> str:
    parts = []
    for name, dark, ox in (("correct", _DIAG_DARK, 0), ("confused", _OFF_DARK, 200)):
        parts.append(_text(x + ox, y + 12, name, size=11, fill=MUTED))
        for i in range(10):
            t = math.sqrt((i + 1) / 10)
            parts.append(
                f'<rect x="{x + ox + 62 + i * 10}" y="{y + 2}" width="10" height="12"'
                f' fill="{_mix("#ffffff", dark, t)}"/>'
            )
        parts.append(_text(x + ox + 62, y + 28, "1", size=10, fill=MUTED))
        parts.append(_text(x + ox + 162, y + 28, str(vmax), size=10, anchor="end", fill=MUTED))
    if outlined:
        parts.append(
            f'<rect x="{x + 410}" y="{y + 2}" width="12" height="12" fill="#ffffff" stroke="{INK}" stroke-width="1.6"/>'
        )
        parts.append(_text(x + 428, y + 12, "count differs from the baseline's", size=11, fill=MUTED))
    parts.append(_text(x, y + 42, "one colour scale for every matrix (square root of the count)", size=10, fill=MUTED))
    return "".join(parts)


def _top_confusions(items: list[ConfusionItem], class_names: list[str] | None, width: int) -> str:
    """For many classes a matrix is unreadable: list each variant's most frequent confusions instead."""
    names = [str(c) for c in (class_names or range(len(items[0].matrix)))]
    line_h, top_n = 17, 8
    block_h = 40 + top_n * line_h
    per_row = max(1, width // 300)
    height = math.ceil(len(items) / per_row) * block_h + 10
    parts = [_svg_open("confusion", width, height, "Most frequent confusions per variant")]
    for n, it in enumerate(items):
        ox, oy = (n % per_row) * 300 + 4, (n // per_row) * block_h + 4
        pairs = sorted(
            ((count, r, c) for r, row in enumerate(it.matrix) for c, count in enumerate(row) if r != c and count),
            reverse=True,
        )[:top_n]
        total = sum(sum(r) for r in it.matrix)
        parts.append(f'<g data-variant="{escape(it.label)}" data-total="{total}" data-classes="{len(it.matrix)}">')
        parts.append(_swatch(ox, oy + 3, it.color))
        parts.append(_text(ox + 16, oy + 13, _clip(it.label, 34), size=13, weight="600"))
        parts.append(_text(ox + 16, oy + 29, "most frequent confusions (true → predicted)", size=10, fill=MUTED))
        for i, (count, r, c) in enumerate(pairs):
            actual = _clip(names[r] if r < len(names) else str(r), 14)
            predicted = _clip(names[c] if c < len(names) else str(c), 14)
            label = f"{actual} → {predicted}"
            parts.append(_text(ox + 16, oy + 48 + i * line_h, f"{label}: {count}", size=11))
        if not pairs:
            parts.append(_text(ox + 16, oy + 48, "no confusions", size=11))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


# ---- size bars ---------------------------------------------------------------------------------


@dataclass
class SizeItem:
    label: str
    color: str
    size_bytes: int
    reduction: float | None  # fraction of the baseline saved; None for the baseline itself


def size_bars(items: list[SizeItem], width: int = 900) -> str:
    """Horizontal bars of the shipped file size, labelled with the size and the change against the baseline."""
    items = [it for it in items if it.size_bytes]
    if not items:
        return _empty_chart("size", width, "No variant reported a size.")
    label_w, right, bar_h, gap, top = 210, 170, 22, 8, 8
    x0, x1 = label_w, width - right
    vmax = max(it.size_bytes for it in items)
    axis_y = top + len(items) * (bar_h + gap)
    height = axis_y + 30
    parts = [_svg_open("size", width, height, "Serialized size of each variant")]
    unit_name, unit = byte_unit(vmax)
    for tick in _linear_ticks(0, vmax / unit):  # round numbers of kB or MB, not of bytes
        x = x0 + (x1 - x0) * tick * unit / vmax
        parts.append(f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{axis_y}" stroke="{GRID}"/>')
        parts.append(_text(x, axis_y + 16, f"{tick:g} {unit_name}", size=11, anchor="middle", fill=MUTED))
    for i, it in enumerate(items):
        y = top + i * (bar_h + gap)
        w = max(1.0, (x1 - x0) * it.size_bytes / vmax)
        change = "baseline" if it.reduction is None else format_percent(-it.reduction, signed=True)
        parts.append(f'<g data-variant="{escape(it.label)}" data-bytes="{it.size_bytes}">')
        parts.append(_text(x0 - 8, y + bar_h / 2 + 4, _clip(it.label, 30), size=12, anchor="end"))
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{it.color}" fill-opacity="0.85" rx="2"/>'
        )
        parts.append(
            _text(x0 + w + 6, y + bar_h / 2 + 4, f"{format_bytes(it.size_bytes)}  {change}", size=12, weight="600")
        )
        parts.append("</g>")
    parts.append(f'<line x1="{x0}" y1="{top - 2}" x2="{x0}" y2="{axis_y}" stroke="{MUTED}"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---- trade-off scatter -------------------------------------------------------------------------


@dataclass
class TradeoffPoint:
    label: str
    color: str
    p50_ms: float
    quality: float  # in the unit of the y axis (percent for accuracy or agreement)
    size_bytes: int | None
    baseline: bool = False


def tradeoff_scatter(
    points: list[TradeoffPoint], y_title: str, y_max: float | None = None, width: int = 900, height: int = 430
) -> str:
    """Quality against median latency (log), bubble area proportional to the file size.

    ``y_max`` is the largest meaningful value (100 for a percentage): no tick is drawn above it.
    """
    points = [p for p in points if p.p50_ms > 0 and math.isfinite(p.quality)]
    if not points:
        return _empty_chart("tradeoff", width, "No variant has both a quality score and a latency.")
    left, right, top, bottom = 70, 30, 20, 62
    px0, px1, py0, py1 = left, width - right, top, height - bottom
    lo = min(p.p50_ms for p in points) / 1.6
    hi = max(p.p50_ms for p in points) * 1.6
    xs = _LogScale(lo, hi, px0, px1)
    qlo, qhi = min(p.quality for p in points), max(p.quality for p in points)
    pad = max((qhi - qlo) * 0.25, abs(qhi) * 0.004, 0.5)
    ylo, yhi = qlo - pad, qhi + pad
    if y_max is not None and qhi <= y_max:
        yhi = min(yhi, y_max + (yhi - ylo) * 0.08)  # room for the bubbles, not for values that cannot exist
    ys = lambda q: py1 - (py1 - py0) * (q - ylo) / (yhi - ylo)  # noqa: E731
    smax = max((p.size_bytes or 0) for p in points) or 1

    parts = [_svg_open("tradeoff", width, height, "Quality against latency, bubble size is file size")]
    for tick in xs.ticks():
        x = xs(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{py0}" x2="{x:.1f}" y2="{py1}" stroke="{GRID}"/>')
        parts.append(_text(x, py1 + 16, format_tick(tick), size=11, anchor="middle", fill=MUTED))
    yticks = [t for t in _linear_ticks(ylo, yhi) if y_max is None or t <= y_max + 1e-9]
    for tick, text in zip(yticks, _tick_labels(yticks), strict=True):
        y = ys(tick)
        parts.append(f'<line x1="{px0}" y1="{y:.1f}" x2="{px1}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(px0 - 6, y + 4, text, size=11, anchor="end", fill=MUTED))
    parts.append(f'<rect x="{px0}" y="{py0}" width="{px1 - px0}" height="{py1 - py0}" fill="none" stroke="{MUTED}"/>')
    parts.append(
        _text(
            (px0 + px1) / 2,
            height - 26,
            "median latency, ms per call (log scale) — faster is left",
            size=12,
            anchor="middle",
            fill=MUTED,
        )
    )
    parts.append(_text(16, (py0 + py1) / 2, y_title, size=12, anchor="middle", fill=MUTED, rotate=True))
    parts.append(_text(px0, height - 6, "bubble area is proportional to the file size", size=10, fill=MUTED))

    placed: list[tuple[float, float, float, float]] = []
    circles = []
    for p in sorted(points, key=lambda p: -(p.size_bytes or 0)):  # big bubbles first, small ones stay visible
        r = 5 + 19 * math.sqrt((p.size_bytes or 0) / smax)
        circles.append((p, xs(p.p50_ms), ys(p.quality), r))
    for p, x, y, r in circles:
        stroke = f' stroke="{INK}" stroke-width="2"' if p.baseline else ' stroke="#ffffff" stroke-width="1"'
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{p.color}" fill-opacity="0.72"{stroke}'
            f' data-variant="{escape(p.label)}" data-p50="{p.p50_ms:.6g}" data-quality="{p.quality:.6g}"/>'
        )
        placed.append((x - r, y - r, x + r, y + r))
    for p, x, y, r in sorted(circles, key=lambda c: (c[1], c[2])):
        parts.append(_place_label(p.label, x, y, r, placed, (px0, py0, px1, py1)))
    parts.append("</svg>")
    return "".join(parts)


def _place_label(
    label: str, x: float, y: float, r: float, placed: list[tuple[float, float, float, float]],
    bounds: tuple[float, float, float, float],
) -> str:
    """Put a label next to its bubble where it overlaps nothing already drawn; a leader line when pushed away."""
    text = _clip(label, 34)
    w, h = len(text) * 11 * 0.62 + 6, 14  # bold glyphs run wider than the average
    candidates = [(r + 4, -h / 2), (-(r + 4) - w, -h / 2), (-w / 2, -r - h - 2), (-w / 2, r + 2)]
    for step in range(1, 9):
        candidates += [(r + 4, -h / 2 - step * (h + 2)), (r + 4, -h / 2 + step * (h + 2))]
    best = candidates[0]
    for dx, dy in candidates:
        box = (x + dx, y + dy, x + dx + w, y + dy + h)
        inside = box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]
        if inside and not any(_overlaps(box, other) for other in placed):
            best = (dx, dy)
            break
    bx, by = x + best[0], y + best[1]
    placed.append((bx, by, bx + w, by + h))
    leader = ""
    if abs(best[1] + h / 2) > r + h:
        ex = bx if best[0] > 0 else bx + w
        leader = (
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{ex:.1f}" y2="{by + h / 2:.1f}" stroke="{MUTED}" stroke-width="0.8"/>'
        )
    return leader + _text(bx + 2, by + h - 3, text, size=11, weight="600")


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ---- per-layer SQNR ----------------------------------------------------------------------------

_DEPARTS = "#cf222e"  # the 10 dB line: under it a layer's output has departed from the float model


@dataclass
class LayerSeries:
    """One variant's per-layer activation SQNR against the float model, in model order (None: no figure)."""

    label: str
    color: str
    names: list[str]
    sqnr_db: list[float | None]
    worst_channel_db: list[float | None]


def layer_sqnr_chart(
    series: list[LayerSeries], names: list[str], title: str, departs_db: float = DEPARTS_BELOW_DB,
    width: int = 900,
) -> str:
    """Activation SQNR per layer in model order on a shared layer axis (``names``, e.g. from
    ``chart_data.merged_layer_names``): a line with a dot per layer for each variant, its worst channel as a
    triangle, and the dashed ``departs_db`` line. Values above ``chart_data.LAYER_CHART_TOP_DB`` (exact copies)
    are drawn on the top edge; the chart says so."""
    series = [s for s in series if s.names]
    if not series or not names:
        return _empty_chart("layers", width, "No layer was compared with the float model.")
    top_db = LAYER_CHART_TOP_DB
    position = {name: i for i, name in enumerate(names)}
    values = [min(top_db, float(v)) for s in series for v in (*s.sqnr_db, *s.worst_channel_db) if _number(v)]
    clamped = any(float(v) > top_db for s in series for v in (*s.sqnr_db, *s.worst_channel_db) if _number(v))
    ylo = min([0.0, *values]) - 3
    yhi = max([departs_db * 4, *values]) + 8
    left, right, top, plot_h = 62, 16, 30, 240
    px0, px1, py0, py1 = left, width - right, top, top + plot_h
    step = (px1 - px0) / len(names)
    x_of = lambda i: px0 + (i + 0.5) * step  # noqa: E731
    y_of = lambda v: py1 - (py1 - py0) * (min(top_db, v) - ylo) / (yhi - ylo)  # noqa: E731

    every = max(1, math.ceil(len(names) / max(1, int((px1 - px0) // 14))))  # a readable name every 14 px at most
    shown = [names[i] for i in range(0, len(names), every)]
    label_chars = min(26, max((len(n) for n in shown), default=1))
    labels_h = label_chars * 10 * _CHAR_W * 0.82 + 18  # rotated 55 degrees
    legend_y = py1 + labels_h + 16
    per_line = max(1, int((width - 16) // 190))
    legend_lines = math.ceil(len(series) / per_line)
    height = int(legend_y + legend_lines * 18 + 24)

    parts = [_svg_open("layers", width, height, title), f'<g data-layers="{len(names)}" data-departs="{departs_db:g}">']
    parts.append(_text(4, 16, title, size=13, weight="600"))
    for tick in [t for t in _linear_ticks(ylo, yhi) if t <= top_db + 1e-9]:
        y = y_of(tick)
        parts.append(f'<line x1="{px0}" y1="{y:.1f}" x2="{px1}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(px0 - 6, y + 4, f"{tick:g}", size=11, anchor="end", fill=MUTED))
    parts.append(f'<rect x="{px0}" y="{py0}" width="{px1 - px0}" height="{py1 - py0}" fill="none" stroke="{MUTED}"/>')
    parts.append(_text(16, (py0 + py1) / 2, "activation SQNR (dB)", size=12, anchor="middle", fill=MUTED, rotate=True))
    y10 = y_of(departs_db)
    parts.append(f'<line x1="{px0}" y1="{y10:.1f}" x2="{px1}" y2="{y10:.1f}" stroke="{_DEPARTS}" stroke-width="1.4"'
                 ' stroke-dasharray="6 4"/>')
    parts.append(_text(px1 - 4, y10 - 4, f"{departs_db:g} dB", size=10, anchor="end", fill=_DEPARTS))
    for i in range(0, len(names), every):
        x = x_of(i)
        parts.append(f'<line x1="{x:.1f}" y1="{py1}" x2="{x:.1f}" y2="{py1 + 4}" stroke="{MUTED}"/>')
        parts.append(
            f'<text x="{x + 3:.1f}" y="{py1 + 12:.1f}" font-size="10" text-anchor="end" fill="{MUTED}"'
            f' transform="rotate(-55 {x + 3:.1f} {py1 + 12:.1f})">{escape(_clip_start(names[i], label_chars))}'
            "</text>"
        )
    radius = min(3.2, max(1.2, step * 0.3))
    for s in series:
        parts.append(_layer_series(s, position, x_of, y_of, radius))
    for n, s in enumerate(series):
        lx, ly = 8 + (n % per_line) * 190, legend_y + (n // per_line) * 18
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" stroke="{s.color}" stroke-width="2"/>'
        )
        parts.append(f'<circle cx="{lx + 9}" cy="{ly - 4}" r="3" fill="{s.color}"/>')
        parts.append(_text(lx + 24, ly, _clip(s.label, 26), size=11))
    ly = height - 8
    parts.append(f'<circle cx="12" cy="{ly - 4}" r="3" fill="{MUTED}"/>')
    parts.append(_text(20, ly, "the whole tensor", size=11, fill=MUTED))
    parts.append(_triangle(126, ly - 4, 4.5, MUTED))
    parts.append(_text(134, ly, "its worst channel", size=11, fill=MUTED))
    parts.append(f'<line x1="250" y1="{ly - 4}" x2="272" y2="{ly - 4}" stroke="{_DEPARTS}" stroke-width="1.4"'
                 ' stroke-dasharray="6 4"/>')
    tail = f"under {departs_db:g} dB the output departs from the float model"
    if clamped:
        tail += f"; exact copies drawn at {top_db:g} dB"
    if every > 1:
        tail += f"; every {every}th layer named"
    parts.append(_text(278, ly, tail, size=11, fill=MUTED))
    parts.append("</g></svg>")
    return "".join(parts)


def _layer_series(s: LayerSeries, position: dict[str, int], x_of: Any, y_of: Any, radius: float) -> str:
    """One variant's line (broken where a layer has no figure), its dots and its worst-channel triangles."""
    path, pen_down = [], False
    for n, v in zip(s.names, s.sqnr_db, strict=True):
        if n not in position or not _number(v):
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{x_of(position[n]):.1f},{y_of(float(v)):.1f}")
        pen_down = True
    points = [(position[n], float(v)) for n, v in zip(s.names, s.sqnr_db, strict=True) if n in position and _number(v)]
    worst = [(position[n], float(v)) for n, v in zip(s.names, s.worst_channel_db, strict=True)
             if n in position and _number(v)]
    out = [
        f'<g data-variant="{escape(s.label)}" data-points="{len(points)}" data-worst-points="{len(worst)}"'
        f' data-sqnr="{" ".join(f"{v:.4g}" for _, v in points)}">',
        f'<path d="{"".join(path)}" fill="none" stroke="{s.color}" stroke-width="2" stroke-linejoin="round"/>',
    ]
    out += [f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="{radius:.1f}" fill="{s.color}"/>' for i, v in points]
    out += [_triangle(x_of(i), y_of(v), radius * 1.5, s.color) for i, v in worst]
    out.append("</g>")
    return "".join(out)


def _triangle(x: float, y: float, r: float, color: str) -> str:
    """A downward triangle centred on (x, y): a worst channel's mark (the window draws the same)."""
    return (f'<path d="M{x:.1f},{y + r:.1f}L{x - r:.1f},{y - r * 0.75:.1f}L{x + r:.1f},{y - r * 0.75:.1f}Z"'
            f' fill="{color}" fill-opacity="0.45" stroke="{color}" stroke-width="1.1" data-mark="worst-channel"/>')


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _clip_start(text: str, n: int) -> str:
    """The end of a long layer name, which tells layers apart ("…/classifier.4/Gemm")."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


# ---- small helpers -----------------------------------------------------------------------------


class _LogScale:
    def __init__(self, lo: float, hi: float, x0: float, x1: float) -> None:
        self.lo, self.hi, self.x0, self.x1 = lo, hi, x0, x1
        self._span = math.log(hi / lo)

    def __call__(self, v: float) -> float:
        return self.x0 + (self.x1 - self.x0) * math.log(max(v, self.lo) / self.lo) / self._span

    def ticks(self) -> list[float]:
        """1-2-5 ticks inside the range; only decades when the range is wide, more steps when narrow."""
        for mults in ((1, 2, 5), (1,), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            ticks = [
                m * 10.0**e
                for e in range(math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi)) + 1)
                for m in mults
                if self.lo <= m * 10.0**e <= self.hi
            ]
            if 3 <= len(ticks) <= 10:
                return ticks
        return ticks


def _linear_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _tick_labels(ticks: list[float]) -> list[str]:
    """The fewest decimals that keep every tick label distinct (99.2, 99.4, not 99, 99)."""
    for decimals in range(5):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{t:g}" for t in ticks]


def _mix(a: str, b: str, t: float) -> str:
    t = min(1.0, max(0.0, t))
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def _svg_open(kind: str, width: float, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="{escape(title)}" font-family="{escape(FONT)}"'
        f' style="max-width:{width}px"><title>{escape(title)}</title>'
    )


def _empty_chart(kind: str, width: int, message: str) -> str:
    return _svg_open(kind, width, 40, message) + _text(8, 24, message, size=13, fill=MUTED) + "</svg>"


def _text(
    x: float, y: float, text: str, size: float = 12, anchor: str = "start", fill: str = INK,
    weight: str | None = None, rotate: bool = False,
) -> str:
    extra = f' font-weight="{weight}"' if weight else ""
    if rotate:
        extra += f' transform="rotate(-90 {x:.1f} {y:.1f})"'
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{escape(text)}</text>"
    )


def _swatch(x: float, y: float, color: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="11" height="11" rx="2" fill="{color}"/>'
