"""The charts fit the room they get: nothing cut, nothing covering anything else, nothing invisible.

Sizes are those of the demo on a 1280x800 screen (a chart about 390 px wide) and of two demo
studies compared side by side (fourteen "study / variant" names).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QRadioButton

from qtapp.charts.confusion_matrix import DIFFERENCE, ConfusionMatrices
from qtapp.charts.latency_histogram import LatencyHistogram
from qtapp.charts.palette import VariantPalette
from qtapp.charts.size_bars import SizeBars
from qtapp.charts.tradeoff_scatter import TradeoffScatter
from qtapp.window.theme import DARK, LIGHT, _palette, style_sheet

#: The demo's variants: bytes on disk, p50 in ms, accuracy.
DEMO = {
    "fp32": (917_000, 0.253, 0.993),
    "onnx-fp32": (909_000, 0.0530, 0.993),
    "torch-int8-dynamic": (518_000, 0.291, 0.993),
    "ort-int8-dynamic": (238_000, 0.210, 0.993),
    "ort-int8-static": (247_000, 0.0384, 0.993),
    "ort-fp16": (457_000, 0.0531, 0.993),
    "prune-channels:ratio=0.35": (390_000, 0.183, 0.864),
}
COMPARED = {f"{study} / {label}": value for study in ("3f2a9c1b", "77d0e4a2") for label, value in DEMO.items()}


def _palette_for(labels) -> VariantPalette:
    palette = VariantPalette()
    palette.reset(list(labels))
    return palette


def _settle(qtbot, widget) -> None:
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.wait(50)  # the layout, then the resize handlers that place texts


def _size_bars(qtbot, data: dict, width: int, height: int) -> SizeBars:
    bars = SizeBars(_palette_for(data), LIGHT)
    qtbot.addWidget(bars)
    bars.resize(width, height)
    bars.set_variants(list(data))
    for label, (size, *_rest) in data.items():
        bars.set_size(label, size)
    bars.redraw()
    _settle(qtbot, bars)
    return bars


def _tick_label_rects(axis) -> list[QRectF]:
    """The rectangles pyqtgraph paints the axis's tick labels in."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [rect for rect, _flags, text in texts if text]


def _bar_scene_rect(bars: SizeBars, row: int) -> QRectF:
    vb = bars.getPlotItem().getViewBox()
    length = bars.bar_lengths_bytes()[row] / bars._scale
    return vb.mapViewToScene(QRectF(0, row - 0.31, length, 0.62)).boundingRect()


@pytest.mark.parametrize("width", [390, 240, 700])
def test_size_axis_ends_just_past_the_largest_bar_with_round_ticks_apart(qtbot, width):
    bars = _size_bars(qtbot, DEMO, width, 260)
    assert 917_000 < bars.axis_end_bytes() <= 917_000 * 1.1  # it ran to 2,500 kB
    rects = _tick_label_rects(bars.getPlotItem().getAxis("bottom"))
    assert len(rects) >= 2
    for a, b in zip(rects, rects[1:], strict=False):
        assert a.right() + 4 <= b.left(), "tick labels touch"
    axis = bars.getPlotItem().getAxis("bottom")
    (step, values), *_ = axis.tickValues(0, bars.axis_end_bytes() / 1000, axis.width())
    assert values[0] == 0 and step / 10 ** np.floor(np.log10(step)) in (1, 2, 2.5, 5)  # round steps from zero


@pytest.mark.parametrize(("data", "height"), [(DEMO, 260), (COMPARED, 420)])
def test_size_bars_get_most_of_the_width(qtbot, data, height):
    bars = _size_bars(qtbot, data, 390, height)
    largest = _bar_scene_rect(bars, 0)
    assert largest.width() >= 0.45 * bars.width()  # it was about 20 px
    assert all(_bar_scene_rect(bars, i).width() > 4 for i in range(len(data)))  # the compare view drew none
    # The names are shortened, each still saying which variant it is.
    assert all(name.endswith(("fp32", "dynamic", "static", "fp16", "0.35")) for name in bars.names())


