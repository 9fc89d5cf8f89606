"""ONNX Runtime schemes: float export, dynamic int8, float16, and what every ONNX Runtime scheme shares (the
float graph prepared once per study, the finished variant). Static int8 is in ``core.schemes.ort_static``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.runtimes.environment import cpu_flags_of
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.schemes.onnx_export import ensure_onnx
from core.schemes.ort_calls import current_directory, quiet
from core.schemes.ort_streamed import (
    SKIPPED_PRE_PROCESS_NOTE,
    STREAMED_FP16_NOTE,
    external_float,
    halve_external_weights,
    is_large,
    over_tokens,
    quantize_dynamic_external,
)
from core.schemes.params import bool_param
from core.study.spec import SchemeSpec


def onnx_applicability(model: LoadedModel) -> str | None:
    if model.format is ModelFormat.ONNX:
        return None
    if model.format.is_torch:
        if len(model.inputs) > 1 or model.input.vocab:
            return None  # a model over tokens: exported with an example sequence, its length left dynamic
        if len(model.input.shape) < 2 or any(not isinstance(d, int) for d in model.input.shape[1:]):
            return "the input shape is unknown, so the model cannot be exported to ONNX (give --input-shape)"
        return None
    return f"{model.format.value} models cannot be converted to ONNX"


def finish_onnx_variant(
    path: Path, ctx: BuildContext, extra: dict[str, Any] | None = None, model: LoadedModel | None = None
) -> BuiltVariant:
    """The built variant of the ONNX file ``path``: its coverage counted, its runner opened. ``model``: the
    float model it came from; a large one has its variant's ops counted from one profiled call
    (core.schemes.coverage.profiled_op_counts), whatever the variant's own size."""
    from core.memory_limit import give_memory_back
    from core.runtimes.ort_runner import OrtRunner
    from core.schemes.coverage import ort_graph_coverage

    ctx.progress("building", 1, 1, "creating the ONNX Runtime session")
    give_memory_back()  # what the quantizer held goes before a session reads the weights
    # The coverage's own session is gone before the runner's opens: a large model's weights are never held by
    # two sessions at once.
    large = model is not None and is_large(model)
    coverage = ort_graph_coverage(path, ctx.threads, ctx.workdir, profiled=True if large else None)
    runner = OrtRunner(path, ctx.threads, ctx.device)
    if extra:
        coverage.update(extra)
    return BuiltVariant(runner=runner, size_bytes=onnx_file_size(path), artifact=path, coverage=coverage)


def onnx_file_size(path: Path) -> int:
    """The model file plus every external data file it references."""
    from core.models.onnx_model import external_data_files

    return path.stat().st_size + sum(f.stat().st_size for f in external_data_files(path))


def preprocessed(src: Path, ctx: BuildContext) -> Path:
    """ORT's quant_pre_process (shape inference + graph optimization), once per study."""
    cached = ctx.shared.get("onnx_preprocessed")
    if cached is not None:
        return Path(cached)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from core.schemes.onnx_opset import MIN_OPSET_INT8_STATIC, ensure_opset

    src = ensure_opset(src, MIN_OPSET_INT8_STATIC, ctx.workdir.parent, "ONNX Runtime int8 quantization", ctx.shared)

    out = ctx.workdir.parent / "preprocessed_fp32.onnx"
    # Symbolic shape inference saves "sym_shape_infer_temp.onnx" in the current directory when it
    # gives up: run it from the study's own folder (a study's child process already works in one).
    with current_directory(ctx.workdir.parent):
        try:
            quiet(quant_pre_process, str(src.resolve()), str(out.resolve()), skip_symbolic_shape=False)
        except Exception:
            # Symbolic shape inference fails on some graphs; ONNX shape inference alone still helps.
            quiet(quant_pre_process, str(src.resolve()), str(out.resolve()), skip_symbolic_shape=True)
    ctx.shared["onnx_preprocessed"] = str(out)
    return out


def _is_conv_heavy(model: LoadedModel) -> tuple[int, int]:
    """(convolutions, matmuls) in the model, from the ONNX file or the module tree."""
    if model.format is ModelFormat.ONNX:
        from core.schemes.coverage import onnx_file_op_counts

        counts = onnx_file_op_counts(Path(model.path))
        return counts.get("Conv", 0), counts.get("MatMul", 0) + counts.get("Gemm", 0)
    if model.format.is_torch and model.handle is not None:
        convs = sum(1 for m in model.handle.modules() if type(m).__name__.startswith("Conv"))
        lin = sum(1 for m in model.handle.modules() if type(m).__name__ == "Linear")
        return convs, lin
    return 0, 0


class OnnxFp32(Scheme):
    info = SchemeInfo(
        id="onnx-fp32",
        title="ONNX Runtime float32",
        description="The PyTorch model exported to ONNX and run in ONNX Runtime (float32, graph optimizations on).",
        family="onnxruntime",
        runtime="onnxruntime",
        is_float=True,
    )

    def applicability(self, model: LoadedModel) -> str | None:
        if model.format is ModelFormat.ONNX:
            return "the model is already ONNX: its fp32 row is the ONNX Runtime float baseline"
        return onnx_applicability(model)

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        ctx.progress("building", 0, 1, "exporting to ONNX")
        return finish_onnx_variant(ensure_onnx(model, ctx), ctx, model=model)


