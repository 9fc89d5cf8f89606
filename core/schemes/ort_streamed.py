"""The ONNX Runtime schemes' path for large models and transformers: the weights stay in external data and are
read one at a time as they are quantized or halved, so the float weights are never all in memory at once
(core.schemes.onnx_external makes the external copy). ``ort_schemes`` and ``ort_static`` decide which path a model
takes (``is_large``)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.models.loaded import LoadedModel
from core.schemes.base import BuildContext
from core.schemes.ort_calls import current_directory, quiet

#: A model this large (file and external data) is quantized to dynamic int8 from its external data, weight by
#: weight, like a transformer: ONNX Runtime's quant_pre_process holds such a model several times over, and fails
#: outright on one over protobuf's 2 GB whose weights are already external.
STREAMED_MIN_BYTES = 512 * 2**20


def is_large(model: Any) -> bool:
    """Whether ``model`` (a LoadedModel) takes the streamed path: a file of STREAMED_MIN_BYTES or more."""
    return (model.file_bytes or 0) >= STREAMED_MIN_BYTES

#: Why dynamic int8 skips ONNX Runtime's quant_pre_process on a transformer or a large model (measured on a
#: BERT-base-shaped encoder: the same 50 of 74 MatMul quantized with and without it; the pre-processing alone
#: peaked at 6x the file).
SKIPPED_PRE_PROCESS_NOTE = (
    "quant_pre_process skipped: on a transformer or a model of 512 MB or more it holds the weights several times "
    "over, while what dynamic int8 quantizes does not change (on a BERT-shaped encoder, the same MatMul run as "
    "integer kernels with and without it); the weights were quantized one at a time from external data"
)


def over_tokens(model: LoadedModel) -> bool:
    """Whether ``model`` reads token ids or several inputs (a transformer, for the schemes' purposes)."""
    return len(model.inputs) > 1 or any(t.vocab for t in model.inputs)


def external_float(src: Path, ctx: BuildContext) -> Path:
    """``src`` with its weights in external data (core.schemes.onnx_external), made once per study: what a
    quantizer loads without its weights, reading each one when it quantizes it."""
    from core.schemes.onnx_external import external_copy

    key = f"onnx_external:{src.resolve()}"
    cached = ctx.shared.get(key)
    if cached is None:
        ctx.shared[key] = cached = str(external_copy(src, ctx.workdir.parent))
    return Path(cached)


def quantize_dynamic_external(src: Path, out: Path, ctx: BuildContext, per_channel: bool) -> None:
    """quantize_dynamic on a proto whose weights stay on disk: ONNX Runtime's quantizer reads each weight when
    it quantizes it (onnx's to_array reads external data relative to the working directory), so the float
    weights are never all in memory; what stays float is read into the output afterwards."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from core.schemes.onnx_external import save_self_contained
    from core.schemes.onnx_opset import MIN_OPSET_INT8_DYNAMIC, ensure_opset

    ext = ensure_opset(external_float(src, ctx), MIN_OPSET_INT8_DYNAMIC, ctx.workdir.parent, "ort-int8-dynamic",
                       ctx.shared)
    proto = onnx.load(str(ext), load_external_data=False)
    raw = ctx.workdir / "ort_int8_dynamic_raw.onnx"
    with current_directory(ext.parent), _shape_inference_without_weights(ext.parent):
        quiet(quantize_dynamic, proto, str(raw), weight_type=QuantType.QInt8, per_channel=per_channel)
    del proto
    try:
        quantized = onnx.load(str(raw), load_external_data=False)
        save_self_contained(quantized, ext.parent, out)
    finally:
        raw.unlink(missing_ok=True)


@contextlib.contextmanager
def _shape_inference_without_weights(folder: Path) -> Iterator[None]:
    """While quantizing: ONNX Runtime's quantizer re-infers shapes by deep-copying the model and reloading it
    from a temporary folder, which would copy every weight (and lose external ones, whose data file is not
    there); shape inference needs no weight, so it runs here on the proto as it is, saved in ``folder``."""
    from importlib import import_module
    from unittest import mock

    import onnx
    from onnxruntime.quantization import quant_utils

    def reload_with_shapes(model: Any) -> Any:
        path = folder / "quantizer_shapes.onnx"
        try:
            onnx.save(model, str(path))
            onnx.shape_inference.infer_shapes_path(str(path), str(path))
            inferred = onnx.load(str(path), load_external_data=False)
        finally:
            path.unlink(missing_ok=True)
        quant_utils.add_infer_metadata(inferred)
        return inferred

    with contextlib.ExitStack() as stack:
        for name in ("quantize", "onnx_quantizer", "base_quantizer"):
            module = import_module(f"onnxruntime.quantization.{name}")
            stack.enter_context(mock.patch.object(module, "save_and_reload_model_with_shape_infer", reload_with_shapes))
        yield


#: What a large model's float16 conversion does differently (OrtFp16.build).
STREAMED_FP16_NOTE = (
    "the model is 512 MB or more: its graph was converted without its weights, then each weight was read from "
    "external data, converted to float16 and written in turn, so the float weights were never all in memory"
)


#: Values halved at a time (16 MB of float32).
HALVE_CHUNK_VALUES = 4 * 2**20


def halve_external_weights(model: Any, folder: Path) -> None:
    """Fill in the weights of ``model`` (converted to float16 without them: its initializers still point at the
    float32 bytes in ``folder``'s external data), one at a time: those the converter made float16 are read,
    converted as it converts (values clamped to its finite range, tiny ones kept off zero) and stored inline;
    those it kept float32 are read as they are."""
    import numpy as np
    from onnx import TensorProto
    from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data
    from onnxconverter_common.float16 import convert_np_to_float16

    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        if tensor.data_type != TensorProto.FLOAT16:
            load_external_data_for_tensor(tensor, str(folder))
        else:
            info = ExternalDataInfo(tensor)
            left = int(np.prod(tensor.dims, dtype=np.int64))
            halves = bytearray()
            # In chunks: the converter's clamping makes several float32 temporaries the size of what it is given.
            with (folder / info.location).open("rb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # it warns for every value it clamps
                f.seek(info.offset or 0)
                while left:
                    count = min(left, HALVE_CHUNK_VALUES)
                    halves += convert_np_to_float16(np.frombuffer(f.read(count * 4), dtype=np.float32)).tobytes()
                    left -= count
            tensor.raw_data = bytes(halves)
            del halves
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT


#: What a large model's static int8 does differently (OrtInt8Static.build).
LARGE_STATIC_NOTE = (
    "quant_pre_process skipped: the model is 512 MB or more, and the pre-processing fails on weights kept in "
    "external data and holds a large model several times over; its graph optimizations (e.g. folded BatchNorm) "
    "are left to ONNX Runtime's session. Calibrated on one session of the float model reading its weights from "
    "external data, then the weights were quantized one at a time"
)


def quantize_static_external(
    ext: Path, out: Path, reader: Any, chunk: int, op_types: list[str] | None, options: dict[str, Any],
    calibrate_method: Any, cache: Path,
) -> None:
    """quantize_static on a model whose weights stay in ``ext``'s external data: the float weights are never
    in Python's memory, and only ONNX Runtime's calibration session reads them all.

    ONNX Runtime's own quantize_static loads the whole model, saves the calibration graph with a copy of
    every weight and opens a session on it beside the loaded model (3.1x the model at 2.2 GB). Here the
    calibrator's graph is the weightless proto, saved beside the data file so its session reads the weights
    from there; the ranges it finds are handed to quantize_static as a calibration cache, so it never
    calibrates, and its quantizer reads each weight when it quantizes it (as in quantize_dynamic_external).
    ``options``: quantize_static's keyword arguments other than the calibration's; ``cache``: the ranges' file,
    written here unless it is already there (calibrated the same way earlier in the study)."""
    from unittest import mock

    import onnx
    from onnxruntime.quantization import calibrate, create_calibrator, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    folder = ext.parent
    augmented = folder / "calibration_augmented.onnx"

    def weightless_with_shapes(path: Path) -> Any:
        inferred = folder / "calibration_shapes.onnx"
        try:
            onnx.shape_inference.infer_shapes_path(str(path), str(inferred))
            model = onnx.load(str(inferred), load_external_data=False)
        finally:
            inferred.unlink(missing_ok=True)
        from onnxruntime.quantization.quant_utils import add_infer_metadata

        add_infer_metadata(model)
        return model

    # quantize_static calibrates every op type its quantizers know when none is named; so does this.
    calibrated_types = op_types or sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    try:
        if not cache.exists():
            with mock.patch.object(calibrate, "load_model_with_shape_infer", weightless_with_shapes):
                calibrator = create_calibrator(ext, calibrated_types, augmented_model_path=str(augmented),
                                               calibrate_method=calibrate_method,
                                               extra_options={"moving_average": False})
            for start in range(0, len(reader), chunk):  # as quantize_static's CalibStridedMinMax
                reader.set_range(start_index=start, end_index=start + chunk)
                calibrator.collect_data(reader)
            ranges = calibrator.compute_data()
            del calibrator  # its session, and the float weights it read
            save_tensors_data(ranges, cache)
            del ranges
        proto = onnx.load(str(ext), load_external_data=False)
        raw = out.parent / "ort_int8_static_raw.onnx"
        with current_directory(folder), _shape_inference_without_weights(folder):
            quiet(quantize_static, proto, str(raw), None, calibration_cache_path=str(cache),
                  calibrate_method=calibrate_method, op_types_to_quantize=op_types, **options)
        del proto
        from core.schemes.onnx_external import save_self_contained

        quantized = onnx.load(str(raw), load_external_data=False)
        save_self_contained(quantized, folder, out)
    finally:
        for leftover in (augmented, out.parent / "ort_int8_static_raw.onnx"):
            leftover.unlink(missing_ok=True)