@pytest.mark.parametrize(("data", "width", "height"), [(DEMO, 390, 260), (DEMO, 240, 200), (COMPARED, 390, 420)])
def test_size_texts_stay_in_their_row_and_inside_the_chart(qtbot, data, width, height):
    bars = _size_bars(qtbot, data, width, height)
    view = bars.getPlotItem().getViewBox()
    inside = view.mapRectToScene(view.boundingRect()).adjusted(-1, -1, 1, 1)
    labels = list(data)
    shown = 0
    for row, label in enumerate(labels):
        drawn = bars.drawn_text(label)
        assert bars.bar_text(label).startswith(format_size(data[label][0]))  # the whole text is kept
        if not drawn:
            continue
        shown += 1
        assert drawn in bars.bar_text(label)
        text = bars.text_item(label)
        box = text.mapRectToScene(text.boundingRect())
        assert inside.contains(box), f"{label}'s text runs out of the chart"
        for other in range(len(labels)):
            if other != row:
                assert not box.intersects(_bar_scene_rect(bars, other)), f"{label}'s text covers row {other}"
    assert shown == len(labels)  # there is room for every text, if shorter


def format_size(size: int) -> str:
    from core.reports.format import format_bytes

    return format_bytes(size)


def test_size_bars_measure_against_the_study_baseline_not_the_first_row(qtbot):
    bars = SizeBars(_palette_for(["int8", "fp32"]), LIGHT)
    qtbot.addWidget(bars)
    bars.set_variants(["int8", "fp32"])
    bars.set_size("int8", 100_000)
    bars.set_size("fp32", 400_000, is_baseline=True)
    bars.redraw()
    assert bars.bar_text("int8") == "100 kB · −75 %"
    assert bars.bar_text("fp32") == "400 kB · baseline"


def test_histogram_captions_and_axis_title_fit_beside_the_plots(qtbot):
    hist = LatencyHistogram(_palette_for(COMPARED), LIGHT)
    qtbot.addWidget(hist)
    hist.resize(370, 600)
    hist.set_variants(list(COMPARED))
    rng = np.random.default_rng(4)
    for label, (_size, p50, _acc) in COMPARED.items():
        hist.update_variant(label, rng.lognormal(np.log(p50), 0.1, 300), p50=p50, p99=p50 * 1.4)
    hist.redraw()
    _settle(qtbot, hist)
    scene = QRectF(0, 0, hist.width(), hist.height())
    for label in COMPARED:
        caption = hist.caption_item(label)
        text = caption.item.mapRectToScene(caption.item.boundingRect())
        plot = hist.plot_item(label).getViewBox()
        plot_left = plot.mapRectToScene(plot.boundingRect()).left()
        assert text.right() <= plot_left + 1, f"{label}'s caption runs into its histogram"
        # The lines carry no names over the bars.
        assert getattr(hist._rows[label].p50_line, "label", None) is None
    title = hist.axis_title_item()
    box = title.item.mapRectToScene(title.item.boundingRect())
    assert scene.contains(box) and "latency per call" in title.item.toPlainText()
    assert hist.minimumHeight() >= 14 * 30  # the tab scrolls instead of pushing the axis out of sight


def _scatter(qtbot, data: dict, width: int, height: int) -> TradeoffScatter:
    scatter = TradeoffScatter(_palette_for(data), LIGHT)
    qtbot.addWidget(scatter)
    scatter.resize(width, height)
    scatter.set_variants(list(data))
    for label, (size, p50, accuracy) in data.items():
        scatter.set_point(label, p50, accuracy, size)
    scatter.redraw()
    _settle(qtbot, scatter)
    return scatter


@pytest.mark.parametrize(("width", "height"), [(390, 260), (560, 380)])
def test_every_bubble_of_the_demo_has_its_own_readable_name(qtbot, width, height):
    scatter = _scatter(qtbot, DEMO, width, height)
    boxes = scatter.tag_boxes()
    assert set(boxes) == set(DEMO)  # the pruned variant had none
    assert scatter.tag_point_size() >= 8 and scatter.legend_text() == ""
    view = scatter.view_box_scene_rect().adjusted(-1, -1, 1, 1)
    bubbles = scatter.bubble_boxes()
    for label, box in boxes.items():
        assert view.contains(box), f"{label} is cut at the chart's edge"
        for other, other_box in boxes.items():
            if other != label:
                assert not box.intersects(other_box), f"{label} covers {other}"
        for other, bubble in bubbles.items():
            assert not box.intersects(bubble), f"{label} covers the bubble of {other}"


