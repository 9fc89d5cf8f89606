"""Per-module error and per-module time of a PyTorch variant against its float module.

Forward hooks on the leaf modules of both record each output; modules are matched by their qualified
names, which survive FX static quantization (``features.0`` becomes a quantized ``ConvReLU2d`` under the
same name), dynamic quantization, half precision and pruning. A fused module's output is compared with
the float output after the activation it absorbed; modules with no partner are listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from core.layers.profile import profile_record
from core.layers.stats import TensorComparison, compare_weights, span_of, weight_histogram
from core.layers.steps import check_cancel, next_batch

PROFILE_WARMUP = 2
#: Profiled calls per model (one sample each): per-module times are means over these.
PROFILE_RUNS = 16
MODULE_MARK = "module::"
#: torch ops that convert rather than compute, under the group names ONNX Runtime uses for the same work.
_CONVERSIONS = {
    "aten::quantize_per_tensor": "QuantizeLinear", "aten::quantize_per_channel": "QuantizeLinear",
    "aten::quantize_per_tensor_dynamic": "DynamicQuantizeLinear", "aten::dequantize": "DequantizeLinear",
    "aten::to": "Cast", "aten::_to_copy": "Cast", "aten::copy_": "Cast",
    "aten::permute": "Transpose", "aten::transpose": "Transpose", "aten::t": "Transpose",
    "aten::contiguous": "Transpose",
}


def _is_leaf(module: Any) -> bool:
    """No child modules, not counting quantized modules' packed-weight holders."""
    return all("PackedParams" in type(child).__name__ for child in module.children())


def _leaves(module: Any) -> dict[str, Any]:
    return {name: m for name, m in module.named_modules() if name and _is_leaf(m)}


class _Recorder:
    """Forward hooks that keep the last batch's output of every leaf module, in call order."""

    def __init__(self, module: Any) -> None:
        self.outputs: dict[str, Any] = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in _leaves(module).items()]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            if isinstance(output, tuple | list):
                output = output[0] if output else None
            key, k = name, 1
            while key in self.outputs:  # a module called twice in one forward: one entry per call
                key, k = f"{name}#{k}", k + 1
            self.outputs[key] = output
        return hook

    def take(self) -> dict[str, Any]:
        outputs, self.outputs = self.outputs, {}
        return outputs

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _as_float(t: Any) -> np.ndarray | None:
    import torch

    if not isinstance(t, torch.Tensor):
        return None
    if t.is_quantized:
        t = t.dequantize()
    if not t.is_floating_point():
        return None
    return t.detach().float().cpu().numpy()


def _quant_range(t: Any) -> tuple[float, float] | None:
    import torch

    if not isinstance(t, torch.Tensor) or not t.is_quantized or t.qscheme() not in (
            torch.per_tensor_affine, torch.per_tensor_symmetric):
        return None
    info = torch.iinfo(t.dtype)
    scale, zp = float(t.q_scale()), float(t.q_zero_point())
    return (info.min - zp) * scale, (info.max - zp) * scale


def _weight_of(module: Any) -> Any:
    import torch

    w = getattr(module, "weight", None)
    if callable(w) and not isinstance(w, torch.Tensor):
        try:
            w = w()  # quantized modules: weight() returns the quantized tensor
        except (RuntimeError, TypeError):
            return None
    if isinstance(w, torch.Tensor) and w.is_quantized:
        w = w.dequantize()
    elif isinstance(w, torch.Tensor) and hasattr(w, "dequantize") and type(w) is not torch.nn.Parameter \
            and type(w) is not torch.Tensor:
        w = w.dequantize()  # tensor subclasses (weight-only int8/int4) know their own float value
    return w if isinstance(w, torch.Tensor) else None


def _weight_span(module: Any) -> tuple[tuple[float, float], bool] | None:
    """The range a quantized module's integer weight can represent (union over channels), and whether it is
    per channel; None for a weight that is not a quantized tensor."""
    import torch

    w = getattr(module, "weight", None)
    if callable(w) and not isinstance(w, torch.Tensor):
        try:
            w = w()
        except (RuntimeError, TypeError):
            return None
    if not isinstance(w, torch.Tensor) or not w.is_quantized:
        return None
    dtype = {torch.qint8: np.int8, torch.quint8: np.uint8, torch.qint32: np.int32}.get(w.dtype)
    if dtype is None:
        return None
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        return span_of(w.q_per_channel_scales().numpy(), w.q_per_channel_zero_points().numpy(), dtype)
    return span_of(np.array([w.q_scale()]), np.array([w.q_zero_point()]), dtype)


