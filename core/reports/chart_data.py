"""What the charts show, decided once for the window and the report: colours, histogram bins, axis range.

Palette: the i-th variant has the same colour in the window's charts and in the HTML/SVG report.
Okabe-Ito's colour-blind-safe set comes first (yellow moved last, it reads badly on white); past
it, hues spaced by the golden angle, so no two variants of a long comparison share a colour.
Baselines are grey.

Latency histogram: ``LATENCY_BINS`` log-spaced bins over a range shared by every variant. The
range runs from the fastest sample to the largest p99.5, rounded outwards to tenths of a
decade, so one stray spike cannot squash every row. Samples outside it are never folded into
the end bins (a tall last bar would read as samples at that latency): they are counted apart
and the chart says "+N beyond the axis".
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

BASELINE_COLORS: tuple[str, ...] = ("#7a7a7a", "#4d4d4d", "#a6a6a6", "#303030")
VARIANT_COLORS: tuple[str, ...] = (
    "#0072b2",  # blue
    "#e69f00",  # orange
    "#009e73",  # bluish green
    "#d55e00",  # vermillion
    "#cc79a7",  # reddish purple
    "#56b4e9",  # sky blue
    "#8c564b",  # brown
    "#f0e442",  # yellow
)
_GOLDEN_ANGLE = 137.508
_EXTRA_SATURATION = 170 / 255  # mid saturation and lightness: readable on light and dark backgrounds
_EXTRA_LIGHTNESS = 105 / 255

LATENCY_BINS = 60
TAIL_PERCENTILE = 99.5  # the top of the latency axis: the largest of the variants' p99.5
_AXIS_STEP = 0.1  # decades: the range is rounded outwards to this, so it stays put as samples trickle in


def variant_color(index: int) -> str:
    """The colour of the ``index``-th variant after the baseline, as '#rrggbb'."""
    if index < len(VARIANT_COLORS):
        return VARIANT_COLORS[index]
    hue = ((index - len(VARIANT_COLORS)) * _GOLDEN_ANGLE + 15.0) % 360
    r, g, b = colorsys.hls_to_rgb(hue / 360, _EXTRA_LIGHTNESS, _EXTRA_SATURATION)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (r, g, b))


def baseline_color(index: int = 0) -> str:
    """The grey of the ``index``-th baseline (a comparison of several studies has one per study)."""
    return BASELINE_COLORS[index % len(BASELINE_COLORS)]


def variant_colors(labels: Sequence[str], baselines: Iterable[str] | None = None) -> dict[str, str]:
    """A colour per label: baselines grey (the first label when none are named), the rest in palette order."""
    base = set(baselines) if baselines is not None else set(labels[:1])
    colors: dict[str, str] = {}
    n_base = n_var = 0
    for label in labels:
        if label in base:
            colors[label] = baseline_color(n_base)
            n_base += 1
        else:
            colors[label] = variant_color(n_var)
            n_var += 1
    return colors


class LatencyBins(NamedTuple):
    """One variant's samples on the shared bins: counts inside the axis, and how many lie beyond each end."""

    counts: np.ndarray
    beyond: int  # slower than the axis reaches
    below: int  # faster than the axis starts (or not a positive time)


