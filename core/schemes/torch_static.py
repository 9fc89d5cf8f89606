"""``torch-int8-static``: FX graph-mode static int8 for PyTorch's x86 backend.

Weights per channel (or per tensor), activations with scales calibrated on dataset
samples; Conv+BatchNorm+ReLU are fused first. A model FX cannot trace as a whole is
quantized part by part: every submodule that traces is quantized on its own, and
the ones that do not are named in the coverage, with the reason, as left in float.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from typing import Any

import numpy as np

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.schemes.params import bool_param, check_params, number_param
from core.study.spec import Device, SchemeSpec

_FLOAT_COMPUTE = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "Linear")
#: Calibration feeds the observers this many samples a call. Measured on ResNet-18 (224x224, one thread, 200
#: samples): batch 8 calibrates in 15 s with 236 MB above the model at its peak, batch 32 in 17 s with 399 MB
#: (the histogram observers work on whole activations, which grow with the batch); 2 and 4 save little more.
_CALIBRATION_BATCH = 8


def int8_engine() -> str:
    """The quantized backend for this machine: x86 (fbgemm + oneDNN) where present, else qnnpack (Arm)."""
    import torch

    supported = torch.backends.quantized.supported_engines
    engine = "x86" if "x86" in supported else "qnnpack"
    torch.backends.quantized.engine = engine
    return engine


def _qconfig_mapping(engine: str, per_channel: bool, exclude: tuple[str, ...] = ()) -> Any:
    """The backend's default mapping; per-tensor weights unless ``per_channel``; ``exclude`` (module names, relative
    to the module being traced) kept in float."""
    from torch.ao.quantization import QConfig, default_weight_observer, get_default_qconfig_mapping

    mapping = get_default_qconfig_mapping(engine)
    if not per_channel:
        base = mapping.global_qconfig
        mapping.set_global(QConfig(activation=base.activation, weight=default_weight_observer))
    for name in exclude:
        mapping.set_module_name(name, None)
    return mapping


def _relative(names: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    """``names`` that lie inside module ``prefix`` (all of them for the root ""), relative to it."""
    if not prefix:
        return names
    return tuple(n[len(prefix) + 1 :] for n in names if n.startswith(prefix + "."))


def _is_quantized_compute(module: Any) -> bool:
    path = type(module).__module__
    name = type(module).__name__
    return ".quantized" in path and ("Conv" in name or "Linear" in name) and "PackedParams" not in name


def _is_float_compute(module: Any) -> bool:
    return type(module).__module__.startswith("torch.nn.modules") and type(module).__name__ in _FLOAT_COMPUTE


def has_compute_layers(module: Any) -> bool:
    return any(_is_float_compute(m) for m in module.modules())


class _Partial:
    """Prepare what FX can trace; remember what it cannot and why."""

    def __init__(
        self, mapping: Any, example_inputs: dict[str, tuple[Any, ...]], make_mapping: Any = None
    ) -> None:
        self.mapping = mapping
        #: prefix -> the mapping for the module at ``prefix`` (module-name exclusions are relative to it).
        self.make_mapping = make_mapping
        self.examples = example_inputs
        self.prepared: list[str] = []
        #: Layers kept in float, with the reason.
        self.left_float: list[tuple[str, str]] = []
        #: Containers FX could not trace whole; their parts were quantized one by one.
        self.untraceable: list[tuple[str, str]] = []

    def prepare(self, module: Any, name: str) -> Any:
        """``module`` prepared for calibration, or with its children prepared where it cannot be traced."""
        import torch
        from torch.ao.quantization.quantize_fx import prepare_fx

        example = self.examples.get(name)
        if example is not None:
            # A lone layer is traced inside a Sequential so it becomes a quantized module, not a bare function call.
            target = torch.nn.Sequential(module) if _is_float_compute(module) else module
            mapping = self.mapping if self.make_mapping is None or not name else self.make_mapping(name)
            try:
                prepared = prepare_fx(target, mapping, example)
                self.prepared.append(name)
                return prepared
            except Exception as exc:  # FX raises TraceError, TypeError, RuntimeError... for untraceable code
                reason = f"not traceable: {_first_line(exc)}"
        else:
            reason = "never called on the calibration input"
        children = [(n, c) for n, c in module.named_children() if has_compute_layers(c)]
        if not children:
            self.left_float.append((name or "(model)", f"left in float ({reason})"))
            return module
        self.untraceable.append((name or "(model)", reason))
        for child_name, child in children:
            setattr(module, child_name, self.prepare(child, f"{name}.{child_name}" if name else child_name))
        return module


def _record_example_inputs(module: Any, sample: Any) -> dict[str, tuple[Any, ...]]:
    """The positional arguments each submodule receives on ``sample`` (for tracing parts on their own)."""
    import torch

    seen: dict[str, tuple[Any, ...]] = {"": (sample,)}
    handles = []
    for name, sub in module.named_modules():
        if name:
            def hook(_m: Any, args: tuple[Any, ...], _name: str = name) -> None:
                if _name not in seen and all(isinstance(a, torch.Tensor) for a in args):
                    seen[_name] = tuple(a.detach() for a in args)

            handles.append(sub.register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            module(sample)
    finally:
        for h in handles:
            h.remove()
    return seen


def _convert(module: Any, prepared_names: list[str]) -> Any:
    from torch.ao.quantization.quantize_fx import convert_fx

    if "" in prepared_names:
        return convert_fx(module)
    for name in prepared_names:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, convert_fx(getattr(parent, attr)))
    return module


def quantize_static_fx(
    module: Any, samples: np.ndarray, per_channel: bool, ctx: BuildContext, exclude: tuple[str, ...] = ()
) -> tuple[Any, list[tuple[str, str]], list[tuple[str, str]]]:
    """Static int8 of an eager module calibrated on ``samples``; the modules named in ``exclude`` stay float.

    Returns (module, [(layer, why it stays float)], [(container, why FX could not trace it whole)]).
    """
    import torch

    engine = int8_engine()
    mapping = _qconfig_mapping(engine, per_channel, exclude)
    module = copy.deepcopy(module).eval()
    unknown = [n for n in exclude if n not in dict(module.named_modules())]
    if unknown:
        raise BadInput(f"exclude={';'.join(unknown)}: no such module in the model (names as model.named_modules()).")
    first = torch.from_numpy(np.ascontiguousarray(samples[:1], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        partial = _Partial(mapping, _record_example_inputs(module, first),
                           lambda prefix: _qconfig_mapping(engine, per_channel, _relative(exclude, prefix)))
        prepared = partial.prepare(module, "")
        if not partial.prepared:
            reasons = "; ".join(f"{n}: {r}" for n, r in partial.left_float[:3])
            reasons = reasons or "; ".join(f"{n}: {r}" for n, r in partial.untraceable[:3])
            raise SchemeNotApplicable(f"no part of the model could be traced for static quantization ({reasons})")
        total = len(samples)
        with torch.inference_mode():
            for start in range(0, total, _CALIBRATION_BATCH):
                ctx.cancel.raise_if_cancelled()
                batch = torch.from_numpy(
                    np.ascontiguousarray(samples[start : start + _CALIBRATION_BATCH], dtype=np.float32)
                )
                prepared(batch)
                done = min(total, start + _CALIBRATION_BATCH)
                ctx.progress("calibrating", done, total, f"calibrating {done}/{total}")
        converted = _convert(prepared, partial.prepared)
    return converted, partial.left_float, partial.untraceable


def static_coverage(
    module: Any, left_float: list[tuple[str, str]], untraceable: list[tuple[str, str]], engine: str
) -> dict[str, Any]:
    """Quantized and float compute layers, and the quantize/dequantize steps in the graphs that run."""
    import torch

    quantized: Counter[str] = Counter()
    floats: list[str] = []
    quantize_steps = dequantize_steps = 0
    for name, sub in module.named_modules():
        if _is_quantized_compute(sub):
            quantized[type(sub).__name__] += 1
        elif _is_float_compute(sub):
            floats.append(name)
        if isinstance(sub, torch.fx.GraphModule):
            for node in sub.graph.nodes:
                target = getattr(node.target, "__name__", str(node.target))
                if target in ("quantize_per_tensor", "quantize_per_channel", "quantize_per_tensor_dynamic"):
                    quantize_steps += 1
                elif target == "dequantize":
                    dequantize_steps += 1
    n_q = sum(quantized.values())
    total = n_q + len(floats)
    parts = [
        f"{n_q} of {total} Conv/Linear as int8 kernels ({', '.join(f'{v} {k}' for k, v in sorted(quantized.items()))})"
    ]
    if floats:
        shown = ", ".join(floats[:5]) + (f" and {len(floats) - 5} more" if len(floats) > 5 else "")
        parts.append(f"{len(floats)} left in float ({shown})")
    parts.append(f"{quantize_steps} quantize, {dequantize_steps} dequantize")
    for name, reason in left_float:
        parts.append(f"{name}: {reason}")
    if untraceable:
        names = ", ".join(n for n, _ in untraceable)
        parts.append(
            f"not traceable as a whole: {names} ({untraceable[0][1]}), so their parts were quantized one by one"
        )
    return {
        "summary": "; ".join(parts),
        "graph": f"FX graph modules (quantized engine {engine})",
        "quantized_layers": n_q,
        "float_layers": len(floats),
        "quantized": dict(quantized),
        "float_modules": floats,
        "not_quantized": [{"module": n, "reason": r} for n, r in left_float],
        "untraceable": [{"module": n, "reason": r} for n, r in untraceable],
        "conversions": quantize_steps + dequantize_steps,
        "integer_fraction": n_q / total if total else None,
    }


class TorchInt8Static(Scheme):
    info = SchemeInfo(
        id="torch-int8-static",
        title="PyTorch static int8",
        description="FX graph-mode static int8 for the x86 backend: Conv/BN/ReLU fused, per-channel weights, "
        "activation scales calibrated on dataset samples; untraceable parts stay float and are named.",
        family="pytorch",
        runtime="pytorch",
        needs_calibration=True,
        params=(
            SchemeParam("samples", "200", "calibration samples drawn from the dataset", kind="count"),
            SchemeParam("per_channel", "true", "per-channel weight scales", ("true", "false")),
            SchemeParam("exclude", "", "module names kept in float, separated by ';'"),
        ),
    )

    def applicability(self, model: LoadedModel) -> str | None:
        if model.format is not ModelFormat.TORCH_STATE_DICT:
            return "needs an eager PyTorch model (a state dict with its architecture)"
        if not has_compute_layers(model.handle):
            return "the model has no Conv or Linear layer to quantize"
        return None

    def advice(self, model: LoadedModel, env: dict[str, Any]) -> list[str]:
        from core.runtimes.environment import NO_INT8_DOT_ADVICE, has_int8_dot
        from core.schemes.torch_precision import cpu_flags_of

        notes = []
        flags = cpu_flags_of(env)
        if not has_int8_dot(flags):
            notes.append(NO_INT8_DOT_ADVICE)
        if env.get("device", "cpu") == "cuda":
            notes.append("PyTorch's int8 kernels run on the CPU only: this variant is timed on the CPU")
        return notes

    def build(self, model: LoadedModel, spec: SchemeSpec, ctx: BuildContext) -> BuiltVariant:
        from core.runtimes.torch_runner import TorchRunner
        from core.schemes.torch_schemes import save_state_dict_size

        reason = self.applicability(model)
        if reason:
            raise SchemeNotApplicable(reason)
        check_params(spec, self.info)
        samples_n = int(number_param(spec, self.info, "samples"))
        per_channel = bool_param(spec, "per_channel", True)
        exclude = tuple(n.strip() for n in (spec.param("exclude") or "").split(";") if n.strip())
        samples = ctx.calibration(samples_n)
        if len(samples) == 0:
            raise BadInput(f"{spec.label}: the dataset gave no calibration samples.")
        ctx.progress("building", 0, 2, "tracing and inserting observers")
        qmodule, left_float, untraceable = quantize_static_fx(model.handle, samples, per_channel, ctx, exclude)
        ctx.progress("building", 1, 2, "converting to int8 kernels")
        size, path = save_state_dict_size(qmodule, ctx, "torch_int8_static")
        coverage = static_coverage(qmodule, left_float, untraceable, int8_engine())
        coverage.update({"calibration_samples": len(samples), "per_channel": per_channel})
        if exclude:
            coverage["excluded"] = list(exclude)
        notes = []
        if ctx.device is Device.CUDA:
            notes.append("timed on the CPU: PyTorch's int8 kernels have no CUDA implementation")
        return BuiltVariant(
            runner=TorchRunner(qmodule, ctx.threads, Device.CPU),
            size_bytes=size,
            artifact=path,  # type: ignore[arg-type]
            coverage=coverage,
            notes=notes,
        )


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:160].rstrip(".")
