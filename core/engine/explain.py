"""Why a variant came out slower than the baseline, read from what its coverage counted and its profile measured.

``explain_slowdown`` looks only at plain result data (the coverage dict each scheme
fills, the per-op profile of a layer analysis, the runtimes, the timings), so it works on
results loaded from JSON as well as on fresh ones. It names likely causes; it does not
measure anything new.
"""

from __future__ import annotations

from typing import Any

from core.layers.profile import CONVERSION_OPS, conversion_share, float_profile_for
from core.printable import counted
from core.study.result import VariantResult

#: Op types whose presence means activations are quantized again on every call.
_DYNAMIC_QUANT_OPS = ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul")
#: Paired speed-ups (median of short interleaved rounds) this close to 1 are not called a slowdown:
#: the precision quick timing aims for (the 95 % interval of a median within ±3 %).
PAIRED_NOISE = 0.03
#: Conversion op names in ONNX and TFLite graphs, in the order they are listed.
_CONVERSION_OPS = (
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "QUANTIZE", "DEQUANTIZE", "CAST",
)


def explain_slowdown(
    result: VariantResult, baseline: VariantResult, paired: dict[str, float] | None = None
) -> list[str]:
    """Likely causes, one sentence each, when ``result`` is slower than ``baseline``; [] otherwise.

    ``paired``: the variant's ``timing.paired`` speed-up ({median, min, max} of baseline ÷ variant over
    interleaved rounds), when the machine changed speed during the study; it then decides whether
    the variant is slower at all, since the two first timings may have met different machine speeds.
    """
    if result.label == baseline.label or not result.ok or not baseline.ok:
        return []
    if result.latency is None or baseline.latency is None:
        return []
    if paired:
        if paired["median"] >= 1.0:
            return []
        slower = 1.0 / paired["median"] - 1.0
        if paired["median"] >= 1.0 - PAIRED_NOISE:
            return [
                f"{slower:.0%} slower over the interleaved rounds, within the ±{PAIRED_NOISE:.0%} such short rounds "
                "resolve: the difference is within timing noise"
            ]
    else:
        if result.latency.p50 <= baseline.latency.p50:
            return []
        slower = result.latency.p50 / baseline.latency.p50 - 1.0
        lo, _ = result.latency.ci95_p50
        _, base_hi = baseline.latency.ci95_p50
        if lo <= base_hi:
            return [
                f"{slower:.0%} slower, but the 95 % intervals of the two medians overlap: the difference is within "
                "timing noise"
            ]
    cov = result.coverage or {}
    base_cov = baseline.coverage or {}
    measured = _measured_shares(result, baseline)
    causes = (
        _float_islands(cov)
        + _conversions(cov, base_cov)
        + _transposes(cov, base_cov)
        + _dynamic_quantization(cov)
        + _weight_only(cov)
        + _dense_sparsity(cov)
        + _left_in_float(cov)
    )
    if not causes:
        causes = _fallback(result, baseline)
    return measured + causes


#: Op types named after the conversions in the measured-shares sentence.
MEASURED_TOP_OPS = 3


def _measured_shares(result: VariantResult, baseline: VariantResult) -> list[str]:
    """What the variant's profile (a layer analysis's profiler runs) measured: the conversions' share of its
    time, its largest op types, and its nodes' time per call against the float model's in the same runtime."""
    profile = result.profile or {}
    by_op = profile.get("by_op_type") or {}
    if not by_op:
        return []
    causes = []
    share = conversion_share(profile) or 0.0
    kinds = [op for op in CONVERSION_OPS if by_op.get(op, {}).get("ms", 0.0) > 0.0]
    if kinds:
        causes.append(f"measured: conversions ({', '.join(kinds)}): {_percent(share)} of its profiled time")
    compute = [(op, v) for op, v in by_op.items() if op not in CONVERSION_OPS and v.get("share", 0.0) > 0.0]
    if compute:
        top = ", ".join(f"{op} {_percent(v['share'])}" for op, v in compute[:MEASURED_TOP_OPS])
        text = f"measured: largest op types {top}"
        # Without a float profile of its own runtime: the baseline's, only when that ran in the same runtime.
        float_profile = float_profile_for(profile, baseline.profile if baseline.runtime == result.runtime else None)
        own_ms, float_ms = _nodes_ms(profile), _nodes_ms(float_profile)
        if own_ms and float_ms:
            text += f"; its nodes take {own_ms:.3g} ms per call against {float_ms:.3g} ms in the float model"
            if own_ms <= float_ms:
                text += ", so the time lost is outside the kernels (per-call and data-movement costs)"
        causes.append(text + " (profiler runs, apart from the timed ones)")
    return causes


def _percent(share: float) -> str:
    return f"{100.0 * share:.0f} %"


