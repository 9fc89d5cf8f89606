"""Per-module sensitivity of an eager PyTorch model to ``torch-int8-static`` (FX, x86), from one calibration.

The model is prepared, calibrated and converted once, exactly as ``torch-int8-static`` builds it. The
converted model keeps what the calibration learnt: each quantized Conv/Linear module holds its int8 weights
and the scale and zero point of its output activation (the observers' ranges). Every per-module variant
is made from those, with no second calibration:

- ``weights``: the float model with only this module's weights replaced by their int8 values (dequantized);
- ``activation``: the float model with only this module's output quantized to its cached scale and zero
  point (a forward hook; after a fused ReLU, quantizing the pre-ReLU output to a range that starts at 0 is
  the same as quantizing the ReLU's output);
- ``leave_one_out``: the converted model with only this module put back in float: its input dequantized, the
  float module (and its fused ReLU) run, the output quantized again with the cached scale, which is what
  ``torch-int8-static:exclude=MODULE`` builds (the next layer quantizes the same tensor with the same range).

Rows have the keys of ``core.tune.sensitivity`` (``layer`` is the module name, ``exclude`` what to write
in ``exclude=`` to spare it) and are ranked the same way.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.study.cancel import CancelToken
from core.tune.sensitivity import PARTS, SensitivityRun, _rank_key

SCHEME = "torch-int8-static"
#: Samples per forward call while evaluating.
EVAL_CHUNK = 64


class _FloatInQuantizedModel:
    """Factory of the leave-one-out stand-in: float module inside the quantized graph."""

    @staticmethod
    def make(float_module: Any, relu: bool, scale: float, zero_point: int) -> Any:
        import torch

        class FloatLayer(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = float_module

            def forward(self, x: Any) -> Any:
                y = self.inner(x.dequantize() if x.is_quantized else x)
                if relu:
                    y = torch.relu(y)
                return torch.quantize_per_tensor(y, scale, zero_point, torch.quint8)

        return FloatLayer()


def torch_layer_sensitivity(
    module: Any,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None,
    calib_x: np.ndarray,
    *,
    parts: Sequence[str] = PARTS,
    per_channel: bool = True,
    threads: int = 1,
    cancel: CancelToken | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> SensitivityRun:
    """Rank the Conv/Linear modules of ``module`` (an eager ``torch.nn.Module``) for ``torch-int8-static``."""
    import torch

    from core.schemes.base import BuildContext
    from core.schemes.torch_static import quantize_static_fx
    from core.study.spec import Device
    from core.tune.measure import accuracy, sqnr_db

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown sensitivity parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    cancel = cancel or CancelToken()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    float_model = copy.deepcopy(module).eval()
    ctx = BuildContext(workdir=Path("."), threads=threads, device=Device.CPU, cancel=cancel,
                       calibration=lambda n: calib_x[:n], progress=lambda *_: None, shared={})
    t0 = time.perf_counter()
    quantized, _, _ = quantize_static_fx(float_model, np.asarray(calib_x, dtype=np.float32), per_channel, ctx)
    calibration_s = time.perf_counter() - t0

    def outputs(model: Any) -> np.ndarray:
        return _predict(model, eval_x, cancel)

    t0 = time.perf_counter()
    base = outputs(float_model)
    evaluation_s = time.perf_counter() - t0
    float_acc = accuracy(base, base, eval_y)
    full = outputs(quantized)
    full_acc, full_sqnr = accuracy(full, base, eval_y), sqnr_db(full, base)
    layers = quantized_modules(quantized, float_model)
    norms, readers = graph_facts(float_model)
    rows = []
    for name, qsub, fsub in layers:
        for part in parts:
            cancel.raise_if_cancelled()
            bn = norms.get(name)
            with _variant(part, name, qsub, fsub, float_model, quantized, bn) as model:
                out = outputs(model)
            acc, sqnr = accuracy(out, base, eval_y), sqnr_db(out, base)
            delta = 100.0 * (acc - float_acc)
            impact = 100.0 * (acc - full_acc) if part == "leave_one_out" else -delta
            row = {
                "layer": name, "op_type": type(fsub).__name__, "part": part, "scheme": SCHEME,
                "accuracy_delta_pt": round(delta, 3) + 0.0, "sqnr_db": None if sqnr is None else round(sqnr, 2),
                "impact_pt": round(impact, 3) + 0.0, "accuracy": round(acc, 6),
                "exclude": [name, *readers.get(name, [])] if part == "activation" else [name],
            }
            rows.append(row)
            if on_row is not None:
                on_row(row)
    rows.sort(key=lambda r: _rank_key(r, full_sqnr))
    return SensitivityRun(
        rows=rows, layers=len(layers), float_accuracy=float_acc, quantized_accuracy=full_acc,
        quantized_sqnr_db=full_sqnr, preprocess_s=0.0, calibration_s=calibration_s, evaluation_s=evaluation_s,
        total_s=time.perf_counter() - start, evaluations=2 + len(rows),
    )


def quantized_modules(quantized: Any, float_model: Any) -> list[tuple[str, Any, Any]]:
    """(name, quantized module, float module) of every Conv/Linear the conversion made int8, in model order."""
    from core.schemes.torch_static import _is_quantized_compute

    floats = dict(float_model.named_modules())
    found = []
    for name, sub in quantized.named_modules():
        if _is_quantized_compute(sub) and name in floats:
            found.append((name, sub, floats[name]))
    return found


def graph_facts(float_model: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """From an FX trace of the float model: conv name -> the BatchNorm reading only its output (the conversion
    folds it in), and compute-module name -> the Conv/Linear modules that read its output, followed through
    the ops that pass values on (norms, activations, pooling, reshapes): the ones that would quantize that
    output again if only the module itself were kept float. Empty when the model does not trace."""
    import torch

    from core.schemes.torch_static import _is_float_compute

    try:
        graph = torch.fx.symbolic_trace(float_model).graph
    except Exception:  # noqa: BLE001 - untraceable: the conversion could not fold across it either
        return {}, {}
    modules = dict(float_model.named_modules())

    def module(node: Any) -> Any:
        return modules.get(node.target) if node.op == "call_module" else None

    norms: dict[str, Any] = {}
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        if not _is_float_compute(module(node)):
            continue
        users = list(node.users)
        if len(users) == 1 and "BatchNorm" in type(module(users[0])).__name__:
            norms[node.target] = module(users[0])
        found: list[str] = []
        frontier = list(users)
        while frontier:
            user = frontier.pop(0)
            if _is_float_compute(module(user)):
                if user.target not in found:
                    found.append(user.target)
            elif user.op != "output":
                frontier.extend(user.users)
        readers[node.target] = found
    return norms, readers


def _bn_scale(bn: Any) -> Any:
    """The per-channel factor a BatchNorm folds into the convolution's weights (gamma / sqrt(var + eps))."""
    import torch

    gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    return gamma / torch.sqrt(bn.running_var + bn.eps)