def latency_extent(samples_ms: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """(fastest positive sample, p99.5) of one variant; None when it has no positive sample."""
    x = np.asarray(samples_ms, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if not x.size:
        return None
    return float(x.min()), float(np.percentile(x, TAIL_PERCENTILE))


def latency_axis(extents: Iterable[tuple[float, float] | None]) -> tuple[float, float] | None:
    """The shared range (ms) of every variant's row, from their extents; None when none has samples."""
    known = [e for e in extents if e is not None]
    if not known:
        return None
    return round_log_range(min(e[0] for e in known), max(e[1] for e in known))


def round_log_range(lo: float, hi: float) -> tuple[float, float]:
    """Round outwards to tenths of a decade, the top strictly above ``hi`` (so the slowest sample kept by
    the range lies inside the half-open last bin)."""
    lo = max(lo, 1e-6)
    hi = max(hi, lo * 1.05)
    lo_step = math.floor(math.log10(lo) / _AXIS_STEP + 1e-9)
    hi_step = math.floor(math.log10(hi) / _AXIS_STEP) + 1
    return 10 ** (lo_step * _AXIS_STEP), 10 ** (hi_step * _AXIS_STEP)


def latency_edges(lo: float, hi: float, bins: int = LATENCY_BINS) -> np.ndarray:
    """Bins of equal width on the log axis: equal resolution for fast and slow variants."""
    return np.geomspace(lo, hi, bins + 1)


def bin_latencies(samples_ms: Sequence[float] | np.ndarray, edges: Sequence[float] | np.ndarray) -> LatencyBins:
    """Counts per bin ``[edge_i, edge_i+1)``; samples at or past the last edge are ``beyond``, never dropped."""
    x = np.asarray(samples_ms, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    lo, hi = e[0], e[-1]
    below = int(np.count_nonzero(~(x >= lo) | (x <= 0)))  # NaN counts as below: it is no time at all
    beyond = int(np.count_nonzero(x >= hi))
    inside = x[(x >= lo) & (x < hi) & (x > 0)]
    counts, _ = np.histogram(inside, bins=e)
    return LatencyBins(counts.astype(np.int64), beyond, below)


def latency_histogram(samples_by_variant: Sequence[Sequence[float] | np.ndarray], bins: int = LATENCY_BINS,
                      ) -> tuple[np.ndarray, list[LatencyBins]] | None:
    """The shared edges and each variant's bins, computed from all the samples at once (the report, a
    stored study); None when no variant has a positive sample."""
    axis = latency_axis(latency_extent(s) for s in samples_by_variant)
    if axis is None:
        return None
    edges = latency_edges(*axis, bins=bins)
    return edges, [bin_latencies(s, edges) for s in samples_by_variant]


def beyond_text(beyond: int) -> str:
    """What a row says about samples past its axis ('' when there are none)."""
    return f"+{beyond} beyond the axis" if beyond else ""


# ---- per-layer SQNR ----------------------------------------------------------------------------

#: The per-layer SQNR axis ends here: layers a variant reproduces exactly (core.layers.stats.EXACT_SQNR_DB)
#: are drawn on the chart's top edge, not at 200 dB where they would squash every other layer.
LAYER_CHART_TOP_DB = 100.0


def merged_layer_names(lists: Sequence[Sequence[dict]]) -> list[str]:
    """Every variant's layer names on one axis, in model order (each list is in model order; a name
    missing from the longest list goes right after the name that precedes it in its own list)."""
    names: list[str] = []
    for layers in sorted(lists, key=len, reverse=True):
        previous = -1
        for layer in layers:
            name = layer["name"]
            if name in names:
                previous = names.index(name)
            else:
                previous += 1
                names.insert(previous, name)
    return names


def layer_axis_groups(lists: Sequence[Sequence[dict]]) -> list[list[int]]:
    """The indices of ``lists`` (each a variant's layer records) grouped by shared layer names, in first-seen
    order: the variants of one runtime share an axis, while an ONNX Runtime variant's nodes and a PyTorch
    variant's modules never name the same layer, so each runtime's variants get a chart of their own."""
    groups: list[tuple[set[str], list[int]]] = []
    for index, layers in enumerate(lists):
        names = {layer["name"] for layer in layers}
        joined = [g for g in groups if g[0] & names]
        if not joined:
            groups.append((set(names), [index]))
            continue
        first = joined[0]
        first[0].update(names)
        first[1].append(index)
        for other in joined[1:]:  # this variant bridges two groups: one axis for all of them
            first[0].update(other[0])
            first[1].extend(other[1])
            groups.remove(other)
        first[1].sort()
    return [indices for _, indices in groups]
