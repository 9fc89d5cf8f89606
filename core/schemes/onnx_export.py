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
