"""Per-layer error and per-node time of an ONNX variant against its float model, in ONNX Runtime.

Matching follows the quantizer's naming (the facts ``qdq_loss_debug`` relies on): in a QDQ model a float
tensor ``T`` keeps its name and what the next layer reads is ``T_DequantizeLinear_Output``; a QOperator
model holds ``T_quantized`` with its scale and zero point; a quantized weight ``W`` is ``W_quantized`` (or
``W_Transposed_quantized``) beside ``W_scale`` and ``W_zero_point``. Models made elsewhere match where they
share tensor names, and the result says which layers found no partner.

Unlike ``qdq_loss_debug.collect_activations`` (which keeps every run's tensors, flattened), the matched
tensors are added as outputs with their shapes and compared batch by batch, so memory holds one batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.files.scratch import Scratch
from core.layers.profile import profile_record
from core.layers.stats import (
    TensorComparison,
    compare_weights,
    dequantize,
    representable_range,
    span_of,
    weight_histogram,
)
from core.layers.steps import check_cancel, next_batch

DQ_OUTPUT = "_DequantizeLinear_Output"
Q_INPUT = "_QuantizeLinear_Input"
QUANTIZED = "_quantized"
TRANSPOSED = "_Transposed"
#: Activations the quantizers fold into the layer before them (the range of the fused output covers them).
FUSABLE_ACTIVATIONS = frozenset({"Relu", "Clip"})
#: Ops whose output keeps its input's scale and zero point (QOperator models carry no new parameters for them).
_SAME_QPARAMS = frozenset({"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity",
                           "GlobalMaxPool", "Resize", "Slice", "Gather", "Split"})
#: Where a QOperator node keeps its output scale and zero point (input indices).
_OUTPUT_QPARAMS = {
    "QuantizeLinear": (1, 2), "QLinearConv": (6, 7), "QLinearMatMul": (6, 7), "QLinearAdd": (6, 7),
    "QLinearMul": (6, 7), "QGemm": (7, 8), "QLinearSigmoid": (3, 4), "QLinearLeakyRelu": (3, 4),
    "QLinearAveragePool": (3, 4), "QLinearGlobalAveragePool": (3, 4), "QLinearConcat": (0, 1),
}
#: Ops that never carry a layer worth comparing (shape arithmetic).
_SKIPPED_OPS = frozenset({"Constant", "Shape", "ConstantOfShape", "Size", "Range"})
#: Suffixes ONNX Runtime's graph optimizers add to the nodes they rewrite (fusions, NCHWc layout).
_OPTIMIZER_SUFFIX = re.compile(r"(_token_\d+|_nchwc)$")
#: Graph optimization of the comparison sessions (see _analysis_session).
ANALYSIS_LEVEL = "all"
PROFILE_WARMUP = 2
#: Profiled calls per model (one sample each): per-node times are means over these.
PROFILE_RUNS = 16


@dataclass
class VariantTensor:
    """Where a float tensor's counterpart lives in the variant, and how to read it as float."""

    name: str
    qparams: tuple[np.ndarray, np.ndarray] | None = None  # scale, zero point (QOperator: integer tensor)
    quant_range: tuple[float, float] | None = None


@dataclass
class LayerPlan:
    name: str
    op_type: str
    float_tensor: str
    variant: VariantTensor
    weight: dict[str, Any] | None = None
    weight_range: dict[str, Any] | None = None  # the float weight's histogram and quantization range


