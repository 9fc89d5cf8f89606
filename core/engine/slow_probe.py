"""Before the run: which variants will be pathologically slow on this machine, measured on a few calls.

A PyTorch model's float16/bfloat16 variant (PyTorch falls back to slow kernels on a CPU without native
arithmetic in that dtype) and its ONNX Runtime dynamic int8 variant (``ConvInteger`` quantizes its input on
every call) are timed on a few calls of the model's own layers before anything is built, so that the advice
can say how slow and how long, and the time-left estimate can count on it (``timing.expected_slowdown``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Schemes that compute in a half-precision dtype in PyTorch: on a CPU without native arithmetic in it,
#: PyTorch falls back to slow kernels (ResNet-18 in float16: about a second per sample).
_HALF_DTYPES = {"torch-fp16": "float16", "torch-bf16": "bfloat16"}
#: Schemes that run convolutions in ONNX Runtime's dynamic int8 kernel (ConvInteger), which quantizes its input
#: on every call: slower than float on a convolutional network.
_DYNAMIC_INT8 = {"ort-int8-dynamic": "dynamic int8"}
#: The dynamic int8 probe quantizes the convolutions in graphs of at most this many bytes of float32 weights.
PROBE_GRAPH_BYTES = 16 << 20
#: A model whose float32 call takes less than this is not probed for dynamic int8: ONNX Runtime's own cost per
#: call would weigh in the probe's graphs as it does not in the variant (the demo CNN, 0.24 ms a call, read
#: 1.2x slower where its variant runs faster), and so fast a model cannot be pathologically slow anyway.
DYNAMIC_PROBE_MIN_CALL_S = 1e-3
#: A variant measured this many times slower than float on a few calls is flagged before the run (dynamic int8
#: convolutions on ResNet-18 measure 2.2-2.9x: the slowdown the advice exists to name).
SLOW_FACTOR = 2.0
#: Calls of the probed layer timed in each dtype (after one warm-up call).
PROBE_CALLS = 3
#: A variant whose layer probe says slow is then called whole once, when that is expected to take at most this.
WHOLE_PROBE_MAX_S = 10.0


def probe_slowdowns(
    model: Any, labels_by_scheme: dict[str, str], x: np.ndarray, threads: int, shared: dict[str, Any] | None = None
) -> tuple[dict[str, float], float | None]:
    """({label: how many times slower than float32 its variant runs here}, seconds of one float32 call of one
    sample), for the variants that compute in half precision or in ONNX Runtime's dynamic int8.

    Half precision: measured on a few calls of one layer (the Conv/Linear that took longest in a float32 call
    of one sample), then, where that layer is slow and the model small enough, on one call of the whole model
    cast. Dynamic int8: every convolution quantized as the scheme quantizes it and run by ONNX Runtime (the
    whole model would need its export and graph preparation first, which are its build), in place of its
    float32 time in the call; nothing for a model without convolutions. So a pathologically slow variant is
    known before the run.
    ``labels_by_scheme``: scheme id -> the label of its row. Nothing for a model that is not a PyTorch module.
    The memory format a whole half-precision call measured faster goes into ``shared`` (the study's cache, see
    ``core.schemes.torch_precision.layout_key``), so that the variant's build does not time both again."""
    wanted = {label: sid for sid, label in labels_by_scheme.items() if sid in _HALF_DTYPES or sid in _DYNAMIC_INT8}
    handle = getattr(model, "handle", None)
    if not wanted or handle is None or not hasattr(handle, "modules") or not len(x):
        return {}, None
    try:
        layers, call_s = _layer_times(handle, x[:1], threads)
    except Exception:  # noqa: BLE001 - a model the probe cannot run is left to the study itself
        return {}, None
    factors: dict[str, float] = {}
    heaviest = max(layers, key=lambda t: t.seconds, default=None)
    for label, sid in wanted.items():
        if heaviest is None:
            break
        with contextlib.suppress(Exception):  # no figure for this scheme: its own advice stands
            if sid in _DYNAMIC_INT8:
                factor = _dynamic_int8_slowdown(layers, call_s, threads)
            else:
                factor = _layer_slowdown(heaviest.layer, heaviest.shape, _HALF_DTYPES[sid])
                if factor >= SLOW_FACTOR and call_s * factor <= WHOLE_PROBE_MAX_S:
                    # One layer's ratio is not the model's (the other layers and ops differ): one whole call says.
                    factor = _model_call_s(handle, x[:1], _HALF_DTYPES[sid], threads, shared) / call_s
            factors[label] = round(factor, 1)
    return factors, call_s


