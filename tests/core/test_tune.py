"""Sensitivity and the accuracy-aware search (issue 17) on tiny real models built here.

The outlier CNN: the first convolution's channel 3 is scaled 1000x (weights and bias) and the second
convolution divides what it reads from that channel by 1000, so the float outputs are unchanged but one
per-tensor u8 range has to span both the outlier and the ordinary channels:

    x ─ conv 1→8 (channel 3 ×1000) ─ relu ─ conv 8→16 (input channel 3 ÷1000) ─ relu ─ flatten
      ─ linear 1024→32 ─ relu ─ linear 32→10

The near-tie model: one Gemm whose two rows differ by 1e-4 of a random direction, so the class is decided
by a difference far below any 8- or 16-bit rounding of the weights.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

SAMPLE = (1, 8, 8)
OUTLIER = 3


def _outlier_cnn() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    conv1, conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
    model = nn.Sequential(
        conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 32), nn.ReLU(), nn.Linear(32, 10)
    ).eval()
    with torch.no_grad():
        conv1.weight[OUTLIER] *= 1000.0
        conv1.bias[OUTLIER] *= 1000.0
        conv2.weight[:, OUTLIER] /= 1000.0
    return model


@pytest.fixture(scope="module")
def outlier(tmp_path_factory: pytest.TempPathFactory, kit: SimpleNamespace) -> SimpleNamespace:
    """The outlier CNN as ONNX, 200 evaluation samples labelled by the float model, 32 calibration samples."""
    model = _outlier_cnn()
    path = kit.export_onnx(model, tmp_path_factory.mktemp("outlier") / "outlier_cnn.onnx", SAMPLE)
    x = np.random.default_rng(0).standard_normal((232, *SAMPLE)).astype(np.float32)
    y = kit.torch_outputs(model, x[:200]).argmax(axis=1).astype(np.int64)
    return SimpleNamespace(path=path, eval_x=x[:200], eval_y=y, calib_x=x[200:])


def _near_tie_onnx(path: Path) -> Path:
    """x [batch, 64] ─ Gemm(W [2, 64], transB) ─▶ y [batch, 2], W's rows w and w + 1e-4 v."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w, v = rng.standard_normal(64), rng.standard_normal(64)
    weight = np.stack([w, w + 1e-4 * v]).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], name="gemm", transB=1)],
        "near_tie",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def met(outlier: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One search on the outlier CNN: 1 point, smallest file; what on_candidate saw, in order."""
    from core.tune.search import tune

    seen: list[dict[str, Any]] = []
    result = tune(
        outlier.path, outlier.eval_x, outlier.eval_y, outlier.calib_x, 1.0, objective="size",
        time_limit_s=120, on_candidate=seen.append, threads=1, timing_s=0.1,
        workdir=tmp_path_factory.mktemp("met_search"),
    )
    return SimpleNamespace(result=result, seen=seen)


# ----------------------------------------------------------------------------- sensitivity


def test_sensitivity_ranks_the_outlier_activation_first_from_one_calibration(
    outlier: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.tune.sensitivity import PARTS, layer_sensitivity

    # The module, not the quantize() function the package exports under the same name.
    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")
    calibrations = []
    real = ort_quantize.create_calibrator
    monkeypatch.setattr(
        ort_quantize, "create_calibrator", lambda *a, **k: calibrations.append(1) or real(*a, **k)
    )
    run = layer_sensitivity(
        outlier.path, outlier.eval_x, outlier.eval_y, outlier.calib_x, threads=1, workdir=tmp_path
    )
    assert calibrations == [1]  # every variant of every layer came from the one set of ranges
    assert run.layers == 4 and run.float_accuracy == 1.0
    assert run.quantized_accuracy < 0.8  # plain static int8 collapses
    top = run.rows[0]
    assert (top["layer"], top["part"]) == ("/0/Conv", "activation")
    assert top["accuracy_delta_pt"] <= -20.0 and top["impact_pt"] == -top["accuracy_delta_pt"]
    assert top["sqnr_db"] < 20.0
    # Keeping that activation float means the layer, its Relu and the convolution that reads it.
    assert top["exclude"] == ["/0/Conv", "/1/Relu", "/2/Conv"]
    # Quantizing the first convolution's weights alone costs almost nothing and is far down the list.
    weights = next(r for r in run.rows if (r["layer"], r["part"]) == ("/0/Conv", "weights"))
    assert weights["accuracy_delta_pt"] >= -2.0 and weights["sqnr_db"] > 40.0
    # Leaving one layer out never helps here: the outlier range is quantized for the next layer anyway.
    loo = [r for r in run.rows if r["part"] == "leave_one_out"]
    assert len(loo) == 4 and all(abs(r["impact_pt"]) <= 2.0 for r in loo)
    assert {r["part"] for r in run.rows} == set(PARTS)
    assert run.evaluations == 2 + len(run.rows) and run.cost_ratio > 0


def test_sensitivity_refuses_an_unknown_part(outlier: SimpleNamespace) -> None:
    from core.tune.sensitivity import layer_sensitivity

    with pytest.raises(ValueError, match="unknown sensitivity parts"):
        layer_sensitivity(outlier.path, outlier.eval_x, None, outlier.calib_x, parts=("bias",))


# ----------------------------------------------------------------------------- the search


def test_search_meets_a_one_point_budget_with_a_smaller_variant(met: SimpleNamespace) -> None:
    result, candidates = met.result, met.result["candidates"]
    assert result["status"] == "met"
    assert candidates[0]["scheme"] == "fp32" and candidates[0]["accuracy"] == 1.0
    plain = candidates[1]
    assert plain["scheme"] == "ort-int8-static:samples=32" and plain["accuracy_drop_pt"] > 20.0
    best = result["best"]
    assert best == candidates[-1]  # the search stopped at the first candidate within the budget
    assert best["accuracy_drop_pt"] <= 1.0 and best["size_bytes"] < candidates[0]["size_bytes"]
    assert best["scheme"].startswith("ort-int8-static:exclude=/0/Conv;/1/Relu;/2/Conv")
    assert best["on_frontier"] and candidates[0]["on_frontier"]
    assert [c["label"] for c in met.seen] == [c["label"] for c in candidates]
    assert result["sensitivity"][0]["part"] == "activation"


def test_the_winner_scheme_string_rebuilds_the_same_variant(
    met: SimpleNamespace, outlier: SimpleNamespace, make_ctx: Any
) -> None:
    from core.models import load_model
    from core.schemes.registry import get_scheme
    from core.study.spec import ModelSpec, SchemeSpec

    best = met.result["best"]
    spec = SchemeSpec.parse(best["scheme"])
    built = get_scheme(spec.id).build(
        load_model(ModelSpec(path=str(outlier.path))), spec, make_ctx("rebuild", calibration=outlier.calib_x)
    )
    try:
        pred = built.runner.predict(outlier.eval_x).argmax(axis=1)
    finally:
        built.runner.close()
    assert float(np.mean(pred == outlier.eval_y)) == best["accuracy"]
    assert built.size_bytes == best["size_bytes"]


def test_a_budget_that_cannot_be_met_is_missed_and_keeps_the_frontier(tmp_path: Path) -> None:
    from core.tune.search import tune

    path = _near_tie_onnx(tmp_path / "near_tie.onnx")
    x = np.random.default_rng(2).standard_normal((160, 64)).astype(np.float32)
    result = tune(path, x[:128], None, x[128:], 0.5, objective="size", time_limit_s=120, threads=1, timing_s=0.05)
    candidates = result["candidates"]
    assert result["status"] == "missed"
    schemes = [c["scheme"] for c in candidates]
    assert schemes[0] == "fp32" and "ort-fp16" in schemes and "ort-int4-weight" in schemes
    # A Gemm-only model gets the weight-only family, each measured; no op-type mix without a convolution.
    for scheme in ("ort-int8-dynamic:per_channel=true", "ort-int4-weight:block_size=128",
                   "ort-int4-weight:accuracy_level=4"):
        assert next(c for c in candidates if c["scheme"] == scheme)["latency_ms"]["p50"] > 0
    assert not any("exclude=Conv" in s for s in schemes)
    smaller = [c for c in candidates[1:] if c["status"] == "ok" and c["size_bytes"] < candidates[0]["size_bytes"]]
    assert smaller and all(c["accuracy_drop_pt"] > 0.5 for c in smaller)
    frontier = [c for c in candidates if c["on_frontier"]]
    assert candidates[0] in frontier and len(frontier) >= 2
    # The closest miss is kept as best: smaller than float, and the least accuracy lost among those.
    best = result["best"]
    assert best in smaller and best["accuracy_drop_pt"] == min(c["accuracy_drop_pt"] for c in smaller)


def test_the_plan_tries_sample_counts_op_type_mixes_and_weight_only_after_the_static_knobs(
    outlier: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The order of the knobs, on a plan that never meets its budget (every built candidate made to miss)."""
    from core.schemes.params import check_params
    from core.schemes.registry import get_scheme
    from core.study.spec import SchemeSpec
    from core.tune import search

    real = search._Search._measure

    def missing(self: Any, label: str, scheme: str) -> dict[str, Any]:
        row = real(self, label, scheme)
        return {**row, "accuracy": 0.0, "accuracy_drop_pt": 100.0} if row["status"] == "ok" else row

    monkeypatch.setattr(search._Search, "_measure", missing)
    calib = np.random.default_rng(5).standard_normal((256, *SAMPLE)).astype(np.float32)
    result = search.tune(outlier.path, outlier.eval_x[:40], outlier.eval_y[:40], calib, 1.0, objective="size",
                         threads=1, timing_s=0.02, sensitivity_parts=("leave_one_out",), workdir=tmp_path)
    schemes = [c["scheme"] for c in result["candidates"]]
    assert result["status"] == "missed" and all(c["status"] == "ok" for c in result["candidates"])
    assert schemes[:5] == [
        "fp32", "ort-int8-static", "ort-int8-static:per_channel=false", "ort-int8-static:calibration=entropy",
        "ort-int8-static:calibration=percentile",
    ]
    # Then the sample counts the 256 calibration samples allow (the default is 200), before any exclusion.
    assert schemes[5] == "ort-int8-static:samples=64" and "exclude=" in schemes[6]
    assert "ort-int8-static:samples=512" not in schemes  # more than the dataset holds
    fp16 = schemes.index("ort-fp16")
    assert schemes[fp16 + 1 : fp16 + 3] == ["ort-int8-static:exclude=Gemm", "ort-int8-static:exclude=Conv"]
    assert schemes[-5:] == [
        "ort-int8-dynamic", "ort-int8-dynamic:per_channel=true", "ort-int4-weight",
        "ort-int4-weight:block_size=128", "ort-int4-weight:accuracy_level=4",
    ]
    for text in schemes[1:]:
        spec = SchemeSpec.parse(text)
        check_params(spec, get_scheme(spec.id).info)


def test_cancel_mid_search_keeps_the_finished_candidates(outlier: SimpleNamespace) -> None:
    from core.study.cancel import CancelToken
    from core.tune.search import tune

    cancel = CancelToken()
    cancelled_at: list[float] = []

    def after(candidate: dict[str, Any]) -> None:
        if candidate["scheme"] != "fp32":
            cancelled_at.append(time.monotonic())
            cancel.cancel()

    result = tune(
        outlier.path, outlier.eval_x, outlier.eval_y, outlier.calib_x, 1.0, objective="size",
        cancel=cancel, on_candidate=after, threads=1, timing_s=0.1,
    )
    assert time.monotonic() - cancelled_at[0] < 1.0
    assert result["status"] == "cancelled"
    assert [c["scheme"] for c in result["candidates"]] == ["fp32", "ort-int8-static:samples=32"]
    assert all(c["status"] == "ok" for c in result["candidates"])
    # Nothing met the budget; the closest miss that is smaller than float is kept as best, and says so.
    assert result["best"] == result["candidates"][1] and not result["best"]["within_budget"]
    assert result["best"]["accuracy_drop_pt"] > 20.0


def test_cancel_while_a_candidate_is_being_timed_returns_within_a_second(outlier: SimpleNamespace) -> None:
    from core.study.cancel import CancelToken
    from core.tune.search import tune

    cancel = CancelToken()
    timer = threading.Timer(1.0, cancel.cancel)
    timer.start()
    try:
        result = tune(
            outlier.path, outlier.eval_x, outlier.eval_y, outlier.calib_x, 0.0, objective="latency",
            cancel=cancel, threads=1, timing_s=30.0,
        )
    finally:
        timer.cancel()
    assert result["status"] == "cancelled"
    assert result["elapsed_s"] < 2.0  # a 30 s timing budget, stopped a second in
    # Whatever was in flight (building, evaluating or timing) is dropped; what finished is kept whole.
    assert all(c["status"] == "ok" and c["latency_ms"]["p50"] > 0 for c in result["candidates"])


def test_a_time_limit_ends_the_search_as_missed(outlier: SimpleNamespace) -> None:
    from core.tune.search import tune

    result = tune(
        outlier.path, outlier.eval_x, outlier.eval_y, outlier.calib_x, 1.0, objective="size",
        time_limit_s=0.5, threads=1, timing_s=5.0,
    )
    assert result["status"] == "missed" and result["elapsed_s"] < 1.5


def test_the_tune_json_has_the_issue_keys(met: SimpleNamespace) -> None:
    from core.schemes.params import check_params
    from core.schemes.registry import get_scheme
    from core.study.spec import SchemeSpec

    result = json.loads(json.dumps(met.result))  # plain JSON all the way down
    assert {"schema_version", "kind", "budget", "status", "sensitivity", "candidates", "best"} <= set(result)
    assert result["schema_version"] == 1 and result["kind"] == "tune"
    assert result["budget"] == {"max_drop": 1.0, "objective": "size"}
    for row in result["sensitivity"]:
        assert {"layer", "op_type", "part", "accuracy_delta_pt", "sqnr_db"} <= set(row)
        assert row["part"] in ("weights", "activation", "leave_one_out")
    keys = {"label", "scheme", "accuracy", "accuracy_drop_pt", "latency_ms", "size_bytes", "on_frontier"}
    for c in result["candidates"]:
        assert keys <= set(c) and set(c["latency_ms"]) == {"p50", "p99"}
        assert c["latency_ms"]["p50"] > 0 and c["latency_ms"]["p99"] >= c["latency_ms"]["p50"]
        if c["scheme"] != "fp32":
            spec = SchemeSpec.parse(c["scheme"])
            check_params(spec, get_scheme(spec.id).info)  # every scheme string is one `quantbench run` takes
    assert keys <= set(result["best"])


def test_bad_budgets_are_refused(outlier: SimpleNamespace) -> None:
    from core.errors import BadInput
    from core.tune.search import tune

    with pytest.raises(BadInput, match="objective"):
        tune(outlier.path, outlier.eval_x, None, outlier.calib_x, 1.0, objective="energy")
    with pytest.raises(BadInput, match="budget"):
        tune(outlier.path, outlier.eval_x, None, outlier.calib_x, -1.0)


# ----------------------------------------------------------------------------- frontier and scheme strings


def _c(label: str, accuracy: float, p50: float, size: int) -> dict[str, Any]:
    return {
        "label": label, "scheme": label, "status": "ok", "accuracy": accuracy,
        "accuracy_drop_pt": round(100 * (0.9 - accuracy), 3), "latency_ms": {"p50": p50, "p99": p50},
        "size_bytes": size,
    }


def test_frontier_and_best_follow_the_objective() -> None:
    from core.tune.frontier import best_candidate, mark_frontier

    cands = [_c("fp32", 0.9, 10.0, 400), _c("a", 0.895, 4.0, 100), _c("b", 0.8, 3.0, 120), _c("c", 0.85, 5.0, 90)]
    mark_frontier(cands, "latency")
    assert [c["on_frontier"] for c in cands] == [True, True, True, False]  # c: slower and less accurate than a
    mark_frontier(cands, "size")
    assert [c["on_frontier"] for c in cands] == [True, True, False, True]
    assert best_candidate(cands, 1.0, "latency")["label"] == "a"  # within 1 point: a (b is faster, 10 pt off)
    assert best_candidate(cands, 10.0, "latency")["label"] == "b"
    assert best_candidate(cands, 0.1, "size")["label"] == "a"  # none within 0.1: the closest miss
    assert best_candidate(cands[:1], 1.0, "size") is None


def test_static_knobs_write_scheme_strings_the_scheme_accepts() -> None:
    from core.schemes.ort_static import OrtInt8Static
    from core.schemes.params import check_params
    from core.study.spec import SchemeSpec
    from core.tune.search import StaticKnobs

    text = StaticKnobs("percentile", False, ("/0/Conv", "/1/Relu")).scheme(64)
    assert text == "ort-int8-static:exclude=/0/Conv;/1/Relu,calibration=percentile,per_channel=false,samples=64"
    spec = SchemeSpec.parse(text)
    check_params(spec, OrtInt8Static.info)
    assert spec.param("exclude") == "/0/Conv;/1/Relu"
    assert StaticKnobs().scheme(None) == "ort-int8-static"


# ----------------------------------------------------------------------------- PyTorch FX static int8


@pytest.fixture(scope="module")
def torch_outlier(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The outlier CNN with a BatchNorm after the second convolution (folded in by the conversion), as an eager
    PyTorch LoadedModel, with 200 evaluation samples labelled by it and 32 calibration samples."""
    import torch
    from torch import nn

    from core.models.loaded import LoadedModel, ModelFormat, TensorInfo

    model = _outlier_cnn()
    layers = list(model)
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(3)
        bn.running_mean.uniform_(-0.5, 0.5, generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.uniform_(0.5, 2.0, generator=gen)
    model = nn.Sequential(*layers[:3], bn, *layers[3:]).eval()
    path = tmp_path_factory.mktemp("torch_outlier") / "outlier_state.pt"
    torch.save(model.state_dict(), str(path))
    x = np.random.default_rng(0).standard_normal((232, *SAMPLE)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x[:200])).argmax(dim=1).numpy().astype(np.int64)
    loaded = LoadedModel(
        path=path, format=ModelFormat.TORCH_STATE_DICT, inputs=[TensorInfo("input", ("batch", *SAMPLE), "float32")],
        outputs=[TensorInfo("output", ("batch", 10), "float32")], params=sum(p.numel() for p in model.parameters()),
        file_bytes=path.stat().st_size, handle=model, arch="outlier",
    )
    return SimpleNamespace(model=model, loaded=loaded, eval_x=x[:200], eval_y=y, calib_x=x[200:])


def test_torch_sensitivity_ranks_the_outlier_activation_first_from_one_calibration(
    torch_outlier: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.schemes import torch_static
    from core.tune.torch_sensitivity import torch_layer_sensitivity

    calibrations = []
    real = torch_static.quantize_static_fx
    monkeypatch.setattr(torch_static, "quantize_static_fx", lambda *a, **k: calibrations.append(1) or real(*a, **k))
    run = torch_layer_sensitivity(torch_outlier.model, torch_outlier.eval_x, torch_outlier.eval_y,
                                  torch_outlier.calib_x)
    assert calibrations == [1]  # one calibration; every per-module variant reuses its ranges
    assert run.layers == 4 and run.float_accuracy == 1.0 and run.quantized_accuracy < 0.8
    top = run.rows[0]
    assert (top["layer"], top["part"], top["scheme"]) == ("0", "activation", "torch-int8-static")
    assert top["accuracy_delta_pt"] <= -20.0 and top["sqnr_db"] < 20.0
    # Sparing that activation means the convolution that makes it and the one that reads it.
    assert top["exclude"] == ["0", "2"]
    # The last Linear's weights alone cost (almost) nothing.
    last = next(r for r in run.rows if (r["layer"], r["part"]) == ("8", "weights"))
    assert last["accuracy_delta_pt"] >= -1.0 and last["sqnr_db"] > 35.0
    assert {r["part"] for r in run.rows} == {"weights", "activation", "leave_one_out"}
    assert run.evaluations == 2 + len(run.rows)


def test_the_weights_of_a_batchnorm_folded_convolution_are_unfolded_to_within_one_int8_step(
    torch_outlier: SimpleNamespace, make_ctx: Any
) -> None:
    import torch

    from core.schemes.torch_static import quantize_static_fx
    from core.tune.torch_sensitivity import _variant, graph_facts, quantized_modules

    model = torch_outlier.model
    quantized, _, _ = quantize_static_fx(model, torch_outlier.calib_x, True, make_ctx("fold"))
    norms, readers = graph_facts(model)
    assert set(norms) == {"2"} and readers["0"] == ["2"] and readers["2"] == ["6"]
    name, qsub, fsub = next(m for m in quantized_modules(quantized, model) if m[0] == "2")
    original = fsub.weight.detach().clone()
    with _variant("weights", name, qsub, fsub, model, quantized, norms["2"]):
        unfolded = fsub.weight.detach().clone()
    assert torch.equal(fsub.weight, original)  # put back
    folded_step = qsub.weight().q_per_channel_scales().float()
    bn_scale = (norms["2"].weight / torch.sqrt(norms["2"].running_var + norms["2"].eps)).abs()
    step = (folded_step / bn_scale).reshape(-1, 1, 1, 1)
    assert torch.all((unfolded - original).abs() <= step * 0.51)  # rounding error only, BatchNorm not doubled
    assert not torch.equal(unfolded, original)


def test_the_search_keeps_the_blamed_modules_float_in_torch_int8_static(
    torch_outlier: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from core.tune import search

    # Only the PyTorch stage (the ONNX Runtime stages before it are tested above).
    monkeypatch.setattr(search._Search, "_plan", lambda self: self._torch_static_plan(self._samples_param()))
    result = search.tune(
        torch_outlier.loaded.path, torch_outlier.eval_x, torch_outlier.eval_y, torch_outlier.calib_x, 5.0,
        objective="size", threads=1, timing_s=0.05, model=torch_outlier.loaded, workdir=tmp_path,
    )
    schemes = [c["scheme"] for c in result["candidates"]]
    assert schemes[:2] == ["fp32", "torch-int8-static:samples=32"]
    assert result["candidates"][1]["accuracy_drop_pt"] > 20.0  # plain FX static int8 collapses too
    assert result["status"] == "met"
    best = result["best"]
    # The outlier activation kept float (the module that makes it and the one that reads it): from 36 points
    # lost to a few, at a third of the float file.
    assert best["scheme"] == "torch-int8-static:exclude=0;2,samples=32" and best["accuracy_drop_pt"] <= 5.0
    assert best["size_bytes"] < result["candidates"][0]["size_bytes"]
    assert {r["scheme"] for r in result["sensitivity"]} == {"torch-int8-static"}


def test_torch_int8_static_keeps_the_excluded_modules_float_and_refuses_unknown_names(
    torch_outlier: SimpleNamespace, make_ctx: Any
) -> None:
    from core.errors import BadInput
    from core.schemes.registry import get_scheme
    from core.study.spec import SchemeSpec

    scheme = get_scheme("torch-int8-static")
    spec = SchemeSpec.parse("torch-int8-static:exclude=0;2")
    built = scheme.build(torch_outlier.loaded, spec, make_ctx("exclude", calibration=torch_outlier.calib_x))
    coverage = built.coverage
    # FX still fuses a float convolution with its ReLU: the float layer is then "0.0" inside the fused "0".
    assert coverage["excluded"] == ["0", "2"] and {m.split(".")[0] for m in coverage["float_modules"]} == {"0", "2"}
    assert coverage["quantized_layers"] == 2  # the two Linear layers
    with pytest.raises(BadInput, match="exclude=nope"):
        scheme.build(torch_outlier.loaded, SchemeSpec.parse("torch-int8-static:exclude=nope"),
                     make_ctx("unknown", calibration=torch_outlier.calib_x))
