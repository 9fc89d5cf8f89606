"""PyTorch schemes."""

from __future__ import annotations

import copy
import warnings

from core.errors import SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo
from core.study.spec import Device, SchemeSpec

_DYNAMIC_TYPES = ("Linear", "LSTM", "GRU")


def _eager_module(model: LoadedModel, scheme_id: str):  # noqa: ANN202
    if model.format is not ModelFormat.TORCH_STATE_DICT:
        raise SchemeNotApplicable(f"{scheme_id} needs an eager PyTorch model (a state dict with its architecture).")
    return model.handle


def save_state_dict_size(module: object, ctx: BuildContext, name: str) -> tuple[int, object]:
    """Serialize a module's state dict the way a user would ship it; return (bytes, path)."""
    import torch

    path = ctx.workdir / f"{name}.pt"
    torch.save(module.state_dict(), str(path))  # type: ignore[attr-defined]
    return path.stat().st_size, path


class TorchInt8Dynamic(Scheme):
    info = SchemeInfo(
        id="torch-int8-dynamic",
        title="PyTorch dynamic int8",
        description=(
            "Linear/LSTM/GRU weights stored as int8, activations quantized on the fly per batch (eager PyTorch)."
        ),
        family="pytorch",
        runtime="pytorch",
    )

    def applicability(self, model: LoadedModel) -> str | None:
        if model.format is not ModelFormat.TORCH_STATE_DICT:
            return "needs an eager PyTorch model (a state dict with its architecture)"
        layers = [m for m in model.handle.modules() if type(m).__name__ in _DYNAMIC_TYPES]
        if not layers:
            return "the model has no Linear, LSTM or GRU layer to quantize"
        return None

    def advice(self, model: LoadedModel, env: dict) -> list[str]:
        if not model.format.is_torch or model.handle is None:
            return []
        convs = sum(1 for m in model.handle.modules() if type(m).__name__.startswith("Conv"))
        linears = sum(1 for m in model.handle.modules() if type(m).__name__ in _DYNAMIC_TYPES)
        if convs and convs >= linears:
            return [
                f"dynamic int8 only touches Linear/LSTM/GRU: the {convs} convolutions stay float, "
                "so expect little speed-up"
            ]
        return []

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        import torch

        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.coverage import torch_module_coverage

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        module = copy.deepcopy(_eager_module(model, self.info.id)).eval()
        torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
            qmodule = torch.ao.quantization.quantize_dynamic(
                module, {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8
            )
        size, path = save_state_dict_size(qmodule, ctx, "torch_int8_dynamic")
        coverage = torch_module_coverage(qmodule)
        notes = []
        if ctx.device is Device.CUDA:
            notes.append("PyTorch's quantized kernels run on the CPU only, so this variant is measured on the CPU")
        return BuiltVariant(
            runner=TorchRunner(qmodule, ctx.threads, Device.CPU),
            notes=notes,
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=coverage,
        )
