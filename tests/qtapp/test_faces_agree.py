"""The window, the CLI table and the HTML report show one study the same way (issue 13, symptoms 1, 2, 6).

A hand-made finished study is opened in the window's results view the way a stored study is
(``replay_events``), printed as the CLI table and rendered as the HTML report; each test reads
the same fact off every face.
"""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import Qt

from core.reports.html import render_html
from core.reports.text import format_table
from core.study.result import Grade, LatencyStats, StudyResult, VariantResult, VariantStatus, Verdict
from qtapp.charts.palette import VariantPalette
from qtapp.models.stored_study import replay_events
from qtapp.panels.results_panel import ResultsPanel
from qtapp.window.theme import LIGHT

SIZE = 873_000


def _study(sizes: list[int], samples: list[np.ndarray] | None = None) -> StudyResult:
    """A finished study: the baseline ("fp32") first, then variants v1, v2, ... graded against it."""
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


def _window(qtbot, study: StudyResult) -> ResultsPanel:
    """The window's results view showing ``study`` as it shows a study opened from the history."""
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.resize(1200, 900)
    panel.apply_events(replay_events(study))
    panel.run_pending()
    return panel


def _window_cell(panel: ResultsPanel, label: str, column: str) -> str:
    model = panel.table.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    return model.text(panel.state.labels.index(label), headers.index(column))


def _cli_cell(table: str, label: str, column: str) -> str:
    """One cell of the CLI's fixed-width table, by its header and its row's label."""
    lines = table.splitlines()
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[1])]
    titles = [lines[0][a:b].strip() for a, b in spans]
    a, b = spans[titles.index(column)]
    return next(line for line in lines[2:] if line.startswith(label + " "))[a:b].strip()


def _html_cell(html: str, label: str, column: str) -> str:
    """One cell of the report's results table, by its header and its row's label (markup removed)."""
    table = re.search(r'<table class="results">.*?</table>', html, flags=re.S).group(0)
    head = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)]
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        if cells and cells[0] == label:
            return cells[head.index(column)]
    raise AssertionError(f"no row {label!r} in the report's table")


def _svg(html: str, kind: str) -> str:
    return re.search(rf'<svg[^>]*data-chart="{kind}".*?</svg>', html, flags=re.S).group(0)


def test_one_file_has_one_size_on_every_face(qtbot) -> None:
    """Symptom 1: the window said "873 kB", the CLI and the report "852.9 KB" (binary units labelled KB)."""
    study = _study([SIZE, 218_250])
    panel = _window(qtbot, study)
    window_table = _window_cell(panel, "fp32", "Size")
    window_bar = panel.sizes.bar_text("fp32").split(" · ")[0]
    cli = _cli_cell(format_table(study), "fp32", "Size")
    html = render_html([study])
    report = _html_cell(html, "fp32", "Size")
    assert window_table == window_bar == cli == report == "873 kB"
    assert "873 kB" in _svg(html, "size")
    # And the variant beside it: the window adds its change, the size itself is written alike.
    assert _window_cell(panel, "v1", "Size").startswith("218 kB ")
    assert _cli_cell(format_table(study), "v1", "Size") == _html_cell(html, "v1", "Size") == "218 kB"


