"""``torch-int8-weight-only``: Linear weights stored as int8 with torchao, activations stay float."""

from __future__ import annotations

import copy
import logging
import warnings
from collections import Counter
from typing import Any

from core.errors import SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo
from core.study.spec import SchemeSpec

_CONV = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d")
#: Layers with weights torchao's weight-only config leaves alone.
_UNTOUCHED = (*_CONV, "LSTM", "GRU")


def _quiet_torchao() -> Any:
    """Import torchao's quantize_ API without its import-time log lines on the user's terminal."""
    logger = logging.getLogger("torch.utils._pytree")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
    finally:
        logger.setLevel(level)
    return quantize_, Int8WeightOnlyConfig


def weight_only_coverage(module: Any) -> dict[str, Any]:
    """Linear layers whose weight became an int8 tensor, and the Conv/Linear layers left in float."""
    quantized = 0
    floats: Counter[str] = Counter()
    for sub in module.modules():
        kind = type(sub).__name__
        weight = getattr(sub, "weight", None)
        if kind == "Linear" and weight is not None and type(weight).__name__ not in ("Parameter", "Tensor"):
            quantized += 1
        elif kind == "Linear" or kind in _UNTOUCHED:
            floats[kind] += 1
    total = quantized + sum(floats.values())
    parts = [f"{quantized} of {total} layers with int8 weights (Linear only; float activations, dequantized per call)"]
    if floats:
        parts.append("left in float: " + ", ".join(f"{v} {k}" for k, v in sorted(floats.items())))
    return {
        "summary": "; ".join(parts),
        "graph": "PyTorch module tree (torchao tensor subclasses)",
        "quantized_layers": quantized,
        "weight_only_layers": quantized,
        "float_layers": sum(floats.values()),
        "float": dict(floats),
        "integer_fraction": 0.0 if total else None,  # weights only: the arithmetic stays float
    }


class TorchInt8WeightOnly(Scheme):
    info = SchemeInfo(
        id="torch-int8-weight-only",
        title="PyTorch int8 weight-only (torchao)",
        description="Linear weights stored as int8 with per-channel scales (torchao); activations and "
        "arithmetic stay float. Shrinks Linear-heavy models; speeds up memory-bound GPU inference.",
        family="pytorch",
        runtime="pytorch",
    )

    def applicability(self, model: LoadedModel) -> str | None:
        if model.format is not ModelFormat.TORCH_STATE_DICT:
            return "needs an eager PyTorch model (a state dict with its architecture)"
        if not any(type(m).__name__ == "Linear" for m in model.handle.modules()):
            return "the model has no Linear layer, the only kind torchao's weight-only int8 changes"
        return None

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        notes = []
        if env.get("device", "cpu") == "cpu":
            notes.append(
                "on a CPU in eager mode the int8 weights are dequantized on every call: expect a smaller file "
                "but slower inference (the speed-up comes on memory-bound GPU work or under torch.compile)"
            )
        if model.handle is not None:
            convs = sum(1 for m in model.handle.modules() if type(m).__name__ in _CONV)
            linears = sum(1 for m in model.handle.modules() if type(m).__name__ == "Linear")
            if convs and convs >= linears:
                notes.append(f"only Linear layers change: the {convs} convolutions keep their float weights")
        return notes

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.params import check_params
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        quantize_, config = _quiet_torchao()
        ctx.progress("building", 0, 1, "quantizing Linear weights to int8 (torchao)")
        module = copy.deepcopy(model.handle).eval()
        quantize_(module, config())
        size, path = save_state_dict_size(module, ctx, "torch_int8_weight_only")
        return BuiltVariant(
            runner=TorchRunner(module, ctx.threads, ctx.device),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=weight_only_coverage(module),
        )
