"""The Layers view fed by a real layer analysis of a tiny CNN and its static int8 variants.

    input [1,8,8] ─ conv 8 (channel 3 ×1000) ─ relu ─ conv 8 (input channel 3 ÷1000) ─ relu ─ flatten ─ gemm 10

One variant is static QDQ int8 (the big channel crushes the others), one the same with both convolutions
kept in float (the fix the Layers view leads to).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.layers import analyse_layers
from core.layers.stats import DEPARTS_BELOW_DB

SAMPLE_SHAPE = (1, 8, 8)


def _build(folder: Path) -> dict[str, Any]:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        model[0].weight[3] *= 1000.0
        model[0].bias[3] *= 1000.0
        model[2].weight[:, 3] /= 1000.0
    src = folder / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros((1, *SAMPLE_SHAPE)),), str(src), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((16, *SAMPLE_SHAPE)).astype(np.float32)
    x = rng.standard_normal((32, *SAMPLE_SHAPE)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"input": calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    logging.getLogger().setLevel(logging.ERROR)
    variants = {}
    for label, keep in (("ort-int8-static", []), ("ort-int8-static, convs float", ["/0/Conv", "/2/Conv"])):
        out = folder / f"{label.replace(', ', '-').replace(' ', '-')}.onnx"
        quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, nodes_to_exclude=keep)
        variants[label] = out
    results, float_profile = {}, None
    for label, path in variants.items():
        results[label] = analyse_layers(src, path, "onnxruntime", x, float_profile=float_profile)
        float_profile = results[label]["float_profile"]
    return {"results": results, "float_profile": float_profile, "src": src, "variants": variants, "x": x}


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _build(tmp_path_factory.mktemp("layers_panel"))


@pytest.fixture
def panel(qtbot, analysis: dict[str, Any]):
    from qtapp.charts.palette import VariantPalette
    from qtapp.panels.layers_panel import LayersPanel
    from qtapp.window.theme import LIGHT

    palette = VariantPalette()
    palette.reset(["float", *analysis["results"]])
    widget = LayersPanel(palette, LIGHT)
    qtbot.addWidget(widget)
    widget.resize(1100, 1000)
    widget.set_float_profile(analysis["float_profile"])
    for label, result in analysis["results"].items():
        widget.set_layers(label, result["layers"], result["profile"])
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_empty_panel_says_why(qtbot) -> None:
    from qtapp.charts.palette import VariantPalette
    from qtapp.panels.layers_panel import NO_LAYERS, LayersPanel
    from qtapp.window.theme import LIGHT

    widget = LayersPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(widget)
    widget.show()
    assert widget.empty.isVisible() and widget.empty.text() == NO_LAYERS
    assert not widget.chart.isVisible() and widget.table.rowCount() == 0


def test_chart_has_a_line_and_worst_channel_marks_per_variant(panel, analysis: dict[str, Any]) -> None:
    assert panel.labels() == list(analysis["results"])
    # One axis for both: the float convolutions' own layers slot in between the int8 variant's fused ones.
    axis = panel.layer_axis()
    assert axis == ["/0/Conv", "/1/Relu", "/2/Conv", "/3/Relu", "/4/Flatten", "/5/Gemm"]
    for label, result in analysis["results"].items():
        x, y, worst = panel.curve_data(label)
        layers = result["layers"]
        assert list(x) == [axis.index(layer["name"]) for layer in layers]
        np.testing.assert_allclose(y, [min(100.0, layer["activation"]["sqnr_db"]) for layer in layers])
        assert len(worst) == len(layers)
    _, _, worst = panel.curve_data("ort-int8-static")
    assert worst[0] < DEPARTS_BELOW_DB  # the conv whose seven small channels collapsed


def test_table_rows_and_numeric_sort(panel, analysis: dict[str, Any]) -> None:
    from PySide6.QtCore import Qt

    layers = analysis["results"]["ort-int8-static"]["layers"]
    rows = panel.table_rows()
    assert [r[0] for r in rows] == [layer["name"] for layer in layers]
    first = rows[0]
    assert first[1] == "Conv+Relu"
    assert first[2] == f"{layers[0]['activation']['sqnr_db']:.1f}"
    assert first[4] == "3"  # the outlier channel
    assert first[5] == f"{layers[0]['weight']['sqnr_db']:.1f}"
    assert first[6] != "-" and first[7] != "-" and first[8].endswith("%")  # profiled under the same node name
    panel.table.sortItems(3, Qt.SortOrder.AscendingOrder)  # worst channel, lowest first
    worst = [float(r[3]) for r in panel.table_rows() if r[3] not in ("-", "exact")]
    assert worst == sorted(worst)
    panel.variant_choice.setCurrentText("ort-int8-static, convs float")
    kept = analysis["results"]["ort-int8-static, convs float"]["layers"]
    rows = {r[0]: r for r in panel.table_rows()}
    assert len(rows) == len(kept) and rows["/0/Conv"][2] == "exact" and rows["/0/Conv"][5] == "exact"
    assert float(rows["/5/Gemm"][2]) > 20.0  # the fix works: the logits follow the float model again


def test_a_click_on_a_layer_opens_its_ranges(panel, qtbot, analysis: dict[str, Any]) -> None:
    from PySide6.QtCore import Qt

    assert not panel.ranges.isVisible()
    layer = analysis["results"]["ort-int8-static"]["layers"][0]
    row = [r[0] for r in panel.table_rows()].index(layer["name"])
    rect = panel.table.visualItemRect(panel.table.item(row, 2))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.ranges.isVisible() and layer["name"] in panel.ranges.title.text()
    act = layer["ranges"]["activation"]
    edges, heights, region = panel.ranges.drawn("activation")
    np.testing.assert_allclose(edges[[0, -1]], [act["low"], act["high"]])
    np.testing.assert_allclose(heights, np.log10(1.0 + np.asarray(act["counts"])))
    assert region == pytest.approx(tuple(act["quant_range"]))
    assert f"clipped {100 * act['clipped_fraction']:.2f} %" in panel.ranges.captions["activation"].text()
    assert panel.ranges.drawn("weight")[2] == pytest.approx(tuple(layer["ranges"]["weight"]["quant_range"]))
    # Another variant: the same layer's ranges there (kept in float: nothing quantized, no range drawn).
    panel.variant_choice.setCurrentText("ort-int8-static, convs float")
    assert panel.ranges.isVisible() and "convs float" in panel.ranges.title.text()
    assert panel.ranges.drawn("weight")[2] is None
    assert panel.ranges.captions["weight"].text().startswith("quantization range not known")


def test_op_type_bars_float_against_variant(panel, analysis: dict[str, Any]) -> None:
    names, float_ms, variant_ms = panel.bar_widths()
    profile = analysis["results"]["ort-int8-static"]["profile"]["by_op_type"]
    assert "QuantizeLinear ⇄" in names and "DequantizeLinear ⇄" in names
    for name, ms in zip(names, variant_ms, strict=True):
        assert ms == pytest.approx(profile.get(name.replace(" ⇄", ""), {}).get("ms", 0.0))
    assert float_ms[names.index("Conv")] > 0 and variant_ms[names.index("Conv")] == 0.0


def test_renders_in_light_and_dark(panel, qtbot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from qtapp.window.theme import DARK, LIGHT, apply_theme

    app = QApplication.instance()
    for theme in (LIGHT, DARK):
        apply_theme(app, theme)
        panel.apply_theme(theme)
        qtbot.wait(20)
        image = panel.grab().toImage()
        path = tmp_path / f"layers_{theme.name}.png"
        assert image.save(str(path)) and path.stat().st_size > 10_000
        background = image.pixelColor(5, image.height() - 5)
        assert (background.lightness() > 128) == (theme.name == "light")
    apply_theme(app, LIGHT)


def test_a_study_with_layer_analysis_fills_the_layers_tab(qtbot, tmp_path: Path) -> None:
    """The whole path: a real study with ``layer_samples`` set, its events applied to the results view."""
    from core.engine.run import run_study
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec
    from qtapp.charts.palette import VariantPalette
    from qtapp.panels.results_panel import ResultsPanel
    from qtapp.window.theme import LIGHT

    _build(tmp_path)
    rng = np.random.default_rng(1)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.standard_normal((40, *SAMPLE_SHAPE)).astype(np.float32), y=rng.integers(0, 10, 40))
    spec = StudySpec(
        ModelSpec(str(tmp_path / "cnn.onnx")), DatasetSpec.parse(f"npz:{data}"),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static")),),
        timing=TimingSpec(threads=1, max_time_s=0.2, min_samples=10), layer_samples=16,
    )
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.apply_events(list(run_study(spec)))
    assert panel.tabs.tabText(panel.tabs.indexOf(panel.layers)) == "Layers"
    assert panel.layers.labels() == ["ort-int8-static"]
    rows = panel.layers.table_rows()
    assert rows and rows[0][0].startswith("/0/Conv")  # model order, the first convolution first
    names, float_ms, variant_ms = panel.layers.bar_widths()
    assert any(f > 0 for f in float_ms) and any(v > 0 for v in variant_ms)  # the float model's bars too
    # The table's columns scroll within it: the page keeps the tab's width, so the charts and their legends stay
    # in view (a page as wide as the table carried them past the tab's edge).
    panel.resize(700, 600)
    panel.tabs.setCurrentWidget(panel.layers)
    panel.show()
    qtbot.wait(50)
    assert panel.layers.minimumSizeHint().width() < 700 and panel.layers.table.minimumWidth() < 700
    # Choosing a row of the results table shows its layers, as Details shows its figures.
    panel.layers.variant_choice.setCurrentIndex(-1)
    panel.table.view.selectRow(panel.state.labels.index("ort-int8-static"))
    assert panel.layers.variant_choice.currentText() == "ort-int8-static"


def test_the_chart_draws_the_chosen_variants_runtime_only(qtbot, analysis: dict[str, Any]) -> None:
    """An ONNX Runtime variant's layers are graph nodes, a PyTorch variant's are modules: one axis for both
    put the two curves side by side over a meaningless merged axis (seen on screen). The chart follows the
    variant chosen below it."""
    from qtapp.charts.palette import VariantPalette
    from qtapp.panels.layers_panel import LayersPanel
    from qtapp.window.theme import LIGHT

    onnx = analysis["results"]["ort-int8-static"]["layers"]
    torch_like = [{**layer, "name": f"features.{i}"} for i, layer in enumerate(onnx)]
    panel = LayersPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.set_layers("ort-int8-static", onnx, None)
    panel.set_layers("torch-int8-dynamic", torch_like, None)
    def drawn(label: str) -> bool:
        return label in panel._curves and panel._curves[label][0].isVisible()

    panel.variant_choice.setCurrentText("ort-int8-static")
    assert panel.layer_axis() == [layer["name"] for layer in onnx]
    assert drawn("ort-int8-static") and not drawn("torch-int8-dynamic")
    assert "1 more in another runtime" in panel.legend.text()
    panel.variant_choice.setCurrentText("torch-int8-dynamic")
    assert panel.layer_axis() == [f"features.{i}" for i in range(len(onnx))]
    assert drawn("torch-int8-dynamic") and not drawn("ort-int8-static")


def test_a_variants_own_float_profile_is_drawn_beside_it(qtbot, analysis: dict[str, Any]) -> None:
    from qtapp.charts.palette import VariantPalette
    from qtapp.panels.layers_panel import LayersPanel
    from qtapp.window.theme import LIGHT

    result = analysis["results"]["ort-int8-static"]
    panel = LayersPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.set_float_profile({"by_op_type": {"aten::conv2d": {"ms": 1.0, "share": 1.0, "count": 2}}, "by_node": []})
    panel.set_layers("ort-int8-static", result["layers"], {**result["profile"], "float": analysis["float_profile"]})
    names, float_ms, _ = panel.bar_widths()
    assert not any(name.startswith("aten::") for name in names)  # not the other runtime's baseline
    assert sum(float_ms) > 0 and any(name.startswith("Conv") for name in names)


# ----------------------------------------------------------------------------- one flipped sample's layers


@pytest.fixture
def flipped(qtbot):
    from qtapp.panels.flipped_panel import FlippedPanel

    widget = FlippedPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _click_sample(qtbot, panel, index: int) -> None:
    from PySide6.QtCore import Qt

    row = panel.shown_indices().index(index)
    rect = panel.list.visualItemRect(panel.list.item(row))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_click_on_a_flipped_sample_shows_its_recorded_layers(flipped, qtbot, analysis: dict[str, Any]) -> None:
    from core.layers import analyse_samples

    label = "ort-int8-static"
    x = analysis["x"]
    records = analyse_samples(analysis["src"], analysis["variants"][label], "onnxruntime", x[[4, 11]], [4, 11])
    flipped.set_dataset(x, np.zeros(len(x), dtype=np.int64))
    flipped.set_flips(label, {"flipped": [4, 11], "flipped_count": 2, "flipped_layers": records})
    assert not flipped.sample_chart.isVisible() and not flipped.layers_button.isEnabled()
    _click_sample(qtbot, flipped, 11)
    assert flipped.sample_chart.isVisible() and flipped.layers_button.isEnabled()
    names, sqnr, marked = flipped.sample_chart.drawn()
    record = records[1]
    assert names == [layer["name"] for layer in record["layers"]]
    np.testing.assert_allclose(sqnr, [min(100.0, layer["sqnr_db"]) for layer in record["layers"]])
    departs = record["departs_at"]
    assert departs is not None  # the crushed channels: some layer of the int8 variant falls under 10 dB
    assert marked == names.index(departs)
    assert f"departs from the float model at {departs}" in flipped.sample_chart.caption.text()
    assert all(v >= DEPARTS_BELOW_DB for v in sqnr[:marked])


def test_a_samples_layers_are_computed_on_demand_when_the_files_are_there(flipped, qtbot,
                                                                         analysis: dict[str, Any]) -> None:
    from core.layers import analyse_sample
    from qtapp.panels.flipped_panel import NO_SAMPLE_LAYERS

    label = "ort-int8-static"
    x = analysis["x"]
    flipped.set_dataset(x, np.zeros(len(x), dtype=np.int64))
    flipped.set_flips(label, {"flipped": [2, 6], "flipped_count": 2})  # a study run without layer analysis
    _click_sample(qtbot, flipped, 6)
    assert flipped.sample_status.text() == NO_SAMPLE_LAYERS and not flipped.sample_chart.isVisible()
    # A --variant file of an ONNX model: both files are on disk, the panel compares them in a background job.
    flipped.set_sources(label, {"path": str(analysis["src"]), "format": "onnx"},
                        str(analysis["variants"][label]), "onnxruntime")
    flipped.layers_button.click()
    assert "Comparing sample #6" in flipped.sample_status.text()
    qtbot.waitUntil(flipped.sample_chart.isVisible, timeout=20_000)
    expected = analyse_sample(analysis["src"], analysis["variants"][label], "onnxruntime", x[6], index=6)
    names, sqnr, marked = flipped.sample_chart.drawn()
    assert names == [layer["name"] for layer in expected["layers"]]
    np.testing.assert_allclose(sqnr, [min(100.0, layer["sqnr_db"]) for layer in expected["layers"]], rtol=1e-6)
    assert marked == (names.index(expected["departs_at"]) if expected["departs_at"] else None)
    # A PyTorch variant built in memory (or files gone): nothing to compute from.
    flipped.set_sources(label, {"path": str(analysis["src"]), "format": "onnx"}, None, "pytorch")
    flipped.set_flips(label, {"flipped": [2, 6], "flipped_count": 2})
    flipped.show_sample_layers(2)
    assert flipped.sample_status.text() == NO_SAMPLE_LAYERS


# ----------------------------------------------------------------------------- keep a layer in float and re-run


def _select_layer(qtbot, panel, name: str) -> None:
    from PySide6.QtCore import Qt

    row = [r[0] for r in panel.table_rows()].index(name)
    rect = panel.table.visualItemRect(panel.table.item(row, 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_keep_in_float_yields_the_scheme_with_the_layer_excluded(panel, qtbot, analysis: dict[str, Any]) -> None:
    from core.layers import keep_in_float

    label = "ort-int8-static"
    result = analysis["results"][label]
    assert not panel.keep_float_button.isEnabled()  # no scheme known for the variant: nothing to re-run
    panel.set_layers(label, result["layers"], result["profile"], scheme=("ort-int8-static", {"activations": "s8"}))
    _select_layer(qtbot, panel, "/2/Conv")
    assert panel.selected_layer() == "/2/Conv" and panel.keep_float_button.isEnabled()
    with qtbot.waitSignal(panel.keep_in_float_requested) as signal:
        panel.keep_float_button.click()
    assert signal.args[0].label == "ort-int8-static:activations=s8,exclude=/2/Conv"
    # The variant already keeping one layer in float: the next one is added to its list.
    again = keep_in_float("ort-int8-static", {"exclude": "/0/Conv", "activations": "s8"}, "/2/Conv")
    assert again.label == "ort-int8-static:activations=s8,exclude=/0/Conv;/2/Conv"
    assert keep_in_float("torch-int8-static", {}, "features.3#1").label == "torch-int8-static:exclude=features.3"
    with pytest.raises(ValueError, match="ort-int8-dynamic"):
        keep_in_float("ort-int8-dynamic", {}, "/2/Conv")
    # A scheme that cannot leave a layer in float: the action is off, and says why.
    panel.set_layers(label, result["layers"], result["profile"], scheme=("ort-int8-dynamic", {}))
    _select_layer(qtbot, panel, "/2/Conv")
    assert not panel.keep_float_button.isEnabled() and "cannot" in panel.keep_float_button.toolTip()


def test_keep_in_float_reruns_the_study_with_the_added_variant(qtbot, analysis: dict[str, Any]) -> None:
    from fake_study import fake_run_study
    from helpers import close_window

    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, VariantSpec
    from qtapp.window.main_window import MainWindow
    from qtapp.window.theme import LIGHT

    specs: list[StudySpec] = []

    def engine(spec, cancel):
        specs.append(spec)
        yield from fake_run_study(spec, cancel, delay_s=0.001)

    base = StudySpec(ModelSpec(str(analysis["src"])), DatasetSpec.parse("builtin:digits"),
                     variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static")),))
    window = MainWindow(LIGHT, run_study=engine)
    window.study_spec = lambda: base  # what the panels describe (their own round trip is tested elsewhere)
    window.show()
    try:
        layers = window.results.layers
        result = analysis["results"]["ort-int8-static"]
        layers.set_layers("ort-int8-static", result["layers"], result["profile"], scheme=("ort-int8-static", {}))
        layers.variant_choice.setCurrentText("ort-int8-static")
        layers.table.selectRow([r[0] for r in layers.table_rows()].index("/0/Conv"))
        layers.keep_float_button.click()
        qtbot.waitUntil(lambda: len(specs) == 1 and not window.controller.running, timeout=20_000)
        schemes = [v.scheme.label for v in specs[0].variants if v.scheme is not None]
        assert schemes == ["ort-int8-static", "ort-int8-static:exclude=/0/Conv"]
        assert specs[0].model == base.model and specs[0].dataset == base.dataset
    finally:
        close_window(qtbot, window)
