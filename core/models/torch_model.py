"""Load PyTorch files: state dicts (safely, weights only), TorchScript and torch.export (trusted only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "weights")


def load_state_dict_model(path: Path, arch: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
    """A ``torch.save``-d state dict paired with an architecture; loaded with ``weights_only=True``."""
    import torch

    from core.models.architectures import build_architecture, default_input_shape

    state = safe_torch_load(path)
    state = _unwrap_state_dict(path, state)
    if arch is None:
        raise BadInput(
            f"{path} is a PyTorch state dict (weights without code): name its architecture with --arch "
            "(demo, or torchvision:NAME such as torchvision:resnet18)."
        )
    module = build_architecture(arch)
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        mismatch = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), _first_line(exc))
        raise BadInput(f"{path} does not fit architecture {arch!r}: {mismatch.rstrip('.')}.") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} keys such as {result.missing_keys[0]!r}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys such as {result.unexpected_keys[0]!r}")
    if problems:
        raise BadInput(f"{path} does not fit architecture {arch!r}: " + "; ".join(problems) + ".")
    module.eval()
    shape = tuple(input_shape) if input_shape else default_input_shape(arch)
    return _torch_loaded(path, ModelFormat.TORCH_STATE_DICT, module, shape, arch)


def safe_torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``, always; a refusal names the offending global."""
    import pickle

    import torch

    # This variable would make torch ignore weights_only; a stranger's file must never get that.
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        raise BadInput(f"{path} was refused: {_weights_only_reason(exc)}; it is not loaded unsafely.") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as exc:
        raise BadInput(f"{path} could not be read as a PyTorch file ({_first_line(exc)}); it may be truncated.") from None


def _weights_only_reason(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if "Unsupported global" in line or "GLOBAL" in line:
            return "it needs code to load (" + line.split("WeightsUnpickler error:")[-1].strip().rstrip(".") + ")"
    return "it holds something other than plain weights (" + _first_line(exc) + ")"


def _unwrap_state_dict(path: Path, obj: Any) -> dict[str, Any]:
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise BadInput(f"{path} is a PyTorch file but not a state dict of tensors (found {type(obj).__name__}).")


def load_torchscript(path: Path, trusted: bool, input_shape: tuple[int, ...] | None) -> LoadedModel:
    import torch

    if not trusted:
        raise BadInput(
            f"{path} is a TorchScript archive, which contains code that would run on this machine; "
            f"open it only if you trust it (--trust {path})."
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise BadInput(f"{path} could not be loaded as TorchScript ({_first_line(exc)}).") from None
    module.eval()
    return _torch_loaded(path, ModelFormat.TORCHSCRIPT, module, input_shape, None)


def load_torch_export(path: Path, trusted: bool, input_shape: tuple[int, ...] | None) -> LoadedModel:
    import torch

    if not trusted:
        raise BadInput(
            f"{path} is a torch.export program, which can carry code and custom ops; "
            f"open it only if you trust it (--trust {path})."
        )
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadInput(f"{path} could not be loaded as a torch.export program ({_first_line(exc)}).") from None
    module = program.module()
    shape = input_shape
    if shape is None:
        example = program.example_inputs
        if example and example[0]:
            shape = tuple(example[0][0].shape)
    return _torch_loaded(path, ModelFormat.TORCH_EXPORT, module, shape, None)


def _torch_loaded(
    path: Path, fmt: ModelFormat, module: Any, input_shape: tuple[int, ...] | None, arch: str | None
) -> LoadedModel:
    import torch

    params = sum(int(p.numel()) for p in module.parameters())
    if input_shape is None:
        inputs = [TensorInfo("input", ("batch",), "float32")]
        outputs = [TensorInfo("output", ("batch",), "float32")]
        notes = ["input shape unknown: give --input-shape or a dataset that sets it"]
    else:
        sample = tuple(input_shape)
        batch_shape: tuple[int | str | None, ...] = ("batch", *sample[1:])
        inputs = [TensorInfo("input", batch_shape, "float32")]
        try:
            with torch.inference_mode():
                out = module(torch.zeros((1, *sample[1:]), dtype=torch.float32))
        except Exception as exc:
            raise BadInput(f"{path} does not run on an input of shape {list(sample)} ({_first_line(exc)}).") from None
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = next(iter(out.values()))
        outputs = [TensorInfo("output", ("batch", *tuple(out.shape[1:])), "float32")]
        notes = []
    return LoadedModel(
        path=path,
        format=fmt,
        inputs=inputs,
        outputs=outputs,
        params=params,
        file_bytes=path.stat().st_size,
        handle=module,
        arch=arch,
        notes=notes,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".")[:200] if text else type(exc).__name__