def test_twelve_variants_have_the_same_colours_in_the_window_and_the_report(qtbot) -> None:
    """Symptom 2: past the eighth variant the report cycled its eight colours; the window did not."""
    study = _study([SIZE] + [SIZE // 2] * 12)
    panel = _window(qtbot, study)
    html = render_html([study])
    size_chart, latency_chart = _svg(html, "size"), _svg(html, "latency")
    labels = [v.label for v in study.results]
    window = {}
    for label in labels:
        pen = panel.histogram._rows[label].curve.opts["pen"].color().name()
        assert pen == panel._palette.hex(label)  # the window's charts draw the palette's colour
        window[label] = pen
    assert len(set(window.values())) == len(labels)  # no two variants share a colour
    for label in labels:
        color = window[label]
        assert f'<span class="swatch" style="background:{color}"></span>{label}<' in html, label
        group = re.search(rf'<g data-variant="{label}".*?</g>', size_chart, flags=re.S).group(0)
        assert f'fill="{color}"' in group, label
        row = re.search(rf'<g data-variant="{label}".*?</g>', latency_chart, flags=re.S).group(0)
        assert f'fill="{color}"' in row, label


def test_the_histograms_bin_the_same_samples_alike_and_say_what_lies_beyond(qtbot) -> None:
    """Symptom 6: the report counted "+N" beyond its axis, the window folded them into its end bins."""
    rng = np.random.default_rng(6)
    base = rng.lognormal(0.0, 0.06, 600)
    fast = np.concatenate([rng.lognormal(-1.2, 0.05, 500), [25.0, 40.0]])  # two stray spikes
    study = _study([SIZE, SIZE // 4], [base, fast])
    panel = _window(qtbot, study)
    latency_chart = _svg(render_html([study]), "latency")
    for v in study.results:
        group = re.search(rf'<g data-variant="{v.label}"[^>]*>', latency_chart).group(0)
        report_counts = [int(c) for c in re.search(r'data-counts="([^"]*)"', group).group(1).split()]
        report_beyond = int(re.search(r'data-beyond="(\d+)"', group).group(1))
        assert panel.histogram.counts(v.label).tolist() == report_counts, v.label
        assert panel.histogram.beyond(v.label) == report_beyond, v.label
        assert sum(report_counts) + report_beyond == len(v.samples_ms)
    assert panel.histogram.beyond("v1") == 2 and "+2 beyond the axis" in panel.histogram.caption("v1")
    assert ">+2<" in latency_chart


def test_a_small_change_of_size_reads_the_same_in_the_window_as_in_the_cli_and_the_report(qtbot) -> None:
    """A pruned file 0.1 % larger than its float one read "+1 %" in the window (whole percent, rounded toward
    the worse side) and "+0.1 %" in the CLI and the report; a change of 1 % or more keeps whole percent."""
    study = _study([SIZE, SIZE + 873, SIZE - 7_000, 218_250])  # +0.1 %, -0.8 %, -75 %
    panel = _window(qtbot, study)
    text, html = format_table(study), render_html([study])
    for label, change in (("v1", "+0.1 %"), ("v2", "-0.8 %")):
        window = _window_cell(panel, label, "Size").split(" ", 2)[-1].replace("\u2212", "-")
        assert window == _cli_cell(text, label, "Size vs base") == _html_cell(html, label, "Size vs base") == change
        assert panel.sizes.bar_text(label).split(" · ")[-1].replace("\u2212", "-") == change
    assert _window_cell(panel, "v3", "Size").endswith("\u221275 %")


def test_the_speed_up_against_the_fastest_float_is_in_the_window_as_in_the_report(qtbot) -> None:
    """The report (and the CLI's JSON, and its table where it has room) had "vs best float": what the
    quantization buys apart from a change of runtime. The window had no such figure."""
    from dataclasses import replace

    study = _study([SIZE, 218_250, 400_000])
    study.results[1].verdict = replace(study.results[1].verdict, speedup_vs_fastest_float=0.4)
    study.results[2].verdict = replace(study.results[2].verdict, speedup_vs_fastest_float=1.7)
    panel = _window(qtbot, study)
    html = render_html([study])
    for label, expected in (("v1", "0.40"), ("v2", "1.70")):
        window = _window_cell(panel, label, "vs float")
        report = _html_cell(html, label, "vs best float")
        assert window.replace("×", "x") == report.replace("×", "x") == f"{expected}x"
        panel.table.view.selectRow(panel.state.labels.index(label))
        assert panel.details.figure_texts()["Speed-up against the fastest float"] == f"{expected}x"
