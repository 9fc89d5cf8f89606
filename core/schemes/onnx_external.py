"""An ONNX file's weights moved to an external data file, one tensor at a time.

``onnx.load`` on a single-file model reads the whole file into one bytes object and parses it, so a 438 MB
model briefly holds 876 MB; every quantizer that then loads it holds the weights again. Converting by walking
the protobuf wire format (ModelProto field 7 is the graph, GraphProto field 5 its initializers) holds one
initializer at a time. The copy loads with ``onnx.load(..., load_external_data=False)`` as a proto of a few
hundred kilobytes, and ONNX Runtime reads its weights from the data file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

#: Initializers at least this large go to the data file (onnx's own default threshold).
EXTERNAL_MIN_BYTES = 1024
#: Each tensor starts at a multiple of this in the data file, so ONNX Runtime can map it directly.
ALIGNMENT = 4096

_GRAPH = 7  # ModelProto.graph
_INITIALIZER = 5  # GraphProto.initializer


def _varint(stream: BinaryIO) -> int | None:
    """One base-128 varint from ``stream``; None at the end of the stream."""
    shift = value = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift:
                raise ValueError("the ONNX file ends inside a field")
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(stream: BinaryIO, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, payload start, payload length) of each field up to offset ``end``; the
    stream is left at the payload's start, and the caller may read it or not (the next step seeks past it)."""
    while stream.tell() < end:
        key = _varint(stream)
        if key is None:
            return
        number, wire = key >> 3, key & 7
        if wire == 0:
            start = stream.tell()
            _varint(stream)
            length = stream.tell() - start
            stream.seek(start)
        elif wire == 1:
            start, length = stream.tell(), 8
        elif wire == 5:
            start, length = stream.tell(), 4
        elif wire == 2:
            length = _varint(stream) or 0
            start = stream.tell()
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in the ONNX file")
        yield number, wire, start, length
        stream.seek(start + length)


def _raw_field(stream: BinaryIO, number: int, wire: int, start: int, length: int) -> bytes:
    """A field exactly as it was written (key, length prefix and payload)."""
    stream.seek(start)
    payload = stream.read(length)
    prefix = _encode_varint(number << 3 | wire) + (_encode_varint(length) if wire == 2 else b"")
    return prefix + payload


def uses_external_data(path: Path) -> bool:
    """Whether any initializer of the ONNX file at ``path`` already lives in an external file (read without
    loading any weight)."""
    from onnx import TensorProto

    with path.open("rb") as f:
        size = path.stat().st_size
        for number, wire, start, length in _fields(f, size):
            if number != _GRAPH or wire != 2:
                continue
            for inner, inner_wire, t_start, t_length in _fields(f, start + length):
                if inner != _INITIALIZER or inner_wire != 2:
                    continue
                tensor = TensorProto()
                tensor.ParseFromString(_tensor_header(f, t_start, t_length))
                if tensor.data_location == TensorProto.EXTERNAL:
                    return True
    return False


def _tensor_header(stream: BinaryIO, start: int, length: int) -> bytes:
    """A TensorProto's fields other than its data (raw_data and the typed lists), read without the data."""
    out = bytearray()
    for number, wire, f_start, f_length in _fields(stream, start + length):
        if number in (4, 5, 6, 7, 9, 10, 11):  # float/int32/string/int64/raw/double/uint64 data
            continue
        out += _raw_field(stream, number, wire, f_start, f_length)
    return bytes(out)


#: Initializers this small (their whole message) keep their data in ``load_without_weights``: biases, shapes and
#: scalars a graph rewrite may need, at no cost that matters (and every one an external copy leaves inline).
KEPT_INLINE_BYTES = 64 * 1024