@pytest.mark.parametrize(("width", "height"), [(390, 260), (390, 290), (560, 380)])
def test_no_name_lies_nearer_another_bubble_than_its_own(qtbot, width, height):
    """The demo's "ort-int8-dynamic" (99.3 %) was placed beside the pruned variant's bubble (86.4 %), joined
    to its own by a thin line only: read at a glance, int8 lost 13 points."""
    scatter = _scatter(qtbot, DEMO, width, height)
    bubbles = scatter.bubble_boxes()

    def reach(box: QRectF, bubble: QRectF) -> float:  # from the name's middle to the bubble's centre
        centre, middle = bubble.center(), box.center()
        return float(np.hypot(middle.x() - centre.x(), middle.y() - centre.y()))

    for label, box in scatter.tag_boxes().items():
        own = reach(box, bubbles[label])
        for other, bubble in bubbles.items():
            if other != label and not bubble.intersects(bubbles[label]):  # touching bubbles: either may be nearer
                assert own <= reach(box, bubble) + 0.5, f"{label}'s name is nearer {other}"


def test_a_chart_too_small_for_names_beside_their_own_bubbles_still_names_every_bubble(qtbot):
    """Where no spot nearer its own bubble is free, a name takes the nearest free one with its leader line,
    rather than every name going to the key under the chart (out of sight in a scrolling tab)."""
    scatter = _scatter(qtbot, DEMO, 390, 200)
    assert set(scatter.tag_boxes()) == set(DEMO) and scatter.legend_text() == ""


def test_compared_studies_name_every_bubble_in_a_key_when_names_cannot_fit(qtbot):
    scatter = _scatter(qtbot, COMPARED, 390, 260)
    key = scatter.legend_text()
    if key:  # too crowded for names beside the bubbles: every one of them in the key by colour
        assert not scatter.tag_boxes()
        assert all(label.replace("-", "\u2011") in key for label in COMPARED)
        scatter.resize(390, scatter.minimumHeight() + 1)  # as a layout gives it: the chart grew by the key's height
        qtbot.wait(50)
        assert scatter.getPlotItem().getViewBox().height() >= 120
    else:
        assert set(scatter.tag_boxes()) == set(COMPARED)


def _distance(a: QColor, b: QColor) -> int:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_a_cell_counting_one_stands_apart_from_an_empty_one(qtbot, theme):
    labels = ["fp32", "int8"]
    view = ConfusionMatrices(_palette_for(labels), theme)
    qtbot.addWidget(view)
    view.set_variants(labels, ["a", "b"])
    view.set_matrix("fp32", np.array([[400, 0], [0, 380]]), is_baseline=True)
    view.set_matrix("int8", np.array([[399, 1], [0, 380]]))
    view.resize(600, 300)
    _settle(qtbot, view)
    empty, one = view.cell_color("int8", 1, 0), view.cell_color("int8", 0, 1)
    assert _distance(empty, one) >= 60, f"count 1 ({one.name()}) vs 0 ({empty.name()})"
    # Its number reads on it, whatever the cell's colour.
    for row, col in [(0, 0), (0, 1), (1, 1)]:
        assert _contrast(view.cell_text_color("int8", row, col), view.cell_color("int8", row, col)) >= 4.5
    view.set_mode(DIFFERENCE)
    assert view.cell_text("int8", 0, 1) == "+1"
    assert _distance(view.cell_color("int8", 0, 1), view.cell_color("int8", 1, 0)) >= 60


def test_the_difference_is_against_the_study_baseline_not_the_first_panel(qtbot):
    labels = ["int8", "fp32"]
    view = ConfusionMatrices(_palette_for(labels), LIGHT)
    qtbot.addWidget(view)
    view.set_variants(labels, ["a", "b"])
    int8, fp32 = np.array([[4, 2], [1, 5]]), np.array([[5, 1], [0, 6]])
    view.set_matrix("int8", int8)
    view.set_matrix("fp32", fp32, is_baseline=True)
    view.set_mode(DIFFERENCE)
    np.testing.assert_array_equal(view.cells("int8"), int8 - fp32)
    np.testing.assert_array_equal(view.cells("fp32"), fp32)


