"""Each chart holds exactly the numbers it was given, updated in place."""

from __future__ import annotations

import numpy as np
import pytest

from core.reports.format import format_bytes
from core.reports.format import format_size_change as reduction_text
from qtapp.charts.confusion_matrix import COUNTS, DIFFERENCE, ConfusionMatrices
from qtapp.charts.latency_histogram import BINS, LatencyHistogram
from qtapp.charts.palette import BASELINE_COLOR, VariantPalette
from qtapp.charts.size_bars import SizeBars
from qtapp.charts.tradeoff_scatter import TradeoffScatter
from qtapp.panels.flipped_panel import FlippedPanel, image_of
from qtapp.window.theme import DARK, LIGHT

LABELS = ["fp32", "int8", "fp16"]


@pytest.fixture
def palette():
    p = VariantPalette()
    p.reset(LABELS)
    return p


def test_palette_gives_each_variant_one_colour(palette):
    assert palette.hex("fp32") == BASELINE_COLOR
    assert len({palette.hex(label) for label in LABELS}) == len(LABELS)


def test_histogram_counts_every_sample_on_shared_bins(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    hist.set_variants(LABELS)
    rng = np.random.default_rng(1)
    samples = {"fp32": rng.normal(1.0, 0.05, 300), "int8": rng.normal(0.4, 0.02, 200)}
    samples["int8"][0] = 50.0  # one spike far out: counted beyond the axis, neither dropped nor piled in the last bin
    for label, values in samples.items():
        hist.update_variant(label, values)
    hist.redraw()
    for label, values in samples.items():
        counts = hist.counts(label)
        assert counts.shape == (BINS,) and counts.sum() + hist.beyond(label) == values.size
    edges = hist.edges()
    assert edges[0] <= samples["int8"].min() and edges[-1] >= np.percentile(samples["fp32"], 99.5)
    assert hist.beyond("int8") == 1 and hist.beyond("fp32") == 0 and "+1 beyond the axis" in hist.caption("int8")
    # While streaming, the marks are read off the counts: right to within one (log-spaced) bin.
    bin_ratio = edges[1] / edges[0]
    p50, p99 = hist.marks("fp32")
    assert p50 == pytest.approx(np.percentile(samples["fp32"], 50), rel=bin_ratio - 1)
    assert p99 == pytest.approx(np.percentile(samples["fp32"], 99), rel=bin_ratio - 1)
    assert hist.counts("fp16").sum() == 0


def test_histogram_counts_only_new_samples_and_matches_a_full_count(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    hist.set_variants(LABELS)
    rng = np.random.default_rng(2)
    stream = rng.lognormal(0.0, 0.1, 5000)
    for end in range(500, 5001, 500):  # the window feeds the whole buffer, longer each time
        hist.update_variant("fp32", stream[:end])
        hist.redraw()
    edges = hist.edges()
    full, _ = np.histogram(np.clip(stream, edges[0], edges[-1]), bins=edges)
    np.testing.assert_array_equal(hist.counts("fp32"), full)


def test_histogram_grows_in_place_and_takes_final_marks(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    hist.set_variants(LABELS)
    row_items = {label: hist._rows[label].curve for label in LABELS}
    values = np.linspace(1.0, 2.0, 100)
    hist.update_variant("fp32", values[:40])
    hist.redraw()
    hist.update_variant("fp32", values, p50=1.5, p99=1.99)
    hist.redraw()
    assert hist.counts("fp32").sum() == 100
    assert hist.marks("fp32") == (1.5, 1.99)
    assert "p50 1.50" in hist.caption("fp32")
    assert all(hist._rows[label].curve is item for label, item in row_items.items())  # never rebuilt


def test_a_live_caption_lags_but_settles(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    hist.set_variants(LABELS)
    hist.update_variant("fp32", np.full(100, 1.0))
    hist.redraw()
    first = hist.caption("fp32")
    hist.update_variant("fp32", np.concatenate([np.full(100, 1.0), np.full(400, 3.0)]))
    hist.redraw()  # within LIVE_CAPTION_INTERVAL_S: the lines move, the caption waits
    assert hist.caption("fp32") == first and hist.marks("fp32")[0] > 2.0
    hist.settle_captions()  # the study ended (say, cancelled) with no final figures
    assert hist.caption("fp32") != first and "p50 1.00" not in hist.caption("fp32")


def test_histogram_rows_are_kept_across_studies_and_relabelled(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    assert hist.prebuild(2) and not hist.prebuild(2)  # one row per call, up to the count asked for
    hist.set_variants(LABELS)
    curves = [hist._rows[label].curve for label in LABELS]
    hist.update_variant("int8", np.full(50, 0.4))
    hist.redraw()
    palette.reset(["a", "b"])
    hist.set_variants(["a", "b"])  # a smaller study: the first two rows, relabelled and emptied
    assert hist.labels() == ["a", "b"]
    assert [hist._rows[label].curve for label in ("a", "b")] == curves[:2]
    assert hist.counts("b").sum() == 0 and "waiting" in hist.caption("b")
    assert hist._rows["b"].curve.opts["pen"].color().name() == palette.hex("b")
    # Two captions, two plots and the axis title in the layout; the third row waits outside.
    assert len(hist.ci.items) == 5
    palette.reset(LABELS)
    hist.set_variants(LABELS)
    assert [hist._rows[label].curve for label in LABELS] == curves and len(hist.ci.items) == 7


def test_histogram_repaints_a_row_only_when_a_bar_moves_by_a_pixel(qtbot, palette):
    hist = LatencyHistogram(palette, LIGHT)
    qtbot.addWidget(hist)
    hist.resize(800, 400)
    hist.show()
    hist.set_variants(LABELS)
    rng = np.random.default_rng(3)
    stream = rng.lognormal(0.0, 0.05, 40_000)
    hist.update_variant("fp32", stream[:30_000])
    hist.redraw()
    shown = hist._rows["fp32"].curve.getData()[1].copy()
    hist.update_variant("fp32", stream[:30_010])  # ten more samples of the same distribution
    hist.redraw()
    assert hist.counts("fp32").sum() == 30_010  # counted all the same
    np.testing.assert_array_equal(hist._rows["fp32"].curve.getData()[1], shown)  # but nothing to repaint
    shifted = np.concatenate([stream[:30_010], stream[30_010:] * 1.3])  # a second mode appears
    hist.update_variant("fp32", shifted)
    hist.redraw()
    heights = hist._rows["fp32"].curve.getData()[1]
    np.testing.assert_allclose(heights, hist.counts("fp32") / hist.counts("fp32").max())


def test_histogram_failed_row_says_so(qtbot, palette):
    hist = LatencyHistogram(palette, DARK)
    qtbot.addWidget(hist)
    hist.set_variants(LABELS)
    hist.set_failed("int8")
    assert "failed" in hist.caption("int8")


def test_confusion_matrices_show_counts_and_difference(qtbot, palette):
    view = ConfusionMatrices(palette, LIGHT)
    qtbot.addWidget(view)
    view.set_variants(LABELS, ["a", "b"])
    base = np.array([[5, 1], [0, 6]])
    int8 = np.array([[4, 2], [1, 5]])
    view.set_matrix("fp32", base)
    view.set_matrix("int8", int8)
    view.set_matrix("fp16", None)  # failed
    view.redraw()
    np.testing.assert_array_equal(view.cells("int8"), int8)
    assert view.cell_text("int8", 0, 1) == "2" and view.cell_text("fp32", 1, 0) == ""
    assert view.cells("fp16") is None
    # One colour scale: the same count is the same colour in every matrix.
    assert view.cell_color("int8", 1, 1) == view.cell_color("fp32", 0, 0)  # both 5
    assert view.cell_color("int8", 1, 1) != view.cell_color("fp32", 1, 1)  # 5 and 6
    view.set_mode(DIFFERENCE)
    np.testing.assert_array_equal(view.cells("int8"), int8 - base)
    assert view.cell_text("int8", 0, 0) == "-1" and view.cell_text("int8", 1, 0) == "+1"
    np.testing.assert_array_equal(view.cells("fp32"), base)  # the baseline keeps its counts
    view.set_mode(COUNTS)
    np.testing.assert_array_equal(view.cells("int8"), int8)


def test_size_bars_length_and_saving(qtbot, palette):
    bars = SizeBars(palette, LIGHT)
    qtbot.addWidget(bars)
    plot = bars.getPlotItem()
    assert not plot.getAxis("left").isVisible() and not plot.getAxis("bottom").isVisible()  # no scale before
    bars.set_variants(LABELS)
    assert plot.getAxis("left").isVisible() and plot.getAxis("bottom").isVisible()
    bars.set_size("fp32", 400_000)
    bars.set_size("int8", 100_000)
    bars.set_size("fp16", None, failed=True)
    bars.redraw()
    np.testing.assert_allclose(bars.bar_lengths_bytes(), [400_000, 100_000, 0])
    assert bars.bar_text("int8") == "100 kB · −75 %"
    assert bars.bar_text("fp32") == "400 kB · baseline"
    assert bars.bar_text("fp16") == "failed"


def test_size_text_helpers():
    assert format_bytes(1_500_000) == "1.5 MB" and format_bytes(999) == "999 B"
    assert reduction_text(120, 100) == "+20 %" and reduction_text(100, 100) == "±0 %"


def test_scatter_places_one_bubble_per_finished_variant(qtbot, palette):
    scatter = TradeoffScatter(palette, LIGHT)
    qtbot.addWidget(scatter)
    scatter.set_variants(LABELS)
    axes = [scatter.getPlotItem().getAxis(side) for side in ("left", "bottom")]
    assert not any(a.style["showValues"] for a in axes)  # titles, but no made-up scale before a bubble
    scatter.set_point("fp32", 1.0, 0.95, 400_000)
    scatter.set_point("int8", 0.4, 0.93, 100_000)
    scatter.redraw()
    assert all(a.style["showValues"] for a in axes)
    points = scatter.points()
    assert set(points) == {"fp32", "int8"}
    assert points["int8"][:2] == pytest.approx((0.4, 93.0))
    assert points["fp32"][2] > points["int8"][2]  # bigger file, bigger bubble


def test_image_of_accepts_channel_first_and_last():
    assert image_of(np.zeros((1, 8, 8))).size().toTuple() == (8, 8)
    assert image_of(np.random.rand(3, 10, 12)).size().toTuple() == (12, 10)
    assert image_of(np.random.rand(10, 12, 3)).size().toTuple() == (12, 10)
    assert image_of(np.random.rand(4)) is None  # tabular sample: no picture


def test_flipped_panel_lists_flipped_samples_with_images(qtbot):
    panel = FlippedPanel()
    qtbot.addWidget(panel)
    panel.clear()
    x = np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32)
    y = np.arange(20) % 10
    panel.set_dataset(x, y, [str(i) for i in range(10)], (8, 8))
    panel.set_flips("int8", {"flipped": [3, 7], "flipped_count": 2})
    panel.set_flips("fp16", {"flipped": [], "flipped_count": 0})
    assert panel.shown_indices() == [3, 7] and panel.has_images()
    assert panel.list.item(0).text().splitlines()[:2] == ["#3", "true 3"]
    panel.show_variant("fp16")
    assert panel.shown_indices() == [] and "same class" in panel.summary.text()
    # With the predicted classes (when the engine provides them) the caption says what changed.
    panel.set_flips("int8", {"flipped": [3], "flipped_count": 1, "flipped_from": [3], "flipped_to": [8]})
    panel.show_variant("int8")
    assert panel.shown_indices() == [3]
    assert panel.list.item(0).text().splitlines() == ["#3", "true 3", "3 → 8"]


def test_results_panel_warns_when_the_machine_changed_speed(qtbot):
    from dataclasses import replace

    from fake_study import fake_run_study
    from helpers import fake_spec

    from core.measures.drift_notes import drift_note
    from core.study.events import StudyFinished
    from qtapp.panels.results_panel import ResultsPanel

    events = list(fake_run_study(fake_spec()))
    final = events[-1]
    assert isinstance(final, StudyFinished)
    base = final.result.results[0].latency.p50

    def rechecked(factor: float) -> StudyFinished:
        timing = {**final.result.timing, "baseline_recheck": {"first_p50_ms": base, "p50_ms": base * factor}}
        return replace(final, result=replace(final.result, timing=timing))

    palette = VariantPalette()
    panel = ResultsPanel(palette, LIGHT)
    qtbot.addWidget(panel)
    panel.show()
    panel.apply_events(events[:-1] + [rechecked(1.04)])
    assert panel.drift.isHidden()
    panel.apply_events(events[:-1] + [rechecked(1.6)])  # the same study again, on a restless machine
    assert panel.drift.isVisible()
    note = drift_note(base, base * 1.6)
    assert panel.drift.text() == f"⚠ {note[0].upper()}{note[1:]}."
