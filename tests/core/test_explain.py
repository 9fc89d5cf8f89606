"""explain_slowdown: a slower variant names its likely cause from its coverage."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine.explain import explain_slowdown
from core.schemes.coverage import summarize_op_counts
from core.study.result import LatencyStats, VariantResult, VariantStatus


def latency(p50: float, half_width: float = 0.01) -> LatencyStats:
    return LatencyStats(
        p50=p50, p90=p50 * 1.1, p99=p50 * 1.3, mean=p50, std=half_width, min=p50 * 0.9, max=p50 * 1.5, n=200,
        ci95_p50=(p50 - half_width, p50 + half_width), iqr_rel=0.02, noisy=False,
    )


def variant(label: str, p50: float, coverage: dict[str, Any], runtime: str = "onnxruntime", **kw: Any) -> VariantResult:
    return VariantResult(
        label=label, scheme=label, status=VariantStatus.OK, runtime=runtime, latency=latency(p50, **kw),
        coverage=coverage,
    )


def ort_cov(**counts: int) -> dict[str, Any]:
    return summarize_op_counts(counts, "optimized graph (ORT_ENABLE_ALL)")


BASE = variant("fp32", 10.0, ort_cov(Conv=45, Gemm=1))


def test_a_faster_or_equal_variant_needs_no_explanation() -> None:
    assert explain_slowdown(variant("int8", 6.0, ort_cov(QLinearConv=45)), BASE) == []
    assert explain_slowdown(variant("same", 10.0, ort_cov(Conv=45)), BASE) == []
    assert explain_slowdown(BASE, BASE) == []


def test_a_failed_variant_or_baseline_gets_no_explanation() -> None:
    failed = VariantResult(label="x", scheme="x", status=VariantStatus.FAILED, error="x failed while building: no.")
    assert explain_slowdown(failed, BASE) == []
    assert explain_slowdown(variant("x", 20.0, {}), failed) == []


def test_a_slowdown_inside_the_timing_noise_says_so() -> None:
    causes = explain_slowdown(variant("noisy", 10.3, ort_cov(QLinearConv=45), half_width=0.5), BASE)
    assert len(causes) == 1 and "within timing noise" in causes[0] and causes[0].startswith("3% slower")


def test_paired_rounds_decide_whether_a_variant_is_slower() -> None:
    # Timed one after the other the variant looks 40 % slower; in interleaved rounds it is not.
    slow_alone = variant("int8", 14.0, ort_cov(QLinearConv=45))
    assert explain_slowdown(slow_alone, BASE, {"median": 1.02, "min": 0.97, "max": 1.1}) == []
    causes = explain_slowdown(slow_alone, BASE, {"median": 0.98, "min": 0.9, "max": 1.01})
    assert causes == [
        "2% slower over the interleaved rounds, within the ±3% such short rounds resolve: "
        "the difference is within timing noise"
    ]
    # Slower beyond that, even if one round of seven was not: the causes, and the size of it.
    causes = explain_slowdown(slow_alone, BASE, {"median": 0.8, "min": 0.7, "max": 1.0})
    assert causes and "noise" not in " ".join(causes)
    # Looking faster alone, but slower in every round: the causes are looked for.
    fast_alone = variant("ort-int8-dynamic", 8.0, ort_cov(ConvInteger=45, DynamicQuantizeLinear=45))
    causes = explain_slowdown(fast_alone, BASE, {"median": 0.8, "min": 0.75, "max": 0.9})
    assert causes and "quantize their input on every call" in " ".join(causes)


def test_float_islands_conversions_and_transposes_are_named() -> None:
    cov = ort_cov(QLinearConv=30, Conv=15, Gemm=1, QuantizeLinear=10, DequantizeLinear=10, Transpose=32)
    causes = explain_slowdown(variant("ort-int8-static:activations=s8", 14.0, cov), BASE)
    assert causes[0].startswith("float islands: 16 of 46 Conv/MatMul ops still run in float")
    assert causes[1] == (
        "20 conversions between integer and float inserted (QuantizeLinear, DequantizeLinear) "
        "that the baseline does not run"
    )
    assert causes[2].startswith("32 Transpose ops inserted")
    assert len(causes) == 3


def test_dynamic_int8_on_convolutions_points_at_static_int8() -> None:
    cov = ort_cov(ConvInteger=45, MatMulInteger=1, DynamicQuantizeLinear=46)
    causes = explain_slowdown(variant("ort-int8-dynamic", 40.0, cov), BASE)
    assert any("45 ConvInteger kernels quantize their input on every call" in c and "static int8" in c for c in causes)


def test_float16_casts_are_named_as_missing_fp16_kernels() -> None:
    causes = explain_slowdown(variant("ort-fp16", 12.0, ort_cov(Conv=45, Gemm=1, Cast=6)), BASE)
    assert causes == [
        "6 Cast nodes inserted: ops without a float16 kernel on this device run in float32 with conversions around them"
    ]


def test_torch_static_names_the_modules_left_in_float() -> None:
    cov = {
        "quantized_layers": 4,
        "float_layers": 1,
        "conversions": 4,
        "not_quantized": [{"module": "head.rare", "reason": "left in float (never called on the calibration input)"}],
        "untraceable": [
            {"module": "(model)", "reason": "not traceable: control flow"},
            {"module": "head", "reason": "x"},
        ],
    }
    causes = explain_slowdown(
        variant("torch-int8-static", 3.0, cov, runtime="pytorch"), variant("fp32", 2.0, {}, "pytorch")
    )
    assert causes[0] == "float islands: 1 of 5 layers stay in float between quantized ones"
    assert causes[1] == "4 conversions between integer and float inserted that the baseline does not run"
    assert "head.rare is not quantized: left in float (never called on the calibration input)" in causes
    assert "not traceable as a whole ((model), head): each quantized part converts its inputs and outputs" in causes


def test_weight_only_and_dense_sparsity_explain_themselves() -> None:
    base = variant("fp32", 1.0, {}, "pytorch")
    weight_only = {"quantized_layers": 2, "weight_only_layers": 2, "float_layers": 3, "integer_fraction": 0.0}
    causes = explain_slowdown(variant("torch-int8-weight-only", 1.8, weight_only, "pytorch"), base)
    assert causes == [
        "weight-only quantization: 2 layers unpack their int weights back to float on every call while the "
        "arithmetic stays float; this pays off only when loading weights from memory is the bottleneck"
    ]
    sparse = {"dense_storage": True, "sparsity": 0.5, "quantized_layers": 0}
    causes = explain_slowdown(variant("prune-l1", 1.2, sparse, "pytorch"), base)
    assert causes == ["the 50% zero weights are still stored and multiplied densely, so pruning cannot speed it up"]


def test_without_a_cause_in_the_coverage_the_runtime_or_model_size_is_named() -> None:
    torch_base = variant("fp32", 10.0, {}, "pytorch")
    other_runtime = explain_slowdown(variant("onnx-fp32", 12.0, ort_cov(Conv=45, Gemm=1)), torch_base)
    assert other_runtime[0].startswith("it runs in onnxruntime and the baseline in pytorch")
    tiny_base = variant("fp32", 0.02, {}, "pytorch", half_width=0.001)
    tiny = explain_slowdown(
        variant("torch-bf16", 0.03, {"converted_layers": 4}, "pytorch", half_width=0.001), tiny_base
    )
    assert tiny and "under 50 µs per call" in tiny[0]
    plain = explain_slowdown(variant("torch-bf16", 12.0, {"converted_layers": 4}, "pytorch"), torch_base)
    assert plain and "names no float islands" in plain[0]


def test_real_dynamic_int8_coverage_of_a_cnn_explains_its_slowdown(
    tiny_torch_loaded: Any, make_ctx: Any
) -> None:
    from core.schemes import get_scheme
    from core.study.spec import SchemeSpec

    fp32 = get_scheme("onnx-fp32").build(tiny_torch_loaded, SchemeSpec("onnx-fp32"), make_ctx("onnx-fp32"))
    dyn = get_scheme("ort-int8-dynamic").build(tiny_torch_loaded, SchemeSpec("ort-int8-dynamic"), make_ctx("dyn"))
    base = variant("onnx-fp32", 0.2, fp32.coverage)
    causes = explain_slowdown(variant("ort-int8-dynamic", 0.5, dyn.coverage), base)
    assert any("ConvInteger kernels quantize their input on every call" in c for c in causes), causes


@pytest.mark.parametrize("missing", ["latency", "coverage"])
def test_partial_results_do_not_break_it(missing: str) -> None:
    v = variant("x", 20.0, ort_cov(Conv=45))
    if missing == "latency":
        v.latency = None
        assert explain_slowdown(v, BASE) == []
    else:
        v.coverage = {}
        assert explain_slowdown(v, BASE)  # falls back to a general cause


def test_a_profiled_dynamic_int8_cnn_cites_its_measured_conversion_share(
    tiny_torch_loaded: Any, make_ctx: Any, kit: Any
) -> None:
    """The layer analysis's profile of a real dynamic-int8 CNN: the explanation cites the measured shares."""
    from core.layers import analyse_layers
    from core.layers.profile import conversion_share
    from core.schemes import get_scheme
    from core.study.spec import SchemeSpec

    fp32 = get_scheme("onnx-fp32").build(tiny_torch_loaded, SchemeSpec("onnx-fp32"), make_ctx("onnx-fp32"))
    dyn = get_scheme("ort-int8-dynamic").build(tiny_torch_loaded, SchemeSpec("ort-int8-dynamic"), make_ctx("dyn"))
    out = analyse_layers(fp32.artifact, dyn.artifact, "onnxruntime", kit.tiny_inputs(16, seed=5))
    result = variant("ort-int8-dynamic", 0.5, dyn.coverage)
    result.profile = {**out["profile"], "float": out["float_profile"]}
    causes = explain_slowdown(result, variant("onnx-fp32", 0.2, fp32.coverage))
    by_op = out["profile"]["by_op_type"]
    share = conversion_share(out["profile"])
    assert "DynamicQuantizeLinear" in by_op and 0.0 < share < 1.0
    kinds = [op for op in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "Transpose")
             if by_op.get(op, {}).get("ms", 0.0) > 0.0]
    assert causes[0] == f"measured: conversions ({', '.join(kinds)}): {100 * share:.0f} % of its profiled time"
    top_op, top = next((op, v) for op, v in by_op.items() if op not in kinds)
    assert causes[1].startswith(f"measured: largest op types {top_op} {100 * top['share']:.0f} %")
    own = sum(n["ms"] for n in out["profile"]["by_node"])
    flt = sum(n["ms"] for n in out["float_profile"]["by_node"])
    assert f"its nodes take {own:.3g} ms per call against {flt:.3g} ms in the float model" in causes[1]
    assert ("the time lost is outside the kernels" in causes[1]) == (own <= flt)
    # The counted causes still follow the measured ones.
    assert any("ConvInteger kernels quantize their input on every call" in c for c in causes[2:]), causes
    # Without a profile (no layer analysis) nothing measured is claimed.
    assert not any(c.startswith("measured") for c in explain_slowdown(variant("ort-int8-dynamic", 0.5, dyn.coverage),
                                                                       variant("onnx-fp32", 0.2, fp32.coverage)))