class _Graph:
    """Lookups over one ONNX graph."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.nodes = list(model.graph.node)
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)
        self.outputs = {o.name for o in model.graph.output}
        self.inputs = [i for i in model.graph.input if i.name not in self.inits]

    def has(self, name: str) -> bool:
        return name in self.producer or name in self.outputs

    def qparams_of(self, name: str, depth: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Scale and zero point of the integer tensor ``name`` (QOperator models)."""
        base = name[: -len(QUANTIZED)] if name.endswith(QUANTIZED) else name
        if base + "_scale" in self.inits and base + "_zero_point" in self.inits:
            return self.inits[base + "_scale"], self.inits[base + "_zero_point"]
        node = self.producer.get(name)
        if node is None or depth > 16:
            return None
        if node.op_type in _OUTPUT_QPARAMS:
            s, z = _OUTPUT_QPARAMS[node.op_type]
            if len(node.input) > z and node.input[s] in self.inits and node.input[z] in self.inits:
                return self.inits[node.input[s]], self.inits[node.input[z]]
            return None
        if node.op_type in _SAME_QPARAMS and node.input:
            return self.qparams_of(node.input[0], depth + 1)
        return None

    def range_before_dq(self, dq_output: str) -> tuple[float, float] | None:
        """The representable range of the (per-tensor) DequantizeLinear that makes ``dq_output``."""
        dq = self.producer.get(dq_output)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3:
            return None
        scale, zp = self.inits.get(dq.input[1]), self.inits.get(dq.input[2])
        if scale is None or zp is None or scale.size != 1:
            return None
        return representable_range(float(scale.reshape(())), float(zp.reshape(())), zp.dtype)

    def integer_source(self, dq_output: str) -> VariantTensor | None:
        """The integer tensor a per-tensor DequantizeLinear reads, with its scale and zero point, or None.

        Reading it (and dequantizing in numpy) gives the same values as the DequantizeLinear's output, but asking
        the session for a DequantizeLinear's output keeps its node group from being fused into the integer kernel
        (the variant would then run as float ops, as ``qdq_loss_debug`` runs it, several times slower); the
        integer tensor is the fused kernel's own output, so the variant runs as it is timed.
        """
        dq = self.producer.get(dq_output)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 or not self.has(dq.input[0]):
            return None
        scale, zp = self.inits.get(dq.input[1]), self.inits.get(dq.input[2])
        if scale is None or zp is None or scale.size != 1:
            return None
        rng = representable_range(float(scale.reshape(())), float(zp.reshape(())), zp.dtype)
        return VariantTensor(dq.input[0], qparams=(scale, zp), quant_range=rng)

    def counterpart(self, tensor: str) -> VariantTensor | None:
        """The variant's tensor that plays the float ``tensor``'s part, or None."""
        if self.has(tensor + DQ_OUTPUT):  # QDQ: what the next layer reads
            return self.integer_source(tensor + DQ_OUTPUT) or VariantTensor(
                tensor + DQ_OUTPUT, quant_range=self.range_before_dq(tensor + DQ_OUTPUT))
        if self.has(tensor):
            return self.integer_source(tensor) or VariantTensor(tensor, quant_range=self.range_before_dq(tensor))
        if self.has(tensor + QUANTIZED):
            qparams = self.qparams_of(tensor + QUANTIZED)
            if qparams is None:
                return None
            scale, zp = qparams
            rng = (representable_range(float(scale.reshape(())), float(zp.reshape(())), zp.dtype)
                   if scale.size == 1 else None)
            return VariantTensor(tensor + QUANTIZED, qparams=qparams, quant_range=rng)
        return None

    def dequantized_weight(self, name: str) -> np.ndarray | None:
        """The variant's weight ``name`` as float: itself (fp16, unchanged) or its dequantized integer copy."""
        if name in self.inits and np.issubdtype(self.inits[name].dtype, np.floating):
            return self.inits[name].astype(np.float32)
        for base, transposed in ((name, False), (name + TRANSPOSED, True)):
            q = self.inits.get(base + QUANTIZED)
            if q is None:
                continue
            found = self._weight_qparams(base)
            if found is None:
                return None
            scale, zp, axis = found
            w = dequantize(q, scale, zp, axis)
            return np.swapaxes(w, -1, -2) if transposed and w.ndim >= 2 else w
        return None

    def weight_span(self, name: str) -> tuple[tuple[float, float], bool] | None:
        """The range the variant's integer copy of weight ``name`` can represent (the union over channels) and
        whether it is per channel; None where the weight is not stored in integers."""
        for base in (name, name + TRANSPOSED):
            if base + QUANTIZED in self.inits:
                found = self._weight_qparams(base)
                if found is None:
                    return None
                scale, zp, _ = found
                return span_of(scale, zp, self.inits[base + QUANTIZED].dtype)
        return None

    def _weight_qparams(self, base: str) -> tuple[np.ndarray, np.ndarray, int | None] | None:
        q = self.inits[base + QUANTIZED]
        axis: int | None = None
        scale = self.inits.get(base + "_scale")
        zp = self.inits.get(base + "_zero_point")
        for node in self.consumers.get(base + QUANTIZED, []):
            if node.op_type == "DequantizeLinear":
                scale = self.inits.get(node.input[1], scale)
                zp = self.inits.get(node.input[2], zp) if len(node.input) > 2 else zp
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale is None:
            return None
        if zp is None:
            zp = np.zeros_like(scale, dtype=np.int32)
        if scale.size > 1 and axis is None:
            axis = next((a for a in range(q.ndim) if q.shape[a] == scale.size), 0)
        return scale, zp, (axis % q.ndim if axis is not None else None)


