"""Issue 14, item 4: after the paired rounds, Speed and the latencies beside it never disagree silently.

When the machine's speed changes during a study, the engine times every variant again in
interleaved rounds and the speed-ups come from those. The table then marks the Speed column,
shows each variant's median in those rounds beside its first timing (so the two columns a
reader divides agree), and each marked cell says its range over the rounds.
"""

from __future__ import annotations

from dataclasses import replace

from fake_study import fake_run_study, with_paired_rounds
from helpers import fake_spec
from PySide6.QtCore import Qt

from core.measures.drift_notes import PAIRED_MARK
from core.reports.format import format_ms, format_speedup
from core.study.events import StudyFinished
from qtapp.charts.palette import VariantPalette
from qtapp.panels.results_panel import ResultsPanel
from qtapp.window.theme import LIGHT


def _headers(panel: ResultsPanel) -> list[str]:
    model = panel.table.model
    return [str(model.headerData(c, Qt.Orientation.Horizontal))
            for c in range(model.columnCount())]


def _cell(panel: ResultsPanel, label: str, title: str) -> str:
    model = panel.table.model
    return model.text(panel.state.labels.index(label), _headers(panel).index(title))


def test_paired_speed_ups_are_marked_and_shown_with_the_latencies_they_come_from(qtbot) -> None:
    events = list(fake_run_study(fake_spec()))
    final = events[-1]
    assert isinstance(final, StudyFinished)
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.show()

    # Mid-run (and in a study whose machine held still) the table has one plain Speed column.
    panel.apply_events(events[:-1])
    assert "Speed" in _headers(panel) and not any(PAIRED_MARK in h for h in _headers(panel))

    drifted, paired = with_paired_rounds(final)
    panel.apply_events([drifted])
    headers = _headers(panel)
    speed, rounds_p50 = f"Speed {PAIRED_MARK}", f"p50 {PAIRED_MARK} ms"
    assert "Speed" not in headers and speed in headers and rounds_p50 in headers
    # The marked speed-up with the verdict's other figures; the rounds' p50 right after the first timing's.
    assert headers.index(speed) < headers.index("p50/p99 ms") == headers.index(rounds_p50) - 1

    # The marked speed-up and the medians beside it agree: read together, they say the same.
    for label, p50 in paired["p50_ms"].items():
        assert _cell(panel, label, rounds_p50) == format_ms(p50)
    int8 = "ort-int8-static"
    marked = format_speedup(paired["speedup"][int8]["median"], typographic=True) + PAIRED_MARK
    assert _cell(panel, int8, speed) == marked
    shown_ratio = float(_cell(panel, "fp32", rounds_p50)) / float(_cell(panel, int8, rounds_p50))
    assert abs(shown_ratio - paired["speedup"][int8]["median"]) < 0.02
    # ...while its first timing (the p50/p99 column and the histogram) is kept as measured.
    first = next(r for r in final.result.results if r.label == int8).latency.p50
    assert _cell(panel, int8, "p50/p99 ms").startswith(format_ms(first))

    # Each marked cell says where it came from; the warning above the table names the mark.
    model = panel.table.model
    tip = model.data(model.index(panel.state.labels.index(int8), headers.index(speed)), Qt.ItemDataRole.ToolTipRole)
    assert "7 interleaved rounds" in tip and "0.9" in tip and "1.05" in tip and format_ms(first) in tip
    assert panel.drift.isVisible() and PAIRED_MARK in panel.drift.text()

    # The scatter's bubbles sit at the same (paired) latencies as the table's, and its axis says so: from the
    # first timings, a variant slower in the table could sit left of its baseline.
    panel.run_pending()
    for label, p50 in paired["p50_ms"].items():
        assert abs(panel.scatter.points()[label][0] - p50) < 1e-9 * p50
    assert PAIRED_MARK in panel.scatter.getPlotItem().getAxis("bottom").labelText

    # The column chooser keeps the new column like any other.
    panel.columns.set_shown(rounds_p50, False)
    assert not panel.columns.is_shown(rounds_p50) and panel.columns.is_shown(speed)


