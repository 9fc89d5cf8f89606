"""``torch-fp16`` and ``torch-bf16``: the PyTorch model with half-precision weights and compute."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from core.errors import SchemeNotApplicable
from core.models.loaded import LoadedModel
from core.printable import counted
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo
from core.study.spec import SchemeSpec

#: Layers counted in the coverage line (the ones that hold nearly all weights and arithmetic).
_LAYER_TYPES = (
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "Linear", "LSTM", "GRU", "Embedding",
)


from core.runtimes.environment import cpu_flags_of  # noqa: E402,F401 - re-exported for the other schemes


def half_applicability(model: LoadedModel) -> str | None:
    if not model.format.is_torch or model.handle is None:
        return "needs a PyTorch model (state dict with its architecture, TorchScript or torch.export)"
    return None


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
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        dtype = getattr(torch, self.dtype_name)
        ctx.progress("building", 0, 1, f"casting weights to {self.dtype_name}")
        module = copy.deepcopy(model.handle).eval().to(dtype)
        size, path = save_state_dict_size(module, ctx, self.info.id.replace("-", "_"))
        notes = [f"inputs are cast to {self.dtype_name} before the model and outputs back to float32"]
        return BuiltVariant(
            runner=TorchRunner(module, ctx.threads, ctx.device, dtype=dtype),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=dtype_coverage(module, self.dtype_name),
            notes=notes,
        )


class TorchFp16(_TorchHalf):
    info = SchemeInfo(
        id="torch-fp16",
        title="PyTorch float16",
        description="Weights and compute in float16 in PyTorch (inputs cast on the way in); halves the file.",
        family="pytorch",
        runtime="pytorch",
        is_float=True,
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
    )
    dtype_name = "bfloat16"
    native_flags = ("avx512_bf16", "amx_bf16")
