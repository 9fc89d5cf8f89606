"""The HTML report's per-layer chart, and the layer analysis left automatic (on for small models, off for large)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core.cli.main import main
from core.reports import chart_data
from core.reports import svg as svg_charts
from core.reports.html import render_html
from core.study.result import StudyResult, VariantResult, VariantStatus

SVG_NS = "{http://www.w3.org/2000/svg}"


def _layer(name: str, sqnr: float | None, worst: float | None, op: str = "Conv") -> dict:
    return {"name": name, "op_type": op, "tensor": name + "_out", "weight": None,
            "activation": {"sqnr_db": sqnr, "min_channel_sqnr_db": worst, "outlier_channels": []}}


ONNX_NAMES = ["/conv1/Conv", "/relu1/Relu", "/conv2/Conv", "/fc/Gemm"]


def _study() -> StudyResult:
    """A float baseline, two ONNX Runtime variants (one with a layer the other lacks), one PyTorch variant."""
    static = [_layer(n, s, w) for n, s, w in zip(ONNX_NAMES, (38.5, 200.0, 6.2, 31.0), (30.1, 200.0, -4.0, None),
                                                  strict=True)]
    dynamic = [_layer(n, s, w) for n, s, w in zip([ONNX_NAMES[0], "/extra/Mul", *ONNX_NAMES[2:]],
                                                   (40.0, 44.0, None, 35.5), (33.0, 40.0, None, 20.0), strict=True)]
    torch = [_layer(n, s, w, "Linear") for n, s, w in (("fc1", 50.0, 41.0), ("fc2", 12.0, 9.5))]

    def variant(label: str, runtime: str, layers: list[dict] | None, baseline: bool = False) -> VariantResult:
        return VariantResult(label, "fp32" if baseline else label, VariantStatus.OK, runtime=runtime,
                             is_baseline=baseline, layers=layers)

    return StudyResult(
        study_id="abc123def456", created="2026-12-07T08:00:00+00:00", status="finished",
        model={"path": "/models/net.pt"}, dataset={"spec": "synthetic:8", "samples": 8}, environment={}, timing={},
        spec={}, results=[variant("fp32", "pytorch", None, baseline=True),
                          variant("ort-int8-static", "onnxruntime", static),
                          variant("ort-int8-dynamic", "onnxruntime", dynamic),
                          variant("torch-int8-dynamic", "pytorch", torch)],
    )


def _layer_charts(page: str) -> list[ET.Element]:
    section = page[page.index('<section id="layers">'):]
    section = section[: section.index("</section>")]
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", section, flags=re.S)]


def _series(chart: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-variant"): g for g in chart.iter(f"{SVG_NS}g") if g.get("data-variant")}


def test_the_report_charts_each_variants_layers_one_chart_per_runtime() -> None:
    study = _study()
    onnx_chart, torch_chart = _layer_charts(render_html([study]))
    assert onnx_chart.get("data-chart") == torch_chart.get("data-chart") == "layers"
    # The layer axis: both ONNX variants' layers merged in model order ("/extra/Mul" after the first conv).
    axis = next(g for g in onnx_chart.iter(f"{SVG_NS}g") if g.get("data-layers"))
    assert int(axis.get("data-layers")) == 5 and axis.get("data-departs") == "10"
    onnx, torch = _series(onnx_chart), _series(torch_chart)
    assert list(onnx) == ["ort-int8-static", "ort-int8-dynamic"] and list(torch) == ["torch-int8-dynamic"]
    colors = chart_data.variant_colors([v.label for v in study.results])
    for label, group in (*onnx.items(), *torch.items()):
        layers = next(v.layers for v in study.results if v.label == label)
        sqnr = [layer["activation"]["sqnr_db"] for layer in layers if layer["activation"]["sqnr_db"] is not None]
        worst = [layer for layer in layers if layer["activation"]["min_channel_sqnr_db"] is not None]
        # One dot per layer with a figure, one triangle per worst channel, all in the variant's colour.
        assert int(group.get("data-points")) == len(sqnr) == len(list(group.iter(f"{SVG_NS}circle")))
        assert [float(v) for v in group.get("data-sqnr").split()] == pytest.approx(sqnr, rel=1e-3)
        triangles = [p for p in group.iter(f"{SVG_NS}path") if p.get("data-mark") == "worst-channel"]
        assert len(triangles) == int(group.get("data-worst-points")) == len(worst)
        assert {c.get("fill") for c in group.iter(f"{SVG_NS}circle")} == {colors[label]}
    # A layer with no figure breaks the line: the dynamic variant's line is two pieces.
    line = next(p for p in onnx["ort-int8-dynamic"].iter(f"{SVG_NS}path") if p.get("fill") == "none")
    assert line.get("d").count("M") == 2
    text = " ".join(t.text or "" for t in onnx_chart.iter(f"{SVG_NS}text"))
    assert "exact copies drawn at 100 dB" in text and "under 10 dB" in text
    assert "exact copies" not in " ".join(t.text or "" for t in torch_chart.iter(f"{SVG_NS}text"))
    # The 10 dB line: dashed, across the plot, below the 31 dB dots and above the 6.2 dB one.
    dashed = [el for el in onnx_chart.iter(f"{SVG_NS}line") if el.get("stroke-dasharray") == "6 4"
              and el.get("x1") != el.get("x2") and float(el.get("x2")) - float(el.get("x1")) > 500]
    assert len(dashed) == 1
    y10 = float(dashed[0].get("y1"))
    ys = {round(float(c.get("cy")), 1): c for c in onnx["ort-int8-static"].iter(f"{SVG_NS}circle")}
    assert min(ys) < y10 < max(ys)  # SVG y grows downwards: the 6.2 dB dot lies under the line


def test_the_charts_say_which_runtime_when_there_are_several() -> None:
    page = render_html([_study()])
    assert "Per-layer error, ONNX Runtime layers" in page and "Per-layer error, PyTorch layers" in page
    assert "each runtime has its own chart" in page
    one_runtime = _study()
    one_runtime.results = one_runtime.results[:3]
    (chart,) = _layer_charts(render_html([one_runtime]))
    assert "each runtime has its own chart" not in render_html([one_runtime])
    assert list(_series(chart)) == ["ort-int8-static", "ort-int8-dynamic"]


def test_layer_axis_groups_join_variants_that_share_layer_names() -> None:
    a, b, c = [{"name": "x"}, {"name": "y"}], [{"name": "p"}], [{"name": "y"}, {"name": "z"}]
    assert chart_data.layer_axis_groups([a, b, c]) == [[0, 2], [1]]
    bridge = [{"name": "p"}, {"name": "x"}]  # shares a name with both groups: one axis for all
    assert chart_data.layer_axis_groups([a, b, bridge]) == [[0, 1, 2]]
    assert chart_data.merged_layer_names([a, c]) == ["x", "y", "z"]


def test_a_model_with_hundreds_of_layers_names_every_kth() -> None:
    names = [f"block{i}/conv" for i in range(320)]
    series = svg_charts.LayerSeries("int8", "#0072b2", names, [30.0 + i % 7 for i in range(320)],
                                    [20.0] * 320)
    chart = ET.fromstring(svg_charts.layer_sqnr_chart([series], names, "Per-layer error"))
    (group,) = _series(chart).values()
    assert int(group.get("data-points")) == 320
    rotated = [t for t in chart.iter(f"{SVG_NS}text") if "rotate(-55" in (t.get("transform") or "")]
    assert 40 <= len(rotated) <= 60 and rotated[1].text == "block6/conv"  # a name every 6th layer
    assert "every 6th layer named" in " ".join(t.text or "" for t in chart.iter(f"{SVG_NS}text"))
    assert "No layer" in svg_charts.layer_sqnr_chart([], [], "Per-layer error")


# ---- the automatic analysis ----------------------------------------------------------------------


def test_old_specs_keep_the_analysis_off_and_new_ones_are_automatic() -> None:
    from core.study.project import reproduce_command, spec_from_dict
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec

    spec = StudySpec(model=ModelSpec(path="/m.onnx"), dataset=DatasetSpec.parse("synthetic:8"))
    assert spec.layer_samples is None and spec.to_dict()["layer_samples"] is None
    d = spec.to_dict()
    assert spec_from_dict(d).layer_samples is None
    assert spec_from_dict({**d, "layer_samples": 0}).layer_samples == 0  # written before "auto" existed
    assert spec_from_dict({k: v for k, v in d.items() if k != "layer_samples"}).layer_samples == 0
    assert spec_from_dict({**d, "layer_samples": 16}).layer_samples == 16
    assert "layers" not in reproduce_command(d)
    assert " --no-layers" in reproduce_command({**d, "layer_samples": 0})
    assert "--layers --layer-samples 16" in reproduce_command({**d, "layer_samples": 16})


@pytest.mark.parametrize(("options", "samples"), [((), None), (("--no-layers",), 0), (("--layers",), 64),
                                                  (("--layer-samples", "8"), 8), (("--layers", "--layer-samples",
                                                                                   "8"), 8)])
def test_the_command_line_turns_the_analysis_on_off_or_leaves_it_automatic(options, samples) -> None:
    from core.cli.main import spec_from_args
    from core.cli.parser import build_parser

    args = build_parser(window=False).parse_args(["run", "--demo", *options])
    assert spec_from_args(args).layer_samples == samples


def test_no_layers_with_layers_is_refused_naming_the_options(capsys) -> None:
    assert main(["run", "--demo", "--no-layers", "--layers", "--no-history"]) == 2
    err = capsys.readouterr().err
    assert "--no-layers" in err and "--layers" in err and "Traceback" not in err


def test_left_automatic_a_small_model_is_analysed_and_a_large_one_skipped_with_a_note(
    tiny_onnx: Path, tiny_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.engine import layer_step
    from core.layers import count_layers

    layers_in_model = count_layers(tiny_onnx, "onnxruntime")
    assert layers_in_model == sum(1 for node in __import__("onnx").load(str(tiny_onnx)).graph.node
                                  if node.op_type not in ("Constant", "Shape"))

    def run(out: Path) -> dict:
        assert main(["run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--scheme",
                     "ort-int8-static", "--max-time", "0.1", "--no-history", "--in-process", "--quiet",
                     "--json", str(out)]) == 0
        return next(r for r in json.loads(out.read_text())["results"] if r["label"] == "ort-int8-static")

    small = run(tmp_path / "small.json")
    assert small["layers"] and not any("automatic" in note for note in small["notes"])
    monkeypatch.setattr(layer_step, "AUTO_MAX_LAYERS", layers_in_model - 1)
    large = run(tmp_path / "large.json")
    assert "layers" not in large and "profile" not in large
    assert f"layers: not analysed: the model has {layers_in_model} layers, more than the " \
           f"{layers_in_model - 1} the automatic layer analysis takes" in " ".join(large["notes"])