def test_a_variant_left_out_of_the_rounds_shows_its_first_timings_speed_unmarked_and_says_why(qtbot) -> None:
    """A variant timed with too few samples (float16 emulated at seconds a call) takes no part in the rounds: its
    speed-up stays its first timing's, so the window must not mark it as the rounds' (the CLI and HTML do not)."""
    events = list(fake_run_study(fake_spec()))
    drifted, paired = with_paired_rounds(events[-1])
    slow = "torch-int8-dynamic"
    timing = drifted.result.timing
    left_out = {**timing, "paired": {**timing["paired"],
                                     "speedup": {k: v for k, v in paired["speedup"].items() if k != slow},
                                     "p50_ms": {k: v for k, v in paired["p50_ms"].items() if k != slow}}}
    # As the engine leaves one out: timed with fewer samples than the rounds need.
    results = [replace(r, latency=replace(r.latency, n=4)) if r.label == slow else r for r in drifted.result.results]
    final = replace(drifted, result=replace(drifted.result, timing=left_out, results=results))
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.apply_events([*events[:-1], final])
    speed = f"Speed {PAIRED_MARK}"
    first = next(r for r in final.result.results if r.label == slow)
    assert _cell(panel, slow, speed) == format_speedup(first.verdict.speedup, typographic=True)
    assert _cell(panel, slow, f"p50 {PAIRED_MARK} ms") == ""
    assert _cell(panel, "ort-int8-static", speed).endswith(PAIRED_MARK)
    model = panel.table.model
    index = model.index(panel.state.labels.index(slow), _headers(panel).index(speed))
    tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert "first timing" in tip and "no part in the interleaved rounds" in tip and "its 4 timing samples" in tip


def test_a_study_without_paired_rounds_keeps_its_plain_columns(qtbot) -> None:
    events = list(fake_run_study(fake_spec()))
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.apply_events(events)
    headers = _headers(panel)
    assert "Speed" in headers and not any(PAIRED_MARK in h for h in headers)


def test_a_comparison_keeps_each_studys_paired_figures_and_names_whose_machine_moved(qtbot) -> None:
    from qtapp.models.stored_study import compare, replay_events

    final = list(fake_run_study(fake_spec()))[-1]
    drifted, paired = with_paired_rounds(final)
    calm = replace(final.result, study_id="calm0000study", created="2026-12-06T09:30:00+00:00")
    moved = replace(drifted.result, study_id="moved000study", created="2026-12-07T14:02:00+00:00")
    comparison = compare([calm, moved])
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.show()
    panel.apply_events(replay_events(comparison.result))
    panel.show_comparison(comparison.header(), comparison.baselines, comparison.drift_warnings())

    prefix = comparison.prefixes["moved000study"]
    rounds_p50 = f"p50 {PAIRED_MARK} ms"
    assert _cell(panel, f"{prefix} / ort-int8-static", rounds_p50) == format_ms(paired["p50_ms"]["ort-int8-static"])
    assert _cell(panel, f"{comparison.prefixes['calm0000study']} / ort-int8-static", rounds_p50) == ""
    # The calm study's speed-ups are its first timings', unmarked, and say so.
    speed = f"Speed {PAIRED_MARK}"
    calm_int8 = f"{comparison.prefixes['calm0000study']} / ort-int8-static"
    assert _cell(panel, f"{prefix} / ort-int8-static", speed).endswith(PAIRED_MARK)
    assert not _cell(panel, calm_int8, speed).endswith(PAIRED_MARK)
    model = panel.table.model
    index = model.index(panel.state.labels.index(calm_int8), _headers(panel).index(speed))
    assert "machine held still" in model.data(index, Qt.ItemDataRole.ToolTipRole)
    # One warning, naming the study whose machine moved (the calm one has none).
    text = panel.drift.text()
    assert panel.drift.isVisible() and text.count("⚠") == 1
    assert comparison.titles["moved000study"] in text and comparison.titles["calm0000study"] not in text


def test_a_comparisons_drift_line_names_what_moved() -> None:
    from qtapp.models.stored_study import compare

    final = list(fake_run_study(fake_spec()))[-1]
    drifted, _ = with_paired_rounds(final)
    base = drifted.result.timing["baseline_recheck"]["first_p50_ms"]
    variant_moved = {**drifted.result.timing, "baseline_recheck": {
        "first_p50_ms": base, "p50_ms": base * 1.04, "drifted": True, "moved": "ort-int8-static",
        "variants": {"ort-int8-static": {"first_p50_ms": 0.2, "p50_ms": 0.1, "change": -0.5}}}}
    a = replace(drifted.result, study_id="aaaa0000study", created="2026-12-07T14:02:00+00:00")
    b = replace(drifted.result, study_id="bbbb0000study", created="2026-12-07T15:10:00+00:00", timing=variant_moved)
    lines = compare([a, b]).drift_warnings()
    assert "the baseline's median moved +60%" in lines[0] and "7 interleaved rounds" in lines[0]
    assert "ort-int8-static's median moved -50%" in lines[1]  # the baseline held still (+4 %): not it
