"""Layer analysis: where a variant loses accuracy and where it spends its time, layer by layer.

``analyse_layers`` compares every intermediate tensor of a variant with the float model's on a few
samples (statistics accumulate batch by batch) and profiles both per node, in runs of their own.
Qt-free; torch and onnxruntime are imported only when a runtime's analysis runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.layers.stats import DEPARTS_BELOW_DB

if TYPE_CHECKING:
    from core.study.spec import SchemeSpec

#: Samples a layer analysis runs on unless told otherwise.
DEFAULT_LAYER_SAMPLES = 64
#: Runtimes with a layer analysis (LiteRT: per-tensor error only; its Python API has no per-op profiler).
SUPPORTED_RUNTIMES = ("onnxruntime", "pytorch", "litert")


def _model_file(model: Any) -> Any:
    """A path (or an ONNX ModelProto) from a path, a ModelProto or a LoadedModel (its file)."""
    if isinstance(model, str | Path) or type(model).__name__ == "ModelProto":
        return model
    path = getattr(model, "path", None)
    return path if path is not None else model


def _torch_module(model: Any) -> Any:
    handle = getattr(model, "handle", None)
    return handle if handle is not None else model


def analyse_layers(
    float_model: Any,
    variant_model: Any,
    runtime: str,
    samples: np.ndarray,
    cancel: Any = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    max_samples: int = DEFAULT_LAYER_SAMPLES,
    threads: int = 1,
    channels_last: bool = False,
    profile: bool = True,
    float_profile: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Per-layer error and per-node time of ``variant_model`` against ``float_model``.

    ``runtime`` is "onnxruntime" (paths or ModelProtos), "pytorch" (modules) or "litert" (a float/int8 pair of
    TFLite files; no profile, LiteRT has no per-op profiler from Python); LoadedModels work for all three.
    The first ``max_samples`` of ``samples`` are used. ``cancel`` (a CancelToken or a callable) is checked
    between batches; ``progress(done, total)`` is called after each. ``float_profile``, when given, is
    reused instead of profiling the float model again (a study profiles it once).

    Returns ``{"layers": [...], "profile": {...} | None, "float_profile": {...} | None, "unmatched": [...],
    "notes": [...]}``; ``layers`` and ``profile`` are the per-variant records of the result JSON.
    """
    samples = np.asarray(samples)[:max_samples]
    if len(samples) == 0:
        raise ValueError("layer analysis needs at least one sample")
    options = {"channels_last": channels_last, "profile": profile, "float_profile": float_profile,
               "cancel": cancel, "progress": progress}
    if runtime == "onnxruntime":
        from core.layers.onnx_layers import analyse_onnx

        return analyse_onnx(_model_file(float_model), _model_file(variant_model), samples, threads=threads,
                            **options)
    if runtime == "pytorch":
        from core.layers.torch_layers import analyse_torch

        return analyse_torch(_torch_module(float_model), _torch_module(variant_model), samples, **options)
    if runtime == "litert":
        from core.layers.litert_layers import analyse_litert

        return analyse_litert(_model_file(float_model), _model_file(variant_model), samples, threads=threads,
                              cancel=cancel, progress=progress, float_profile=float_profile)
    raise ValueError(f"no layer analysis for runtime {runtime!r} (supported: {', '.join(SUPPORTED_RUNTIMES)})")


def count_layers(float_model: Any, runtime: str) -> int:
    """How many layers an analysis of ``float_model`` in ``runtime`` would compare (the same arguments as
    ``analyse_layers``'s float model): ONNX nodes other than shape arithmetic, PyTorch leaf modules, LiteRT
    operators. Cheap: nothing runs, an ONNX file's external weights are not read."""
    if runtime == "onnxruntime":
        import onnx

        from core.layers.onnx_layers import _SKIPPED_OPS

        model = _model_file(float_model)
        graph = (onnx.load(str(model), load_external_data=False) if isinstance(model, str | Path) else model).graph
        return sum(1 for node in graph.node if node.op_type not in _SKIPPED_OPS)
    if runtime == "pytorch":
        from core.layers.torch_layers import _leaves

        return len(_leaves(_torch_module(float_model)))
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        ops = Interpreter(model_path=str(_model_file(float_model)))._get_ops_details()
        return sum(1 for op in ops if op.get("op_name") != "DELEGATE")
    raise ValueError(f"no layer analysis for runtime {runtime!r} (supported: {', '.join(SUPPORTED_RUNTIMES)})")


#: Flipped samples whose own per-layer error a study's layer step records (the window shows them on a click).
FLIPPED_SAMPLES_ANALYSED = 16


