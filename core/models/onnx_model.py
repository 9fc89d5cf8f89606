"""Load ONNX models, with external data checked to stay inside the model's folder."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import BadInput
from core.models.dims import readable_shape
from core.models.loaded import LoadedModel, ModelFormat, TensorInfo


def load_onnx(path: Path) -> LoadedModel:
    import onnx

    from core.models.limits import check_claim

    check_claim(path, "reading the file", path.stat().st_size)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have many types
        raise BadInput(
            f"{path} could not be read as ONNX ({_first_line(exc)}); the file is truncated or not ONNX."
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise BadInput(f"{path} parses as protobuf but holds no ONNX graph.")
    external_bytes = check_external_data(path, model)
    check_claim(path, "its weights", _declared_bytes(path, model))
    check_custom_domains(path, model)

    inits = {t.name for t in model.graph.initializer}
    check_input_types(path, model, inits)
    inputs = [_tensor_info(v) for v in model.graph.input if v.name not in inits]
    inputs = _with_vocab(inputs, model.graph)
    outputs = [_tensor_info(v) for v in model.graph.output]
    if not inputs:
        raise BadInput(f"{path} has no graph inputs, so there is nothing to feed it.")
    for info in inputs + outputs:
        _check_signature(path, info)
    params = sum(_numel(t.dims) for t in model.graph.initializer)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    notes = [f"opset {opset}", f"producer {model.producer_name or 'unknown'} {model.producer_version}".strip()]
    if external_bytes:
        notes.append(f"weights in external data ({external_bytes} bytes)")
    # The checker reads the file again itself: the parsed copy goes first, so a large model's weights are
    # never held three times (the file's bytes, this proto, the checker's own).
    del model
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise BadInput(f"{path} fails the ONNX checker: {_first_line(exc)}.") from None
    return LoadedModel(
        path=path,
        format=ModelFormat.ONNX,
        inputs=inputs,
        outputs=outputs,
        params=params,
        file_bytes=path.stat().st_size + external_bytes,
        handle=str(path),
        notes=notes,
    )


def external_data_files(path: Path) -> set[Path]:
    """The external data files an ONNX file (written by us or checked already) references."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    files = set()
    for tensor in _all_tensors(model.graph):
        if uses_external_data(tensor):
            target = path.parent / ExternalDataInfo(tensor).location
            if target.exists():
                files.add(target.resolve())
    return files


def check_external_data(path: Path, model: object) -> int:
    """Refuse external data that escapes the model's folder; return the external files' total size."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = path.resolve().parent
    files: set[Path] = set()
    for tensor in _all_tensors(model.graph):  # type: ignore[attr-defined]
        if not uses_external_data(tensor):
            continue
        _check_extent(path, tensor)  # before ExternalDataInfo, which fails on these with a bare ValueError
        info = ExternalDataInfo(tensor)
        location = info.location
        if not location or os.path.isabs(location) or location.startswith(("/", "\\")) or ".." in Path(location).parts:
            raise BadInput(
                f"{path}: external data location {location!r} for tensor {tensor.name!r} "
                "must be a plain file name inside the model's folder."
            )
        target = path.parent / location
        if target.is_symlink():
            raise BadInput(f"{path}: external data file {location!r} is a symbolic link, which is refused.")
        if not target.exists():
            raise BadInput(f"{path}: external data file {location!r} for tensor {tensor.name!r} is missing.")
        resolved = target.resolve()
        if folder not in resolved.parents:
            raise BadInput(f"{path}: external data file {location!r} resolves outside the model's folder.")
        stat = target.stat()
        if stat.st_nlink > 1:
            raise BadInput(f"{path}: external data file {location!r} is a hard link, which is refused.")
        _check_length(path, tensor, info.length)
        needed = (info.offset or 0) + (info.length or 0)
        if info.length is not None and needed > stat.st_size:
            raise BadInput(
                f"{path}: external data file {location!r} is {stat.st_size} bytes "
                f"but tensor {tensor.name!r} needs {needed}."
            )
        files.add(resolved)
    return sum(f.stat().st_size for f in files)


def _check_extent(path: Path, tensor: object) -> None:
    """Refuse an external data ``offset`` or ``length`` that is not a whole number of bytes, zero or more."""
    for entry in tensor.external_data:  # type: ignore[attr-defined]
        if entry.key not in ("offset", "length"):
            continue
        what = f"{path}: external data {entry.key} {entry.value[:40]!r} of tensor {tensor.name!r}"  # type: ignore[attr-defined]
        # Plain ASCII digits only: int() would also take signs, spaces, underscores and other scripts' digits.
        if not (entry.value.isascii() and entry.value.isdigit()):
            raise BadInput(f"{what} is not a whole number of bytes (zero or more).")
        # int() refuses over 4300 digits with a bare ValueError; 20 digits already pass 2**63.
        if len(entry.value) > 19:
            raise BadInput(f"{what} has {len(entry.value)} digits, beyond the size of any file.")


def _check_length(path: Path, tensor: object, length: int | None) -> None:
    """Refuse an external data length that differs from what the tensor's dims need (ONNX Runtime would fail later)."""
    from core.models.limits import check_dims

    itemsize = _ITEMSIZE.get(tensor.data_type)  # type: ignore[attr-defined]
    if length is None or itemsize is None:
        return
    claimed = check_dims(path, tensor.name, list(tensor.dims)) * itemsize  # type: ignore[attr-defined]
    if length != claimed:
        raise BadInput(
            f"{path}: external data length {length} of tensor {tensor.name!r} does not match the {claimed} bytes "  # type: ignore[attr-defined]
            "its dimensions need."
        )


