"""How the comparison runs step through the samples: batch sizes that bound memory, and the cancel check."""

from __future__ import annotations

from typing import Any

from core.errors import Cancelled

#: The most samples compared per batch.
MAX_BATCH = 8
#: Intermediate tensors of one batch (both models together) stay under this: the first batch holds one
#: sample, and its size sets the rest. A ResNet-18 float + int8 pair keeps about 0.1 GB per 224x224 sample.
INTERMEDIATE_BUDGET_BYTES = 256 * 2**20


def next_batch(start: int, per_sample_bytes: int | None, fixed: int | None = None) -> int:
    """How many samples the batch at ``start`` holds: one at first (to measure), then as many as the
    budget allows, at most MAX_BATCH; a model with a fixed batch size gets exactly that."""
    if fixed:
        return fixed
    if start == 0 or not per_sample_bytes:
        return 1
    return max(1, min(MAX_BATCH, INTERMEDIATE_BUDGET_BYTES // per_sample_bytes))


def check_cancel(cancel: Any) -> None:
    """Raise Cancelled when ``cancel`` (a CancelToken, a callable, or None) asks to stop."""
    if cancel is None:
        return
    if hasattr(cancel, "raise_if_cancelled"):
        cancel.raise_if_cancelled()
    elif callable(cancel) and cancel():
        raise Cancelled("the layer analysis was cancelled")