def _output_channel_axis(node: Any, weight: np.ndarray) -> int:
    """The axis of a weight that holds the layer's output channels."""
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else weight.ndim - 1
    if node.op_type in ("MatMul", "MatMulInteger"):
        return weight.ndim - 1
    return 0


def _weight_records(float_graph: _Graph, variant: _Graph, node: Any) -> tuple[dict[str, Any] | None,
                                                                              dict[str, Any] | None]:
    """The layer's ``weight`` record (SQNR of the dequantized weight) and its float weight's histogram."""
    for name in node.input:
        w = float_graph.inits.get(name)
        if w is None or w.ndim < 2 or not np.issubdtype(w.dtype, np.floating):
            continue
        deq = variant.dequantized_weight(name)
        if deq is None or deq.shape != w.shape:
            return None, None
        span = variant.weight_span(name)
        histogram = weight_histogram(w, span[0] if span else None, bool(span and span[1]))
        return compare_weights(w, deq, _output_channel_axis(node, w)), histogram
    return None, None


def layer_name(node: Any) -> str:
    return node.name or f"{node.op_type}:{node.output[0]}"


def plan_layers(float_model: Any, variant_model: Any) -> tuple[list[LayerPlan], list[str]]:
    """The float model's layers in model order with their variant counterparts, and the unmatched ones."""
    fg, vg = _Graph(float_model), _Graph(variant_model)
    layers: list[LayerPlan] = []
    unmatched: list[str] = []
    pending: Any = None  # a node with no counterpart whose fused activation may carry it
    absorbed: set[str] = set()  # activations already folded into the layer before them
    for node in fg.nodes:
        if node.op_type in _SKIPPED_OPS or not node.output or layer_name(node) in absorbed:
            continue
        head = pending if (pending is not None and node.op_type in FUSABLE_ACTIVATIONS
                           and node.input and node.input[0] == pending.output[0]) else None
        if pending is not None and head is None:
            unmatched.append(layer_name(pending))
        pending = None
        tensor = node.output[0]
        counterpart = vg.counterpart(tensor)
        users = fg.consumers.get(tensor, [])
        if counterpart is None:
            if head is None and len(users) == 1 and users[0].op_type in FUSABLE_ACTIVATIONS:
                pending = node
            else:
                unmatched.append(layer_name(node))
            continue
        first = head if head is not None else node
        op_type = f"{head.op_type}+{node.op_type}" if head is not None else node.op_type
        # QOperator: the activation after this layer was dropped, its range folded into this output.
        if (counterpart.qparams is not None and len(users) == 1 and users[0].op_type in FUSABLE_ACTIVATIONS
                and vg.counterpart(users[0].output[0]) is None):
            absorbed.add(layer_name(users[0]))
            tensor = users[0].output[0]
            op_type += "+" + users[0].op_type
        weight, weight_range = _weight_records(fg, vg, first)
        layers.append(LayerPlan(layer_name(first), op_type, tensor, counterpart, weight, weight_range))
    if pending is not None:
        unmatched.append(layer_name(pending))
    return layers, unmatched


def _load(model: Any) -> Any:
    import onnx

    return onnx.load(str(model)) if isinstance(model, str | Path) else model