def slow_advice(factor: float, dtype_name: str, per_sample_s: float | None, samples: int) -> str | None:
    """The advice line for a variant measured ``factor`` times slower than float32; None below SLOW_FACTOR."""
    if factor < SLOW_FACTOR:
        return None
    times = f"{factor:.1f}" if factor < 10 else f"{factor:.0f}"
    text = f"measured on a few calls: {dtype_name} runs about {times}x slower than float32 on this CPU"
    if per_sample_s is not None and per_sample_s > 0:
        total = per_sample_s * factor * samples
        text += f"; evaluating {samples} samples may take about {_duration(total)}"
    return text


def slow_kind_of(scheme_id: str) -> str | None:
    """What a probed scheme computes in, as the advice names it ("float16", "dynamic int8"), or None."""
    return _HALF_DTYPES.get(scheme_id) or _DYNAMIC_INT8.get(scheme_id)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min"


@dataclass
class _LayerTime:
    """A Conv/Linear layer of the model, its input shape, how often one call runs it, and its seconds in all."""

    layer: Any
    shape: tuple[int, ...] | None
    calls: int
    seconds: float


def _layer_times(module: Any, x: np.ndarray, threads: int) -> tuple[list[_LayerTime], float]:
    """(each Conv/Linear layer's time in one float32 call on ``x``, that call's seconds), from the second of
    two calls."""
    import time

    import torch

    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    times: dict[Any, list[float]] = {}
    shapes: dict[Any, tuple[int, ...]] = {}

    def before(layer: Any, args: tuple) -> None:
        if args and hasattr(args[0], "shape"):
            shapes.setdefault(layer, tuple(args[0].shape))
        times.setdefault(layer, []).append(-time.perf_counter())

    def after(layer: Any, args: tuple, out: Any) -> None:
        times[layer][-1] += time.perf_counter()

    hooks = []
    for sub in module.modules():
        if isinstance(sub, kinds):
            hooks += [sub.register_forward_pre_hook(before), sub.register_forward_hook(after)]
    torch.set_num_threads(threads)
    inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    try:
        with torch.inference_mode():
            module(inp)  # warm-up: the first call's times say little
            times.clear()
            t0 = time.perf_counter()
            module(inp)
            call_s = time.perf_counter() - t0
    finally:
        for hook in hooks:
            hook.remove()
    return [_LayerTime(layer, shapes.get(layer), len(t), sum(t)) for layer, t in times.items()], call_s


def _model_call_s(
    module: Any, x: np.ndarray, dtype_name: str, threads: int, shared: dict[str, Any] | None = None
) -> float:
    """Seconds of one call of a copy of ``module`` cast to ``dtype_name`` on ``x``, in the memory format its
    scheme would choose (the faster of channels-last and contiguous for a model with convolutions, which then
    goes into ``shared`` for the scheme's build)."""
    import copy

    import torch

    from core.schemes.torch_precision import has_4d_weights, layout_key, one_call_s, pick_layout

    dtype = getattr(torch, dtype_name)
    half = copy.deepcopy(module).to(dtype)
    inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dtype)
    if has_4d_weights(half):
        layout, times = pick_layout(half, inp)
        if shared is not None:
            shared[layout_key(dtype_name, threads, inp.shape)] = (layout, times)
        return min(times.values())
    return one_call_s(half, inp)


