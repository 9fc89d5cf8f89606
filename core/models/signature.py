"""Whether a variant file is a version of the model: the same inputs and outputs.

A file of another network (an LSTM beside a CNN, a stale file from an earlier study) still
runs and still yields numbers, all of them meaningless; it is refused before the study.
"""

from __future__ import annotations

from core.models.loaded import LoadedModel, TensorInfo


def _dims(t: TensorInfo) -> str:
    return "×".join("?" if d is None else str(d) for d in t.shape)


def _same_shape(a: TensorInfo, b: TensorInfo) -> bool:
    """Same rank, and the same size wherever both files fix one (the batch dimension aside)."""
    if len(a.shape) != len(b.shape):
        return False
    return all(x == y for x, y in zip(a.sample_shape, b.sample_shape, strict=True)
               if isinstance(x, int) and isinstance(y, int))


def signature_mismatch(model: LoadedModel, variant: LoadedModel) -> str | None:
    """Why ``variant`` is not a version of ``model`` (one sentence, naming the variant's file); None if it is.

    Inputs and outputs must agree in number and shape; element types may differ (an int8 file
    can take and give int8).
    """
    for what, mine, theirs in (("inputs", model.inputs, variant.inputs), ("outputs", model.outputs, variant.outputs)):
        if len(mine) != len(theirs):
            return (f"{variant.path.name} does not fit the model: it has {len(theirs)} {what}, "
                    f"the model has {len(mine)}.")
        for a, b in zip(mine, theirs, strict=True):
            if not _same_shape(a, b):
                kind = what[:-1]
                return (f"{variant.path.name} does not fit the model: its {kind} {b.name} is {_dims(b)}, "
                        f"the model's {a.name} is {_dims(a)}.")
    return None
