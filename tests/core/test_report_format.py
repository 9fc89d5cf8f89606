"""One convention for units, times, colours and histogram bins (core.reports.format, core.reports.chart_data),
and the CLI table and the HTML report asking it (issue 13, symptoms 1, 2 and 6 on the faces without Qt)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from core.reports import chart_data
from core.reports import svg as svg_charts
from core.reports.format import (
    byte_unit,
    format_bytes,
    format_ms,
    format_percent,
    format_size_change,
    format_speedup,
    format_tick,
    local_time,
    local_time_with_zone,
)
from core.reports.html import render_html
from core.reports.text import format_table
from core.study.result import Grade, LatencyStats, StudyResult, VariantResult, VariantStatus, Verdict

SIZE = 873_000  # the file of issue 13: "873 kB" in the window, "852.9 KB" in the CLI and the report


def test_sizes_are_decimal_si_units() -> None:
    assert format_bytes(SIZE) == "873 kB"
    assert [format_bytes(n) for n in (0, 999, 1_000, 1_500_000, 46_700_000, 2_000_000_000)] == [
        "0 B", "999 B", "1.0 kB", "1.5 MB", "46.7 MB", "2.0 GB",
    ]
    assert format_bytes(None) == "-"
    assert byte_unit(SIZE) == ("kB", 1e3) and byte_unit(12) == ("B", 1.0)


def test_latencies_have_three_significant_digits() -> None:
    assert [format_ms(x) for x in (0.0593, 0.512, 1.5, 12.34, 123.4, 9.996, 0.09996)] == [
        "0.0593", "0.512", "1.50", "12.3", "123", "10.0", "0.100",
    ]
    assert format_ms(None) == "-" and format_ms(float("nan")) == "-"
    assert [format_tick(t) for t in (0.05, 0.2, 1.0, 500.0, 2000.0)] == ["0.05", "0.2", "1", "500", "2000"]


def test_percentages_speedups_and_size_changes() -> None:
    assert format_percent(0.1234) == "12.3 %" and format_percent(0.98765, decimals=2) == "98.77 %"
    assert format_percent(-0.745, signed=True) == "-74.5 %" and format_percent(0.04, signed=True) == "+4.0 %"
    assert format_percent(-0.745, signed=True, typographic=True) == "\u221274.5 %"
    assert [format_speedup(x) for x in (1.0, 2.456, 12.34, 0.0123)] == ["1.00x", "2.46x", "12.3x", "0.012x"]
    assert format_speedup(2.456, typographic=True) == "2.46\u00d7" and format_speedup(None) == "-"
    assert format_size_change(25, 100) == "-75 %" and format_size_change(100, 100) == "±0 %"
    assert format_size_change(120, 100, typographic=True) == "+20 %" and format_size_change(1, None) == ""


def test_a_study_time_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert local_time("2024-05-01T12:00:00+00:00") == "2024-05-01 14:00"
        assert local_time_with_zone("2024-05-01T12:00:00+00:00") == "2024-05-01 14:00 UTC+02:00"
        assert local_time("not a time") == "not a time"
    finally:
        monkeypatch.undo()
        time.tzset()


# ---- palette and bins ----------------------------------------------------------------------------


def test_every_variant_of_a_long_comparison_has_its_own_colour() -> None:
    labels = ["fp32"] + [f"v{i}" for i in range(15)]
    colors = chart_data.variant_colors(labels)
    assert colors["fp32"] == chart_data.BASELINE_COLORS[0]
    assert [colors[f"v{i}"] for i in range(8)] == list(chart_data.VARIANT_COLORS)
    assert len(set(colors.values())) == len(labels)  # past the eight fixed colours too
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors.values())


def test_samples_beyond_the_axis_are_counted_apart() -> None:
    rng = np.random.default_rng(4)
    body = rng.lognormal(0.0, 0.05, 1000)
    samples = np.concatenate([body, [40.0, 55.0]])  # two stray spikes
    edges, (bins,) = chart_data.latency_histogram([samples])
    assert len(edges) == chart_data.LATENCY_BINS + 1
    assert edges[0] <= body.min() and edges[-1] > np.percentile(samples, 99.5)
    assert edges[-1] < 2.0  # the spikes do not stretch the axis (and squash the body into a few bins)
    assert bins.beyond == 2 and bins.below == 0 and int(bins.counts.sum()) == body.size
    # Half-open bins: a sample exactly on the top edge is beyond it, one on the bottom edge inside.
    again = chart_data.bin_latencies([edges[0], edges[-1]], edges)
    assert (int(again.counts[0]), again.beyond) == (1, 1)


# ---- the faces without Qt -----------------------------------------------------------------------


def _study(sizes: list[int], samples: list[list[float]] | None = None) -> StudyResult:
    """A hand-made finished study: the baseline first, the rest graded against it."""
    results = []
    for i, size in enumerate(sizes):
        values = np.asarray(samples[i] if samples else [1.0, 1.1, 1.2], dtype=float)
        p50, p90, p99 = (float(np.percentile(values, q)) for q in (50, 90, 99))
        lat = LatencyStats(p50, p90, p99, float(values.mean()), float(values.std()), float(values.min()),
                           float(values.max()), int(values.size), (p50, p50), 0.02, False)
        verdict = None if i == 0 else Verdict(
            Grade.GOOD, Grade.GOOD, Grade.GOOD, Grade.GOOD, 0.0, 1 - size / sizes[0], 0.5, 2.0, None, {},
        )
        results.append(VariantResult(
            label="fp32" if i == 0 else f"v{i}", scheme="fp32" if i == 0 else f"scheme-{i}", status=VariantStatus.OK,
            runtime="onnxruntime", size_bytes=size, latency=lat, metrics={"accuracy": 0.9}, verdict=verdict,
            samples_ms=values.tolist(),
        ))
    return StudyResult(
        study_id="0123456789abcdef", created="2024-05-01T12:00:00+00:00", status="finished",
        model={"path": "model.onnx", "format": "onnx", "file_bytes": sizes[0]},
        dataset={"spec": "synthetic:8", "samples": 8, "task": "classification"},
        environment={"cpu": "test cpu"}, timing={"threads": 1, "mode": "quick"}, spec={}, results=results,
    )


def _table_cell(table: str, row_label: str, column: str) -> str:
    """One cell of the CLI's fixed-width table, found by its header and its row's label."""
    lines = table.splitlines()
    header, rule = lines[0], lines[1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    titles = [header[a:b].strip() for a, b in spans]
    a, b = spans[titles.index(column)]
    row = next(line for line in lines[2:] if line.startswith(row_label + " "))
    return row[a:b].strip()


def _html_cells(html: str, row_label: str) -> list[str]:
    """The text of each cell of ``row_label``'s row in the report's results table."""
    table = re.search(r'<table class="results">.*?</table>', html, flags=re.S).group(0)
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        if cells and cells[0] == row_label:
            return cells
    raise AssertionError(f"no row {row_label!r}")


def test_the_cli_table_and_the_html_report_write_the_same_size() -> None:
    study = _study([SIZE, 436_600])
    table = format_table(study)
    html = render_html([study])
    assert _table_cell(table, "fp32", "Size") == "873 kB" == _html_cells(html, "fp32")[8]
    assert _table_cell(table, "v1", "Size") == "437 kB" == _html_cells(html, "v1")[8]
    svg = re.search(r'<svg[^>]*data-chart="size".*?</svg>', html, flags=re.S).group(0)
    assert "873 kB" in svg and " KB" not in svg and "KiB" not in svg
    assert " KB" not in table and " KB" not in html


def test_the_report_colours_variants_past_the_eighth_from_the_one_palette() -> None:
    study = _study([SIZE] + [SIZE // 2] * 12)
    html = render_html([study])
    colors = chart_data.variant_colors([v.label for v in study.results])
    size_chart = re.search(r'<svg[^>]*data-chart="size".*?</svg>', html, flags=re.S).group(0)
    for label, color in colors.items():
        group = re.search(rf'<g data-variant="{label}".*?</g>', size_chart, flags=re.S).group(0)
        assert f'fill="{color}"' in group, label
        assert f'<span class="swatch" style="background:{color}"></span>{label}<' in html, label
    assert len(set(colors.values())) == 13


def test_the_svg_histogram_holds_chart_data_counts_and_says_how_many_lie_beyond() -> None:
    rng = np.random.default_rng(5)
    fast = np.concatenate([rng.lognormal(-1.0, 0.05, 400), [30.0]])
    slow = rng.lognormal(0.0, 0.05, 300)
    svg = svg_charts.latency_histograms([
        svg_charts.LatencySeries("fp32", "#7a7a7a", slow.tolist(), float(np.median(slow)), 1.1),
        svg_charts.LatencySeries("int8", "#0072b2", fast.tolist(), float(np.median(fast)), 0.4),
    ])
    _, (slow_bins, fast_bins) = chart_data.latency_histogram([slow, fast])
    for label, bins in (("fp32", slow_bins), ("int8", fast_bins)):
        group = re.search(rf'<g data-variant="{label}"[^>]*>', svg).group(0)
        counts = [int(c) for c in re.search(r'data-counts="([^"]*)"', group).group(1).split()]
        assert counts == bins.counts.tolist()
        assert int(re.search(r'data-beyond="(\d+)"', group).group(1)) == bins.beyond
    assert fast_bins.beyond == 1 and slow_bins.beyond == 0 and ">+1<" in svg