class OrtInt8Dynamic(Scheme):
    info = SchemeInfo(
        id="ort-int8-dynamic",
        title="ONNX Runtime dynamic int8",
        description=(
            "Weights int8, activations quantized at run time per call (no calibration); best on MatMul-heavy models."
        ),
        family="onnxruntime",
        runtime="onnxruntime",
        params=(SchemeParam("per_channel", "false", "per-channel weight scales", ("true", "false")),),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        return onnx_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        convs, mms = _is_conv_heavy(model)
        if convs and convs >= mms:
            return [
                f"dynamic int8 on a convolutional network ({convs} Conv) is usually slower than float: "
                "ConvInteger kernels re-quantize activations every call; prefer ort-int8-static"
            ]
        return []

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        ctx.progress("building", 0, 2, "preparing the float graph")
        per_channel = bool_param(spec, "per_channel", False)
        out = ctx.workdir / "ort_int8_dynamic.onnx"
        if over_tokens(model) or is_large(model):
            ctx.progress("building", 1, 2, "quantizing weights to int8 (read one at a time from external data)")
            quantize_dynamic_external(ensure_onnx(model, ctx), out, ctx, per_channel)
            built = finish_onnx_variant(out, ctx, model=model)
            built.notes.append(SKIPPED_PRE_PROCESS_NOTE)
            return built
        src = preprocessed(ensure_onnx(model, ctx), ctx)
        ctx.progress("building", 1, 2, "quantizing weights to int8")
        quiet(quantize_dynamic, str(src), str(out), weight_type=QuantType.QInt8, per_channel=per_channel)
        return finish_onnx_variant(out, ctx, model=model)


class OrtFp16(Scheme):
    info = SchemeInfo(
        id="ort-fp16",
        title="ONNX Runtime float16",
        description="Weights and compute in float16 with float32 inputs and outputs kept; halves the file.",
        family="onnxruntime",
        runtime="onnxruntime",
        is_float=True,
    )

    def applicability(self, model: LoadedModel) -> str | None:
        return onnx_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        flags = cpu_flags_of(env)
        if env.get("device", "cpu") == "cpu" and not flags.get("avx512_fp16") and not flags.get("amx_fp16"):
            return [
                "this CPU has no native float16 arithmetic: ONNX Runtime runs many fp16 ops through float32 "
                "with Cast nodes around them, so expect a smaller file but no speed-up (often a slow-down)"
            ]
        return []

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        import onnx
        from onnxconverter_common import float16

        from core.schemes.onnx_external import SINGLE_FILE_MAX_BYTES, load_without_weights, save_self_contained

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        ctx.progress("building", 0, 2, "exporting to ONNX")
        src = ensure_onnx(model, ctx)
        ctx.progress("building", 1, 2, "converting weights to float16")
        out = ctx.workdir / "ort_fp16.onnx"
        if is_large(model):
            # The graph converted without its weights, then each weight read, halved and written in turn: the
            # float model is never in memory (the converter would hold it beside the half one).
            src = external_float(src, ctx)
            graph_only = load_without_weights(src)
            _separate_consumed_outputs(graph_only)
            # ONNX's shape inference serializes the whole model, which protobuf refuses past 2 GB.
            large = (model.file_bytes or 0) >= SINGLE_FILE_MAX_BYTES
            fp16 = quiet(float16.convert_float_to_float16, graph_only, keep_io_types=True, disable_shape_infer=large)
            del graph_only  # the same proto, converted in place: one name left, so it goes with ``del fp16``
            halve_external_weights(fp16, src.parent)
            built_notes = [STREAMED_FP16_NOTE]
            external_min_bytes = 0  # the half weights go to a data file one by one, never serialized together
        else:
            fp32 = onnx.load(str(src))
            _separate_consumed_outputs(fp32)
            fp16 = quiet(float16.convert_float_to_float16, fp32, keep_io_types=True)
            del fp32
            built_notes = []
            external_min_bytes = None  # one file, unless past protobuf's limit
        _align_float_casts(fp16)
        save_self_contained(fp16, src.parent, out, external_min_bytes)
        del fp16
        built = finish_onnx_variant(out, ctx, model=model)
        built.notes += built_notes
        return built


def _separate_consumed_outputs(model: Any) -> None:
    """Give each graph output that other nodes also read (a transformer's hidden states beside its logits) an
    Identity of its own: the float16 converter keeps outputs float32 and would feed that float32 tensor into
    the float16 nodes that read it."""
    from onnx import helper

    outputs = {o.name for o in model.graph.output}
    consumed = {i for n in model.graph.node for i in n.input} & outputs
    for name in consumed:
        inner = f"{name}__inner"
        for node in model.graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
            node.output[:] = [inner if o == name else o for o in node.output]
        model.graph.node.append(helper.make_node("Identity", [inner], [name], name=f"{name}__output"))


def _align_float_casts(model: Any) -> None:
    """Make each Cast to float32 whose result the converted graph declares float16 cast to float16.

    The converter re-declares every float tensor as float16 but leaves a Cast's ``to`` alone; a transformer
    casting its integer attention mask to float (``mask.to(h.dtype)``) then fails to load ("Type
    (tensor(float16)) ... does not match expected type (tensor(float))")."""
    from onnx import TensorProto

    declared = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type != "Cast" or declared.get(node.output[0]) != TensorProto.FLOAT16:
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
