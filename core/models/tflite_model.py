"""Load TFLite / LiteRT flatbuffers and count what their graph computes in.

The model's own interface may be int8 or uint8 (a fully integer model). QuantBench
always feeds real values: the LiteRT runner quantizes inputs and dequantizes
outputs with the model's own scale and zero point, so the loaded model reports a
float32 interface and says in its notes how the conversion is done.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo

#: Ops that do the model's arithmetic; their first input's type says which kernel runs.
COMPUTE_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D",
    "CONV_3D_TRANSPOSE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "SVDF", "EMBEDDING_LOOKUP",
})
#: Ops that only move values between integer and float.
CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "CAST"})
_INTEGER_TYPES = frozenset({"INT8", "UINT8", "INT16", "INT4"})


def load_tflite(path: Path) -> LoadedModel:
    """A TFLite file as a LoadedModel with a real-valued (float32) interface; BadInput names what is wrong."""
    graph = read_graph(path)
    details = _interpreter_details(path)
    inputs = [_tensor_info(d) for d in details["inputs"]]
    vocab = _gather_vocab(path)
    inputs = [replace(t, vocab=vocab[t.name]) if t.name in vocab else t for t in inputs]
    outputs = [_tensor_info(d) for d in details["outputs"]]
    notes = [f"TFLite schema version {graph['version']}"]
    for role, items in (("input", details["inputs"]), ("output", details["outputs"])):
        for d in items:
            note = _interface_note(role, d)
            if note:
                notes.append(note)
    first = details["inputs"][0]
    if int(_signature(first)[0]) != -1:
        notes.append(
            f"batch dimension fixed at {int(first['shape'][0])}: batches are run by resizing the input "
            "when the model allows it, otherwise sample by sample"
        )
    return LoadedModel(
        path=path,
        format=ModelFormat.TFLITE,
        inputs=inputs,
        outputs=outputs,
        params=graph["params"],
        file_bytes=path.stat().st_size,
        handle=str(path),
        notes=notes,
    )


def read_graph(path: Path) -> dict[str, Any]:
    """The first subgraph of a TFLite file: op names with their input types, and the parameter count."""
    from ai_edge_litert import schema_py_generated as schema

    from core.models.tflite_check import check_tflite_structure

    data = path.read_bytes()
    if not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise BadInput(f"{path} is not a TFLite flatbuffer (its identifier is not TFL3).")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise BadInput(f"{path} is a TFLite file without any subgraph.")
        # Before anything indexes by the file's numbers, and before the interpreter, which trusts them.
        check_tflite_structure(path, model, schema)
        op_names = [_op_name(schema, model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
        type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
        sub = model.Subgraphs(0)
        tensors = [sub.Tensors(i) for i in range(sub.TensorsLength())]
        types = [type_names.get(t.Type(), str(t.Type())) for t in tensors]
        ops = []
        weights: set[int] = set()
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            ins = [int(j) for j in op.InputsAsNumpy()] if op.InputsLength() else []
            name = op_names[op.OpcodeIndex()]
            ops.append({
                "op": name,
                "input_type": types[ins[0]] if ins and ins[0] >= 0 else None,
                "weight_type": types[ins[1]] if len(ins) > 1 and ins[1] >= 0 else None,
            })
            for j in ins:
                # Parameters: constants of the compute ops, and float constants anywhere (scales, offsets);
                # integer constants of other ops are shapes, axes and paddings.
                if j >= 0 and _is_constant(model, tensors[j]) and (name in COMPUTE_OPS or types[j].startswith("FLOAT")):
                    weights.add(j)
        params = sum(_numel(tensors[j]) for j in weights)
        version = model.Version()
    except BadInput:
        raise
    except Exception as exc:  # a damaged flatbuffer fails anywhere while walking it
        raise BadInput(
            f"{path} could not be read as a TFLite model ({type(exc).__name__}); it may be truncated."
        ) from None
    return {"ops": ops, "params": params, "version": version}


def tflite_coverage(path: Path) -> dict[str, Any]:
    """What a TFLite graph computes in: integer or float kernels, conversions and transposes.

    The keys match ``core.schemes.coverage.summarize_op_counts`` so the table, the engine and
    ``core.engine.explain`` read TFLite variants like ONNX ones.
    """
    ops = read_graph(path)["ops"]
    counts = Counter(o["op"] for o in ops)
    compute = [o for o in ops if o["op"] in COMPUTE_OPS]
    integer = [o for o in compute if o["input_type"] in _INTEGER_TYPES]
    hybrid = [o for o in compute if o not in integer and o["weight_type"] in _INTEGER_TYPES]
    conversions = sum(v for k, v in counts.items() if k in CONVERSION_OPS)
    transposes = counts.get("TRANSPOSE", 0)
    kinds = "/".join(sorted({o["op"] for o in compute})) or "compute ops"
    parts = []
    if not compute:
        parts.append("no Conv/FullyConnected/MatMul in the graph")
    elif integer:
        parts.append(f"{len(integer)} of {len(compute)} {kinds} as integer kernels")
    elif hybrid:
        parts.append(f"{len(hybrid)} of {len(compute)} {kinds} with int8 weights and float activations")
    else:
        parts.append(f"all {len(compute)} {kinds} in float")
    if conversions:
        parts.append(", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k in CONVERSION_OPS))
    if transposes:
        parts.append(f"{transposes} TRANSPOSE")
    return {
        "summary": "; ".join(parts),
        "graph": "TFLite subgraph 0 (as the interpreter runs it)",
        "ops": dict(sorted(counts.items())),
        "integer_compute_ops": len(integer),
        "float_compute_ops": len(compute) - len(integer),
        "weight_only_ops": len(hybrid),
        "conversions": conversions,
        "transposes": transposes,
        "integer_fraction": len(integer) / len(compute) if compute else None,
    }


def _op_name(schema: Any, code: Any) -> str:
    # Codes above 127 live in BuiltinCode; older files only fill DeprecatedBuiltinCode.
    value = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    if names.get(value) == "CUSTOM":
        custom = code.CustomCode()
        return f"CUSTOM:{custom.decode('utf-8', 'replace')}" if custom else "CUSTOM"
    return names.get(value, f"OP{value}")


def _is_constant(model: Any, tensor: Any) -> bool:
    index = tensor.Buffer()
    if index <= 0 or index >= model.BuffersLength():
        return False
    buf = model.Buffers(index)
    # Models over 2 GB keep their data after the flatbuffer (offset > 1 marks a real location).
    return buf.DataLength() > 0 or (buf.Offset() > 1 and buf.Size() > 0)


def _numel(tensor: Any) -> int:
    n = 1
    for d in tensor.ShapeAsNumpy() if tensor.ShapeLength() else []:
        n *= max(int(d), 1)
    return n


def _interpreter_details(path: Path) -> dict[str, list[dict[str, Any]]]:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    except UnicodeDecodeError:
        raise BadInput(f"{path} has tensor names that are not valid text; the TFLite file is damaged.") from None
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        reason = text[0][:200] if text else type(exc).__name__
        raise BadInput(f"{path} could not be opened by the LiteRT interpreter ({reason}).") from None
    if not inputs or not outputs:
        raise BadInput(f"{path} has no inputs or no outputs.")
    return {"inputs": inputs, "outputs": outputs}


def _signature(detail: dict[str, Any]) -> list[int]:
    sig = detail.get("shape_signature")
    if sig is None or len(sig) != len(detail["shape"]):
        sig = detail["shape"]
    return [int(d) for d in sig]


def _gather_vocab(path: Path) -> dict[str, int]:
    """Integer graph inputs that index a constant table (GATHER or EMBEDDING_LOOKUP): the table's rows."""
    try:
        from ai_edge_litert import schema_py_generated as s

        model = s.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    except Exception:  # noqa: BLE001 - the file already loaded; no vocabulary is all this can cost
        return {}
    sub = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    lookups = {s.BuiltinOperator.GATHER: (0, 1), s.BuiltinOperator.EMBEDDING_LOOKUP: (1, 0)}
    inputs = set(sub.inputs if sub.inputs is not None else [])
    vocab: dict[str, int] = {}
    for op in sub.operators or []:
        roles = lookups.get(codes[op.opcodeIndex])
        if roles is None or op.inputs is None or len(op.inputs) < 2:
            continue
        table, ids = sub.tensors[op.inputs[roles[0]]], op.inputs[roles[1]]
        data = model.buffers[table.buffer].data if table.buffer < len(model.buffers) else None
        if ids in inputs and data is not None and len(data) and table.shape is not None and len(table.shape) >= 1:
            name = sub.tensors[ids].name
            vocab[name.decode() if isinstance(name, bytes) else str(name)] = int(table.shape[0])
    return vocab


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    import numpy as np

    sig = _signature(detail)
    dims: tuple[int | str | None, ...] = ()
    if sig:
        dims = ("batch", *(None if d < 0 else d for d in sig[1:]))
    dtype = np.dtype(detail["dtype"])
    scale, _ = detail.get("quantization", (0.0, 0))
    # A quantized tensor is fed and read as real values (see LiteRTRunner).
    name = "float32" if dtype.kind in "iu" and scale else dtype.name
    return TensorInfo(name=str(detail["name"]), shape=dims, dtype=name)


def _interface_note(role: str, detail: dict[str, Any]) -> str | None:
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind not in "iu" or not scale:
        return None
    verb = "quantized to" if role == "input" else "dequantized from"
    return (
        f"{role} '{detail['name']}' is {dtype.name}: real values are {verb} it with the model's own "
        f"scale {scale:.6g} and zero point {int(zero)}"
    )
