"""ONNX Runtime schemes: float export, dynamic and static int8, float16."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.runtimes.environment import NO_INT8_DOT_ADVICE, cpu_flags_of, has_int8_dot
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.schemes.onnx_export import ensure_onnx
from core.schemes.ort_align import align_conv_channels, applies_here, output_multiple
from core.schemes.ort_calls import current_directory as _current_directory
from core.schemes.ort_calls import quiet as _quiet
from core.schemes.ort_streamed import (
    LARGE_STATIC_NOTE,
    SKIPPED_PRE_PROCESS_NOTE,
    STREAMED_FP16_NOTE,
    STREAMED_MIN_BYTES,
    external_float,
    halve_external_weights,
    over_tokens,
    quantize_dynamic_external,
    quantize_static_external,
)
from core.schemes.params import bool_param, check_params, positive_int
from core.study.spec import Device, SchemeSpec


def _onnx_applicability(model: LoadedModel) -> str | None:
    if model.format is ModelFormat.ONNX:
        return None
    if model.format.is_torch:
        if len(model.inputs) > 1 or model.input.vocab:
            return None  # a model over tokens: exported with an example sequence, its length left dynamic
        if len(model.input.shape) < 2 or any(not isinstance(d, int) for d in model.input.shape[1:]):
            return "the input shape is unknown, so the model cannot be exported to ONNX (give --input-shape)"
        return None
    return f"{model.format.value} models cannot be converted to ONNX"


def _finish(path: Path, ctx: BuildContext, extra: dict[str, Any] | None = None, model: LoadedModel | None = None
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
    large = model is not None and (model.file_bytes or 0) >= STREAMED_MIN_BYTES
    coverage = ort_graph_coverage(path, ctx.threads, ctx.workdir, profiled=True if large else None)
    runner = OrtRunner(path, ctx.threads, ctx.device)
    if extra:
        coverage.update(extra)
    return BuiltVariant(runner=runner, size_bytes=_file_size(path), artifact=path, coverage=coverage)


def _file_size(path: Path) -> int:
    """The model file plus every external data file it references."""
    from core.models.onnx_model import external_data_files

    return path.stat().st_size + sum(f.stat().st_size for f in external_data_files(path))


def _preprocessed(src: Path, ctx: BuildContext) -> Path:
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
    with _current_directory(ctx.workdir.parent):
        try:
            _quiet(quant_pre_process, str(src.resolve()), str(out.resolve()), skip_symbolic_shape=False)
        except Exception:
            # Symbolic shape inference fails on some graphs; ONNX shape inference alone still helps.
            _quiet(quant_pre_process, str(src.resolve()), str(out.resolve()), skip_symbolic_shape=True)
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
        return _onnx_applicability(model)

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        ctx.progress("building", 0, 1, "exporting to ONNX")
        return _finish(ensure_onnx(model, ctx), ctx, model=model)


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
        return _onnx_applicability(model)

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
        if over_tokens(model) or (model.file_bytes or 0) >= STREAMED_MIN_BYTES:
            ctx.progress("building", 1, 2, "quantizing weights to int8 (read one at a time from external data)")
            quantize_dynamic_external(ensure_onnx(model, ctx), out, ctx, per_channel)
            built = _finish(out, ctx, model=model)
            built.notes.append(SKIPPED_PRE_PROCESS_NOTE)
            return built
        src = _preprocessed(ensure_onnx(model, ctx), ctx)
        ctx.progress("building", 1, 2, "quantizing weights to int8")
        _quiet(quantize_dynamic, str(src), str(out), weight_type=QuantType.QInt8, per_channel=per_channel)
        return _finish(out, ctx, model=model)


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
        return _onnx_applicability(model)

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
        if (model.file_bytes or 0) >= STREAMED_MIN_BYTES:
            # The graph converted without its weights, then each weight read, halved and written in turn: the
            # float model is never in memory (the converter would hold it beside the half one).
            src = external_float(src, ctx)
            graph_only = load_without_weights(src)
            _separate_consumed_outputs(graph_only)
            # ONNX's shape inference serializes the whole model, which protobuf refuses past 2 GB.
            large = (model.file_bytes or 0) >= SINGLE_FILE_MAX_BYTES
            fp16 = _quiet(float16.convert_float_to_float16, graph_only, keep_io_types=True, disable_shape_infer=large)
            del graph_only  # the same proto, converted in place: one name left, so it goes with ``del fp16``
            halve_external_weights(fp16, src.parent)
            built_notes = [STREAMED_FP16_NOTE]
            external_min_bytes = 0  # the half weights go to a data file one by one, never serialized together
        else:
            fp32 = onnx.load(str(src))
            _separate_consumed_outputs(fp32)
            fp16 = _quiet(float16.convert_float_to_float16, fp32, keep_io_types=True)
            del fp32
            built_notes = []
            external_min_bytes = None  # one file, unless past protobuf's limit
        _align_float_casts(fp16)
        save_self_contained(fp16, src.parent, out, external_min_bytes)
        del fp16
        built = _finish(out, ctx, model=model)
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


#: Calibration runs in chunks of at most this many samples: ORT keeps a chunk's activations, then folds
#: them into running ranges (min-max) or histograms (entropy, percentile), so memory stays bounded.
CALIBRATION_CHUNK = 4


def calibration_chunk(n: int, limit: int = CALIBRATION_CHUNK) -> int:
    """The largest chunk size <= limit that divides n (ONNX Runtime requires an exact division)."""
    return max(k for k in range(1, min(limit, n) + 1) if n % k == 0)


class _CalibrationReader:
    """Feeds calibration samples one at a time and reports progress as ORT pulls them.

    ``set_range`` and ``__len__`` let ONNX Runtime calibrate chunk by chunk (CalibStridedMinMax).
    """

    def __init__(self, name: str, samples: np.ndarray, ctx: BuildContext, label: str) -> None:
        self._name = name
        self._samples = samples
        self._ctx = ctx
        self._label = label
        self._i = 0
        self._end = len(samples)

    def __len__(self) -> int:
        return len(self._samples)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._i, self._end = start_index, min(end_index, len(self._samples))

    def get_next(self) -> dict[str, np.ndarray] | None:
        self._ctx.cancel.raise_if_cancelled()
        if self._i >= self._end:
            return None
        sample = self._samples[self._i : self._i + 1]
        self._i += 1
        total = len(self._samples)
        if self._i == total or self._i % max(1, total // 20) == 0:
            self._ctx.progress("calibrating", self._i, total, f"calibrating {self._label} {self._i}/{total}")
        if sample.dtype.names is not None:  # several named inputs (core.models.io_spec): each in its own dtype
            from core.models.io_spec import feeds

            return feeds(sample)
        return {self._name: sample}

    def rewind(self) -> None:
        self._i, self._end = 0, len(self._samples)


class OrtInt8Static(Scheme):
    info = SchemeInfo(
        id="ort-int8-static",
        title="ONNX Runtime static int8",
        description="Weights and activations int8 with scales calibrated on dataset samples (QDQ, u8 activations, "
        "per-channel s8 weights: the fast choice on x86).",
        family="onnxruntime",
        runtime="onnxruntime",
        needs_calibration=True,
        params=(
            SchemeParam("samples", "200", "calibration samples drawn from the dataset"),
            SchemeParam(
                "calibration", "minmax", "how activation ranges are chosen", ("minmax", "entropy", "percentile")
            ),
            SchemeParam("format", "qdq", "QDQ pairs or fused QOperator nodes", ("qdq", "qoperator")),
            SchemeParam("per_channel", "true", "per-channel weight scales", ("true", "false")),
            SchemeParam("activations", "u8", "activation type", ("u8", "s8")),
            SchemeParam("weights", "s8", "weight type", ("s8", "u8")),
            SchemeParam("exclude", "", "node names or op types kept in float, separated by ';'"),
            SchemeParam(
                "align_channels",
                "true",
                "on x86, pad convolutions whose input channels are not a multiple of 4 (an image network's first "
                "layer) so ONNX Runtime runs them on its fused symmetric int8 kernel; same results",
                ("true", "false"),
            ),
        ),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        return _onnx_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        notes = []
        flags = cpu_flags_of(env)
        if not has_int8_dot(flags):
            notes.append(NO_INT8_DOT_ADVICE)
        return notes

    def advice_for(self, model: LoadedModel, env: dict[str, Any], spec: SchemeSpec) -> list[str]:
        notes = self.advice(model, env)
        machine = str(env.get("machine", "")).lower()
        if spec.param("activations", "u8") == "s8" and machine in ("x86_64", "amd64", "i686", ""):
            notes.append(
                "signed int8 activations on x86: ONNX Runtime's integer convolutions are built for u8 activations, "
                "and with s8 some may stay float between QuantizeLinear/DequantizeLinear pairs, which can be slower "
                "than float; the coverage line after the run shows how many; u8 is the safe choice here"
            )
        if spec.param("format", "qdq") == "qoperator":
            notes.append(
                "QOperator format fixes the kernels at export; QDQ lets ONNX Runtime fuse what this CPU runs best"
            )
        if any(t.vocab for t in model.inputs) or len(model.inputs) > 1:
            notes.append(
                "a transformer: static int8 also quantizes the attention scores, Softmax and LayerNorm, whose "
                "activations have outliers one calibrated scale fits badly; if accuracy drops, keep them in float "
                "(exclude=Softmax;LayerNormalization;Add) or use ort-int8-dynamic, which quantizes only the "
                "MatMul inputs"
            )
        return notes

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        opts = _static_options(spec)
        large = (model.file_bytes or 0) >= STREAMED_MIN_BYTES
        if large:
            # quant_pre_process fails on a model whose weights are external (over 2 GB) and holds a large one
            # several times over: the quantizer reads the external-data copy as it is.
            ctx.progress("building", 0, 3, "preparing the float graph (its weights in external data)")
            src = external_float(ensure_onnx(model, ctx), ctx)
        else:
            ctx.progress("building", 0, 3, "preparing the float graph (quant_pre_process)")
            src = _preprocessed(ensure_onnx(model, ctx), ctx)
        samples = ctx.calibration(opts["samples"])
        if len(samples) == 0:
            raise BadInput("ort-int8-static: the dataset gave no calibration samples.")
        from core.schemes.onnx_external import load_without_weights

        graph = load_without_weights(src).graph  # the first real input's name; no session, no weights read
        weights = {t.name for t in graph.initializer}
        input_name = next(i.name for i in graph.input if i.name not in weights)
        if samples.dtype.names is None and samples.dtype.kind not in "iu":  # token ids stay integers
            samples = samples.astype(np.float32, copy=False)
        reader = _CalibrationReader(input_name, samples, ctx, spec.label)
        exclude_nodes, exclude_types = _exclusions(src, opts["exclude"])
        op_types = None
        if exclude_types:
            from core.schemes.coverage import onnx_file_op_counts

            op_types = [t for t in onnx_file_op_counts(src) if t not in exclude_types]
        out = ctx.workdir / "ort_int8_static.onnx"
        types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
        options = {
            "quant_format": QuantFormat.QDQ if opts["format"] == "qdq" else QuantFormat.QOperator,
            "activation_type": types[opts["activations"]],
            "weight_type": types[opts["weights"]],
            "per_channel": opts["per_channel"],
            "nodes_to_exclude": exclude_nodes or None,
        }
        method = calibration_method(opts["calibration"])
        # The activation ranges depend on the graph, the samples, the method and the op types calibrated, not on
        # the weights' or the format's options: a study's (or search's) later variant calibrated the same way
        # reads them from the first one's cache instead of calibrating again.
        ranges = ranges_cache(ctx, src, opts["calibration"], samples, op_types)
        reused = ranges.exists()
        if large:
            quantize_static_external(src, out, reader, calibration_chunk(len(samples)), op_types, options, method,
                                     ranges)
        else:
            _quiet(
                quantize_static, str(src), str(out), reader, calibrate_method=method, op_types_to_quantize=op_types,
                calibration_cache_path=str(ranges),
                extra_options={"CalibMovingAverage": False, "CalibStridedMinMax": calibration_chunk(len(samples))},
                **options,
            )
        aligned = []
        if (opts["align_channels"] and opts["activations"] == "u8" and opts["weights"] == "s8"
                and ctx.device is Device.CPU and applies_here()):
            from core.runtimes.environment import cpu_flags

            ctx.progress("building", 3, 3, "padding narrow convolutions for the symmetric int8 kernel")
            aligned = align_conv_channels(out, output_multiple(cpu_flags()))
        extra = {
            "calibration_samples": int(len(samples)),
            "calibration": opts["calibration"],
            "format": opts["format"],
            "activations": opts["activations"],
            "weights": opts["weights"],
            "per_channel": opts["per_channel"],
            "channel_padded_convs": aligned,
        }
        extra["calibration_reused"] = reused
        built = _finish(out, ctx, extra, model=model)
        if reused:
            built.notes.append(
                f"activation ranges reused from an earlier variant calibrated the same way ({len(samples)} samples, "
                f"{opts['calibration']}): not calibrated again"
            )
        if large:
            built.notes.append(LARGE_STATIC_NOTE)
        if aligned:
            widths = ", ".join(sorted({f"{a['input_channels']}→{a['padded_to']}" for a in aligned}))
            built.coverage["summary"] += (
                f"; {len(aligned)} Conv padded {widths} input channels for the fused int8 kernel"
            )
        return built


def ranges_cache(ctx: BuildContext, src: Path, method: str, samples: np.ndarray, op_types: list[str] | None) -> Path:
    """Where ONNX Runtime's calibration cache for these ranges lives in the study's (or search's) folder: one
    file per float graph, calibration method, op types calibrated and calibration samples (by their bytes)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for part in (str(src.resolve()), method, str(len(samples)), ";".join(sorted(op_types)) if op_types else "*"):
        digest.update(part.encode() + b"\0")
    digest.update(np.ascontiguousarray(samples).reshape(-1).view(np.uint8))
    return ctx.workdir.parent / f"ort_ranges_{digest.hexdigest()}.json"


def _static_options(spec: SchemeSpec) -> dict[str, Any]:
    check_params(spec, OrtInt8Static.info)
    opts: dict[str, Any] = {p.name: spec.param(p.name, p.default) or p.default for p in OrtInt8Static.info.params}
    opts["samples"] = positive_int(spec, "samples", 200)
    opts["per_channel"] = bool_param(spec, "per_channel", True)
    opts["align_channels"] = bool_param(spec, "align_channels", True)
    return opts


def _exclusions(src: Path, text: str) -> tuple[list[str], set[str]]:
    """Split ``exclude=`` into node names and op types present in the graph."""
    if not text:
        return [], set()
    from core.schemes.onnx_external import load_without_weights

    graph = load_without_weights(src).graph
    names = {n.name for n in graph.node}
    types = {n.op_type for n in graph.node}
    nodes, op_types = [], set()
    for item in filter(None, (t.strip() for t in text.split(";"))):
        if item in types:
            op_types.add(item)
        elif item in names:
            nodes.append(item)
        else:
            raise BadInput(f"exclude={item!r} is neither a node name nor an op type of the model.")
    return nodes, op_types


def calibration_method(name: str) -> Any:
    """ONNX Runtime's CalibrationMethod for the scheme's ``calibration=`` value (minmax, entropy, percentile)."""
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]
