"""``torch-fp16`` and ``torch-bf16``: the PyTorch model with half-precision weights and compute."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import numpy as np

from core.errors import SchemeNotApplicable
from core.models.loaded import LoadedModel
from core.printable import counted
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.study.spec import SchemeSpec

#: Layers counted in the coverage line (the ones that hold nearly all weights and arithmetic).
_LAYER_TYPES = (
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "Linear", "LSTM", "GRU", "Embedding",
)


from core.runtimes.environment import cpu_flags_of  # noqa: E402,F401 - re-exported for the other schemes

#: ``memory_format``: "auto" times both layouts on one sample and keeps the faster (on a CPU only).
_LAYOUTS = ("auto", "channels_last", "contiguous")


def has_4d_weights(module: Any) -> bool:
    """Whether any parameter is 4-D (Conv2d weights): only those have a channels-last layout."""
    return any(p.dim() == 4 for p in module.parameters())


def one_call_s(module: Any, inp: Any) -> float:
    import time

    import torch

    with torch.inference_mode():
        t0 = time.perf_counter()
        module(inp)
        return time.perf_counter() - t0


def layout_key(dtype_name: str, threads: int, shape: Any) -> str:
    """Where a study's shared cache keeps the memory format ``pick_layout`` chose for the model cast to
    ``dtype_name``, at ``threads`` threads on an input of ``shape`` (the slow-variant probe before the run
    measures it, and the variant's build reads it instead of timing both layouts again)."""
    return f"memory_format:{dtype_name}:{threads}:{tuple(shape)}"


def pick_layout(module: Any, inp: Any) -> tuple[str, dict[str, float]]:
    """Leave ``module`` (already cast, with 4-D weights) in the faster of the channels-last and contiguous
    memory formats for input ``inp``; returns the layout's name and the seconds per call measured for each.

    Which is faster depends on the dtype and the model (ResNet-18 in float16 on an x86 CPU without float16
    arithmetic: channels-last takes oneDNN's kernels, several times faster; MobileNetV2 in float16: slower), so
    it is measured: channels-last warmed up and timed once, then contiguous timed; when contiguous's first
    call is already twice as slow as channels-last's timed one, a second call cannot change the answer.
    A tie (within 10 %) keeps the plain contiguous layout."""
    import torch

    module.to(memory_format=torch.channels_last)
    one_call_s(module, inp)  # warm-up: oneDNN creates its kernels on the first call
    last = one_call_s(module, inp)
    module.to(memory_format=torch.contiguous_format)
    contiguous = one_call_s(module, inp)
    if contiguous <= 2 * last:
        contiguous = min(contiguous, one_call_s(module, inp))
    times = {"channels_last": round(last, 6), "contiguous": round(contiguous, 6)}
    if last < 0.9 * contiguous:
        module.to(memory_format=torch.channels_last)
        return "channels_last", times
    return "contiguous", times


def half_applicability(model: LoadedModel) -> str | None:
    if not model.format.is_torch or model.handle is None:
        return "needs a PyTorch model (state dict with its architecture, TorchScript or torch.export)"
    return None


def retarget_float_casts(module: Any, dtype: Any) -> int:
    """In a graph module (a torch.export program's), make every float32 the graph itself names (casts,
    tensors it creates: ``_to_copy(dtype=float32)``, ``full(..., dtype=float32)``) ``dtype`` instead; returns
    how many were changed. Casting the parameters alone leaves a traced graph mixing float32 and ``dtype``."""
    import torch

    graph = getattr(module, "graph", None)
    if not isinstance(module, torch.fx.GraphModule) or graph is None:
        return 0
    changed = 0
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if node.kwargs.get("dtype") is torch.float32:
            node.kwargs = {**node.kwargs, "dtype": dtype}
            changed += 1
        if any(a is torch.float32 for a in node.args):
            node.args = tuple(dtype if a is torch.float32 else a for a in node.args)
            changed += 1
    if changed:
        module.recompile()
    return changed


def dtype_coverage(module: Any, dtype_name: str) -> dict[str, Any]:
    """How many layers and parameters ended up in ``dtype_name`` (e.g. "float16")."""
    layers: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for sub in module.modules():
        kind = type(sub).__name__
        if kind not in _LAYER_TYPES:
            continue
        layers[kind] += 1
        params = list(sub.parameters(recurse=False))
        if params and all(str(p.dtype).removeprefix("torch.") == dtype_name for p in params):
            converted[kind] += 1
    total_params = sum(int(p.numel()) for p in module.parameters())
    half_params = sum(int(p.numel()) for p in module.parameters() if str(p.dtype).removeprefix("torch.") == dtype_name)
    n_layers, n_conv = sum(layers.values()), sum(converted.values())
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(layers.items()))
    params = f"{half_params:,} of {total_params:,} {'parameter' if total_params == 1 else 'parameters'} in {dtype_name}"
    # Graph modules (TorchScript, torch.export) hide their layer types: the parameters still tell.
    summary = f"{n_conv} of {counted(n_layers, 'layer')} in {dtype_name} ({kinds}); {params}" if n_layers else params
    return {
        "summary": summary,
        "graph": "PyTorch module tree",
        "dtype": dtype_name,
        "converted_layers": n_conv,
        "float_layers": n_layers - n_conv,
        "converted_params": half_params,
        "total_params": total_params,
        "quantized_layers": 0,
        "integer_fraction": None,
    }


