"""The sweeps as an HTML page: inline SVG line charts and the tables behind them (no Qt, no plotting library).

Calibration sweep: accuracy and output SQNR against the calibration sample count (log scale), one line
per method. Batch sweep: latency per call and throughput against the batch size (log scale), one line per
variant, the best throughput within the latency limit ringed. The line and table data come from
``series`` functions, which the window's charts (``qtapp.charts.sweep_charts``) draw too, so the window and
the report cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

from core.printable import markup_escape as escape
from core.reports.chart_data import variant_colors
from core.reports.format import format_ms, format_percent, format_tick

WIDTH, HEIGHT = 640, 300
MARGIN = {"left": 64, "right": 150, "top": 34, "bottom": 46}
INK, MUTED, GRID = "#1f2328", "#57606a", "#d8dee4"


# ---- the series (shared with the window) ------------------------------------------------------


def calibration_series(sweep: dict[str, Any], measure: str) -> dict[str, list[tuple[float, float]]]:
    """Method -> [(samples, value)] of the measured points; ``measure`` is "accuracy" (percent) or "sqnr_db"."""
    lines: dict[str, list[tuple[float, float]]] = {m: [] for m in sweep.get("methods", [])}
    for p in sweep.get("points", []):
        value = p.get(measure)
        if p.get("status") == "ok" and value is not None:
            lines.setdefault(p["method"], []).append(
                (float(p["samples"]), 100.0 * value if measure == "accuracy" else float(value))
            )
    return {m: sorted(v) for m, v in lines.items() if v}


def batch_series(sweep: dict[str, Any], measure: str) -> dict[str, list[tuple[float, float]]]:
    """Variant -> [(batch size, value)]; ``measure`` is "latency" (p50 ms per call) or "throughput" (per s)."""
    lines = {}
    for v in sweep.get("variants", []):
        points = []
        for p in v.get("points", []):
            value = p["latency_ms"]["p50"] if measure == "latency" else p.get("throughput_per_s")
            if value is not None:
                points.append((float(p["batch_size"]), float(value)))
        if points:
            lines[v["label"]] = points
    return lines


def best_points(sweep: dict[str, Any], measure: str) -> dict[str, tuple[float, float]]:
    """Variant -> its best batch's (batch size, value) for ``measure``: the point ringed on the charts."""
    found = {}
    for v in sweep.get("variants", []):
        batch = v.get("best_batch_size")
        for p in v.get("points", []):
            if p["batch_size"] == batch:
                value = p["latency_ms"]["p50"] if measure == "latency" else p.get("throughput_per_s")
                if value is not None:
                    found[v["label"]] = (float(batch), float(value))
    return found


# ---- SVG ----------------------------------------------------------------------------------------


