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
#: Bins of a layer's float-value histogram (even: widening the range merges bins pairwise).
HISTOGRAM_BINS = 128


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


class StreamingHistogram:
    """A histogram of equal bins whose range grows as batches stream in.

    The first batch sets the range; a later value outside it doubles the bin width (merging neighbouring bins
    exactly, the range growing away from the side that holds) until the range covers it. Memory: the bins only.
    """

    def __init__(self, bins: int = HISTOGRAM_BINS) -> None:
        if bins < 2 or bins % 2:
            raise ValueError(f"a streaming histogram needs an even number of bins, not {bins}")
        self.bins = bins
        self.low = 0.0
        self.width = 0.0
        self.counts = np.zeros(bins, dtype=np.int64)
        self.total = 0

    @property
    def high(self) -> float:
        return self.low + self.bins * self.width

    def update(self, values: np.ndarray, lo: float | None = None, hi: float | None = None) -> None:
        """Add ``values`` (any shape); ``lo``/``hi``, when the caller knows them, save a pass over the values."""
        values = np.asarray(values).reshape(-1)
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            values = values[np.isfinite(values)]  # an overflowed float16 value has no bin
            if values.size == 0:
                return
            lo, hi = float(values.min()), float(values.max())
        if values.size == 0:
            return
        if self.total == 0:
            span = hi - lo
            self.low = lo
            self.width = span / self.bins if span > 0 else max(abs(lo), 1.0) * 1e-6
        else:
            self._cover(lo, hi)
        # Bin positions in float32, in place (a layer's output is millions of values a batch). The range covers the
        # values, so positions lie in [0, bins] (a float32 rounding below 0 truncates to 0, as floor would): the
        # top edge (position bins) belongs to the last bin.
        position = np.subtract(values, np.float32(self.low), dtype=np.float32)
        position *= np.float32(1.0 / self.width)
        counts = np.bincount(position.astype(np.intp), minlength=self.bins + 1)
        self.counts += counts[:self.bins]
        self.counts[-1] += counts[self.bins:].sum()
        self.total += int(values.size)

    def _cover(self, lo: float, hi: float) -> None:
        half = self.bins // 2
        while lo < self.low or hi > self.high:
            merged = self.counts[0::2] + self.counts[1::2]
            counts = np.zeros_like(self.counts)
            if hi > self.high:  # grow upwards: the old bins fill the lower half
                counts[:half] = merged
            else:  # grow downwards: the old bins fill the upper half
                counts[half:] = merged
                self.low -= self.bins * self.width
            self.counts = counts
            self.width *= 2.0

    def record(self, quant_range: tuple[float, float] | None = None, clipped: float | None = None,
               per_channel: bool = False) -> dict[str, Any] | None:
        """``{"low", "high", "counts", "quant_range", "clipped_fraction", "per_channel"}``; None when empty."""
        if self.total == 0:
            return None
        return {
            "low": self.low, "high": self.high, "counts": [int(c) for c in self.counts],
            "quant_range": [float(quant_range[0]), float(quant_range[1])] if quant_range is not None else None,
            "clipped_fraction": clipped, "per_channel": per_channel,
        }


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
        self.histogram = StreamingHistogram()

    def update(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Add one batch: ``ref`` from the float model, ``test`` (dequantized) from the variant, same shape."""
        ref = np.asarray(ref)
        test = np.asarray(test)
        if ref.shape != test.shape:
            raise ValueError(f"shapes differ: float {ref.shape}, variant {test.shape}")
        axis = channel_axis_of(ref.ndim, self.channels_last)
        r, t = _channel_view(ref, axis), _channel_view(test, axis)
        err = t - r
        # Per-channel sums in float32 (einsum sums in blocks: relative error ~1e-7), totals in float64. With
        # t = r + e: t·t = r·r + 2 r·e + e·e and r·t = r·r + r·e, one pass fewer than summing t·t and r·t.
        ch_ref2 = np.einsum("acb,acb->c", r, r).astype(np.float64)
        ch_err2 = np.einsum("acb,acb->c", err, err).astype(np.float64)
        ref_err = float(np.einsum("acb,acb->c", r, err).astype(np.float64).sum())
        ref2, err2 = float(ch_ref2.sum()), float(ch_err2.sum())
        self._ref2 += ref2
        self._err2 += err2
        self._test2 += ref2 + 2.0 * ref_err + err2
        self._dot += ref2 + ref_err
        self.count += r.size
        if r.size == 0:
            return
        self._max_abs = max(self._max_abs, float(err.max()), -float(err.min()))
        ch_min, ch_max = r.min(axis=(0, 2)).astype(np.float64), r.max(axis=(0, 2)).astype(np.float64)
        lo, hi = float(ch_min.min()), float(ch_max.max())
        if self.quant_range is not None:
            low, high = self.quant_range
            # Counted only on the side the batch's extremes cross (most batches cross neither, or one).
            self._clipped += (int(np.count_nonzero(r < low)) if lo < low else 0) + (
                int(np.count_nonzero(r > high)) if hi > high else 0)
        self.histogram.update(r, lo, hi)
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
            "clipped_fraction": self.clipped_fraction(),
        }

    def clipped_fraction(self) -> float | None:
        """The share of float values outside the variant's representable range (None where it is not known)."""
        return self._clipped / self.count if self.quant_range is not None and self.count else None

    def histogram_record(self) -> dict[str, Any] | None:
        """The float values' histogram with the variant's quantization range over it (see StreamingHistogram)."""
        return self.histogram.record(self.quant_range, self.clipped_fraction())


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


def weight_histogram(float_weight: np.ndarray, quant_range: tuple[float, float] | None,
                     per_channel: bool = False) -> dict[str, Any] | None:
    """A weight's float-value histogram with its quantization range (per channel: the widest channel's span)
    and the share of values outside it."""
    w = np.asarray(float_weight, dtype=np.float32)
    hist = StreamingHistogram()
    hist.update(w)
    clipped = None
    if quant_range is not None and w.size:
        clipped = float(np.count_nonzero((w < quant_range[0]) | (w > quant_range[1]))) / w.size
    return hist.record(quant_range, clipped, per_channel)


def span_of(scale: np.ndarray, zero_point: np.ndarray, dtype: np.dtype) -> tuple[tuple[float, float], bool]:
    """The representable range of a per-tensor or per-channel (scale, zero point), the union over channels,
    and whether it is per channel."""
    qmin, qmax = integer_range(dtype)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    zp = np.broadcast_to(np.asarray(zero_point, dtype=np.float64).reshape(-1), scale.shape)
    return (float(((qmin - zp) * scale).min()), float(((qmax - zp) * scale).max())), scale.size > 1


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