def test_measured_shares_are_cited_exactly_from_the_profile() -> None:
    profile = {
        "by_op_type": {"ConvInteger": {"ms": 0.62, "share": 0.62, "count": 2},
                       "DynamicQuantizeLinear": {"ms": 0.25, "share": 0.25, "count": 2},
                       "Cast": {"ms": 0.06, "share": 0.06, "count": 2},
                       "Relu": {"ms": 0.07, "share": 0.07, "count": 2}},
        "by_node": [{"name": "a", "op_type": "ConvInteger", "ms": 0.62}, {"name": "b", "op_type": "x", "ms": 0.38}],
        "float": {"by_op_type": {"Conv": {"ms": 0.4, "share": 1.0, "count": 2}},
                  "by_node": [{"name": "a", "op_type": "Conv", "ms": 0.4}]},
    }
    slow = variant("ort-int8-dynamic", 14.0, ort_cov(ConvInteger=45, DynamicQuantizeLinear=45))
    slow.profile = profile
    causes = explain_slowdown(slow, BASE)
    assert causes[:2] == [
        "measured: conversions (DynamicQuantizeLinear, Cast): 31 % of its profiled time",
        "measured: largest op types ConvInteger 62 %, Relu 7 %; its nodes take 1 ms per call against 0.4 ms in the "
        "float model (profiler runs, apart from the timed ones)",
    ]
    # Nodes faster than the float model's while the call is slower: the time goes elsewhere, and it says so.
    slow.profile = {**profile, "float": {"by_node": [{"name": "a", "op_type": "Conv", "ms": 1.5}]}}
    assert "so the time lost is outside the kernels" in explain_slowdown(slow, BASE)[1]
