"""Per-tensor error of a TFLite variant (int8) against its float TFLite model, in the LiteRT interpreter.

Both interpreters keep every intermediate tensor (``experimental_preserve_all_tensors=True``) and run
without the default XNNPACK delegate, whose fused kernels would hide them. Tensors are matched by name
(the converter names an op's output after the layers it fused, in the float file and its integer twin
alike); an integer tensor is read as ``(q - zero_point) * scale`` with its own parameters (per channel
along ``quantized_dimension`` where it has several). LiteRT's Python API has no per-op profiler, so there
is no time per layer: the result says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.layers.stats import (
    TensorComparison,
    compare_weights,
    dequantize,
    representable_range,
    span_of,
    weight_histogram,
)
from core.layers.steps import check_cancel

NO_PROFILER = "LiteRT's Python API has no per-op profiler: there is no time per layer for LiteRT variants"
#: Ops whose constant inputs of two or more dimensions are weights, and the axis of their output channels.
_WEIGHT_AXIS = {"FULLY_CONNECTED": 0, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "TRANSPOSE_CONV": 0, "BATCH_MATMUL": None}


class _Graph:
    """One TFLite model in an interpreter that keeps its intermediate tensors."""

    def __init__(self, path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from core.runtimes.litert_runner import LiteRTRunner

        self.feed = LiteRTRunner(path, threads)  # its conversion of real inputs into the model's layout and dtype
        self.interp = Interpreter(
            model_path=str(path), num_threads=threads, experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.interp.allocate_tensors()
        self.details = {int(d["index"]): d for d in self.interp.get_tensor_details()}
        self.by_name = {d["name"]: i for i, d in self.details.items()}
        self.ops = [op for op in self.interp._get_ops_details() if op.get("op_name") != "DELEGATE"]
        produced = {int(i) for op in self.ops for i in op["outputs"]}
        inputs = {int(d["index"]) for d in self.interp.get_input_details()}
        self.constants = {i for i in self.details if i not in produced and i not in inputs}
        self.input_index = int(self.interp.get_input_details()[0]["index"])

    def run(self, sample: np.ndarray) -> None:
        self.interp.set_tensor(self.input_index, self.feed.to_model_input(sample))
        self.interp.invoke()

    def real(self, index: int) -> np.ndarray:
        """Tensor ``index`` as real values: dequantized with its own scale(s) and zero point(s)."""
        value = self.interp.get_tensor(index)
        params = self.details[index].get("quantization_parameters") or {}
        scales = np.asarray(params.get("scales", []), dtype=np.float32)
        if np.asarray(value).dtype.kind in "iu" and scales.size:
            axis = int(params.get("quantized_dimension", 0)) if scales.size > 1 else None
            return dequantize(value, scales, np.asarray(params.get("zero_points", [0])), axis)
        return np.asarray(value, dtype=np.float32)

    def quant_range(self, index: int) -> tuple[float, float] | None:
        """The per-tensor representable range of an integer tensor, else None."""
        d = self.details[index]
        params = d.get("quantization_parameters") or {}
        scales = np.asarray(params.get("scales", []))
        if np.dtype(d["dtype"]).kind not in "iu" or scales.size != 1:
            return None
        return representable_range(float(scales[0]), float(np.asarray(params["zero_points"])[0]), np.dtype(d["dtype"]))

    def weight_span(self, index: int) -> tuple[tuple[float, float], bool] | None:
        d = self.details[index]
        params = d.get("quantization_parameters") or {}
        scales = np.asarray(params.get("scales", []))
        if np.dtype(d["dtype"]).kind not in "iu" or not scales.size:
            return None
        return span_of(scales, np.asarray(params.get("zero_points", [0])), np.dtype(d["dtype"]))


def _weight_records(fg: _Graph, vg: _Graph, op: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                       dict[str, Any] | None]:
    if op["op_name"] not in _WEIGHT_AXIS:
        return None, None
    for i in (int(j) for j in op["inputs"] if int(j) >= 0):
        name = fg.details[i]["name"]
        if i not in fg.constants or len(fg.details[i]["shape"]) < 2 or name not in vg.by_name:
            continue
        w, deq = fg.real(i), vg.real(vg.by_name[name])
        if w.shape != deq.shape:
            return None, None
        span = vg.weight_span(vg.by_name[name])
        histogram = weight_histogram(w, span[0] if span else None, bool(span and span[1]))
        return compare_weights(w, deq, _WEIGHT_AXIS[op["op_name"]]), histogram
    return None, None


def analyse_litert(
    float_model: Path | str, variant_model: Path | str, samples: np.ndarray, *, threads: int = 1,
    cancel: Any = None, progress: Callable[[int, int], None] | None = None, float_profile: Any = None,
    per_sample: bool = False,
) -> dict[str, Any]:
    """Per-tensor error of ``variant_model`` against ``float_model`` on ``samples``, one sample per call.

    Same result shape as the other runtimes' (``profile`` None, with a note that says why). With
    ``per_sample``, ``"samples"`` also holds each sample's own layer records (no weights, no histograms).
    """
    fg, vg = _Graph(Path(float_model), threads), _Graph(Path(variant_model), threads)
    plans, unmatched = [], []
    for op in fg.ops:
        out = int(op["outputs"][0])
        name = fg.details[out]["name"]
        if name in vg.by_name:
            plans.append((name, op["op_name"], out, vg.by_name[name], op))
        else:
            unmatched.append(name)
    stats = {name: TensorComparison(True, vg.quant_range(v)) for name, _, _, v, _ in plans}
    each: list[list[dict[str, Any]]] = []
    n = len(samples)
    for k in range(n):
        check_cancel(cancel)
        fg.run(samples[k:k + 1])
        vg.run(samples[k:k + 1])
        mine = {name: TensorComparison(True) for name, *_ in plans} if per_sample else {}
        for name, _, f_index, v_index, _ in plans:
            ref, got = fg.real(f_index), vg.real(v_index)
            if ref.shape == got.shape:
                stats[name].update(ref, got)
                if per_sample:
                    mine[name].update(ref, got)
        if per_sample:
            each.append([{"name": name, "op_type": op_type, "activation": mine[name].result()}
                         for name, op_type, *_ in plans if mine[name].count])
        if progress is not None:
            progress(k + 1, n)
    layers = []
    for name, op_type, _, _, op in plans:
        if not stats[name].count:
            unmatched.append(name)
            continue
        weight, weight_range = _weight_records(fg, vg, op)
        layers.append({"name": name, "op_type": op_type, "tensor": name, "activation": stats[name].result(),
                       "weight": weight, "ranges": {"activation": stats[name].histogram_record(),
                                                    "weight": weight_range}})
    notes = [NO_PROFILER]
    if not layers:
        notes.insert(0, "no tensor of the variant shares a name with the float model's: per-layer error is not "
                        "available for this pair")
    elif unmatched:
        notes.insert(0, f"{len(unmatched)} tensors have no counterpart of the same name and shape in the variant: "
                        f"{', '.join(unmatched[:12])}" + (" …" if len(unmatched) > 12 else ""))
    result: dict[str, Any] = {"layers": layers, "profile": None, "float_profile": float_profile,
                              "unmatched": unmatched, "notes": notes}
    if per_sample:
        result["samples"] = each
    return result