#: Operator domains ONNX Runtime implements itself; anything else needs a custom-op library.
RUNTIME_DOMAINS = frozenset({
    "", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "com.microsoft",
    "com.microsoft.nchwc", "com.microsoft.experimental", "com.ms.internal.nhwc",
})


def check_custom_domains(path: Path, model: object) -> None:
    """Refuse operators from domains the runtime does not implement (custom ops are code from elsewhere).

    The main graph, its subgraphs and the bodies of the model's local functions are all
    searched: ONNX Runtime inlines a function, so a custom op inside one fails the same way.
    """
    local = {(f.domain, f.name) for f in model.functions}  # type: ignore[attr-defined]
    places = [("", _all_nodes(model.graph))]  # type: ignore[attr-defined]
    # A FunctionProto holds its body in .node like a graph, so _all_nodes walks it too.
    places += [(f" (inside function {f.name!r})", _all_nodes(f)) for f in model.functions]  # type: ignore[attr-defined]
    for where, nodes in places:
        for node in nodes:
            if node.domain not in RUNTIME_DOMAINS and (node.domain, node.op_type) not in local:
                raise BadInput(
                    f"{path} uses operator {node.op_type!r} from the custom domain {node.domain!r}{where}, which "
                    "needs a custom-op library that QuantBench does not load."
                )


def check_input_types(path: Path, model: object, initializers: set[str]) -> None:
    """Refuse graph inputs QuantBench cannot feed: strings, sequences, maps, optionals, sparse or exotic tensors.

    Datasets are numeric arrays; such a model would only fail once the baseline runs.
    """
    from onnx import TensorProto

    for value in model.graph.input:  # type: ignore[attr-defined]
        if value.name in initializers:
            continue
        kind = value.type.WhichOneof("value")
        if kind == "tensor_type":
            elem = value.type.tensor_type.elem_type
            if elem in _ONNX_TO_NUMPY:
                continue
            what = "a string tensor" if elem == TensorProto.STRING else _tensor_kind(elem)
        else:
            what = _VALUE_KINDS.get(kind or "", "of no declared type")
        raise BadInput(f"{path}: input {value.name!r} is {what}; QuantBench feeds numeric tensors only.")


#: How a graph input that is not a plain tensor is described in a refusal.
_VALUE_KINDS = {
    "sequence_type": "a sequence",
    "map_type": "a map",
    "optional_type": "an optional value",
    "sparse_tensor_type": "a sparse tensor",
}


