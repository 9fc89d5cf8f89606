"""Readable names for symbolic dimensions.

Exporters name a dimension they cannot fix after their own counters ("s77" from torch.export
and the dynamo ONNX exporter, "unk__12" from tf2onnx and shape inference, "input_dynamic_axes_1"
from the TorchScript ONNX exporter). Such a name says nothing to a reader: the first dimension is
the batch, any other is named by its place. Names a person chose ("batch", "N", "seq") are kept.
"""

from __future__ import annotations

import re

_GENERATED = re.compile(r"^(s\d+|unk__\d+|\w*dynamic_axes_\d+|sym_?\d+|Sym\(.*\))$")


def is_generated(name: str) -> bool:
    """Whether ``name`` is an exporter's counter rather than a name someone chose."""
    return bool(_GENERATED.match(name.strip()))


def readable_dim(dim: int | str | None, position: int) -> int | str | None:
    """``dim`` with a generated symbolic name replaced: "batch" first, "dim<position>" after."""
    if isinstance(dim, str) and is_generated(dim):
        return "batch" if position == 0 else f"dim{position}"
    return dim


def readable_shape(shape: tuple[int | str | None, ...]) -> tuple[int | str | None, ...]:
    """Every dimension of ``shape`` through ``readable_dim``."""
    return tuple(readable_dim(d, i) for i, d in enumerate(shape))