def _log2_ticks(lo: float, hi: float) -> list[float]:
    ticks, v = [], 2.0 ** math.floor(math.log2(max(lo, 1e-9)))
    while v <= hi * 1.0001:
        if v >= lo / 1.0001:
            ticks.append(v)
        v *= 2
    step = max(1, len(ticks) // 8)
    return ticks[::step]


#: Lines that lie on top of each other stay told apart by their dashes.
DASHES = ("", "7 4", "2 3", "10 3 2 3")


def _tick_text(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (99.6, 99.8, 100.0 rather than 100, 100, 100)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:,.{min(decimals, 6)}f}"


def _nice(lo: float, hi: float) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def line_chart(
    lines: dict[str, list[tuple[float, float]]], colors: dict[str, str], title: str, x_title: str, y_title: str,
    kind: str, rings: dict[str, tuple[float, float]] | None = None, limit: float | None = None,
) -> str:
    """One SVG chart: log-2 x axis, linear y, a polyline and dots per line, a legend on the right."""
    if not lines:
        return f'<p class="hint">{escape(title)}: nothing measured.</p>'
    xs = [x for pts in lines.values() for x, _ in pts]
    ys = [y for pts in lines.values() for _, y in pts] + ([limit] if limit is not None else [])
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo / 2, x_hi * 2
    yt = _nice(min(ys), max(ys))
    y_lo, y_hi = yt[0], yt[-1]
    y_step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    left, top = MARGIN["left"], MARGIN["top"]
    w, h = WIDTH - left - MARGIN["right"], HEIGHT - top - MARGIN["bottom"]

    def px(x: float) -> float:
        return left + w * (math.log2(x) - math.log2(x_lo)) / (math.log2(x_hi) - math.log2(x_lo))

    def py(y: float) -> float:
        return top + h * (1 - (y - y_lo) / (y_hi - y_lo))

    out = [f'<svg class="chart" data-chart="{escape(kind)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
           f'role="img" aria-label="{escape(title)}" font-family="system-ui, sans-serif">',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold" fill="{INK}">{escape(title)}</text>']
    for y in yt:
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                   f"{escape(_tick_text(y, y_step))}</text>")
    for x in _log2_ticks(x_lo, x_hi):
        out.append(f'<text x="{px(x):.1f}" y="{top + h + 16}" font-size="11" text-anchor="middle" fill="{MUTED}">'
                   f"{escape(format_tick(x))}</text>")
    out.append(f'<text x="{left + w / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle" fill="{INK}">'
               f"{escape(x_title)}</text>")
    out.append(f'<text transform="translate(14 {top + h / 2}) rotate(-90)" font-size="12" text-anchor="middle" '
               f'fill="{INK}">{escape(y_title)}</text>')
    if limit is not None:
        out.append(f'<line data-limit="{limit}" x1="{left}" x2="{left + w}" y1="{py(limit):.1f}" '
                   f'y2="{py(limit):.1f}" stroke="#b42318" stroke-dasharray="6 4" stroke-width="1.5"/>'
                   f'<text x="{left + w - 4}" y="{py(limit) - 5:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#b42318">limit {escape(format_tick(limit))}</text>')
    for i, (name, pts) in enumerate(lines.items()):
        color = colors.get(name, INK)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash = DASHES[i % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<g data-variant="{escape(name)}"><polyline points="{path}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{dashed}/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}"/>' for x, y in pts]
        ring = (rings or {}).get(name)
        if ring is not None:
            out.append(f'<circle data-best="{format_tick(ring[0])}" cx="{px(ring[0]):.1f}" cy="{py(ring[1]):.1f}" '
                       f'r="8" fill="none" stroke="{color}" stroke-width="2.5"/>')
        out.append("</g>")
        ly = top + 14 + 18 * i
        out.append(f'<line x1="{left + w + 10}" x2="{left + w + 26}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
                   f'stroke-width="2.5"{dashed}/>'
                   f'<text x="{left + w + 28}" y="{ly}" font-size="12" fill="{INK}">{escape(name[:22])}</text>')
    out.append("</svg>")
    return "".join(out)


# ---- pages --------------------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;color:{INK};"
        "max-width:980px;margin:24px auto;padding:0 16px}table{border-collapse:collapse;margin:8px 0 20px}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:right}th{background:#f6f8fa}"
        ".hint{color:#57606a}.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def calibration_section(sweep: dict[str, Any]) -> str:
    colors = variant_colors(sweep.get("methods", []), baselines=())  # methods, none of them a baseline
    accuracy = line_chart(calibration_series(sweep, "accuracy"), colors, "Accuracy against calibration samples",
                          "calibration samples", "accuracy (%)", "calibration-accuracy")
    sqnr = line_chart(calibration_series(sweep, "sqnr_db"), colors, "Output SQNR against calibration samples",
                      "calibration samples", "SQNR vs float (dB)", "calibration-sqnr")
    rows = "".join(
        f"<tr><td style='text-align:left'>{escape(p['method'])}</td><td>{p['samples']}</td>"
        + (f"<td>{escape(format_percent(p['accuracy']))}</td><td>{-p['accuracy_drop_pt']:+.2f}</td>"
           f"<td>{'' if p['sqnr_db'] is None else format_tick(p['sqnr_db'])}</td>"
           if p["status"] == "ok" else f"<td colspan='3'>failed: {escape(p.get('error', ''))}</td>")
        + f"<td style='text-align:left'><code>{escape(p['scheme'])}</code></td></tr>"
        for p in sweep.get("points", [])
    )
    base = sweep.get("float_accuracy")
    notes = "".join(f"<p class='hint'>{escape(n)}.</p>" for n in sweep.get("notes", []))
    return (
        f"<h2>Calibration: {escape(sweep.get('scheme', ''))}, method × samples ({escape(sweep['status'])})</h2>"
        f"<p>Float accuracy {escape(format_percent(base)) if base is not None else '-'}; each point built, "
        "evaluated on the evaluation samples (never the calibration ones).</p>"
        f"<div class='charts'>{accuracy}{sqnr}</div>{notes}"
        "<table><tr><th>method</th><th>samples</th><th>accuracy</th><th>change (pt)</th><th>SQNR dB</th>"
        f"<th>scheme</th></tr>{rows}</table>"
    )


def batch_section(sweep: dict[str, Any]) -> str:
    labels = [v["label"] for v in sweep.get("variants", [])]
    colors = variant_colors(labels)
    limit = sweep.get("latency_limit_ms")
    latency = line_chart(batch_series(sweep, "latency"), colors, "Latency per call against batch size",
                         "batch size", "median latency per call (ms)", "batch-latency",
                         best_points(sweep, "latency"), limit)
    throughput = line_chart(batch_series(sweep, "throughput"), colors, "Throughput against batch size",
                            "batch size", "samples per second", "batch-throughput", best_points(sweep, "throughput"))
    rows = []
    for v in sweep.get("variants", []):
        if v.get("status") != "ok":
            rows.append(f"<tr><td style='text-align:left'>{escape(v['label'])}</td>"
                        f"<td colspan='4'>failed: {escape(v.get('error', ''))}</td></tr>")
            continue
        for p in v["points"]:
            best = "best" if p["batch_size"] == v.get("best_batch_size") else ""
            rows.append(
                f"<tr><td style='text-align:left'>{escape(v['label'])}</td><td>{p['batch_size']}</td>"
                f"<td>{escape(format_ms(p['latency_ms']['p50']))}</td><td>{_per_s(p['throughput_per_s'])}</td>"
                f"<td>{best}</td></tr>"
            )
        if v.get("stopped"):
            rows.append(f"<tr><td></td><td colspan='4' class='hint' style='text-align:left'>"
                        f"stopped: {escape(v['stopped'])}</td></tr>")
    within = f"within {format_ms(limit)} ms per call" if limit is not None else "(no latency limit)"
    return (
        f"<h2>Batch size ({escape(sweep['status'])})</h2><p>Ringed: each variant's best throughput {within}.</p>"
        f"<div class='charts'>{latency}{throughput}</div>"
        "<table><tr><th>variant</th><th>batch</th><th>p50 ms per call</th><th>samples/s</th><th></th></tr>"
        f"{''.join(rows)}</table>"
    )


def _per_s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_sweeps_html(calibration: dict[str, Any] | None, batch: dict[str, Any] | None, model: str) -> str:
    """One self-contained HTML page with whichever sweeps ran."""
    body = "".join(
        section for section in (
            calibration_section(calibration) if calibration else "",
            batch_section(batch) if batch else "",
        )
    )
    return _page(f"QuantBench sweeps: {model}", body)
