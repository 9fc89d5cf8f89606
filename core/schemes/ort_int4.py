"""``ort-int4-weight``: 4-bit block-wise weight-only MatMul quantization in ONNX Runtime.

Each constant MatMul weight is split into blocks along its input dimension; every
block gets its own scale (and zero point unless symmetric) and the weights are
packed two to a byte into ``MatMulNBits`` nodes. Linear layers that the exporter
wrote as ``Gemm`` are first rewritten as MatMul + Add so they are covered too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.study.spec import SchemeSpec

_BLOCK_SIZES = ("16", "32", "64", "128", "256")
_QUANTIZER_LOGGER = "onnxruntime.quantization.matmul_nbits_quantizer"


def gemm_to_matmul(model: Any) -> int:
    """Rewrite ``Gemm(A, W, b)`` with a constant W as ``MatMul(A, W') + b`` in place; return how many.

    Only plain Gemms qualify (alpha = beta = 1, A not transposed), which is what exporters
    write for a Linear layer; W' is W transposed when the Gemm had transB = 1.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    new_nodes = []
    rewritten = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = node.input[1] if node.op_type == "Gemm" and len(node.input) > 1 else None
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if weight is None or not plain or weight not in inits or weight in graph_inputs:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[weight])
        if w.ndim != 2:
            new_nodes.append(node)
            continue
        if attrs.get("transB", 0):
            w = w.T.copy()
        name = node.name or f"gemm_{rewritten}"
        w_name = f"{weight}_matmul_{rewritten}"
        graph.initializer.append(numpy_helper.from_array(w, w_name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        new_nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=f"{name}_MatMul"))
        if has_bias:
            new_nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{name}_Add"))
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(new_nodes)
        _drop_unused_initializers(graph)
    return rewritten


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def matmul_weight_share(model: LoadedModel) -> float | None:
    """The fraction of Conv/MatMul weights that sit in MatMul/Linear layers; None if unknown."""
    if model.format.is_torch and model.handle is not None:
        linear = conv = 0
        for sub in model.handle.modules():
            weight = getattr(sub, "weight", None)
            size = int(weight.numel()) if weight is not None and hasattr(weight, "numel") else 0
            if type(sub).__name__ == "Linear":
                linear += size
            elif type(sub).__name__.startswith("Conv"):
                conv += size
        return linear / (linear + conv) if linear + conv else None
    if model.format is ModelFormat.ONNX:
        from core.schemes.onnx_external import load_without_weights

        graph = load_without_weights(Path(model.path)).graph  # shapes only: the weights are not read
        sizes = {t.name: _numel(t.dims) for t in graph.initializer}
        weights = {"MatMul": 0, "Gemm": 0, "Conv": 0}
        for node in graph.node:
            if node.op_type in weights and len(node.input) > 1:
                weights[node.op_type] += sizes.get(node.input[1], 0)
        matmul = weights["MatMul"] + weights["Gemm"]
        total = matmul + weights["Conv"]
        return matmul / total if total else None
    return None


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _constant_matmuls(model: Any) -> int:
    inits = {t.name for t in model.graph.initializer}
    return sum(
        1 for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits
    )


class OrtInt4Weight(Scheme):
    info = SchemeInfo(
        id="ort-int4-weight",
        title="ONNX Runtime int4 weight-only",
        description="MatMul/Linear weights packed to 4 bits in blocks with per-block scales (MatMulNBits); "
        "activations stay float. For Linear-heavy and transformer models.",
        family="onnxruntime",
        runtime="onnxruntime",
        params=(
            SchemeParam("block_size", "32", "weights per scale along the input dimension", _BLOCK_SIZES),
            SchemeParam("symmetric", "true", "symmetric blocks (no zero points)", ("true", "false")),
            SchemeParam(
                "accuracy_level", "0", "MatMulNBits compute: 0 default, 1 fp32, 2 fp16, 3 bf16, 4 int8",
                ("0", "1", "2", "3", "4"),
            ),
        ),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        from core.schemes.ort_schemes import onnx_applicability

        reason = onnx_applicability(model)
        if reason:
            return reason
        linear = ("Linear", "MultiheadAttention")
        if model.format.is_torch and model.handle is not None and not any(
            type(m).__name__ in linear for m in model.handle.modules()
        ):
            return "the model has no Linear layer, so there is no MatMul weight to pack to 4 bits"
        return None

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        share = matmul_weight_share(model)
        if share is not None and share < 0.5:
            return [
                f"int4 weight-only changes MatMul/Linear weights only, {share:.0%} of this model's weights; "
                "the convolutions stay float, so expect little change in size or speed"
            ]
        return []

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        import onnx

        from core.schemes.onnx_export import ensure_onnx
        from core.schemes.onnx_external import save_self_contained
        from core.schemes.ort_calls import current_directory
        from core.schemes.ort_schemes import finish_onnx_variant
        from core.schemes.ort_streamed import external_float
        from core.schemes.params import bool_param, check_params

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        block_size = int(spec.param("block_size", "32") or "32")
        symmetric = bool_param(spec, "symmetric", True)
        accuracy_level = int(spec.param("accuracy_level", "0") or "0")
        ctx.progress("building", 0, 3, "preparing the float graph")
        # The weights stay in an external-data copy and are read one at a time as they are packed (onnx's
        # to_array reads them relative to the working directory): the float weights are never all in memory.
        ext = external_float(ensure_onnx(model, ctx), ctx)
        proto = onnx.load(str(ext), load_external_data=False)
        out = ctx.workdir / "ort_int4_weight.onnx"
        with current_directory(ext.parent):
            rewritten = gemm_to_matmul(proto)
            candidates = _constant_matmuls(proto)
            if candidates == 0:
                raise SchemeNotApplicable("the graph has no MatMul with a constant weight to pack to 4 bits")
            ctx.progress("building", 1, 3, f"packing {candidates} MatMul weights to 4 bits")
            packed = _pack(proto, block_size, symmetric, accuracy_level)
            del proto
            packed.topological_sort()
            save_self_contained(packed.model, ext.parent, out)
        n_nbits = sum(1 for n in onnx.load(str(out), load_external_data=False).graph.node if n.op_type == "MatMulNBits")
        if n_nbits == 0:
            raise BadInput(f"{spec.label}: no MatMul weight could be packed to 4 bits (block size {block_size}).")
        extra = {
            "matmul_4bit": n_nbits,
            "matmul_candidates": candidates,
            "gemm_rewritten": rewritten,
            "block_size": block_size,
            "symmetric": symmetric,
            "accuracy_level": accuracy_level,
        }
        built = finish_onnx_variant(out, ctx, extra, model=model)
        built.coverage["summary"] = (
            f"{n_nbits} of {candidates} constant-weight MatMul/Gemm packed to 4 bits (block {block_size}); "
            + built.coverage["summary"]
        )
        if rewritten:
            built.notes.append(
                f"{rewritten} Gemm (Linear) nodes rewritten as MatMul + Add so their weights can be packed"
            )
        return built


def _pack(proto: Any, block_size: int, symmetric: bool, accuracy_level: int) -> Any:
    """Run ONNX Runtime's MatMulNBits quantizer quietly; return its ONNXModel."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from core.schemes.ort_calls import quiet

    logger = logging.getLogger(_QUANTIZER_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)  # it logs every node it visits at INFO
    try:
        quantizer = MatMulNBitsQuantizer(
            proto, bits=4, block_size=block_size, is_symmetric=symmetric,
            accuracy_level=accuracy_level or None, op_types_to_quantize=("MatMul",),
        )
        quiet(quantizer.process)
    finally:
        logger.setLevel(level)
    return quantizer.model
