"""`synthetic:N`: random inputs shaped for the model, for latency and fidelity without data.

No labels, so only the agreement with the float baseline and the timings mean anything.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import INDEX_DTYPES, format_shape
from core.errors import BadInput
from core.study.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo


#: At most this many random samples are drawn apart from the evaluated ones for calibration.
CALIBRATION_DRAW_MAX = 500


def load_synthetic(spec: DatasetSpec, model_input: TensorInfo | None, seed: int = 0) -> Dataset:
    """N standard-normal float32 samples for ``model_input``, reproducible from ``seed``."""
    text = spec.describe()
    try:
        n = int(spec.location)
    except ValueError:
        raise BadInput(f"{text}: synthetic needs a sample count, e.g. synthetic:256.") from None
    if n <= 0:
        raise BadInput(f"{text}: the sample count must be positive.")
    if model_input is None:
        raise BadInput(f"{text}: synthetic data takes its shape from the model, so a model is needed first.")
    shape = tuple(model_input.sample_shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise BadInput(
            f"{text}: the model input '{model_input.name}' is {format_shape(shape)} per sample, with dimensions "
            "that are not fixed; use a real dataset so their sizes are known."
        )
    try:
        wanted = np.dtype(model_input.dtype)
    except TypeError:
        wanted = np.dtype(np.float32)
    # int8/uint8 inputs of quantized models take floats through the runtime; ids and flags do not.
    if wanted.kind == "b" or wanted.name in INDEX_DTYPES:
        raise BadInput(
            f"{text}: the model input '{model_input.name}' takes {wanted.name} values, whose valid range random "
            "data cannot guess; use a real dataset."
        )
    from core.models.limits import check_claim

    # A model may declare absurd input sizes; refuse them here rather than die allocating.
    check_claim(text, f"{n} samples of {format_shape(shape)} values", n * math.prod(shape) * 4)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    # Drawn after x from the same stream, so x is what it always was and calibration never reuses it.
    calibration = rng.standard_normal((min(n, CALIBRATION_DRAW_MAX), *shape), dtype=np.float32)
    return Dataset(
        x=x,
        calibration=calibration,
        calibration_source="separate_draw",
        calibration_overlaps=False,
        y=None,
        task=Task.UNLABELLED,
        spec=text,
        preprocessing=f"random standard-normal values (seed {seed})",
        notes=["Synthetic inputs: accuracy is not measured, only agreement with the baseline and latency."],
    )
