"""Pruning: ``prune-l1`` zeroes weights in place; ``prune-channels`` removes whole channels.

Unstructured zeros keep every tensor its dense shape, so the shipped file and the
dense kernels stay as they were; the coverage says so and reports what the file
compresses to. Structured pruning (torch-pruning, dependency-aware) really removes
channels, so the file and the latency shrink, optionally with int8 on top.
Neither fine-tunes: the accuracy shown is the pruned model's straight away.
"""

from __future__ import annotations

import copy
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.study.spec import Device, SchemeSpec

_PRUNABLE = ("Conv1d", "Conv2d", "Conv3d", "Linear")
_COMPRESS_CHUNK = 1 << 20


def _eager_applicability(model: LoadedModel) -> str | None:
    if model.format is not ModelFormat.TORCH_STATE_DICT:
        return "needs an eager PyTorch model (a state dict with its architecture)"
    if not any(type(m).__name__ in _PRUNABLE for m in model.handle.modules()):
        return "the model has no Conv or Linear layer to prune"
    return None


def compressed_size(path: Path) -> int:
    """Bytes of ``path`` after zlib (level 6): what an archive or a sparse-aware store would ship."""
    compressor = zlib.compressobj(6)
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_COMPRESS_CHUNK):
            total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


#: Where a study's variants share the float model's compressed size (BuildContext.shared).
_FLOAT_PACKED_KEY = "prune:float_compressed_bytes"


def _float_compressed_size(model: LoadedModel, ctx: BuildContext) -> int:
    """The float model's state dict, saved as a pruned one is and zlib-compressed: worked out once per study
    (ResNet-18: about 2 s) and shared by its pruning variants, since every sparsity compares with it."""
    from core.schemes.torch_schemes import save_state_dict_size

    cached = ctx.shared.get(_FLOAT_PACKED_KEY)
    if isinstance(cached, int):
        return cached
    _size, path = save_state_dict_size(model.handle, ctx, "float_reference")
    try:
        packed = compressed_size(path)  # type: ignore[arg-type]
    finally:
        Path(path).unlink(missing_ok=True)  # type: ignore[arg-type]
    ctx.shared[_FLOAT_PACKED_KEY] = packed
    return packed


def _prunable_layers(module: Any) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in module.named_modules() if type(m).__name__ in _PRUNABLE]


