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
    return {"results": results, "float_profile": float_profile}


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
