"""ONNX Runtime static int8: calibration on dataset samples, fed in chunks, its activation ranges shared by the
variants of a study calibrated the same way, and the QDQ or QOperator model built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel
from core.runtimes.environment import NO_INT8_DOT_ADVICE, cpu_flags_of, has_int8_dot
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.schemes.onnx_export import ensure_onnx
from core.schemes.ort_align import align_conv_channels, applies_here, output_multiple
from core.schemes.ort_calls import quiet
from core.schemes.ort_schemes import finish_onnx_variant, onnx_applicability, preprocessed
from core.schemes.ort_streamed import LARGE_STATIC_NOTE, external_float, is_large, quantize_static_external
from core.schemes.params import bool_param, check_params, number_param
from core.study.spec import Device, SchemeSpec

#: Calibration runs in chunks of at most this many samples: ORT keeps a chunk's activations, then folds
#: them into running ranges (min-max) or histograms (entropy, percentile), so memory stays bounded.
CALIBRATION_CHUNK = 4


def calibration_chunk(n: int, limit: int = CALIBRATION_CHUNK) -> int:
    """The largest chunk size <= limit that divides n (ONNX Runtime requires an exact division)."""
    return max(k for k in range(1, min(limit, n) + 1) if n % k == 0)


class CalibrationReader:
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
            SchemeParam("samples", "200", "calibration samples drawn from the dataset", kind="count"),
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
        return onnx_applicability(model)

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
        large = is_large(model)
        if large:
            # quant_pre_process fails on a model whose weights are external (over 2 GB) and holds a large one
            # several times over: the quantizer reads the external-data copy as it is.
            ctx.progress("building", 0, 3, "preparing the float graph (its weights in external data)")
            src = external_float(ensure_onnx(model, ctx), ctx)
        else:
            ctx.progress("building", 0, 3, "preparing the float graph (quant_pre_process)")
            src = preprocessed(ensure_onnx(model, ctx), ctx)
        samples = ctx.calibration(opts["samples"])
        if len(samples) == 0:
            raise BadInput("ort-int8-static: the dataset gave no calibration samples.")
        from core.schemes.onnx_external import load_without_weights

        graph = load_without_weights(src).graph  # the first real input's name; no session, no weights read
        weights = {t.name for t in graph.initializer}
        input_name = next(i.name for i in graph.input if i.name not in weights)
        if samples.dtype.names is None and samples.dtype.kind not in "iu":  # token ids stay integers
            samples = samples.astype(np.float32, copy=False)
        reader = CalibrationReader(input_name, samples, ctx, spec.label)
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
            quiet(
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
        built = finish_onnx_variant(out, ctx, extra, model=model)
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
    opts["samples"] = number_param(spec, OrtInt8Static.info, "samples")
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