class PruneL1(Scheme):
    info = SchemeInfo(
        id="prune-l1",
        title="Unstructured L1 pruning",
        description="Zeroes the smallest-magnitude Conv/Linear weights of each layer (no fine-tuning); the file "
        "and dense kernels do not shrink: the coverage shows the sparsity reached and the compressed size.",
        family="pruning",
        runtime="pytorch",
        params=(
            SchemeParam("sparsity", "0.5", "fraction of each layer's weights set to zero",
                        kind="fraction", upper=0.95),
        ),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        return _eager_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        return [
            "unstructured zeros are stored and multiplied like any weight: the file keeps its size and dense "
            "kernels do not get faster; see the compressed size for what sparse storage would save"
        ]

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from torch.nn.utils import prune

        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.params import check_params, number_param
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        sparsity = number_param(spec, self.info, "sparsity")
        module = copy.deepcopy(model.handle).eval()
        layers = _prunable_layers(module)
        for i, (name, layer) in enumerate(layers):
            ctx.cancel.raise_if_cancelled()
            prune.l1_unstructured(layer, "weight", amount=sparsity)
            prune.remove(layer, "weight")  # make the zeros part of the weight; no mask left behind
            ctx.progress("building", i + 1, len(layers), f"pruning {name}")
        zeros = sum(int((layer.weight == 0).sum()) for _, layer in layers)
        weights = sum(int(layer.weight.numel()) for _, layer in layers)
        all_params = sum(int(p.numel()) for p in module.parameters())
        size, path = save_state_dict_size(module, ctx, "prune_l1")
        packed = compressed_size(path)  # type: ignore[arg-type]
        base_packed = _float_compressed_size(model, ctx)
        reached = zeros / weights if weights else 0.0
        coverage = {
            "summary": (
                f"{len(layers)} Conv/Linear layers pruned: {reached:.1%} of their weights are zero "
                f"({zeros:,} of {weights:,}; {zeros / all_params:.1%} of all parameters); dense storage, "
                f"so the file stays {size:,} bytes; zlib-compressed {packed:,} bytes (float file: {base_packed:,})"
            ),
            "graph": "PyTorch module tree",
            "pruned_layers": len(layers),
            "sparsity": reached,
            "sparsity_requested": sparsity,
            "zero_weights": zeros,
            "model_sparsity": zeros / all_params if all_params else 0.0,
            "dense_storage": True,
            "compressed_bytes": packed,
            "baseline_compressed_bytes": base_packed,
            "quantized_layers": 0,
            "integer_fraction": None,
        }
        notes = [
            f"zeros are stored densely: {size:,} bytes on disk, {packed:,} when compressed "
            f"({packed / max(base_packed, 1):.0%} of the compressed float file)",
            "dense kernels multiply the zeros too, so no speed-up is expected",
        ]
        return BuiltVariant(
            runner=TorchRunner(module, ctx.threads, ctx.device),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=coverage,
            notes=notes,
        )


class PruneChannels(Scheme):
    info = SchemeInfo(
        id="prune-channels",
        title="Structured channel pruning",
        description="Removes the lowest-L1 channels of Conv/Linear layers with their dependants (torch-pruning), "
        "so the file and latency really drop; no fine-tuning; optional int8 on top.",
        family="pruning",
        runtime="pytorch",
        params=(
            SchemeParam("ratio", "0.3", "fraction of channels removed from each prunable layer",
                        kind="fraction", upper=0.9),
            SchemeParam("int8", "none", "int8 on top of the pruned model", ("none", "dynamic", "static")),
            SchemeParam("samples", "200", "calibration samples for int8=static", kind="count"),
        ),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        return _eager_applicability(model)

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        return ["no fine-tuning after pruning: accuracy usually drops far more than it would after retraining"]

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.params import check_params, number_param
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        ratio = number_param(spec, self.info, "ratio")
        int8 = spec.param("int8", "none") or "none"
        wanted = int(number_param(spec, self.info, "samples"))
        samples = ctx.calibration(wanted) if int8 == "static" else ctx.example()  # one sample is enough to trace
        if len(samples) == 0:
            raise BadInput(f"{spec.label}: the dataset gave no samples to trace the model with.")
        ctx.progress("building", 0, 2, "finding channel dependencies")
        module, changes, kept = prune_channels(model.handle, samples[:1], ratio)
        before = sum(int(p.numel()) for p in model.handle.parameters())
        after = sum(int(p.numel()) for p in module.parameters())
        whole = f"output layer {kept[0]}" + (f" and recurrent {', '.join(kept[1:])}" if kept[1:] else "")
        coverage = {
            "summary": (
                f"{len(changes)} layers lost channels ({ratio:.0%} requested; {whole} kept whole): "
                f"{before:,} -> {after:,} parameters ({1 - after / before:.1%} fewer)"
            ),
            "kept_whole": kept,
            "graph": "PyTorch module tree",
            "pruned_layers": len(changes),
            "channels": {name: {"before": b, "after": a} for name, (b, a) in changes.items()},
            "params_before": before,
            "params_after": after,
            "params_removed_fraction": 1 - after / before if before else 0.0,
            "quantized_layers": 0,
            "integer_fraction": None,
        }
        notes = ["the pruned network's layer shapes differ from the architecture's: ship it as TorchScript, "
                 "torch.export or ONNX rather than as a state dict for the original architecture"]
        device = ctx.device
        ctx.progress("building", 1, 2, "pruned" if int8 == "none" else f"int8 ({int8}) on the pruned model")
        if int8 != "none":
            module, quant = _int8_on_top(module, int8, samples, ctx)
            coverage["summary"] += f"; then {quant['summary']}"
            coverage.update({k: v for k, v in quant.items() if k not in ("summary", "graph")})
            coverage["int8"] = int8
            if device is Device.CUDA:
                notes.append("timed on the CPU: PyTorch's int8 kernels have no CUDA implementation")
            device = Device.CPU
        size, path = save_state_dict_size(module, ctx, "prune_channels")
        return BuiltVariant(
            runner=TorchRunner(module, ctx.threads, device),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=coverage,
            notes=notes,
        )


def _output_layer(module: Any, example: Any) -> tuple[str, Any]:
    """The last Conv/Linear to run on ``example``: its outputs are the model's, so it keeps them all."""
    import torch

    order: list[tuple[str, Any]] = []
    handles = [
        m.register_forward_hook(lambda mod, _i, _o, n=name: order.append((n, mod)))
        for name, m in _prunable_layers(module)
    ]
    try:
        with torch.inference_mode():
            module(example)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise SchemeNotApplicable("no Conv or Linear layer ran on a dataset sample, so nothing can be pruned")
    return order[-1]


def prune_channels(
    handle: Any, sample: np.ndarray, ratio: float
) -> tuple[Any, dict[str, tuple[int, int]], list[str]]:
    """A copy of ``handle`` with ``ratio`` of its channels removed.

    Returns (module, {layer: (width before, after)}, [layers kept whole: the output layer, then recurrent ones]).
    """
    import torch
    import torch_pruning as tp

    module = copy.deepcopy(handle).eval()
    example = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
    out_name, out_layer = _output_layer(module, example)
    widths = {name: _width(layer) for name, layer in _prunable_layers(module)}
    # Recurrent layers keep their hidden size: torch-pruning cannot yet cut an LSTM's gates consistently.
    recurrent = [m for m in module.modules() if isinstance(m, torch.nn.RNNBase)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MagnitudePruner(
            module, example, importance=tp.importance.MagnitudeImportance(p=1), pruning_ratio=ratio,
            ignored_layers=[out_layer, *recurrent],
        )
        pruner.step()
    changes = {
        name: (widths[name], _width(layer))
        for name, layer in _prunable_layers(module)
        if _width(layer) != widths[name]
    }
    kept = [out_name] + [n for n, m in module.named_modules() if isinstance(m, torch.nn.RNNBase)]
    return module.eval(), changes, kept


def _width(layer: Any) -> int:
    return int(getattr(layer, "out_channels", None) or getattr(layer, "out_features", 0))


def _int8_on_top(module: Any, kind: str, samples: np.ndarray, ctx: BuildContext) -> tuple[Any, dict[str, Any]]:
    import torch

    if kind == "static":
        from core.schemes.torch_static import int8_engine, quantize_static_fx, static_coverage

        qmodule, left, untraceable = quantize_static_fx(module, samples, True, ctx)
        return qmodule, static_coverage(qmodule, left, untraceable, int8_engine())
    from core.schemes.coverage import torch_module_coverage
    from core.schemes.torch_static import int8_engine

    int8_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        layers = {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}
        qmodule = torch.ao.quantization.quantize_dynamic(module, layers, dtype=torch.qint8)
    return qmodule, torch_module_coverage(qmodule)
