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
    plain = _run(tiny_onnx, tiny_npz, tmp_path / "plain.json", "--no-layers")
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
    # Each flipped sample's own per-layer error, beside "flipped" (the window shows it on a click).
    flipped = {label: r["fidelity"]["flipped"] for label, r in results.items() if label != "fp32"}
    assert any(flipped.values()), flipped  # the tiny int8 variants change a few predictions
    for label, indices in flipped.items():
        records = results[label]["fidelity"].get("flipped_layers", [])
        assert [rec["index"] for rec in records] == indices[:16]
        names = [layer["name"] for layer in results[label]["layers"]]
        for rec in records:
            assert [layer["name"] for layer in rec["layers"]] == names
            low = [layer["name"] for layer in rec["layers"] if layer["sqnr_db"] < 10.0]
            assert rec["departs_at"] == (low[0] if low else None)


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


def test_a_litert_int8_file_variant_is_compared_tensor_by_tensor(tmp_path: Path) -> None:
    """``--variant int8.tflite`` of a float TFLite model: its layers in the JSON, and the note that LiteRT has no
    per-op profiler (no ``profile``)."""
    import numpy as np
    from test_layers import _tflite_conv_pair

    x = np.random.default_rng(8).standard_normal((24, 4, 4, 2)).astype(np.float32)
    float_path, int8_path, _ = _tflite_conv_pair(tmp_path, x)
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(24) % 64)
    out = tmp_path / "lite.json"
    assert main(["run", "--model", str(float_path), "--variant", str(int8_path), "--dataset",
                 f"npz:{tmp_path / 'data.npz'}", "--layers", "--layer-samples", "8", "--max-time", "0.2",
                 "--no-history", "--in-process", "--quiet", "--json", str(out)]) == 0
    variant = next(r for r in json.loads(out.read_text())["results"] if r["label"] != "fp32")
    assert [layer["name"] for layer in variant["layers"]] == ["conv_out", "logits"]
    assert variant["layers"][0]["activation"]["outlier_channels"] == [3]
    assert "profile" not in variant and any("no per-op profiler" in note for note in variant["notes"])


def test_csv_writes_the_layer_table_beside_the_variant_table(tiny_onnx: Path, tiny_npz: Path, tmp_path: Path,
                                                             capsys) -> None:
    import csv

    from core.cli.main import main as cli

    table = tmp_path / "study.csv"
    results = _run(tiny_onnx, tiny_npz, tmp_path / "layers.json", "--layers", "--layer-samples", "8",
                   "--csv", str(table))
    variants = list(csv.DictReader(table.open()))
    assert [row["label"] for row in variants] == list(results)
    rows = list(csv.DictReader((tmp_path / "study-layers.csv").open()))
    for label in ("ort-int8-static", "ort-int8-dynamic"):
        mine = [row for row in rows if row["label"] == label]
        layers = results[label]["layers"]
        assert [row["layer"] for row in mine] == [layer["name"] for layer in layers]  # model order
        assert [int(row["index"]) for row in mine] == list(range(len(layers)))
        first, layer = mine[0], layers[0]
        assert float(first["sqnr_db"]) == layer["activation"]["sqnr_db"]
        assert float(first["min_channel_sqnr_db"]) == layer["activation"]["min_channel_sqnr_db"]
        assert first["outlier_channels"] == ";".join(str(c) for c in layer["activation"]["outlier_channels"])
        assert (first["weight_sqnr_db"] == "") == (layer["weight"] is None)
    static = [row for row in rows if row["label"] == "ort-int8-static"]
    shares = [float(row["share"]) for row in static if row["share"]]
    assert shares and all(0.0 < s <= 1.0 for s in shares) and sum(shares) <= 1.0 + 1e-9
    assert all(row["variant_ms"] for row in static if row["share"])
    assert "fp32" not in {row["label"] for row in rows}  # the baseline has no layer rows
    # The history's export writes the same pair; a study with --no-layers only the variant table.
    plain = tmp_path / "plain.csv"
    _run(tiny_onnx, tiny_npz, tmp_path / "plain.json", "--no-layers", "--csv", str(plain))
    assert plain.exists() and not (tmp_path / "plain-layers.csv").exists()
    capsys.readouterr()
    assert cli(["compare", str(tmp_path / "layers.json"), str(tmp_path / "plain.json"),
                "--csv", str(tmp_path / "again.csv")]) == 0
    again = list(csv.DictReader((tmp_path / "again-layers.csv").open()))
    assert [(r["label"], r["layer"], r["sqnr_db"]) for r in again] == [(r["label"], r["layer"], r["sqnr_db"])
                                                                     for r in rows]
