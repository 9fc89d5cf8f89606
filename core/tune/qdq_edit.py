"""One layer's quantization alone, made by editing the float graph with the pieces of a QDQ graph.

ONNX Runtime's QDQ quantizer writes every quantized tensor ``T`` as ``QuantizeLinear`` (named
``T_QuantizeLinear``) followed by ``DequantizeLinear``, and every quantized weight ``W`` as an int8
initializer read by ``W_DequantizeLinear``. Copying one such pair, with its scale and zero point, into
the float graph gives a model where exactly that tensor is quantized, with the ranges of the one
calibration that made the QDQ graph: no calibration per layer.

    float:  X ─ Conv(W) ─ T ─ Relu ─ R ─ Conv ...
    (a):    X ─ Conv(DQ(W_q)) ─ T ─ Relu ─ R ─ Conv ...            only the weights
    (b):    X ─ Conv(W) ─ T ─ Relu ─ R' ─ Q ─ DQ ─ R ─ Conv ...      only the output activation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The op types whose sensitivity is measured (the layers ONNX Runtime's static int8 quantizes with weights).
QUANTIZABLE = ("Conv", "Gemm", "MatMul")
#: Activations the QDQ quantizer folds into the quantized output of the node before them.
REMOVABLE = ("Relu", "Clip")
#: Ops that pass values on (or only pick among them): a range that hurts before them hurts after them too.
PASS_THROUGH = REMOVABLE + (
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool",
)


@dataclass(frozen=True)
class Layer:
    """A quantizable node: its name, op type, constant weight input (if any) and first output."""

    name: str
    op_type: str
    weight: str | None
    output: str


def quantizable_layers(model: Any) -> list[Layer]:
    """The named Conv, Gemm and MatMul nodes of ``model`` (an onnx.ModelProto), in graph order."""
    inits = {t.name for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type not in QUANTIZABLE or not node.name:
            continue  # an unnamed node cannot be named in exclude= either
        weight = node.input[1] if len(node.input) > 1 and node.input[1] in inits else None
        layers.append(Layer(node.name, node.op_type, weight, node.output[0]))
    return layers


def quantized_tensors(qdq_model: Any) -> dict[str, tuple[Any, Any]]:
    """Original tensor name -> (QuantizeLinear, DequantizeLinear) nodes of a QDQ graph."""
    graph = qdq_model.graph
    dq_of = {n.input[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    pairs = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.name.endswith("_QuantizeLinear") and node.output[0] in dq_of:
            pairs[node.name[: -len("_QuantizeLinear")]] = (node, dq_of[node.output[0]])
    return pairs


def _consumers(model: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _initializers(model: Any, names: list[str]) -> list[Any]:
    found = {t.name: t for t in model.graph.initializer if t.name in names}
    return [found[n] for n in names if n in found]


def weight_only_model(float_model: Any, qdq_model: Any, layer: Layer) -> Any | None:
    """``float_model`` with only ``layer``'s weights quantized as in ``qdq_model``; None if they are not."""
    from onnx import ModelProto, helper

    if layer.weight is None:
        return None
    dq = next((n for n in qdq_model.graph.node if n.name == f"{layer.weight}_DequantizeLinear"), None)
    if dq is None:
        return None
    model = ModelProto()
    model.CopyFrom(float_model)
    have = {t.name for t in model.graph.initializer}
    model.graph.initializer.extend(t for t in _initializers(qdq_model, list(dq.input)) if t.name not in have)
    new_dq = helper.make_node("DequantizeLinear", list(dq.input), [f"{layer.weight}_tune_dq"], name=dq.name)
    new_dq.attribute.extend(dq.attribute)
    for node in model.graph.node:
        if node.name == layer.name:
            node.input[1] = new_dq.output[0]
    model.graph.node.insert(0, new_dq)  # it reads initializers only, so first is a topological place
    return model


def output_chain(float_model: Any, layer: Layer) -> list[tuple[str, Any]]:
    """``layer``'s output and the removable activations after it: [(tensor, node that made it)]."""
    consumers = _consumers(float_model)
    producer = next(n for n in float_model.graph.node if n.name == layer.name)
    chain = [(layer.output, producer)]
    while True:
        users = consumers.get(chain[-1][0], [])
        if len(users) != 1 or users[0].op_type not in REMOVABLE:
            return chain
        chain.append((users[0].output[0], users[0]))


def activation_only_model(float_model: Any, qdq_model: Any, layer: Layer) -> tuple[Any, str] | None:
    """``float_model`` with only ``layer``'s output activation quantized (where ``qdq_model`` quantizes it,
    possibly after a Relu the quantizer folded in): (model, tensor); None if the scheme leaves it float."""
    from onnx import ModelProto, helper

    pairs = quantized_tensors(qdq_model)
    found = next(((t, node) for t, node in output_chain(float_model, layer) if t in pairs), None)
    if found is None:
        return None
    tensor, producer = found
    q, dq = pairs[tensor]
    model = ModelProto()
    model.CopyFrom(float_model)
    raw = f"{tensor}_tune_float"
    index = next(i for i, n in enumerate(model.graph.node) if n.name == producer.name)
    node = model.graph.node[index]
    node.output[list(node.output).index(tensor)] = raw
    have = {t.name for t in model.graph.initializer}
    params = [n for n in list(q.input[1:]) if n not in have]
    model.graph.initializer.extend(_initializers(qdq_model, params))
    new_q = helper.make_node("QuantizeLinear", [raw, *q.input[1:]], [f"{tensor}_tune_q"], name=f"{tensor}_tune_Q")
    new_dq = helper.make_node("DequantizeLinear", [new_q.output[0], *dq.input[1:]], [tensor], name=f"{tensor}_tune_DQ")
    new_q.attribute.extend(q.attribute)
    new_dq.attribute.extend(dq.attribute)
    model.graph.node.insert(index + 1, new_dq)
    model.graph.node.insert(index + 1, new_q)
    return model, tensor


def activation_exclusions(float_model: Any, layer: Layer, tensor: str) -> list[str]:
    """The nodes to keep in float so that ``tensor`` (``layer``'s output activation) stays float.

    ONNX Runtime quantizes a tensor whenever its producer or a consumer is quantized, so the set is the
    layer, the removable activations up to ``tensor``, and every node that reads it, followed through
    pass-through ops (Flatten, pooling, ...) to the next real consumer.
    """
    chain = output_chain(float_model, layer)
    end = next(i for i, (t, _) in enumerate(chain) if t == tensor)
    names = [node.name for _, node in chain[: end + 1]]
    consumers = _consumers(float_model)
    frontier = [tensor]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.name in names or not node.name:
                continue
            names.append(node.name)
            if node.op_type in PASS_THROUGH:
                frontier.extend(node.output)
    return names