def _with_outputs(model: Any, names: list[str]) -> bytes:
    """``model`` serialized with ``names`` added as graph outputs (untyped: ONNX Runtime infers them)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            value = onnx.ValueInfoProto()
            value.name = name
            copy.graph.output.append(value)
    return copy.SerializeToString()


def _session(model_bytes: bytes | str, threads: int, level: str, profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    from core.runtimes.ort_runner import session_options

    opts = session_options(threads, level=level)
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def _analysis_session(model_bytes: bytes, threads: int) -> Any:
    """A session for the comparison runs. ONNX Runtime's optimizers keep every graph output, so every
    added tensor stays readable, while the layout and kernel choices keep it fast; a QDQ variant's tensors are
    read as the integer outputs of its fused kernels (``_Graph.integer_source``), so it runs as it is timed."""
    return _session(model_bytes, threads, ANALYSIS_LEVEL)


class _Feed:
    """How a batch of the dataset feeds a session: one input (a plain array) or several by name (a structured
    array, core.models.io_spec), each cast to the dtype the session declares."""

    def __init__(self, session: Any) -> None:
        from core.runtimes.ort_runner import ORT_NUMPY_TYPES

        self.inputs = [(i.name, ORT_NUMPY_TYPES.get(i.type, np.float32)) for i in session.get_inputs()]
        first = session.get_inputs()[0]
        #: The model's fixed batch size, None when the batch axis is free.
        self.fixed: int | None = first.shape[0] if first.shape and isinstance(first.shape[0], int) else None

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        from core.models.io_spec import field, is_named

        if not is_named(batch):
            if len(self.inputs) != 1:
                names = ", ".join(name for name, _ in self.inputs)
                raise ValueError(f"the model takes {len(self.inputs)} inputs ({names}) but the samples hold one array")
            name, dtype = self.inputs[0]
            return {name: np.ascontiguousarray(batch.astype(dtype, copy=False))}
        return {name: field(batch, name).astype(dtype, copy=False) for name, dtype in self.inputs}


def _read(values: np.ndarray, variant: VariantTensor) -> np.ndarray:
    if variant.qparams is not None:
        scale, zp = variant.qparams
        return dequantize(values, scale, zp, 1)
    return values.astype(np.float32, copy=False)


class _SessionPair:
    """The float and the variant model in sessions that also output every planned tensor."""

    def __init__(self, float_model: Any, variant_model: Any, plans: list[LayerPlan], threads: int) -> None:
        self.float_sess = _analysis_session(_with_outputs(float_model, [p.float_tensor for p in plans]), threads)
        self.variant_sess = _analysis_session(_with_outputs(variant_model, [p.variant.name for p in plans]), threads)
        self.float_names = [o.name for o in self.float_sess.get_outputs()]
        self.variant_names = [o.name for o in self.variant_sess.get_outputs()]
        self.f_feed, self.v_feed = _Feed(self.float_sess), _Feed(self.variant_sess)
        self.fixed = self.f_feed.fixed

    def run(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Both models' outputs (every planned tensor) on ``batch``, by tensor name."""
        f_out = self.float_sess.run(None, self.f_feed(batch))
        v_out = self.variant_sess.run(None, self.v_feed(batch))
        return (dict(zip(self.float_names, f_out, strict=True)), dict(zip(self.variant_names, v_out, strict=True)))


def compare_samples(float_model: Any, variant_model: Any, samples: np.ndarray, *, threads: int = 1,
                    channels_last: bool = False, cancel: Any = None) -> list[list[dict[str, Any]]]:
    """Each sample's own layer records (``name``, ``op_type``, ``activation``), one run per sample, both
    models' sessions made once."""
    float_model, variant_model = _load(float_model), _load(variant_model)
    plans, _ = plan_layers(float_model, variant_model)
    pair = _SessionPair(float_model, variant_model, plans, threads)
    out = []
    for i in range(len(samples)):
        check_cancel(cancel)
        batch = samples[i:i + 1]
        if pair.fixed and pair.fixed > 1:  # a model with a fixed batch: the sample repeated (same statistics)
            batch = np.repeat(batch, pair.fixed, axis=0)
        f_out, v_out = pair.run(batch)
        stats = {p.name: TensorComparison(channels_last, p.variant.quant_range) for p in plans}
        _compare_batch(plans, f_out, v_out, stats, {})
        out.append([{"name": p.name, "op_type": p.op_type, "activation": stats[p.name].result()}
                    for p in plans if stats[p.name].count])
    return out


def compare_activations(
    float_model: Any, variant_model: Any, plans: list[LayerPlan], samples: np.ndarray, *,
    threads: int = 1, channels_last: bool = False, cancel: Any = None,
    progress: Callable[[int, int], None] | None = None, total: int | None = None,
) -> tuple[dict[str, TensorComparison], list[str]]:
    """Run both models on ``samples`` batch by batch and compare every planned tensor pair."""
    pair = _SessionPair(float_model, variant_model, plans, threads)
    stats = {p.name: TensorComparison(channels_last, p.variant.quant_range) for p in plans}
    problems: dict[str, str] = {}
    n = len(samples)
    start, per_sample = 0, 0
    while start < n:
        check_cancel(cancel)
        batch = samples[start:start + next_batch(start, per_sample, pair.fixed)]
        f_out, v_out = pair.run(batch)
        if start == 0:
            # Integer tensors counted at their float32 size: they are compared dequantized.
            per_sample = sum(a.size * max(a.itemsize, 4) for a in (*f_out.values(), *v_out.values())) // len(batch)
        _compare_batch(plans, f_out, v_out, stats, problems)
        del f_out, v_out
        start += len(batch)
        if progress is not None:
            progress(start, total or n)
    return stats, [f"{name}: {why}" for name, why in problems.items()]