def _weight_records(float_mod: Any, variant_mod: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The module's ``weight`` record (SQNR of the dequantized weight) and its float weight's histogram."""
    fw, vw = _weight_of(float_mod), _weight_of(variant_mod)
    if fw is None or vw is None or fw.ndim < 2 or tuple(fw.shape) != tuple(vw.shape):
        return None, None
    axis = 1 if "Transpose" in type(float_mod).__name__ else 0
    float_w = fw.detach().float().numpy()
    span = _weight_span(variant_mod)
    histogram = weight_histogram(float_w, span[0] if span else None, bool(span and span[1]))
    return compare_weights(float_w, vw.detach().float().numpy(), axis), histogram


def _fused_activation(float_mod: Any, variant_mod: Any) -> bool:
    """True where the variant module absorbed the ReLU that follows the float module (FX fusion)."""
    return "ReLU" in type(variant_mod).__name__ and "ReLU" not in type(float_mod).__name__


def _nbytes(tensors: list[Any]) -> int:
    import torch

    return sum(t.element_size() * t.nelement() for t in tensors if isinstance(t, torch.Tensor))


def _to_args(batch: np.ndarray, dtype: Any) -> tuple[Any, ...]:
    """The batch as the module's positional arguments, as the timed runner passes them: one per named input in
    order (core.models.io_spec), floating ones in ``dtype``, token ids and masks keeping their integer dtype."""
    import torch

    from core.models.io_spec import input_names, is_named

    def tensor(x: np.ndarray) -> Any:
        t = torch.from_numpy(np.ascontiguousarray(x))
        return t.to(dtype) if t.is_floating_point() else t

    return tuple(tensor(batch[name]) for name in input_names(batch)) if is_named(batch) else (tensor(batch),)


def _input_dtype(module: Any) -> Any:
    import torch

    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def compare_modules(
    float_module: Any, variant_module: Any, samples: np.ndarray, *, channels_last: bool = False,
    cancel: Any = None, progress: Callable[[int, int], None] | None = None, total: int | None = None,
    weights: bool = True,
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Layers (in the float module's call order), unmatched module names and notes. ``weights=False`` leaves
    the weight records out (None): one sample's activations are asked for, the weights do not change."""
    import torch

    float_leaves, variant_leaves = _leaves(float_module), _leaves(variant_module)
    f_rec, v_rec = _Recorder(float_module), _Recorder(variant_module)
    f_dtype, v_dtype = _input_dtype(float_module), _input_dtype(variant_module)
    stats: dict[str, TensorComparison] = {}
    order: list[str] = []
    problems: dict[str, str] = {}
    n = len(samples)
    try:
        with torch.inference_mode():
            start, per_sample = 0, 0
            while start < n:
                check_cancel(cancel)
                batch = samples[start:start + next_batch(start, per_sample)]
                float_module(*_to_args(batch, f_dtype))
                f_out = f_rec.take()
                variant_module(*_to_args(batch, v_dtype))
                v_out = v_rec.take()
                if start == 0:
                    order = list(f_out)
                    per_sample = _nbytes([*f_out.values(), *v_out.values()]) // len(batch)
                _compare_batch(f_out, v_out, float_leaves, variant_leaves, stats, problems, channels_last)
                del f_out, v_out
                start += len(batch)
                if progress is not None:
                    progress(start, total or n)
    finally:
        f_rec.close()
        v_rec.close()
    layers = []
    for key in order:
        if key not in stats or key in problems:
            continue
        name = key.split("#")[0]
        fm, vm = float_leaves[name], variant_leaves[name]
        op = type(fm).__name__ + ("+ReLU" if _fused_activation(fm, vm) else "")
        weight, weight_range = _weight_records(fm, vm) if weights else (None, None)
        layers.append({"name": key, "op_type": op, "tensor": key, "activation": stats[key].result(),
                       "weight": weight,
                       "ranges": {"activation": stats[key].histogram_record(), "weight": weight_range}})
    unmatched = [k for k in order if k not in stats and k not in problems]
    notes = [f"not compared: {k}: {why}" for k, why in problems.items()]
    return layers, unmatched, notes


def _compare_batch(f_out: dict[str, Any], v_out: dict[str, Any], float_leaves: dict[str, Any],
                   variant_leaves: dict[str, Any], stats: dict[str, TensorComparison], problems: dict[str, str],
                   channels_last: bool) -> None:
    for key, f_t in f_out.items():
        if key not in v_out or key in problems:
            continue
        name = key.split("#")[0]
        ref, got = _as_float(f_t), _as_float(v_out[key])
        if ref is None or got is None:
            problems[key] = "not a float or quantized tensor"
            continue
        if _fused_activation(float_leaves[name], variant_leaves[name]):
            ref = np.maximum(ref, 0.0)
        if key not in stats:
            stats[key] = TensorComparison(channels_last, _quant_range(v_out[key]))
        try:
            stats[key].update(ref, got)
        except ValueError as exc:
            problems[key] = str(exc)


_profiler_started = False


def _start_profiler_once() -> None:
    """The first profiler session of a process pays its start-up inside the first ops it records.

    Started off the main thread (a layer step runs in a helper thread), PyTorch's profiler library writes
    "ERROR: External init callback must run in same thread as registerClient" straight to file descriptor 2
    as it starts: a harmless message (no tracing daemon is used) that no log level holds back, shown on the
    terminal of a run without a log file. The descriptor points at /dev/null for that one start-up."""
    global _profiler_started
    if _profiler_started:
        return
    import torch
    from torch.profiler import ProfilerActivity, profile

    with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU]):
        torch.zeros(1).add_(1)
    _profiler_started = True


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null inside the block (what C code writes there, Python's too)."""
    import os
    import sys

    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_torch(module: Any, samples: np.ndarray, *, runs: int | None = None, cancel: Any = None) -> dict[str, Any]:
    """Self CPU time per op type and CPU time per leaf module from ``torch.profiler``, one sample per call,
    apart from any timed run."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    leaves = _leaves(module)
    open_ranges: list[Any] = []

    def enter(name: str) -> Callable[..., None]:
        def pre_hook(_m: Any, _args: Any) -> None:
            scope = record_function(MODULE_MARK + name)
            scope.__enter__()
            open_ranges.append(scope)
        return pre_hook

    def leave(_m: Any, _args: Any, _out: Any) -> None:
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    handles = [h for name, m in leaves.items()
               for h in (m.register_forward_pre_hook(enter(name)), m.register_forward_hook(leave))]
    dtype = _input_dtype(module)
    count = min(len(samples), runs or PROFILE_RUNS)
    _start_profiler_once()
    try:
        with torch.inference_mode():
            for i in range(PROFILE_WARMUP):
                module(*_to_args(samples[i % count: i % count + 1], dtype))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for i in range(count):
                    if i % 8 == 0:
                        check_cancel(cancel)
                    module(*_to_args(samples[i: i + 1], dtype))
    finally:
        for h in handles:
            h.remove()
    by_node: list[dict[str, Any]] = []
    by_op: dict[str, tuple[float, int]] = {}
    for event in prof.key_averages():
        if event.key.startswith(MODULE_MARK):
            name = event.key[len(MODULE_MARK):]
            op = type(leaves[name]).__name__ if name in leaves else "?"
            by_node.append({"name": name, "op_type": op, "ms": event.cpu_time_total / 1000.0 / count})
            continue
        op = _CONVERSIONS.get(event.key, event.key)
        ms, calls = by_op.get(op, (0.0, 0))
        by_op[op] = (ms + event.self_cpu_time_total / 1000.0 / count, calls + max(1, event.count // count))
    position = {name: i for i, name in enumerate(leaves)}
    by_node.sort(key=lambda n: position.get(n["name"], len(position)))
    return profile_record(by_node, by_op)


def _is_flat_graph(module: Any) -> bool:
    """Whether ``module`` is one traced graph that never calls its layer modules (a torch.export program's module
    keeps them only to hold the weights its graph reads), so no forward hook can see a layer's output."""
    import torch

    return isinstance(module, torch.fx.GraphModule) and not any(
        node.op == "call_module" and not str(node.target).startswith("_") for node in module.graph.nodes)


def analyse_torch(
    float_module: Any, variant_module: Any, samples: np.ndarray, *, channels_last: bool = False,
    profile: bool = True, float_profile: dict[str, Any] | None = None, cancel: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-module error of ``variant_module`` against ``float_module`` on ``samples``, and both profiles."""
    n = len(samples)
    profiled = min(n, PROFILE_RUNS)
    total = n + (profiled * (1 if float_profile is not None else 2) if profile else 0)
    layers, unmatched, notes = compare_modules(float_module, variant_module, samples, channels_last=channels_last,
                                               cancel=cancel, progress=progress, total=total)
    if not layers and _is_flat_graph(float_module):
        notes[:] = ["the model is one traced graph that calls no layer module (a torch.export program): per-layer "
                    "error needs the eager model (a state dict with its architecture) or its ONNX export"]
    elif not layers:
        notes.insert(0, "no module of the variant shares a name with the float model's: per-layer error is not "
                        "available for this pair")
    elif unmatched:
        notes.insert(0, f"{len(unmatched)} modules have no counterpart in the variant (renamed, fused or "
                        f"removed): {', '.join(unmatched[:12])}" + (" …" if len(unmatched) > 12 else ""))
    result: dict[str, Any] = {"layers": layers, "profile": None, "float_profile": float_profile,
                              "unmatched": unmatched, "notes": notes}
    if profile:
        result["profile"] = profile_torch(variant_module, samples, cancel=cancel)
        if progress is not None:
            progress(n + profiled, total)
        if float_profile is None:
            result["float_profile"] = profile_torch(float_module, samples, cancel=cancel)
        if progress is not None:
            progress(total, total)
    return result
