"""Pad narrow int8 convolutions so ONNX Runtime runs them on its fast symmetric kernels.

On x86, ONNX Runtime's QLinearConv has two ways to run a u8 x s8 convolution with
symmetric weights (every weight zero point 0): MLAS's symmetric convolution
kernels, which read the input through an indirection buffer and requantize in
the same pass, and a generic path (im2col, an integer GEMM into an int32 buffer,
then a separate requantization). The symmetric kernels need the input and the
output channel counts to be multiples of 4, and at least 16 output channels.
The first layer of an image network has 3 input channels, so it falls to the
generic path; measured here (1 thread, AVX-512 VNNI), MobileNetV2's first 3x3
convolution took ~2x as long in int8 as in float.

Padding that convolution's input with one channel that holds the zero point,
and its weight with one channel of zeros, changes nothing in the arithmetic
(the extra channel adds (zp - zp) x 0 = 0 to every sum; either factor alone
would do) and lets the symmetric kernel run it. The Pad runs on the u8 tensor,
before ONNX Runtime moves it to channels-last. Only 2-D convolutions are
touched: the symmetric kernels are built around 2-D indirection buffers.
Measured on this machine: MobileNetV2 int8 ÷ float 1.83x -> 2.03x; ResNet-18
(7x7 first convolution) unchanged; outputs identical.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any

import numpy as np

#: MLAS's x86 symmetric convolution kernels need input channels that are a multiple of this ...
CHANNEL_MULTIPLE = 4
#: ... output channels that are a multiple of 4 on AVX-512 and of 8 on AVX2 ...
OUTPUT_MULTIPLE_AVX512, OUTPUT_MULTIPLE_AVX2 = 4, 8
#: ... and at least this many output channels.
MIN_OUTPUT_CHANNELS = 16


def applies_here(machine: str | None = None) -> bool:
    """Only 64-bit x86 has these kernels and conditions (ARM's symmetric kernels want >= 64 input
    channels, so padding 3 to 4 would gain nothing there)."""
    return (machine or platform.machine()).lower() in ("x86_64", "amd64")


def output_multiple(flags: dict[str, bool]) -> int:
    """The output-channel multiple MLAS's symmetric kernels need on a CPU with these flags."""
    return OUTPUT_MULTIPLE_AVX512 if flags.get("avx512bw") else OUTPUT_MULTIPLE_AVX2


