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
