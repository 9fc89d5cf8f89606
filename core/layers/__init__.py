"""Layer analysis: where a variant loses accuracy and where it spends its time, layer by layer.

``analyse_layers`` compares every intermediate tensor of a variant with the float model's on a few
samples (statistics accumulate batch by batch) and profiles both per node, in runs of their own.
Qt-free; torch and onnxruntime are imported only when a runtime's analysis runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Samples a layer analysis runs on unless told otherwise.
DEFAULT_LAYER_SAMPLES = 64
#: Runtimes with a layer analysis; LiteRT's Python API has no per-op profiler and is not covered yet.
SUPPORTED_RUNTIMES = ("onnxruntime", "pytorch")
LITERT_NOTE = ("LiteRT: per-layer error is not analysed yet, and LiteRT's Python API has no per-op profiler, "
               "so there is no time per layer")


def _onnx_source(model: Any) -> Any:
    """A path or ModelProto from a path, a ModelProto or a LoadedModel (its file)."""
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

    ``runtime`` is "onnxruntime" (paths or ModelProtos) or "pytorch" (modules); LoadedModels work for both.
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

        return analyse_onnx(_onnx_source(float_model), _onnx_source(variant_model), samples, threads=threads,
                            **options)
    if runtime == "pytorch":
        from core.layers.torch_layers import analyse_torch

        return analyse_torch(_torch_module(float_model), _torch_module(variant_model), samples, **options)
    if runtime == "litert":
        return {"layers": [], "profile": None, "float_profile": float_profile, "unmatched": [],
                "notes": [LITERT_NOTE]}
    raise ValueError(f"no layer analysis for runtime {runtime!r} (supported: {', '.join(SUPPORTED_RUNTIMES)})")
