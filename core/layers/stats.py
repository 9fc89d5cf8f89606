"""Error statistics of a quantized tensor against its float reference, accumulated batch by batch.

Only sums are kept (per tensor and per channel), so a layer analysis over many samples never
holds more than one batch of intermediate tensors. numpy only; no runtime is imported here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The SQNR reported when the quantized tensor equals the float one (no noise at all): a finite number
#: keeps the result JSON-clean and sorts above every real figure (float32 rounding alone gives ~140 dB).
EXACT_SQNR_DB = 200.0
#: A layer's output "departs" from the float model below this SQNR (the issue's one-sample marker, the chart's line).
DEPARTS_BELOW_DB = 10.0
#: A channel is an outlier when its float range (zero included) exceeds this many times the median channel range.
OUTLIER_FACTOR = 10.0


def sqnr_db(signal_energy: float, noise_energy: float) -> float | None:
    """10·log10(signal / noise); None where there is no signal, EXACT_SQNR_DB where there is no noise."""
    if signal_energy <= 0.0:
        return None
    if noise_energy <= 0.0:
        return EXACT_SQNR_DB
    return min(EXACT_SQNR_DB, 10.0 * math.log10(signal_energy / noise_energy))


def _by_channel(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``x`` as a [channels, values] float64 matrix (one row when there is no channel axis)."""
    x = np.asarray(x, dtype=np.float64)
    if axis is None or x.ndim < 2:
        return x.reshape(1, -1)
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _channel_view(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``x`` as float32 [before, channels, after] without moving data (one channel when there is no axis)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if axis is None or x.ndim < 2:
        return x.reshape(1, 1, -1)
    before = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(before, x.shape[axis], -1)


def channel_axis_of(ndim: int, channels_last: bool = False) -> int | None:
    """Axis 1 for NC/NCHW tensors, the last axis for NHWC when told; None for tensors without one."""
    if ndim < 2:
        return None
    return ndim - 1 if channels_last else 1


class TensorComparison:
    """Running comparison of one tensor: feed (float, quantized) batches with ``update``, read ``result``.

    ``quant_range`` is the (low, high) the variant can represent at this tensor (from its scale and zero
    point); float values outside it count as clipped.
    """

    def __init__(self, channels_last: bool = False, quant_range: tuple[float, float] | None = None) -> None:
        self.channels_last = channels_last
        self.quant_range = quant_range
        self.count = 0
        self._ref2 = 0.0
        self._test2 = 0.0
        self._dot = 0.0
        self._err2 = 0.0
        self._max_abs = 0.0
        self._clipped = 0
        self._ch_ref2: np.ndarray | None = None
        self._ch_err2: np.ndarray | None = None
        self._ch_min: np.ndarray | None = None
        self._ch_max: np.ndarray | None = None

    def update(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Add one batch: ``ref`` from the float model, ``test`` (dequantized) from the variant, same shape."""
        ref = np.asarray(ref)
        test = np.asarray(test)
        if ref.shape != test.shape:
            raise ValueError(f"shapes differ: float {ref.shape}, variant {test.shape}")
        axis = channel_axis_of(ref.ndim, self.channels_last)
        r, t = _channel_view(ref, axis), _channel_view(test, axis)
        err = t - r
        # Per-channel sums in float32 (einsum sums in blocks: relative error ~1e-7), totals in float64.
        ch_ref2 = np.einsum("acb,acb->c", r, r).astype(np.float64)
        ch_err2 = np.einsum("acb,acb->c", err, err).astype(np.float64)
        self._ref2 += float(ch_ref2.sum())
        self._err2 += float(ch_err2.sum())
        self._test2 += float(np.einsum("acb,acb->c", t, t).astype(np.float64).sum())
        self._dot += float(np.einsum("acb,acb->c", r, t).astype(np.float64).sum())
        self.count += r.size
        if r.size == 0:
            return
        self._max_abs = max(self._max_abs, float(err.max()), -float(err.min()))
        if self.quant_range is not None:
            low, high = self.quant_range
            self._clipped += int(np.count_nonzero(r < low)) + int(np.count_nonzero(r > high))
        ch_min, ch_max = r.min(axis=(0, 2)).astype(np.float64), r.max(axis=(0, 2)).astype(np.float64)
        if self._ch_ref2 is None or self._ch_ref2.shape != ch_ref2.shape:
            self._ch_ref2, self._ch_err2, self._ch_min, self._ch_max = ch_ref2, ch_err2, ch_min, ch_max
        else:
            self._ch_ref2 += ch_ref2
            self._ch_err2 += ch_err2
            self._ch_min = np.minimum(self._ch_min, ch_min)
            self._ch_max = np.maximum(self._ch_max, ch_max)

    def min_channel_sqnr_db(self) -> float | None:
        """The worst channel's SQNR (channels that carry no float signal are left out)."""
        if self._ch_ref2 is None:
            return None
        values = [sqnr_db(float(s), float(n)) for s, n in zip(self._ch_ref2, self._ch_err2, strict=True)]
        known = [v for v in values if v is not None]
        return min(known) if known else None

    def outlier_channels(self) -> list[int]:
        """Channels whose float range exceeds OUTLIER_FACTOR times the median channel range.

        A channel's range is the span a quantizer must cover for it, zero included (quantization ranges
        always hold zero): max(max, 0) − min(min, 0).
        """
        if self._ch_min is None or self._ch_min.size < 2:
            return []
        ranges = np.maximum(self._ch_max, 0.0) - np.minimum(self._ch_min, 0.0)
        median = float(np.median(ranges))
        if median <= 0.0:
            return []
        return [int(i) for i in np.flatnonzero(ranges > OUTLIER_FACTOR * median)]

    def result(self) -> dict[str, Any]:
        """The ``activation`` record of a layer: sqnr_db, mse (relative), cosine, max_abs, worst channel,
        outlier channels and clipped_fraction (None where the quantization range is not known)."""
        norm = math.sqrt(self._ref2 * self._test2)
        return {
            "sqnr_db": sqnr_db(self._ref2, self._err2),
            "mse": self._err2 / self._ref2 if self._ref2 > 0 else None,
            "cosine": self._dot / norm if norm > 0 else None,
            "max_abs": self._max_abs,
            "min_channel_sqnr_db": self.min_channel_sqnr_db(),
            "outlier_channels": self.outlier_channels(),
            "clipped_fraction": (self._clipped / self.count if self.quant_range is not None and self.count else None),
        }


def compare_weights(float_weight: np.ndarray, dequantized: np.ndarray, channel_axis: int | None = 0) -> dict[str, Any]:
    """SQNR of a dequantized weight against the float weight, whole and for its worst output channel."""
    ref = np.asarray(float_weight, dtype=np.float64)
    test = np.asarray(dequantized, dtype=np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"weight shapes differ: float {ref.shape}, variant {test.shape}")
    axis = channel_axis if channel_axis is not None and ref.ndim >= 2 else None
    r = _by_channel(ref, axis)
    err = _by_channel(test, axis) - r
    ch_ref2 = np.einsum("ij,ij->i", r, r)
    ch_err2 = np.einsum("ij,ij->i", err, err)
    channels = [sqnr_db(float(s), float(n)) for s, n in zip(ch_ref2, ch_err2, strict=True)]
    known = [v for v in channels if v is not None]
    return {
        "sqnr_db": sqnr_db(float(ch_ref2.sum()), float(ch_err2.sum())),
        "min_channel_sqnr_db": min(known) if known else None,
    }


def dequantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None = None) -> np.ndarray:
    """(values − zero_point) · scale, per tensor or per channel along ``axis``, as float32."""
    scale = np.asarray(scale, dtype=np.float32)
    zp = np.asarray(zero_point, dtype=np.float32)
    x = np.asarray(values).astype(np.float32)
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis if axis is not None else 0] = scale.size
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
    else:
        scale = scale.reshape(())
        zp = zp.reshape(())
    return (x - zp) * scale


def integer_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def representable_range(scale: float, zero_point: float, dtype: np.dtype) -> tuple[float, float]:
    """The float interval a per-tensor (scale, zero point) of integer type ``dtype`` can represent."""
    qmin, qmax = integer_range(dtype)
    return (qmin - zero_point) * scale, (qmax - zero_point) * scale