def _median_call_s(call: Any) -> float:
    """Median seconds of PROBE_CALLS calls of ``call()``, after one warm-up call."""
    import time

    call()
    runs = []
    for _ in range(PROBE_CALLS):
        t0 = time.perf_counter()
        call()
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def _dynamic_int8_slowdown(layers: list[_LayerTime], call_s: float, threads: int) -> float:
    """How many times slower than the float32 call the model runs with its convolutions in dynamic int8.

    The convolutions run once per call are put in ONNX graphs, each on its own input, quantized as
    ort-int8-dynamic quantizes (int8 weights, per tensor, ``ConvInteger``) and run by ONNX Runtime on the study's
    threads; their median times replace those layers' float32 time in the call. The other ops keep their
    float32 time (a Linear too: dynamic int8 is not slow there). The graphs hold at most PROBE_GRAPH_BYTES of
    weights each, so the probe's memory does not grow with the model. On ResNet-18 this says 2.5-2.9x where
    the variant measures 2.2-2.7x; on MobileNetV2 3.8-3.9x where it measures 3.65x."""
    if call_s < DYNAMIC_PROBE_MIN_CALL_S:
        raise ValueError("too fast a model to probe: the runtime's own cost per call would be the figure")
    probed = [t for t in layers if t.calls == 1 and t.shape is not None and _writable(t.layer)]
    if not probed:
        raise ValueError("no convolution to probe: dynamic int8 is not slow without them")
    graphs: list[list[_LayerTime]] = [[]]
    held = 0
    for t in probed:
        size = t.layer.weight.numel() * 4
        if graphs[-1] and held + size > PROBE_GRAPH_BYTES:
            graphs.append([])
            held = 0
        graphs[-1].append(t)
        held += size
    dynamic = sum(_dynamic_int8_call_s(graph, threads) for graph in graphs)
    float_s = sum(t.seconds for t in probed)
    return (max(call_s - float_s, 0.0) + dynamic) / call_s if call_s > 0 else 1.0


def _dynamic_int8_call_s(layers: list[_LayerTime], threads: int) -> float:
    """Median seconds of one ONNX Runtime call of ``layers`` quantized as ort-int8-dynamic quantizes."""
    from pathlib import Path

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from core.files.scratch import Scratch
    from core.runtimes.ort_runner import session_options
    from core.schemes.ort_calls import quiet

    rng = np.random.default_rng(0)
    feed = {f"x{i}": rng.standard_normal(t.shape, dtype=np.float32) for i, t in enumerate(layers)}
    with Scratch("probe") as tmp:
        src, out = Path(tmp) / "layers.onnx", Path(tmp) / "layers_int8.onnx"
        src.write_bytes(_layers_onnx(layers).SerializeToString())
        quiet(quantize_dynamic, str(src), str(out), weight_type=QuantType.QInt8, per_channel=False)
        # The study's own session settings (threads, no spinning, sequential), as the variant will run.
        session = ort.InferenceSession(str(out), session_options(threads), providers=["CPUExecutionProvider"])
        return _median_call_s(lambda: session.run(None, feed))


def _writable(layer: Any) -> bool:
    """Whether ``_layers_onnx`` writes ``layer`` as it computes: a convolution padded with zeros by a number of
    elements (not "same"/"valid", nor reflect or circular padding)."""
    return (hasattr(layer, "kernel_size") and layer.padding_mode == "zeros"
            and not isinstance(layer.padding, str))


def _layers_onnx(layers: list[_LayerTime]) -> Any:
    """One ONNX model with each convolution on its own input ("x0", "x1", ...) and its float32 weights."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, inputs, outputs = [], [], [], []
    for i, t in enumerate(layers):
        layer = t.layer
        weights.append(numpy_helper.from_array(layer.weight.detach().float().numpy(), f"w{i}"))
        bias = [f"b{i}"] if layer.bias is not None else []
        if bias:
            weights.append(numpy_helper.from_array(layer.bias.detach().float().numpy(), f"b{i}"))
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(t.shape)))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
        nodes.append(helper.make_node(
            "Conv", [f"x{i}", f"w{i}", *bias], [f"y{i}"], kernel_shape=list(layer.kernel_size),
            strides=list(layer.stride), dilations=list(layer.dilation), group=int(layer.groups),
            pads=[*layer.padding, *layer.padding],
        ))
    graph = helper.make_graph(nodes, "layers", inputs, outputs, initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model


def _layer_slowdown(layer: Any, shape: tuple[int, ...] | None, dtype_name: str) -> float:
    """Median time of PROBE_CALLS calls of ``layer`` cast to ``dtype_name`` over that in float32."""
    import copy

    import torch

    if shape is None:
        raise ValueError("no input shape")
    dtype = getattr(torch, dtype_name)

    def median_s(mod: Any, inp: Any) -> float:
        with torch.inference_mode():
            return _median_call_s(lambda: mod(inp))

    inp = torch.randn(shape)
    base = median_s(layer, inp)
    cast = copy.deepcopy(layer).to(dtype)
    half = median_s(cast, inp.to(dtype))
    if len(shape) == 4 and half > base:  # the scheme keeps the faster layout of a convolution: so does the probe
        half = min(half, median_s(cast.to(memory_format=torch.channels_last), inp.to(dtype)))
    return half / base if base > 0 else 1.0