def _nodes_ms(profile: dict[str, Any] | None) -> float:
    return float(sum(node.get("ms", 0.0) for node in (profile or {}).get("by_node") or []))


def _ops(cov: dict[str, Any]) -> dict[str, int]:
    ops = cov.get("ops")
    return {str(k): int(v) for k, v in ops.items()} if isinstance(ops, dict) else {}


def _float_islands(cov: dict[str, Any]) -> list[str]:
    integer = int(cov.get("integer_compute_ops") or 0)
    floats = int(cov.get("float_compute_ops") or 0)
    if integer and floats:
        return [
            f"float islands: {floats} of {counted(integer + floats, 'Conv/MatMul op')} still run in float, "
            "and every boundary "
            "between int8 and float parts converts the activations"
        ]
    q_layers = int(cov.get("quantized_layers") or 0)
    f_layers = int(cov.get("float_layers") or 0)
    if q_layers and f_layers and not cov.get("weight_only_layers"):
        return [f"float islands: {f_layers} of {counted(q_layers + f_layers, 'layer')} stay in float between "
                "quantized ones"]
    return []


def _conversions(cov: dict[str, Any], base_cov: dict[str, Any]) -> list[str]:
    added = int(cov.get("conversions") or 0) - int(base_cov.get("conversions") or 0)
    if added <= 0:
        return []
    ops = _ops(cov)
    casts = ops.get("Cast", 0) - _ops(base_cov).get("Cast", 0)
    if casts > 0 and casts >= added / 2 and not int(cov.get("integer_compute_ops") or 0):
        return [
            f"{counted(casts, 'Cast node')} inserted: ops without a float16 kernel on this device run in float32 "
            "with conversions around them"
        ]
    kinds = [k for k in _CONVERSION_OPS if ops.get(k)]
    named = f" ({', '.join(kinds)})" if kinds else ""
    return [f"{counted(added, 'conversion')} between integer and float inserted{named} that the baseline does not run"]


def _transposes(cov: dict[str, Any], base_cov: dict[str, Any]) -> list[str]:
    added = int(cov.get("transposes") or 0) - int(base_cov.get("transposes") or 0)
    if added > 0:
        return [f"{added} Transpose ops inserted: layout changes around the integer kernels cost memory traffic"]
    return []


def _dynamic_quantization(cov: dict[str, Any]) -> list[str]:
    ops = _ops(cov)
    found = [op for op in _DYNAMIC_QUANT_OPS if ops.get(op)]
    if "ConvInteger" in found:
        return [
            f"dynamic int8 on convolutions: {ops['ConvInteger']} ConvInteger kernels quantize their input on every "
            "call and are slower than float convolutions; static int8 avoids this"
        ]
    if found:
        return [
            "activations are quantized on every call (dynamic int8): for small inputs that costs more than it saves"
        ]
    return []


def _weight_only(cov: dict[str, Any]) -> list[str]:
    n = (
        int(cov.get("weight_only_layers") or 0)
        or int(cov.get("weight_only_ops") or 0)
        or int(cov.get("matmul_4bit") or 0)
    )
    if n:
        return [
            f"weight-only quantization: {counted(n, 'layer')} {'unpacks its' if n == 1 else 'unpack their'} int "
            "weights back to float on every call while the "
            "arithmetic stays float; this pays off only when loading weights from memory is the bottleneck"
        ]
    return []


def _dense_sparsity(cov: dict[str, Any]) -> list[str]:
    if cov.get("dense_storage"):
        sparsity = cov.get("sparsity")
        share = f"{float(sparsity):.0%} " if isinstance(sparsity, (int, float)) else ""
        return [f"the {share}zero weights are still stored and multiplied densely, so pruning cannot speed it up"]
    return []


def _left_in_float(cov: dict[str, Any]) -> list[str]:
    causes = []
    for item in cov.get("not_quantized") or []:
        if isinstance(item, dict):
            causes.append(f"{item.get('module')} is not quantized: {item.get('reason')}")
    if cov.get("untraceable"):
        names = ", ".join(str(i.get("module")) for i in cov["untraceable"] if isinstance(i, dict))
        causes.append(f"not traceable as a whole ({names}): each quantized part converts its inputs and outputs")
    return causes


def _fallback(result: VariantResult, baseline: VariantResult) -> list[str]:
    if result.runtime and baseline.runtime and result.runtime != baseline.runtime:
        return [
            f"it runs in {result.runtime} and the baseline in {baseline.runtime}: for a model this size the "
            "runtime's own per-call cost can outweigh the change; compare with the fastest float variant"
        ]
    if baseline.latency is not None and baseline.latency.p50 < 0.05:
        return [
            "the model takes under 50 µs per call, so fixed per-call costs dominate and the scheme's savings "
            "cannot show"
        ]
    return [
        "the coverage names no float islands, conversions or layout changes: this runtime's kernels for the "
        "variant are simply slower on this machine"
    ]