def first_departure(layers: list[dict[str, Any]]) -> str | None:
    """The first layer, in model order, whose output departs from the float model (SQNR under DEPARTS_BELOW_DB)."""
    return next((layer["name"] for layer in layers
                 if layer.get("sqnr_db") is not None and layer["sqnr_db"] < DEPARTS_BELOW_DB), None)


def analyse_samples(
    float_model: Any,
    variant_model: Any,
    runtime: str,
    samples: np.ndarray,
    indices: list[int] | None = None,
    cancel: Any = None,
    *,
    threads: int = 1,
    channels_last: bool = False,
) -> list[dict[str, Any]]:
    """Each sample's own per-layer error, float against the variant: ``[{"index", "layers": [{"name", "op_type",
    "sqnr_db", "min_channel_sqnr_db"}], "departs_at"}]`` in the order of ``samples`` (``indices`` name them,
    e.g. their places in the dataset; 0, 1, ... when not given). ``departs_at`` is the first layer under
    DEPARTS_BELOW_DB, or None. No profiling; the models are loaded (sessions made) once for all samples.
    """
    samples = np.asarray(samples)
    indices = list(range(len(samples))) if indices is None else [int(i) for i in indices]
    if len(indices) != len(samples):
        raise ValueError(f"{len(indices)} indices for {len(samples)} samples")
    if runtime == "onnxruntime":
        from core.layers.onnx_layers import compare_samples

        per_sample = compare_samples(_model_file(float_model), _model_file(variant_model), samples,
                                     threads=threads, channels_last=channels_last, cancel=cancel)
    elif runtime == "litert":
        from core.layers.litert_layers import analyse_litert

        per_sample = analyse_litert(_model_file(float_model), _model_file(variant_model), samples, threads=threads,
                                    cancel=cancel, per_sample=True)["samples"]
    elif runtime == "pytorch":
        from core.layers.torch_layers import compare_modules

        per_sample = [compare_modules(_torch_module(float_model), _torch_module(variant_model), samples[i:i + 1],
                                      channels_last=channels_last, cancel=cancel, weights=False)[0]
                      for i in range(len(samples))]
    else:
        raise ValueError(f"no per-sample layer analysis for runtime {runtime!r} "
                         f"(supported: {', '.join(SUPPORTED_RUNTIMES)})")
    records = []
    for index, layers in zip(indices, per_sample, strict=True):
        kept = [{"name": layer["name"], "op_type": layer["op_type"],
                 "sqnr_db": layer["activation"]["sqnr_db"],
                 "min_channel_sqnr_db": layer["activation"]["min_channel_sqnr_db"]} for layer in layers]
        records.append({"index": index, "layers": kept, "departs_at": first_departure(kept)})
    return records


def analyse_sample(float_model: Any, variant_model: Any, runtime: str, sample: np.ndarray, index: int = 0,
                   cancel: Any = None, *, threads: int = 1, channels_last: bool = False) -> dict[str, Any]:
    """One sample's per-layer error (``analyse_samples`` for one input, without its batch axis)."""
    return analyse_samples(float_model, variant_model, runtime, np.asarray(sample)[None], [index], cancel,
                           threads=threads, channels_last=channels_last)[0]


#: Schemes whose ``exclude=`` parameter leaves a layer in float: ONNX Runtime node names, PyTorch FX module names.
EXCLUDABLE_SCHEMES = ("ort-int8-static", "torch-int8-static")


def keep_in_float(scheme_id: str, params: dict[str, str] | tuple[tuple[str, str], ...], layer: str) -> SchemeSpec:
    """The scheme ``scheme_id`` with ``params`` and ``layer`` added to its ``exclude=`` list (kept in float).

    ``layer`` is a layer record's name (a repeated module call's ``#k`` is dropped). ValueError for a scheme that
    cannot leave a layer in float, or a name the parameter syntax cannot carry (',' or ';').
    """
    from core.study.spec import SchemeSpec

    if scheme_id not in EXCLUDABLE_SCHEMES:
        raise ValueError(f"{scheme_id} cannot keep a layer in float (only {', '.join(EXCLUDABLE_SCHEMES)} can)")
    name = layer.split("#", 1)[0].strip()
    if not name or "," in name or ";" in name:
        raise ValueError(f"layer {layer!r} cannot be named in exclude= (empty, or holding ',' or ';')")
    pairs = tuple(params.items()) if isinstance(params, dict) else tuple(params)
    kept = [n.strip() for value in (v for k, v in pairs if k == "exclude") for n in value.split(";") if n.strip()]
    if name not in kept:
        kept.append(name)
    return SchemeSpec(scheme_id, (*((k, v) for k, v in pairs if k != "exclude"), ("exclude", ";".join(kept))))
