"""Count what a scheme actually changed, on the graph that will really run."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

from core.printable import counted

# Compute ops by the arithmetic they run. Op types are matched without their domain.
_INT_CONV = {"QLinearConv", "ConvInteger", "NhwcQLinearConv"}
_FLOAT_CONV = {"Conv", "FusedConv", "ConvTranspose", "NhwcConv", "NhwcFusedConv"}
_INT_MATMUL = {
    "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm",
    "MatMulNBits", "QAttention", "DynamicQuantizeLSTM", "QOrderedAttention", "QOrderedMatMul",
}
# Integer element-wise and pooling kernels: not compute-heavy, but they keep data in int8 between layers.
_INT_OTHER = {
    "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
    "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QLinearPool",
}
# Fused transformer attention counts as one MatMul-class op (ONNX Runtime's transformer fusions write these).
_FLOAT_MATMUL = {
    "MatMul", "Gemm", "FusedMatMul", "FusedGemm", "LSTM", "GRU", "Attention", "MultiHeadAttention",
    "GroupQueryAttention", "PackedAttention", "PackedMultiHeadAttention",
}
_CONVERSIONS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "ReorderInput", "ReorderOutput",
}


#: A model file (with its external data) this large or larger is counted from one profiled call: writing its
#: optimized graph out makes ONNX Runtime hold its weights about twice more (a float16 model of 1.1 GB, whose
#: session keeps float32 copies on a CPU without float16 MatMul, peaked at 2.4x the float model that way).
PROFILED_MIN_BYTES = 512 * 2**20


def ort_graph_coverage(model_path: Path, threads: int, workdir: Path, profiled: bool | None = None
                       ) -> dict[str, Any]:
    """Op counts of the session's optimized graph for ``model_path`` (what ONNX Runtime will execute): read
    from the graph the session writes out, or from the nodes one profiled call runs when ``profiled`` (None:
    when the file and its data are PROFILED_MIN_BYTES or more)."""
    import onnx
    import onnxruntime as ort

    from core.models.onnx_model import external_data_files
    from core.runtimes.ort_runner import session_options

    if profiled is None:
        size = model_path.stat().st_size + sum(f.stat().st_size for f in external_data_files(model_path))
        profiled = size >= PROFILED_MIN_BYTES
    if profiled:
        counted_nodes = profiled_op_counts(model_path, threads, workdir)
        if counted_nodes:
            return summarize_op_counts(counted_nodes, "nodes one call of the optimized session ran (ORT_ENABLE_ALL)")

    optimized = workdir / (model_path.stem + ".optimized.onnx")

    def options(level: str) -> Any:
        opts = session_options(threads, optimized, level)
        # The weights are written beside the graph, not into it: only the op counts are read back, and a large
        # model's serialized graph would otherwise hold every weight a second time while it is written.
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                      optimized.name + ".data")
        opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        return opts

    try:
        ort.InferenceSession(str(model_path), sess_options=options("all"), providers=["CPUExecutionProvider"])
        graph_note = "optimized graph (ORT_ENABLE_ALL)"
    except Exception:  # some layout-specific graphs cannot be written out; the extended level always can
        ort.InferenceSession(str(model_path), sess_options=options("extended"), providers=["CPUExecutionProvider"])
        graph_note = "optimized graph (ORT_ENABLE_EXTENDED)"
    model = onnx.load(str(optimized), load_external_data=False)
    counts = Counter(node.op_type for node in model.graph.node)
    with contextlib.suppress(OSError):  # a scratch copy left behind goes with the study's folder
        optimized.unlink()
        for extra in workdir.glob(optimized.name + "*.data"):
            extra.unlink()
    return summarize_op_counts(dict(counts), graph_note)


def profiled_op_counts(model_path: Path, threads: int, workdir: Path) -> dict[str, int] | None:
    """Op counts of the nodes an ORT_ENABLE_ALL session of ``model_path`` runs in one call on zeros (each
    dimension not fixed by the graph set to 1), from ONNX Runtime's profile: the optimized graph's nodes,
    without the session writing that graph and its weights out. None when the call fails."""
    import json

    import numpy as np
    import onnxruntime as ort

    from core.runtimes.ort_runner import ORT_NUMPY_TYPES, kernel_events, session_options

    opts = session_options(threads, level="all")
    opts.enable_profiling = True
    opts.profile_file_prefix = str(workdir / (model_path.stem + ".coverage_profile"))
    profile = None
    try:
        session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in i.shape],
                                  ORT_NUMPY_TYPES.get(i.type, np.float32)) for i in session.get_inputs()}
        session.run(None, feeds)
        profile = Path(session.end_profiling())
        del session
        events = json.loads(profile.read_text())
    except Exception:  # a graph that cannot run on zeros: the written-out graph is counted instead
        return None
    finally:
        if profile is not None:
            profile.unlink(missing_ok=True)
    counts = Counter(str((e.get("args") or {}).get("op_name")) for e in kernel_events(events))
    return dict(counts) or None


def onnx_file_op_counts(model_path: Path) -> dict[str, int]:
    """Op counts of the ONNX file as written (before ONNX Runtime optimizes it); its weights are not read."""
    from core.schemes.onnx_external import load_without_weights

    model = load_without_weights(model_path)
    return dict(Counter(node.op_type for node in model.graph.node))


def summarize_op_counts(counts: dict[str, int], graph_note: str) -> dict[str, Any]:
    int_conv = sum(v for k, v in counts.items() if k in _INT_CONV)
    float_conv = sum(v for k, v in counts.items() if k in _FLOAT_CONV)
    int_mm = sum(v for k, v in counts.items() if k in _INT_MATMUL)
    float_mm = sum(v for k, v in counts.items() if k in _FLOAT_MATMUL)
    int_other = sum(v for k, v in counts.items() if k in _INT_OTHER)
    conversions = {k: v for k, v in counts.items() if k in _CONVERSIONS}
    transposes = counts.get("Transpose", 0)
    compute = int_conv + float_conv + int_mm + float_mm
    integer = int_conv + int_mm
    parts = []
    if integer == 0:
        if compute:
            parts.append(f"all {compute} Conv/MatMul/Gemm in float ({float_conv} Conv, {float_mm} MatMul/Gemm)")
    else:
        if int_conv + float_conv:
            parts.append(f"{int_conv} of {int_conv + float_conv} Conv as integer kernels")
        if int_mm + float_mm:
            parts.append(f"{int_mm} of {int_mm + float_mm} MatMul/Gemm as integer kernels")
    if int_other:
        parts.append(f"{counted(int_other, 'element-wise/pooling op')} in integer")
    if conversions:
        parts.append(", ".join(f"{v} {k}" for k, v in sorted(conversions.items())))
    if transposes:
        parts.append(f"{transposes} Transpose")
    return {
        "summary": "; ".join(parts) if parts else "no Conv/MatMul in the graph",
        "graph": graph_note,
        "ops": dict(sorted(counts.items())),
        "integer_compute_ops": integer,
        "float_compute_ops": compute - integer,
        "conv_integer": int_conv,
        "conv_float": float_conv,
        "matmul_integer": int_mm,
        "matmul_float": float_mm,
        "integer_other_ops": int_other,
        "conversions": sum(conversions.values()),
        "transposes": transposes,
        "integer_fraction": (integer / compute) if compute else None,
    }


def torch_module_coverage(module: Any) -> dict[str, Any]:
    """Count layers of a PyTorch module by kind: quantized, sparse, float."""
    kinds: Counter[str] = Counter()
    quantized: Counter[str] = Counter()
    for sub in module.modules():
        # A TorchScript module's class is RecursiveScriptModule; its original_name is the eager class's.
        name = getattr(sub, "original_name", None) or type(sub).__name__
        qualified = type(sub).__module__
        if "PackedParams" in name:
            continue  # the weight container of a quantized Linear, not a layer of its own
        if "quantized" in qualified:
            quantized[name] += 1
        elif name in ("Conv1d", "Conv2d", "Conv3d", "Linear", "LSTM", "GRU", "ConvTranspose2d", "MultiheadAttention"):
            kinds[name] += 1
    total_q = sum(quantized.values())
    total_f = sum(kinds.values())
    parts = []
    if total_q:
        quantized_kinds = ", ".join(f"{v} {k}" for k, v in sorted(quantized.items()))
        parts.append(f"{total_q} of {counted(total_q + total_f, 'layer')} quantized ({quantized_kinds})")
    if total_f:
        parts.append(f"{total_f} stay float ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))})")
    return {
        "summary": "; ".join(parts) if parts else "no Conv/Linear/RNN layers",
        "graph": "PyTorch module tree",
        "quantized_layers": total_q,
        "float_layers": total_f,
        "quantized": dict(quantized),
        "float": dict(kinds),
        "integer_fraction": total_q / (total_q + total_f) if total_q + total_f else None,
    }