def load_without_weights(path: Path) -> Any:
    """The ONNX file at ``path`` as a ModelProto whose graph initializers carry their names, types and shapes
    but no data (external references are kept; initializers of at most KEPT_INLINE_BYTES keep theirs): what
    reading the graph's structure needs, at the cost of its nodes rather than of its weights. ``onnx.load`` on a
    single-file model would hold the file's bytes and the parsed weights at once (twice the file).

    A study reads the same file's structure several times (op counts, opset, advice): the walk is done once per
    file version and each call parses a fresh proto of its own (the float16 converter changes the one it gets)."""
    import onnx

    stat = path.stat()
    model = onnx.ModelProto()
    model.ParseFromString(_graph_without_weights(str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return model


@functools.lru_cache(maxsize=8)
def _graph_without_weights(path: str, size: int, mtime_ns: int) -> bytes:
    """``load_without_weights``'s serialized proto for the file at ``path`` as it is (size and mtime key it)."""
    top = bytearray()
    with open(path, "rb") as f:
        for number, wire, start, length in _fields(f, size):
            if number != _GRAPH or wire != 2:
                top += _raw_field(f, number, wire, start, length)
                continue
            graph = bytearray()
            for inner, inner_wire, t_start, t_length in _fields(f, start + length):
                if inner == _INITIALIZER and inner_wire == 2 and t_length > KEPT_INLINE_BYTES:
                    body = _tensor_header(f, t_start, t_length)
                    graph += _encode_varint(_INITIALIZER << 3 | 2) + _encode_varint(len(body)) + body
                else:
                    graph += _raw_field(f, inner, inner_wire, t_start, t_length)
                f.seek(t_start + t_length)
            top += _encode_varint(_GRAPH << 3 | 2) + _encode_varint(len(graph)) + bytes(graph)
    return bytes(top)


def to_external_data(src: Path, dst: Path) -> int:
    """Write ``src`` as ``dst`` plus ``dst.name + '.data'`` beside it, every initializer of at least
    EXTERNAL_MIN_BYTES moved to the data file; returns the bytes moved. Holds one initializer at a time.

    A model whose weights are already external is copied with its data files unchanged (it is never
    converted twice)."""
    from onnx import TensorProto

    if uses_external_data(src):
        raise ValueError(f"{src.name} already keeps its weights in external data; load it as it is")
    data_path = dst.with_name(dst.name + ".data")
    moved = 0
    top: list[bytes] = []
    with src.open("rb") as f, data_path.open("wb") as data:
        for number, wire, start, length in _fields(f, src.stat().st_size):
            if number != _GRAPH or wire != 2:
                top.append(_raw_field(f, number, wire, start, length))
                continue
            graph = bytearray()
            for inner, inner_wire, t_start, t_length in _fields(f, start + length):
                if inner != _INITIALIZER or inner_wire != 2:
                    graph += _raw_field(f, inner, inner_wire, t_start, t_length)
                    continue
                f.seek(t_start)
                tensor = TensorProto()
                tensor.ParseFromString(f.read(t_length))
                if tensor.HasField("raw_data") and len(tensor.raw_data) >= EXTERNAL_MIN_BYTES:
                    offset = -data.tell() % ALIGNMENT + data.tell()
                    data.write(b"\0" * (offset - data.tell()))
                    data.write(tensor.raw_data)
                    size = len(tensor.raw_data)
                    tensor.ClearField("raw_data")
                    tensor.data_location = TensorProto.EXTERNAL
                    for key, value in (("location", data_path.name), ("offset", offset), ("length", size)):
                        entry = tensor.external_data.add()
                        entry.key, entry.value = key, str(value)
                    moved += size
                body = tensor.SerializeToString()
                del tensor
                graph += _encode_varint(_INITIALIZER << 3 | 2) + _encode_varint(len(body)) + body
                f.seek(t_start + t_length)
            top.append(_encode_varint(_GRAPH << 3 | 2) + _encode_varint(len(graph)) + bytes(graph))
    dst.write_bytes(b"".join(top))
    return moved


def external_copy(src: Path, folder: Path) -> Path:
    """``src`` with its weights in external data: ``src`` itself when they already are, else a copy in
    ``folder`` made by to_external_data (one initializer in memory at a time)."""
    if uses_external_data(src):
        return src
    dst = folder / f"{src.stem}_external.onnx"
    try:
        to_external_data(src, dst)
    except BaseException:
        for path in (dst, dst.with_name(dst.name + ".data")):
            path.unlink(missing_ok=True)
        raise
    return dst



def inline_external_data(model: Any, folder: Path) -> int:
    """Read every initializer of ``model`` that still lives in external data (relative to ``folder``) into the
    proto, one at a time; returns how many bytes came in. What a quantizer left in float (biases, norms) then
    travels with the quantized file instead of pointing at the float model's data file."""
    from onnx.external_data_helper import load_external_data_for_tensor
    from onnx.external_data_helper import uses_external_data as tensor_is_external

    loaded = 0
    for tensor in model.graph.initializer:
        if tensor_is_external(tensor):
            load_external_data_for_tensor(tensor, str(folder))
            loaded += len(tensor.raw_data)
    return loaded


#: A proto this large or larger is saved with its weights in a data file beside it (protobuf's limit is 2 GB).
SINGLE_FILE_MAX_BYTES = 1_800_000_000


def save_self_contained(model: Any, folder: Path, out: Path, external_min_bytes: int | None = None) -> None:
    """Save ``model`` (whose external tensors are relative to ``folder``) as ``out``: one file, or ``out`` and
    ``out.name + '.data'`` when its weights would pass ``external_min_bytes`` (by default SINGLE_FILE_MAX_BYTES:
    protobuf's limit, with a margin). Written as external data, each weight leaves the proto as it is written;
    one file is serialized whole, which briefly holds the weights twice more."""
    import onnx

    inline_external_data(model, folder)
    # Not model.ByteSize(): protobuf sizes a message by serializing it, which briefly holds twice its weights.
    large = _initializer_bytes(model) >= (SINGLE_FILE_MAX_BYTES if external_min_bytes is None else external_min_bytes)
    onnx.save(model, str(out), save_as_external_data=large, all_tensors_to_one_file=True,
              location=out.name + ".data", size_threshold=EXTERNAL_MIN_BYTES)


def _initializer_bytes(model: Any) -> int:
    """The bytes of ``model``'s initializers, from their shapes and types (read without touching the data)."""
    import numpy as np
    from onnx.helper import tensor_dtype_to_np_dtype

    total = 0
    for tensor in model.graph.initializer:
        try:
            itemsize = np.dtype(tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):  # strings and types numpy has no size for: at face value
            itemsize = 8
        total += int(np.prod(tensor.dims, dtype=np.int64)) * itemsize
    return total
