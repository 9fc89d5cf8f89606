"""The ``profile`` record shared by every runtime: milliseconds per call by node and by op type."""

from __future__ import annotations

from typing import Any

#: Ops that convert data rather than compute: shown as their own groups (the "why slower" figures cite them).
CONVERSION_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "Transpose")


def profile_record(by_node: list[dict[str, Any]], by_op: dict[str, tuple[float, int]] | None = None) -> dict[str, Any]:
    """``{"by_op_type": {OP: {"ms", "share", "count"}}, "by_node": [{"name", "op_type", "ms"}]}``.

    ``by_op`` gives per-op-type (ms, count) where the profiler measures ops apart from nodes (PyTorch);
    otherwise the op types are summed from ``by_node``. Shares are of the op types' total, largest first.
    """
    if by_op is None:
        by_op = {}
        for node in by_node:
            ms, count = by_op.get(node["op_type"], (0.0, 0))
            by_op[node["op_type"]] = (ms + node["ms"], count + 1)
    total = sum(ms for ms, _ in by_op.values())
    ordered = sorted(by_op.items(), key=lambda kv: -kv[1][0])
    return {
        "by_op_type": {op: {"ms": ms, "share": ms / total if total > 0 else 0.0, "count": count}
                       for op, (ms, count) in ordered},
        "by_node": by_node,
    }


def conversion_share(profile: dict[str, Any] | None) -> float | None:
    """The share of a profile's time spent in conversions (QuantizeLinear, DequantizeLinear, Cast, ...)."""
    if not profile or not profile.get("by_op_type"):
        return None
    return sum(v["share"] for op, v in profile["by_op_type"].items() if op in CONVERSION_OPS)


def layer_times(layers: list[dict[str, Any]], profile: dict[str, Any] | None) -> list[float | None]:
    """Each layer's ms per call in ``profile``: the node of the layer's name, else the node an optimizer named
    after the layer's output tensor (ONNX Runtime's NCHWc rewrite); None where the profile has neither."""
    by_name = {node["name"]: node["ms"] for node in (profile or {}).get("by_node", [])}
    return [by_name.get(layer["name"], by_name.get(layer.get("tensor", ""))) for layer in layers]


def layer_shares(layers: list[dict[str, Any]], profile: dict[str, Any] | None) -> list[float | None]:
    """Each layer's share of the profile's whole time per call (the sum over its nodes); None where unknown."""
    total = sum(node["ms"] for node in (profile or {}).get("by_node", []))
    return [ms / total if ms is not None and total > 0 else None for ms in layer_times(layers, profile)]


def float_profile_for(profile: dict[str, Any] | None, baseline_profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """The float model's profile to set beside a variant's: the one made in the variant's own runtime (its
    ``float`` entry: an ONNX Runtime variant of a PyTorch model is compared with the ONNX export), else the
    study baseline's."""
    own = (profile or {}).get("float")
    return own if isinstance(own, dict) else baseline_profile
