"""``quantbench run --layers``: the per-layer analysis as a step of a real study, in the result JSON."""

from __future__ import annotations

import json
from pathlib import Path

from core.cli.main import main


def _run(tiny_onnx: Path, tiny_npz: Path, out: Path, *extra: str) -> dict:
    argv = ["run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--scheme", "ort-int8-static",
            "--scheme", "ort-int8-dynamic", "--max-time", "0.2", "--no-history", "--in-process", "--quiet",
            "--json", str(out), *extra]
    assert main(argv) == 0
    return {r["label"]: r for r in json.loads(out.read_text())["results"]}


def test_layers_are_analysed_per_quantized_variant_only_when_asked(tiny_onnx: Path, tiny_npz: Path,
                                                                   tmp_path: Path) -> None:
    plain = _run(tiny_onnx, tiny_npz, tmp_path / "plain.json")
    assert all("layers" not in r and "profile" not in r for r in plain.values())

    results = _run(tiny_onnx, tiny_npz, tmp_path / "layers.json", "--layers", "--layer-samples", "16")
    static = results["ort-int8-static"]
    assert static["layers"], static["notes"]
    first = static["layers"][0]
    assert {"name", "op_type", "tensor", "activation", "weight"} <= set(first)
    assert {"sqnr_db", "mse", "cosine", "max_abs", "min_channel_sqnr_db", "outlier_channels"} <= set(
        first["activation"]
    )
    # Quantized tensors are close to the float ones but not identical: a finite, positive SQNR.
    assert all(0 < layer["activation"]["sqnr_db"] < 200 for layer in static["layers"])
    # Where the time goes: the int8 graph's own ops, conversions among them, shares adding up to 1.
    shares = [op["share"] for op in static["profile"]["by_op_type"].values()]
    assert abs(sum(shares) - 1) < 0.02 and "QuantizeLinear" in static["profile"]["by_op_type"]
    # The float model is profiled once and kept on the baseline (the float bars beside each variant's).
    assert "by_op_type" in results["fp32"]["profile"] and "layers" not in results["fp32"]
    assert results["ort-int8-dynamic"]["layers"]


def test_layer_samples_below_one_is_refused_naming_the_option(tiny_onnx: Path, tiny_npz: Path, capsys) -> None:
    code = main(["run", "--model", str(tiny_onnx), "--dataset", f"npz:{tiny_npz}", "--layers",
                 "--layer-samples", "0", "--no-history"])
    assert code == 2 and "--layer-samples" in capsys.readouterr().err


def test_the_html_report_lists_each_variants_worst_layers(tiny_onnx: Path, tiny_npz: Path, tmp_path: Path) -> None:
    from core.reports.html import WORST_LAYERS, render_html
    from core.study.result import study_from_json

    _run(tiny_onnx, tiny_npz, tmp_path / "layers.json", "--layers", "--layer-samples", "16")
    study = study_from_json(json.loads((tmp_path / "layers.json").read_text()))
    page = render_html([study])
    section = page[page.index('<section id="layers">'):]
    section = section[: section.index("</section>")]
    static = next(r for r in study.results if r.label == "ort-int8-static")
    worst = min(static.layers, key=lambda layer: layer["activation"]["sqnr_db"])
    assert f"ort-int8-static: the {min(WORST_LAYERS, len(static.layers))} worst of {len(static.layers)}" in section
    # The worst layer is listed first, with its SQNR as the report rounds it.
    first_row = section[section.index("<tbody>"):].split("</tr>")[0]
    assert worst["name"] in first_row and f"{worst['activation']['sqnr_db']:.1f}" in first_row
    assert "Time by op type: " in section and "QuantizeLinear" in section
    assert '<section id="layers">' not in render_html([study_from_json(json.loads(
        (tmp_path / "layers.json").read_text().replace('"layers"', '"layers_off"')))])


def test_a_pytorch_models_onnx_runtime_variant_carries_the_float_profile_of_its_own_runtime(tmp_path: Path) -> None:
    """The demo is a PyTorch model: its baseline's profile is of PyTorch ops, which say nothing of an ONNX Runtime
    variant's; the variant's profile carries the float ONNX export's, for the float bars beside its own."""
    out = tmp_path / "demo.json"
    assert main(["run", "--demo", "--scheme", "ort-int8-static", "--layers", "--layer-samples", "8",
                 "--max-time", "0.2", "--no-history", "--in-process", "--quiet", "--json", str(out)]) == 0
    results = {r["label"]: r for r in json.loads(out.read_text())["results"]}
    own = results["ort-int8-static"]["profile"]["float"]["by_op_type"]
    assert "Conv" in own and "QLinearConv" not in own  # the float ONNX graph's ops
    # The PyTorch baseline keeps no ONNX profile of its own (it has PyTorch ops, when a PyTorch variant is analysed).
    assert "by_op_type" not in (results["fp32"].get("profile") or {}) or "Conv" not in results["fp32"]["profile"][
        "by_op_type"]