def _float_layer(fsub: Any, bn: Any) -> Any:
    """The float computation the quantized module stands for: the layer, with its BatchNorm folded in."""
    if bn is None:
        return fsub
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    return fuse_conv_bn_eval(copy.deepcopy(fsub), copy.deepcopy(bn))


def _predict(model: Any, x: np.ndarray, cancel: CancelToken) -> np.ndarray:
    import torch

    outs = []
    with torch.inference_mode():
        for begin in range(0, len(x), EVAL_CHUNK):
            cancel.raise_if_cancelled()
            out = model(torch.from_numpy(np.ascontiguousarray(x[begin : begin + EVAL_CHUNK], dtype=np.float32)))
            outs.append((out.dequantize() if out.is_quantized else out).float().numpy())
    return np.concatenate(outs, axis=0)


def _fused_relu(qsub: Any) -> bool:
    return "ReLU" in type(qsub).__name__


@contextmanager
def _variant(
    part: str, name: str, qsub: Any, fsub: Any, float_model: Any, quantized: Any, bn: Any = None
) -> Iterator[Any]:
    """The model with ``part`` of module ``name`` changed in place, put back on exit. ``bn`` is the BatchNorm
    the conversion folded into the module (its int8 weights are then unfolded, its output read after it)."""
    import torch

    if part == "weights":
        saved = fsub.weight.data
        weights = qsub.weight().dequantize()
        if bn is not None:
            weights = weights / _bn_scale(bn).reshape(-1, *([1] * (weights.dim() - 1)))
        fsub.weight.data = weights.to(saved.dtype)
        try:
            yield float_model
        finally:
            fsub.weight.data = saved
    elif part == "activation":
        scale, zero_point = float(qsub.scale), int(qsub.zero_point)

        def quantize_output(_m: Any, _args: Any, out: Any) -> Any:
            return torch.fake_quantize_per_tensor_affine(out, scale, zero_point, 0, 255)

        handle = (bn if bn is not None else fsub).register_forward_hook(quantize_output)
        try:
            yield float_model
        finally:
            handle.remove()
    else:
        parent_name, _, attr = name.rpartition(".")
        parent = quantized.get_submodule(parent_name) if parent_name else quantized
        stand_in = _FloatInQuantizedModel.make(
            _float_layer(fsub, bn), _fused_relu(qsub), float(qsub.scale), int(qsub.zero_point)
        )
        setattr(parent, attr, stand_in)
        try:
            yield quantized
        finally:
            setattr(parent, attr, qsub)