def _tensor_kind(elem: int) -> str:
    from onnx import TensorProto

    try:
        name = TensorProto.DataType.Name(elem)
    except ValueError:
        return f"a tensor of unknown element type {elem}"
    return "a tensor without an element type" if elem == TensorProto.UNDEFINED else f"a {name} tensor"


def _all_nodes(graph: object) -> list:
    found = list(graph.node)  # type: ignore[attr-defined]
    for node in graph.node:  # type: ignore[attr-defined]
        for attr in node.attribute:
            if attr.HasField("g"):
                found.extend(_all_nodes(attr.g))
            for sub in attr.graphs:
                found.extend(_all_nodes(sub))
    return found


def _check_signature(path: Path, info: TensorInfo) -> None:
    """Refuse inputs/outputs that declare impossible sizes, before any dataset is shaped for them."""
    from core.models.limits import check_claim, check_dims

    known = [d for d in info.shape if isinstance(d, int)]
    check_dims(path, info.name, known)
    per_sample = [d for d in info.shape[1:] if isinstance(d, int)]
    itemsize = 8 if info.dtype in ("float64", "int64", "uint64") else 4
    check_claim(path, f"one sample of {info.name!r}", check_dims(path, info.name, per_sample) * itemsize)


def _declared_bytes(path: Path, model: object) -> int:
    """Bytes the initializers claim; a tensor whose stored data is shorter than its dims is refused."""
    from onnx.external_data_helper import uses_external_data

    from core.models.limits import check_dims

    total = 0
    for tensor in _all_tensors(model.graph):  # type: ignore[attr-defined]
        n = check_dims(path, tensor.name, list(tensor.dims))
        itemsize = _ITEMSIZE.get(tensor.data_type, 1)
        claimed = n * itemsize
        total += claimed
        if (
            tensor.HasField("raw_data")
            and not uses_external_data(tensor)
            and tensor.data_type in _ITEMSIZE
            and len(tensor.raw_data) != claimed
        ):
            raise BadInput(
                f"{path}: tensor {tensor.name!r} declares {claimed} bytes of data "
                f"but holds {len(tensor.raw_data)}; the file is malformed."
            )
    return total


_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _all_tensors(graph: object) -> list:
    """Initializers and constant-attribute tensors of a graph and all its subgraphs."""
    found = list(graph.initializer)  # type: ignore[attr-defined]
    for node in graph.node:  # type: ignore[attr-defined]
        for attr in node.attribute:
            if attr.HasField("t"):
                found.append(attr.t)
            found.extend(attr.tensors)
            if attr.HasField("g"):
                found.extend(_all_tensors(attr.g))
            for sub in attr.graphs:
                found.extend(_all_tensors(sub))
    return found


_ONNX_TO_NUMPY = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
}


def _with_vocab(inputs: list[TensorInfo], graph: object) -> list[TensorInfo]:
    """The integer inputs that index an embedding table carry its size (token ids a dataset may hold)."""
    from dataclasses import replace

    from core.models.io_spec import onnx_vocab_sizes

    if not any(t.dtype in ("int32", "int64") for t in inputs):
        return inputs
    sizes = onnx_vocab_sizes(graph)
    return [replace(t, vocab=sizes[t.name]) if t.name in sizes else t for t in inputs]


def _tensor_info(value: object) -> TensorInfo:
    ttype = value.type.tensor_type  # type: ignore[attr-defined]
    dims: list[int | str | None] = []
    if ttype.HasField("shape"):
        for d in ttype.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
    dtype = _ONNX_TO_NUMPY.get(ttype.elem_type, f"onnx:{ttype.elem_type}")  # type: ignore[attr-defined]
    return TensorInfo(name=value.name, shape=readable_shape(tuple(dims)), dtype=dtype)


def _numel(dims: object) -> int:
    n = 1
    for d in dims:  # type: ignore[attr-defined]
        n *= int(d)
    return n


def _first_line(exc: BaseException) -> str:
    # The checker spreads one reason over several lines (the node printed in the middle): join them.
    text = " ".join(str(exc).split())
    return text.rstrip(".")[:240] if text else type(exc).__name__
