"""`synthetic:N`: random inputs shaped for the model, for latency and fidelity without data.

No labels, so only the agreement with the float baseline and the timings mean anything.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset, PoolRecipe
from core.datasets.check import INDEX_DTYPES, format_shape
from core.errors import BadInput
from core.study.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo


#: At most this many random samples are drawn apart from the evaluated ones for calibration.
CALIBRATION_DRAW_MAX = 500


#: Tokens per sample of synthetic token data when the model leaves the sequence length open.
SYNTHETIC_SEQUENCE = 32


def load_synthetic(
    spec: DatasetSpec, model_input: TensorInfo | None, seed: int = 0, inputs: list[TensorInfo] | None = None
) -> Dataset:
    """N standard-normal float32 samples for ``model_input``, reproducible from ``seed``.

    A model over tokens (an integer input whose embedding size is known, or several inputs) gets token
    ids drawn within the embedding's rows, masks of 0/1 (each sample's real length drawn, padding at the
    end) and zero segment ids, as one structured batch (core.models.io_spec) when it has several inputs."""
    text = spec.describe()
    try:
        n = int(spec.location)
    except ValueError:
        raise BadInput(f"{text}: synthetic needs a sample count, e.g. synthetic:256.") from None
    if n <= 0:
        raise BadInput(f"{text}: the sample count must be positive.")
    if model_input is None:
        raise BadInput(f"{text}: synthetic data takes its shape from the model, so a model is needed first.")
    if (inputs and len(inputs) > 1) or model_input.vocab:
        return _synthetic_tokens(text, n, inputs or [model_input], seed)
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
    return Dataset(
        x=x,
        calibration=None,
        calibration_recipe=_draw_after(rng, (min(n, CALIBRATION_DRAW_MAX), *shape)),
        calibration_source="separate_draw",
        calibration_overlaps=False,
        calibration_exchangeable=True,
        y=None,
        task=Task.UNLABELLED,
        spec=text,
        preprocessing=f"random standard-normal values (seed {seed})",
        notes=["Synthetic inputs: accuracy is not measured, only agreement with the baseline and latency."],
    )


def _draw_after(rng: np.random.Generator, shape: tuple[int, ...]) -> PoolRecipe:
    """The recipe of a calibration pool of standard-normal samples drawn from ``rng``'s stream where it stands
    (after the evaluated samples, so they stay what they always were and calibration never reuses one).
    Its first n samples are made from the saved state whenever asked, the same values each time (the stream is
    filled in order): a 256-image pool is 147 MB, and only the samples a variant calibrates on are made, for
    its build alone."""
    state = rng.bit_generator.state

    def make(n: int) -> np.ndarray:
        again = np.random.Generator(type(rng.bit_generator)())
        again.bit_generator.state = state
        return again.standard_normal((min(n, shape[0]), *shape[1:]), dtype=np.float32)

    return PoolRecipe(int(shape[0]), make)


def _synthetic_tokens(text: str, n: int, inputs: list[TensorInfo], seed: int) -> Dataset:
    """Random token ids within each embedding's rows, 0/1 masks with padding at the end, zero segment ids."""
    from core.models.io_spec import is_mask_name, pack_inputs

    rng = np.random.default_rng(seed)
    length = _sequence_length(inputs)
    total = n + min(n, CALIBRATION_DRAW_MAX)  # the calibration draw follows the evaluated samples
    real = rng.integers(max(1, length // 2), length + 1, size=total)
    mask = (np.arange(length)[None, :] < real[:, None]).astype(np.int64)
    arrays: dict[str, np.ndarray] = {}
    for info in inputs:
        shape = tuple(length if not (isinstance(d, int) and d > 0) else d for d in info.sample_shape)
        try:
            dtype = np.dtype(info.dtype)
        except TypeError:
            dtype = np.dtype(np.float32)
        if is_mask_name(info.name):
            arrays[info.name] = mask.astype(dtype).reshape((total, *shape))
        elif dtype.kind == "f":
            arrays[info.name] = rng.standard_normal((total, *shape)).astype(dtype)
        elif info.vocab:
            ids = rng.integers(0, info.vocab, size=(total, *shape)).astype(dtype)
            arrays[info.name] = ids * mask.reshape(ids.shape).astype(dtype) if ids.shape == (total, length) else ids
        else:
            raise BadInput(
                f"{text}: the model input '{info.name}' takes {dtype.name} values whose valid range random data "
                "cannot guess (no embedding table says it); use a real dataset."
            )
    x_all = arrays[inputs[0].name] if len(inputs) == 1 else pack_inputs(arrays)
    open_length = any(not (isinstance(d, int) and d > 0) for t in inputs for d in t.sample_shape)
    notes = ["Synthetic inputs: accuracy is not measured, only agreement with the baseline and latency."]
    if open_length:
        notes.append(f"Synthetic token sequences of {length} tokens (the model leaves the length open).")
    return Dataset(
        x=x_all[:n],
        calibration=x_all[n:],
        calibration_source="separate_draw",
        calibration_overlaps=False,
        calibration_exchangeable=True,
        y=None,
        task=Task.UNLABELLED,
        spec=text,
        preprocessing=f"random token ids within the embedding, padded at the end (seed {seed})",
        notes=notes,
    )


def _sequence_length(inputs: list[TensorInfo]) -> int:
    """The sequence length the inputs fix (their first fixed second dimension), else SYNTHETIC_SEQUENCE."""
    for info in inputs:
        dims = info.sample_shape
        if dims and isinstance(dims[0], int) and dims[0] > 0:
            return int(dims[0])
    return SYNTHETIC_SEQUENCE