def _compare_batch(plans: list[LayerPlan], f_out: dict[str, np.ndarray], v_out: dict[str, np.ndarray],
                   stats: dict[str, TensorComparison], problems: dict[str, str]) -> None:
    for plan in plans:
        if plan.name in problems:
            continue
        ref, got = f_out[plan.float_tensor], v_out[plan.variant.name]
        if not np.issubdtype(ref.dtype, np.floating):
            problems[plan.name] = "not a float tensor"
            continue
        try:
            stats[plan.name].update(ref, _read(got, plan.variant))
        except ValueError as exc:
            problems[plan.name] = str(exc)


def _parse_profile(events: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """ONNX Runtime's trace as per-node and per-op-type milliseconds per call (warm-up calls left out)."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    kept = runs[warmup:] or runs
    if not kept:
        return profile_record([])
    since = kept[0]["ts"]
    nodes: dict[str, dict[str, Any]] = {}
    from core.runtimes.ort_runner import kernel_events

    for e in kernel_events(events):
        if e["ts"] < since:
            continue
        name = _OPTIMIZER_SUFFIX.sub("", e["name"][: -len("_kernel_time")])
        op = e.get("args", {}).get("op_name", "?")
        entry = nodes.setdefault(name, {"name": name, "op_type": op, "ms": 0.0})
        entry["ms"] += e["dur"] / 1000.0 / len(kept)
    return profile_record(list(nodes.values()))


def profile_onnx(model: Any, samples: np.ndarray, *, threads: int = 1, runs: int | None = None,
                 cancel: Any = None) -> dict[str, Any]:
    """Per-node kernel time from ONNX Runtime's profiler, one sample per call, in a session of its own
    (optimized as the timed one is), never mixed with the timed runs."""
    model = _load(model)
    with Scratch("profile") as folder:
        session = _session(model.SerializeToString(), threads, "all", str(Path(folder) / "ort"))
        feed = _Feed(session)
        count = min(len(samples), runs or PROFILE_RUNS)
        for i in range(PROFILE_WARMUP + count):
            if i % 8 == 0:
                check_cancel(cancel)
            session.run(None, feed(samples[(i % count): (i % count) + 1]))
        trace = Path(session.end_profiling())
        events = json.loads(trace.read_text(encoding="utf-8"))
    return _parse_profile(events, PROFILE_WARMUP)


def analyse_onnx(
    float_model: Any, variant_model: Any, samples: np.ndarray, *, threads: int = 1, channels_last: bool = False,
    profile: bool = True, float_profile: dict[str, Any] | None = None, cancel: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-layer error of ``variant_model`` against ``float_model`` on ``samples``, and both profiles."""
    float_model, variant_model = _load(float_model), _load(variant_model)
    plans, unmatched = plan_layers(float_model, variant_model)
    n = len(samples)
    profiled = min(n, PROFILE_RUNS)
    total = n + (profiled * (1 if float_profile is not None else 2) if profile else 0)
    stats, problems = compare_activations(float_model, variant_model, plans, samples, threads=threads,
                                          channels_last=channels_last, cancel=cancel, progress=progress, total=total)
    layers = [{
        "name": p.name, "op_type": p.op_type, "tensor": p.float_tensor,
        "activation": stats[p.name].result(), "weight": p.weight,
        "ranges": {"activation": stats[p.name].histogram_record(), "weight": p.weight_range},
    } for p in plans if stats[p.name].count]
    notes: list[str] = []
    if not plans:
        notes.append("no tensor of the variant shares a name with the float model's: per-layer error is not "
                     "available for this pair (it was not made from this float file by a known quantizer)")
    elif unmatched:
        notes.append(f"{len(unmatched)} of {len(unmatched) + len(plans)} layers have no counterpart in the variant "
                     f"(names not shared, or fused away): {', '.join(unmatched[:12])}"
                     + (" …" if len(unmatched) > 12 else ""))
    notes.extend(f"not compared: {p}" for p in problems)
    result: dict[str, Any] = {"layers": layers, "profile": None, "float_profile": float_profile,
                              "unmatched": unmatched, "notes": notes}
    if profile:
        result["profile"] = profile_onnx(variant_model, samples, threads=threads, cancel=cancel)
        if progress is not None:
            progress(n + profiled, total)
        if float_profile is None:
            result["float_profile"] = profile_onnx(float_model, samples, threads=threads, cancel=cancel)
        if progress is not None:
            progress(total, total)
    return result