def test_an_identical_matrix_says_so_inside_and_titles_keep_to_their_columns(qtbot):
    """Difference titles ("onnx-fp32 − baseline: identical") ran into the next columns' at 1280 px, and an
    identical variant's matrix was an empty square."""
    labels = ["fp32", "onnx-fp32", "prune-channels:ratio=0.35,int8=static,samples=256", "int8"]
    view = ConfusionMatrices(_palette_for(labels), LIGHT)
    qtbot.addWidget(view)
    view.set_variants(labels, ["a", "b"])
    base = np.array([[5, 1], [0, 6]])
    for label, matrix in zip(labels, [base, base, base + 1, base], strict=True):
        view.set_matrix(label, matrix, is_baseline=label == "fp32")
    view.resize(840, 300)
    _settle(qtbot, view)
    view.set_mode(DIFFERENCE)
    qtbot.wait(20)
    assert view.identical_note("onnx-fp32") and view.identical_note("int8")
    assert not view.identical_note(labels[2]) and not view.identical_note("fp32")
    view.set_matrix("int8", base + np.array([[0, 1], [0, -1]]))
    assert not view.identical_note("int8")
    column = view.width() / view.columns_for(len(labels))
    for label in labels:
        title = view.title_item(label)
        assert title.mapRectToScene(title.boundingRect()).width() <= column, label


def test_compared_studies_each_differ_from_their_own_baseline(qtbot):
    labels = ["A / fp32", "A / int8", "B / fp32", "B / int8"]
    view = ConfusionMatrices(_palette_for(labels), LIGHT)
    qtbot.addWidget(view)
    view.set_variants(labels, ["a", "b"])
    a, b = np.array([[5, 1], [0, 6]]), np.array([[3, 3], [2, 4]])
    for label, matrix in zip(labels, [a, a + 1, b, b + 2], strict=True):
        view.set_matrix(label, matrix, is_baseline=label == "A / fp32")
    view.set_baselines({label: f"{label[0]} / fp32" for label in labels})
    view.set_mode(DIFFERENCE)
    np.testing.assert_array_equal(view.cells("B / int8"), np.full((2, 2), 2))
    np.testing.assert_array_equal(view.cells("B / fp32"), b)


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_an_unchecked_radio_button_is_visible(qtbot, theme):
    button = QRadioButton("")
    qtbot.addWidget(button)
    button.setPalette(_palette(theme))
    button.setStyleSheet(style_sheet(theme))
    button.resize(24, 24)
    _settle(qtbot, button)
    image = button.grab().toImage()
    window = QColor(theme.window)
    strongest = max(
        _distance(image.pixelColor(x, y), window) for x in range(image.width()) for y in range(image.height())
    )
    assert strongest >= 120, "the indicator melts into the window"


def test_every_confusion_matrix_gets_the_same_size(qtbot):
    """At 1280x800 the demo's second matrix was drawn at half the size of the others, its numbers
    hidden: every column and row of matrices now gets the same share of the chart."""
    from qtapp.charts.confusion_matrix import ConfusionMatrices
    from qtapp.charts.palette import VariantPalette

    labels = ["fp32", "onnx-fp32", "torch-int8-dynamic", "ort-int8-dynamic", "ort-int8-static", "ort-fp16",
              "prune-channels:ratio=0.35"]
    view = ConfusionMatrices(VariantPalette(), LIGHT)
    qtbot.addWidget(view)
    view.resize(770, 900)
    view.show()
    view.set_variants(labels, [str(c) for c in range(10)])
    matrix = np.diag(np.full(10, 45))
    matrix[2, 1] = 1
    for label in labels:
        view.set_matrix(label, matrix, is_baseline=label == "fp32")
    view.redraw()
    qtbot.wait(100)
    widths = [view._panels[label].image.sceneBoundingRect().width() for label in labels]  # the drawn matrices
    assert min(widths) > 0.9 * max(widths), widths