_LAYOUT_PARAM = SchemeParam(
    "memory_format", "auto",
    "layout of 4-D (convolution) weights: auto times channels_last and contiguous on one sample and keeps "
    "the faster (CPU)", _LAYOUTS,
)


class _TorchHalf(Scheme):
    dtype_name = "float16"
    #: CPU features that give native arithmetic in this dtype.
    native_flags: tuple[str, ...] = ()

    def applicability(self, model: LoadedModel) -> str | None:
        return half_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        flags = cpu_flags_of(env)
        if env.get("device", "cpu") != "cpu" or any(flags.get(f) for f in self.native_flags):
            return []
        return [
            f"this CPU has no native {self.dtype_name} arithmetic: PyTorch computes {self.dtype_name} on it "
            "through float32 conversions, so expect a file half the size but slower inference"
        ]

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        import torch

        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.params import check_params
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        dtype = getattr(torch, self.dtype_name)
        ctx.progress("building", 0, 1, f"casting weights to {self.dtype_name}")
        module = copy.deepcopy(model.handle).eval().to(dtype)
        size, path = save_state_dict_size(module, ctx, self.info.id.replace("-", "_"))
        notes = [f"inputs are cast to {self.dtype_name} before the model and outputs back to float32"]
        retargeted = retarget_float_casts(module, dtype)
        if retargeted:
            notes.append(f"{counted(retargeted, 'float32 cast')} in the exported graph made {self.dtype_name} "
                         "(a traced graph keeps the dtypes it was traced with)")
        notes += self._set_layout(module, spec, ctx, dtype, measured=not retargeted)
        return BuiltVariant(
            runner=TorchRunner(module, ctx.threads, ctx.device, dtype=dtype),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=dtype_coverage(module, self.dtype_name),
            notes=notes,
        )


    def _set_layout(
        self, module: Any, spec: SchemeSpec, ctx: BuildContext, dtype: Any, measured: bool = True
    ) -> list[str]:
        """Put the convolution weights in the memory format asked for (or measured faster); the notes say which.

        ``measured``: the model cast here is the one the probe before the run cast (no graph casts retargeted),
        so the layout that probe measured faster, kept in ``ctx.shared``, stands without timing both again."""
        import torch

        wanted = spec.param("memory_format", "auto") or "auto"
        if not has_4d_weights(module):
            return []
        if wanted == "channels_last":
            module.to(memory_format=torch.channels_last)
            return ["convolution weights in channels-last memory format (memory_format=channels_last)"]
        if wanted == "contiguous" or ctx.device.value != "cpu":
            return []
        sample = torch.from_numpy(np.ascontiguousarray(ctx.example(), dtype=np.float32)).to(dtype)
        known = ctx.shared.get(layout_key(self.dtype_name, ctx.threads, sample.shape)) if measured else None
        if known is not None:
            layout, times = known
            if layout == "channels_last":
                module.to(memory_format=torch.channels_last)
            when = ", measured before the run"
        else:
            ctx.progress("building", 0, 1, "timing the channels-last and contiguous layouts on one sample")
            layout, times = pick_layout(module, sample)
            when = ""
        ms = {k: f"{v * 1000:,.0f} ms" if v >= 0.1 else f"{v * 1000:.3g} ms" for k, v in times.items()}
        if layout == "channels_last":
            return [
                f"convolution weights in channels-last memory format: one {self.dtype_name} call took "
                f"{ms['channels_last']} that way against {ms['contiguous']} contiguous on this machine{when} "
                "(memory_format=contiguous keeps the plain layout)"
            ]
        return [
            f"convolution weights kept contiguous: channels-last took {ms['channels_last']} per call against "
            f"{ms['contiguous']} on this machine{when}"
        ]


class TorchFp16(_TorchHalf):
    info = SchemeInfo(
        id="torch-fp16",
        title="PyTorch float16",
        description="Weights and compute in float16 in PyTorch (inputs cast on the way in); halves the file.",
        family="pytorch",
        runtime="pytorch",
        is_float=True,
        params=(_LAYOUT_PARAM,),
    )
    dtype_name = "float16"
    native_flags = ("avx512_fp16", "amx_fp16")


class TorchBf16(_TorchHalf):
    info = SchemeInfo(
        id="torch-bf16",
        title="PyTorch bfloat16",
        description="Weights and compute in bfloat16 in PyTorch (float32's range, 8-bit mantissa); halves the file.",
        family="pytorch",
        runtime="pytorch",
        is_float=True,
        params=(_LAYOUT_PARAM,),
    )
    dtype_name = "bfloat16"
    native_flags = ("avx512_bf16", "amx_bf16")
