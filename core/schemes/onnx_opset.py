"""Bring an ONNX model from an older exporter up to the opset a scheme needs.

ONNX Runtime's int8 quantizers write per-channel QuantizeLinear/DequantizeLinear
pairs, which only exist from opset 13; an opset 9 graph quantized as is gives a
model ONNX Runtime refuses to load. ``ensure_opset`` upgrades such a model once
with ONNX's version converter, or refuses with a reason the user can act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import SchemeNotApplicable

#: Opset ONNX Runtime's static int8 quantization needs (per-channel Q/DQ take an axis from 13).
MIN_OPSET_INT8_STATIC = 13
#: Opset ONNX Runtime's dynamic int8 quantization needs (fused DynamicQuantizeLinear from 11).
MIN_OPSET_INT8_DYNAMIC = 11

_DEFAULT_DOMAINS = ("", "ai.onnx")
#: Models above this many bytes are written with their weights in a side file (protobuf's 2 GB limit).
_EXTERNAL_DATA_ABOVE = 1_800_000_000


def onnx_opset(model: Any) -> int:
    """The default-domain (ai.onnx) opset of a ModelProto; 0 when it imports none."""
    return max((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), default=0)


def file_opset(path: Path) -> int:
    """The ai.onnx opset of the ONNX file at ``path`` (weights are not read)."""
    from core.schemes.onnx_external import load_without_weights

    return onnx_opset(load_without_weights(Path(path)))


def ensure_opset(
    path: Path, minimum: int, out_dir: Path, needed_by: str, cache: dict[str, Any] | None = None
) -> Path:
    """``path`` itself when its opset is at least ``minimum``, else an upgraded copy in ``out_dir``.

    ``needed_by`` names what needs the newer opset (a scheme id), for the refusal message.
    ``cache`` (a study's shared dict) keeps one upgraded copy per source file and opset.
    Raises SchemeNotApplicable when ONNX's version converter cannot upgrade the graph.
    """
    import onnx

    current = file_opset(path)
    if current >= minimum:
        return path
    key = f"onnx_opset_{minimum}:{Path(path).resolve()}"
    if cache is not None and key in cache:
        return Path(cache[key])
    model = onnx.load(str(path))  # with external data: the converter rewrites initializers
    _refuse_unconvertible(path, model, current, minimum, needed_by)
    try:
        upgraded = onnx.version_converter.convert_version(model, minimum)
        onnx.checker.check_model(upgraded)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError with C++ text
        raise SchemeNotApplicable(
            f"{path.name} uses opset {current} and {needed_by} needs opset {minimum}; "
            f"ONNX's version converter could not upgrade it ({_first_line(exc)})"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{path.stem}.opset{minimum}.onnx"
    if upgraded.ByteSize() > _EXTERNAL_DATA_ABOVE:
        onnx.save(upgraded, str(out), save_as_external_data=True, location=out.name + ".data")
    else:
        onnx.save(upgraded, str(out))
    if cache is not None:
        cache[key] = str(out)
    return out


def _refuse_unconvertible(path: Path, model: Any, current: int, minimum: int, needed_by: str) -> None:
    """Name the ops the converter cannot carry forward, before it fails with an assertion."""
    import onnx.defs

    missing = sorted(
        {n.op_type for n in model.graph.node if n.domain in _DEFAULT_DOMAINS and not onnx.defs.has(n.op_type)}
    )
    if missing:
        raise SchemeNotApplicable(
            f"{path.name} uses opset {current} and {needed_by} needs opset {minimum}, but it contains "
            f"{', '.join(missing)}, which later opsets removed, so it cannot be upgraded; re-export the model "
            f"with opset {minimum} or newer"
        )


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:200].rstrip(".")
