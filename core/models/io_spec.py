"""Models with several inputs and outputs: how a batch of named inputs travels, and which output predicts.

A dataset for a model with one input holds one array ``x`` (N, ...). For a model with several
(``input_ids``, ``attention_mask``, ...) ``x`` is a numpy *structured* array of N records, one field
per model input, named as the input and keeping its dtype (token ids stay int64). Slicing, fancy
indexing, ``len`` and ``nbytes`` work on it as on any array, so the engine's batching, calibration
draws and timing batches need no special case; only the runtimes open it, with ``feeds``.

    x = pack_inputs({"input_ids": ids, "attention_mask": mask})   # (N,) records
    feeds(x[:8])  ->  {"input_ids": (8, T) int64, "attention_mask": (8, T) int64}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

#: Output names that say "this is the prediction" whatever else the model returns.
PREDICTION_NAMES = ("logits", "output", "predictions", "scores")


def is_named(x: np.ndarray) -> bool:
    """Whether ``x`` holds several named inputs (a structured array) rather than one input array."""
    return x.dtype.names is not None


def input_names(x: np.ndarray) -> tuple[str, ...]:
    """The named inputs ``x`` holds, in order; empty for a plain array."""
    return tuple(x.dtype.names or ())


def pack_inputs(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """One structured array of N records from equally long arrays, one field per input (dtypes kept)."""
    items = list(arrays.items())
    if not items:
        raise ValueError("no input arrays to pack")
    n = len(items[0][1])
    dtype = np.dtype([(name, a.dtype, a.shape[1:]) for name, a in items])
    packed = np.empty(n, dtype=dtype)
    for name, a in items:
        if len(a) != n:
            raise ValueError(f"array '{name}' has {len(a)} samples, not {n}")
        packed[name] = a
    return packed


def field(x: np.ndarray, name: str) -> np.ndarray:
    """Input ``name`` of a structured batch as its own contiguous (N, ...) array."""
    return np.ascontiguousarray(x[name])


def feeds(x: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The batch as ``{input name: contiguous array}``; a plain array is fed as ``names[0]``."""
    if not is_named(x):
        if not names:
            raise ValueError("a plain array needs the input's name")
        return {names[0]: np.ascontiguousarray(x)}
    return {name: field(x, name) for name in (names or input_names(x))}


def describe_arrays(x: np.ndarray) -> list[dict[str, Any]]:
    """Each input array of a dataset with its per-sample shape and dtype (the window's dataset panel, the JSON)."""
    if not is_named(x):
        return [{"name": "x", "shape": list(x.shape[1:]), "dtype": x.dtype.name}]
    out = []
    for name in input_names(x):
        sub = x.dtype.fields[name][0]  # type: ignore[index]
        base, shape = (sub.base, sub.shape) if sub.subdtype else (sub, ())
        out.append({"name": name, "shape": list(shape), "dtype": base.name})
    return out


def is_mask_name(name: str) -> bool:
    """Whether an input named so is a 0/1 mask (``attention_mask``, ``padding_mask``)."""
    return "mask" in name.lower()


def is_type_ids_name(name: str) -> bool:
    """Whether an input named so holds segment or position ids rather than tokens."""
    low = name.lower()
    return "type" in low or "segment" in low or "position" in low


def token_ids(x: np.ndarray) -> np.ndarray | None:
    """The token ids of a batch: the first integer input that is neither a mask nor segment/position ids."""
    if not is_named(x):
        return x if x.dtype.kind in "iu" and x.ndim == 2 else None
    for name in input_names(x):
        if not is_mask_name(name) and not is_type_ids_name(name) and x.dtype.fields[name][0].base.kind in "iu":  # type: ignore[index]
            return field(x, name)
    return None


def attention_mask(x: np.ndarray) -> np.ndarray | None:
    """The 0/1 mask of a batch (1 where a real token is), or None when it has none."""
    for name in input_names(x):
        if is_mask_name(name):
            return field(x, name)
    return None


def tokens_in(x: np.ndarray) -> int:
    """Real tokens in a batch of inputs: the attention mask's ones, else every position of the token ids."""
    mask = attention_mask(x)
    if mask is not None:
        return int(np.count_nonzero(mask))
    ids = token_ids(x)
    return int(ids.size) if ids is not None else len(x)


def choose_output(outputs: Sequence[TensorInfo], asked: str | None) -> tuple[int, str | None]:
    """(index of the output that carries the prediction, None) or (0, why it cannot be chosen).

    ``asked`` (``--output NAME``) must name an output. Otherwise the only output; else the one named
    ``logits`` (or another of ``PREDICTION_NAMES``); else the only floating-point output.
    """
    names = [t.name for t in outputs]
    listed = ", ".join(f"'{n}'" for n in names)
    if asked:
        if asked in names:
            return names.index(asked), None
        return 0, f"--output {asked!r}: the model has no output of that name (its outputs: {listed})."
    if len(outputs) <= 1:
        return 0, None
    for wanted in PREDICTION_NAMES:
        hits = [i for i, n in enumerate(names) if n.lower() == wanted]
        if len(hits) == 1:
            return hits[0], None
    floats = [i for i, t in enumerate(outputs) if t.dtype.startswith(("float", "bfloat"))]
    if len(floats) == 1:
        return floats[0], None
    return 0, (
        f"the model has {len(outputs)} outputs ({listed}) and none is plainly the prediction; "
        "name the one to judge with --output NAME."
    )


def onnx_vocab_sizes(graph: Any) -> dict[str, int]:
    """For each integer graph input that indexes an embedding table (a Gather on a 2-D initializer, maybe
    through casts and reshapes), the table's number of rows: the ids that input may hold."""
    inits = {t.name: tuple(t.dims) for t in graph.initializer}
    # What each tensor is, seen back through ops that pass values on unchanged.
    passthrough = ("Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten")
    source: dict[str, str] = {i.name: i.name for i in graph.input}
    for node in graph.node:
        if node.op_type in passthrough and node.input and node.input[0] in source:
            for out in node.output:
                source[out] = source[node.input[0]]
    vocab: dict[str, int] = {}
    for node in graph.node:
        if node.op_type != "Gather" or len(node.input) < 2:
            continue
        table = inits.get(node.input[0])
        origin = source.get(node.input[1])
        if table is None or len(table) != 2 or origin is None or origin in inits:
            continue
        vocab[origin] = max(vocab.get(origin, 0), int(table[0]))
    return vocab


def torch_vocab_size(module: Any) -> int | None:
    """The rows of a PyTorch model's first embedding table (eager or TorchScript), or None without one."""
    for sub in module.modules():
        kind = getattr(sub, "original_name", None) or type(sub).__name__
        weight = getattr(sub, "weight", None)
        if kind == "Embedding" and weight is not None and len(weight.shape) == 2:
            return int(weight.shape[0])
    return None


def torch_forward_args(module: Any) -> list[str]:
    """The names of a PyTorch module's forward arguments (eager or TorchScript), ``self`` left out."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is not None:
        return [a.name for a in schema.arguments if a.name != "self"]
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]
