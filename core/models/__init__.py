"""Model loading, by content: ``load_model(ModelSpec) -> LoadedModel``."""

from __future__ import annotations

from pathlib import Path

from core.errors import BadInput
from core.models.detect import FileKind, detect_file
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo
from core.study.spec import ModelSpec

__all__ = ["LoadedModel", "ModelFormat", "TensorInfo", "load_model", "detect_file", "FileKind"]


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load the file ``spec.path`` whatever its extension says; BadInput names the file and the problem.

    Of several outputs, the one carrying the prediction is chosen (``spec.output``, else when unambiguous:
    core.models.io_spec.choose_output); when it cannot be, ``output_problem`` says why and the engine refuses
    the study with that sentence (the window still shows the model, to choose one)."""
    from core.models.io_spec import choose_output

    model = _load_model(spec)
    model.output_index, model.output_problem = choose_output(model.outputs, spec.output)
    return model


def _load_model(spec: ModelSpec) -> LoadedModel:
    path = Path(spec.path).expanduser()
    if spec.path.strip().startswith("torchvision:") and not path.exists():
        from core.models.torch_model import load_torchvision

        return load_torchvision(spec.path.strip(), spec.input_shape)
    from core.models.hf_model import is_hf_folder

    if is_hf_folder(path):
        from core.models.hf_model import load_hf_folder

        return load_hf_folder(path)
    kind = detect_file(path)
    # Trust is the driver's word, taken from the user's trust list (core.files.trust); never read here.
    trusted = spec.trusted
    if kind is FileKind.ONNX:
        from core.models.onnx_model import load_onnx

        return load_onnx(path)
    if kind in (FileKind.TORCH_ZIP, FileKind.TORCH_LEGACY):
        from core.models.torch_model import load_state_dict_model

        return load_state_dict_model(path, spec.arch, spec.input_shape)
    if kind is FileKind.TORCHSCRIPT:
        from core.models.torch_model import load_torchscript

        return load_torchscript(path, trusted, spec.input_shape)
    if kind is FileKind.TORCH_EXPORT:
        from core.models.torch_model import load_torch_export

        return load_torch_export(path, trusted, spec.input_shape)
    if kind is FileKind.TFLITE:
        from core.models.tflite_model import load_tflite

        return load_tflite(path)
    raise BadInput(f"{path}: unsupported model format {kind.value}.")
