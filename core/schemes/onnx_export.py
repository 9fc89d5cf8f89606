"""Get an ONNX file for a model: the file itself, or a PyTorch model exported once per study."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from core.errors import BadInput, SchemeNotApplicable
from core.models.loaded import LoadedModel, ModelFormat
from core.schemes.base import BuildContext

OPSET = 17


def ensure_onnx(model: LoadedModel, ctx: BuildContext) -> Path:
    """The float ONNX file every ONNX Runtime scheme starts from (exported once, then shared)."""
    if model.format is ModelFormat.ONNX:
        return Path(model.path)
    if not model.format.is_torch:
        raise SchemeNotApplicable(f"{model.format.value} models cannot be converted to ONNX here.")
    cached = ctx.shared.get("onnx_fp32")
    if cached is not None:
        return Path(cached)
    path = ctx.workdir.parent / "exported_fp32.onnx"
    export_torch_to_onnx(model, path)
    ctx.shared["onnx_fp32"] = str(path)
    return path


def export_torch_to_onnx(model: LoadedModel, path: Path) -> None:
    """Export with a dynamic batch axis into one self-contained file."""
    import torch

    if len(model.inputs) > 1 or model.input.vocab:
        _export_token_model(model, path)
        return
    sample = model.input.shape[1:]
    if not sample or any(not isinstance(d, int) for d in sample):
        raise BadInput(
            f"{model.path}: the input shape is unknown, so the model cannot be exported to ONNX; give --input-shape."
        )
    example = torch.zeros((1, *sample), dtype=torch.float32)
    module = model.handle
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated but is fast and writes one file;
            # the dynamo exporter is the fallback.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )
    except Exception:
        # The dynamo exporter reports its progress on stdout, which is the comparison table's.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, (example,), dynamo=True, input_names=["input"], output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
            program.save(str(path), external_data=False)


#: Tokens per sample of the example a model over tokens is exported with (its sequence axis stays dynamic).
EXPORT_SEQUENCE = 8


def _export_token_model(model: LoadedModel, path: Path) -> None:
    """Export a model over named inputs (token ids, masks): the inputs and outputs keep their names and
    dtypes, and the batch and (where open) the sequence axes stay dynamic."""
    import torch

    from core.models.io_spec import is_mask_name

    examples = []
    dynamic: dict[str, dict[int, str]] = {}
    for info in model.inputs:
        dims = [d if isinstance(d, int) else EXPORT_SEQUENCE for d in info.sample_shape]
        dtype = torch.float32 if info.dtype.startswith("float") else torch.int64
        make = torch.ones if is_mask_name(info.name) else torch.zeros
        examples.append(make((2, *dims), dtype=dtype))
        dynamic[info.name] = {0: "batch", **{i + 1: "sequence" for i, d in enumerate(info.sample_shape)
                                             if not isinstance(d, int)}}
    for out in model.outputs:
        dynamic[out.name] = {0: "batch", **{i: "sequence" for i, d in enumerate(out.shape) if d == "sequence"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.handle, tuple(examples), str(path), dynamo=False, opset_version=OPSET,
                input_names=[t.name for t in model.inputs], output_names=[t.name for t in model.outputs],
                dynamic_axes=dynamic,
            )
    except Exception as exc:
        try:  # the dynamo exporter handles what the TorchScript one cannot (e.g. Hugging Face models)
            _export_token_model_dynamo(model, examples, dynamic, path)
        except Exception:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            why = lines[0] if lines else type(exc).__name__
            raise BadInput(f"{model.path}: could not be exported to ONNX ({why}).") from None


def _export_token_model_dynamo(model: LoadedModel, examples: list, dynamic: dict[str, dict[int, str]],
                               path: Path) -> None:
    import torch

    dims = {"batch": torch.export.Dim("batch"), "sequence": torch.export.Dim("sequence", min=2)}
    shapes = tuple({axis: dims[name] for axis, name in dynamic[t.name].items()} for t in model.inputs)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model.handle, tuple(examples), dynamo=True, input_names=[t.name for t in model.inputs],
            output_names=[t.name for t in model.outputs], dynamic_shapes=shapes,
        )
        program.save(str(path), external_data=False)