def align_conv_channels(path: Path, out_multiple: int = OUTPUT_MULTIPLE_AVX2) -> list[dict[str, Any]]:
    """Rewrite the int8 model at ``path`` in place; one record per convolution padded.

    Handles both formats ONNX Runtime's quantizer writes: QDQ (``DequantizeLinear``
    pairs feeding a ``Conv``) and QOperator (``QLinearConv``). A convolution is
    padded only when it is ungrouped, its weights are int8 with zero points all 0
    and used by it alone, its activations are u8 with one zero point, its output
    channels already suit the kernel (at least 16, a multiple of ``out_multiple``)
    and only its input channels do not.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    uses = _use_counts(graph)
    graph_inputs = {i.name for i in graph.input}
    done: list[dict[str, Any]] = []
    twinned: dict[int, Any] = {}  # shared DequantizeLinear nodes some Conv no longer reads
    reshaped: set[str] = set()  # tensors whose channel count changed
    for node in list(graph.node):
        site = _conv_site(node, producers, inits, uses)
        if site is None or site.weight in graph_inputs:
            continue
        weight = _int8_array(inits[site.weight])
        if weight is None or weight.ndim != 4:
            continue
        out_ch, in_ch = weight.shape[0], weight.shape[1]
        extra = (-in_ch) % CHANNEL_MULTIPLE
        if extra == 0 or out_ch % out_multiple or out_ch < MIN_OUTPUT_CHANNELS:
            continue
        zeros = np.zeros((out_ch, extra, *weight.shape[2:]), dtype=weight.dtype)
        inits[site.weight].CopyFrom(_tensor(np.concatenate([weight, zeros], axis=1), site.weight))
        site.connect(graph, _insert_pad(graph, node, site, weight.ndim, extra))
        if site.dequantize is not None:
            reshaped.add(node.input[1])  # the dequantized weight
            if site.shared:
                twinned[id(site.dequantize)] = site.dequantize
            else:
                reshaped.add(site.dequantize.output[0])
        done.append({"node": node.name, "input_channels": int(in_ch), "padded_to": int(in_ch + extra)})
    if not done:
        return done
    read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for dq in twinned.values():  # every reader got its own padded copy: nothing needs this one
        if dq.output[0] not in read:
            graph.node.remove(dq)
    # Shapes recorded for tensors that now have one more channel would contradict the graph.
    kept = [v for v in graph.value_info if v.name not in reshaped]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    onnx.save(model, str(path))
    return done


def _use_counts(graph: Any) -> dict[str, int]:
    """How many times each tensor is read, by a node or as a graph output."""
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for out in graph.output:  # a graph output is read too: its shape must not change
        uses[out.name] = uses.get(out.name, 0) + 1
    return uses


def _conv_site(node: Any, producers: dict[str, Any], inits: dict[str, Any], uses: dict[str, int]) -> _Site | None:
    """The site of an ungrouped standard-domain convolution, QDQ or QOperator; None for any other node."""
    if _group(node) != 1 or node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Conv":
        return _qdq_site(node, producers, inits, uses)
    if node.op_type == "QLinearConv":
        return _qoperator_site(node, inits, uses)
    return None


class _Site:
    """Where a convolution reads its u8 activation, and how to make it read a padded one instead."""

    def __init__(self, conv: Any, x: str, zero_point: str, weight: str, dequantize: Any = None, shared: bool = False):
        self.conv, self.x, self.zero_point, self.weight = conv, x, zero_point, weight
        self.dequantize = dequantize  # QDQ: the DequantizeLinear between x and the Conv
        self.shared = shared  # ... which also feeds other nodes

    def first_reader(self) -> Any:
        """The node the Pad must come before."""
        return self.dequantize if self.dequantize is not None and not self.shared else self.conv

    def connect(self, graph: Any, padded: str) -> None:
        if self.dequantize is None:
            self.conv.input[0] = padded  # QLinearConv reads u8 directly
        elif not self.shared:
            self.dequantize.input[0] = padded
        else:  # another node reads the unpadded tensor: this Conv gets its own DequantizeLinear
            from onnx import helper

            name = padded + "_dq"
            twin = helper.make_node("DequantizeLinear", [padded, *self.dequantize.input[1:]], [name], name=name)
            twin.attribute.extend(self.dequantize.attribute)
            graph.node.insert(list(graph.node).index(self.conv), twin)
            self.conv.input[0] = name


def _group(node: Any) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "group"), 1)


def _tensor(array: np.ndarray, name: str) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(array, name)


def _int8_array(tensor: Any) -> np.ndarray | None:
    from onnx import TensorProto, numpy_helper

    if tensor.data_type != TensorProto.INT8 or tensor.data_location == TensorProto.EXTERNAL:
        return None
    return numpy_helper.to_array(tensor)


def _zero_point_is_zero(inits: dict[str, Any], name: str | None) -> bool:
    """A weight zero point: absent (0) or an int8 initializer of zeros."""
    if not name:
        return True
    arr = _int8_array(inits[name]) if name in inits else None
    return arr is not None and not arr.any()


def _is_u8(inits: dict[str, Any], name: str) -> bool:
    """A u8 zero point with one value (a per-tensor activation zero point: the Pad's fill value)."""
    from onnx import TensorProto

    return name in inits and inits[name].data_type == TensorProto.UINT8 and math.prod(inits[name].dims) == 1


def _qdq_site(conv: Any, producers: dict[str, Any], inits: dict[str, Any], uses: dict[str, int]) -> _Site | None:
    """Conv(DequantizeLinear(x_u8, s, zp), DequantizeLinear(w_s8, s_w, 0), ...)."""
    dq_x, dq_w = producers.get(conv.input[0]), producers.get(conv.input[1])
    if dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear" or dq_w.op_type != "DequantizeLinear":
        return None
    if len(dq_x.input) < 3 or not _is_u8(inits, dq_x.input[2]) or dq_w.input[0] not in inits:
        return None
    if not _zero_point_is_zero(inits, dq_w.input[2] if len(dq_w.input) > 2 else None):
        return None
    if uses.get(dq_w.input[0], 0) != 1 or uses.get(dq_w.output[0], 0) != 1:
        return None  # a weight shared with another node keeps its shape
    return _Site(conv, dq_x.input[0], dq_x.input[2], dq_w.input[0], dq_x, shared=uses.get(dq_x.output[0], 0) > 1)


def _qoperator_site(conv: Any, inits: dict[str, Any], uses: dict[str, int]) -> _Site | None:
    """QLinearConv(x_u8, s, zp, w_s8, s_w, 0, ...)."""
    if len(conv.input) < 8 or not _is_u8(inits, conv.input[2]) or conv.input[3] not in inits:
        return None
    if not _zero_point_is_zero(inits, conv.input[5]) or uses.get(conv.input[3], 0) != 1:
        return None
    return _Site(conv, conv.input[0], conv.input[2], conv.input[3])


def _insert_pad(graph: Any, conv: Any, site: _Site, rank: int, extra: int) -> str:
    """A u8 Pad of the activation's channel axis, filled with its zero point; returns the padded tensor."""
    from onnx import helper

    padded = f"{site.x}_padded_for_{conv.name or conv.output[0]}"
    pads = np.zeros(2 * rank, dtype=np.int64)
    pads[rank + 1] = extra  # the end of axis 1 (channels, NCHW)
    graph.initializer.append(_tensor(pads, padded + "_pads"))
    pad = helper.make_node("Pad", [site.x, padded + "_pads", site.zero_point], [padded], name=padded, mode="constant")
    graph.node.insert(list(graph.node).index(site.first_reader()), pad)
    return padded
