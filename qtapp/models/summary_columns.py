"""The summary table's columns: what each shows for a variant and how it is graded.

Kept apart from the Qt model so the formatting can be read (and tested) on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.measures.drift_notes import PAIRED_MARK
from core.measures.latency_stats import quantiles
from core.reports.format import (
    format_bytes,
    format_ms,
    format_percent,
    format_points,
    format_points_interval,
    format_size_change,
    format_speedup,
)
from core.study.result import Grade, VariantResult
from qtapp.models.study_state import Phase, VariantState

Cell = tuple[str, Grade | None]  # the text, and the grade that colours it (None: plain)


@dataclass(frozen=True)
class Column:
    title: str
    tooltip: str
    cell: Callable[[VariantState, VariantState | None], Cell]
    #: A tooltip for one row's cell (e.g. where its figure came from); None or "" falls back to ``tooltip``.
    cell_tooltip: Callable[[VariantState], str] | None = None


def _metric(v: VariantState, key: str) -> float | None:
    r = v.result
    if r is None or not r.ok or not r.metrics:
        return None
    value = r.metrics.get(key)
    return None if value is None else float(value)


def _fidelity(v: VariantState, key: str) -> float | None:
    r = v.result
    if r is None or not r.ok or not r.fidelity:
        return None
    value = r.fidelity.get(key)
    return None if value is None else float(value)


def _is_baseline(v: VariantState) -> bool:
    return v.is_baseline


def accuracy(v: VariantState, base: VariantState | None) -> Cell:
    value = _metric(v, "accuracy")
    if value is None:
        return ("", None)
    evaluated = v.result.evaluated if v.result else None
    if evaluated:  # a slow variant evaluated on its first samples only (--slow-variant-samples)
        return (f"{format_percent(value)} ({evaluated.get('samples')}/{evaluated.get('of')})", None)
    return (format_percent(value), None)


def accuracy_drop(v: VariantState, base: VariantState | None) -> Cell:
    r = v.result
    if _is_baseline(v) or r is None or not r.ok:
        return ("", None)
    drop = r.verdict.accuracy_drop if r.verdict else None
    if drop is None and base is not None:
        mine, theirs = _metric(v, "accuracy"), _metric(base, "accuracy")
        drop = None if mine is None or theirs is None else theirs - mine
    if drop is None:
        return ("", None)
    text = format_points(-drop, decimals=1, typographic=True)  # shown as a change: negative is worse
    interval = format_points_interval((r.metrics or {}).get("accuracy_delta_ci95"), decimals=1, typographic=True)
    return (f"{text} {interval}" if interval else text, r.verdict.accuracy if r.verdict else None)


def regression(key: str) -> Callable[[VariantState, VariantState | None], Cell]:
    def cell(v: VariantState, base: VariantState | None) -> Cell:
        value = _metric(v, key)
        return ("" if value is None else f"{value:.4g}", None)

    return cell


def mse_change(v: VariantState, base: VariantState | None) -> Cell:
    if _is_baseline(v) or base is None:
        return ("", None)
    mine, theirs = _metric(v, "mse"), _metric(base, "mse")
    if mine is None or theirs is None or theirs == 0:
        return ("", None)
    change = mine / theirs - 1
    grade = v.result.verdict.accuracy if v.result and v.result.verdict else None
    return (format_percent(change, signed=True, typographic=True), grade)


#: The live p50/p99 while a variant is timed are read from at most this many samples (evenly
#: strided), so the table's cost stays flat as samples pile up; the engine's exact figures
#: replace them when the variant finishes.
LIVE_ESTIMATE_SAMPLES = 20_000


def _latency(v: VariantState) -> tuple[float, float] | None:
    """(p50, p99) in ms: the engine's once the variant is done, a live estimate while it is timed."""
    r = v.result
    if r is not None and r.ok and r.latency is not None:
        return r.latency.p50, r.latency.p99
    if v.phase is Phase.RUNNING and len(v.samples):
        values = v.samples.values
        step = max(1, len(values) // LIVE_ESTIMATE_SAMPLES)
        mid, tail = quantiles(values[::step], (50, 99))  # one partial sort for both
        return mid, tail
    return None


def latency(v: VariantState, base: VariantState | None) -> Cell:
    """Median and 99th percentile, as 'p50 / p99' in ms."""
    both = _latency(v)
    return ("" if both is None else f"{format_ms(both[0])} / {format_ms(both[1])}", None)


def _from_rounds(v: VariantState) -> bool:
    """Whether ``v``'s speed-up was measured in the paired rounds (else it is its first timing's)."""
    return v.paired is not None and v.paired.speedup is not None


def speedup(v: VariantState, base: VariantState | None) -> Cell:
    """The verdict's speed-up, marked when it comes from the paired rounds (as the CLI and HTML tables mark it):
    a variant timed with too few samples for the rounds keeps its first timing's, unmarked."""
    r = v.result
    if _is_baseline(v) or r is None or not r.ok or r.verdict is None or r.verdict.speedup is None:
        return ("", None)
    mark = PAIRED_MARK if _from_rounds(v) else ""
    return (format_speedup(r.verdict.speedup, typographic=True) + mark, r.verdict.speed)


def paired_latency(v: VariantState, base: VariantState | None) -> Cell:
    """The variant's median over the paired rounds, in ms (the latency its marked speed-up agrees with)."""
    p50 = v.paired.p50_ms if v.paired is not None else None
    return ("" if p50 is None else format_ms(p50), None)


def paired_speedup_tooltip(v: VariantState) -> str:
    """Where a marked speed-up came from: its range over the rounds, and what the first timings alone said; for an
    unmarked one, why it took no part in the rounds."""
    if v.is_baseline:
        return ""
    if not _from_rounds(v):
        r = v.result
        if r is None or not r.ok or r.latency is None or r.verdict is None or r.verdict.speedup is None:
            return ""
        from core.engine.drift import DRIFT_MIN_SAMPLES

        said = f"{format_speedup(r.verdict.speedup)} the baseline's speed, from this variant's first timing"
        if r.latency.n < DRIFT_MIN_SAMPLES:
            return (f"{said}: it took no part in the interleaved rounds, its {r.latency.n} timing samples being too "
                    "few to tell a change of the machine's speed from noise.")
        return f"{said}: its study's machine held still, so it ran no interleaved rounds."  # a calm study, compared
    median, low, high = v.paired.speedup
    lines = [
        f"{format_speedup(median)} the baseline's speed: the median over {v.paired.rounds} interleaved rounds "
        f"(from {format_speedup(low)} to {format_speedup(high)}), timed again because the machine's speed changed."
    ]
    first = v.result.latency.p50 if v.result is not None and v.result.latency is not None else None
    if first:
        lines.append(f"First timing: p50 {format_ms(first)} ms (the p50/p99 column and the histogram).")
    return "\n".join(lines)


def speedup_vs_float(v: VariantState, base: VariantState | None) -> Cell:
    """Speed-up against the study's fastest float variant (as the CLI's and the report's "vs best float")."""
    r = v.result
    value = r.verdict.speedup_vs_fastest_float if r is not None and r.ok and r.verdict is not None else None
    return ("" if value is None else format_speedup(value, typographic=True), None)


def size(v: VariantState, base: VariantState | None) -> Cell:
    """Bytes on disk, with the change against the baseline in brackets."""
    if v.size_bytes is None:
        return ("", None)
    text = format_bytes(v.size_bytes)
    if _is_baseline(v) or base is None or base.size_bytes is None:
        return (text, None)
    grade = v.result.verdict.size if v.result is not None and v.result.verdict else None
    return (f"{text} {format_size_change(v.size_bytes, base.size_bytes, typographic=True)}", grade)


def agreement(v: VariantState, base: VariantState | None) -> Cell:
    value = _fidelity(v, "agreement")
    return ("" if value is None else format_percent(value), None)


def sqnr(v: VariantState, base: VariantState | None) -> Cell:
    value = _fidelity(v, "sqnr_db")
    if value is None or _is_baseline(v):
        return ("", None)
    if v.result is not None and (v.result.fidelity or {}).get("identical"):
        return ("identical", None)
    return (f"{value:.0f} dB" if abs(value) >= 10 else f"{value:.1f} dB", None)


def verdict(v: VariantState, base: VariantState | None) -> Cell:
    r = v.result
    if v.phase is Phase.RUNNING:
        return (v.status_text, None)
    if r is None:
        return ("not run" if v.phase is Phase.CANCELLED else v.status_text, None)
    if not r.ok:
        return ("FAILED" if r.status.value == "failed" else "SKIPPED", Grade.BAD)
    if _is_baseline(v) or r.verdict is None or r.verdict.overall is Grade.BASELINE:
        return ("baseline", None)
    return (r.verdict.overall.value.upper(), r.verdict.overall)


# The verdict comes first, then what it weighs: quality, speed-up and size before the latencies behind the
# speed-up, so a table narrower than its columns (a 1280 px window) scrolls the details off, not the answer.
VERDICT = Column("Verdict", "Overall grade; hover for the reasons. Thresholds below the table.", verdict)
SPEED = Column("Speed", "Speed-up: baseline median latency divided by this variant's.", speedup)
SIZE = Column("Size", "Bytes on disk of the file a user would ship (change against the baseline).", size)
LATENCY = Column("p50/p99 ms", "Median and 99th-percentile latency of one call (live estimate while timing).", latency)
VS_FLOAT = Column(
    "vs float",
    "Speed-up against the study's fastest float variant (the baseline or, often faster, its ONNX export): what the "
    "quantization itself buys, apart from a change of runtime.",
    speedup_vs_float,
)
TIMING_AND_SIZE = (SPEED, SIZE, LATENCY, VS_FLOAT)
#: When the machine's speed changed, the speed-ups come from paired rounds: the table says so in the
#: Speed column's title, marks each speed-up measured in them, and shows each variant's median in those
#: rounds beside its first timing.
PAIRED_SPEED = Column(
    f"Speed {PAIRED_MARK}",
    f"Speed-up; marked {PAIRED_MARK}: from the interleaved rounds, the median over rounds of the baseline's median ÷ "
    "this variant's (both timed within a second of each other). Unmarked: from the first timing (too few samples "
    "for the rounds). Hover a cell for its range.",
    speedup,
    paired_speedup_tooltip,
)
PAIRED_LATENCY = Column(
    f"p50 {PAIRED_MARK} ms",
    "Median latency over the interleaved rounds run at the end of the study because the machine's speed "
    "changed: the figures the marked speed-ups come from.",
    paired_latency,
)
AGREEMENT = Column("Agree", "Share of samples with the same predicted class as the baseline.", agreement)
SQNR = Column("SQNR", "Signal-to-quantization-noise ratio of the outputs against the baseline.", sqnr)

CLASSIFICATION_COLUMNS = (
    VERDICT,
    Column("Acc.", "Accuracy: share of samples classified correctly; (n/N): a slow variant evaluated on its first n "
           "of N samples (Slow variants), compared with the baseline on those same samples.", accuracy),
    Column(
        "Δ acc.",
        "Change in accuracy against the baseline, in percentage points, with its 95 % interval\n"
        "(paired bootstrap on the same samples); an interval that includes 0 is within noise.",
        accuracy_drop,
    ),
    *TIMING_AND_SIZE,
    AGREEMENT,
    SQNR,
)

REGRESSION_COLUMNS = (
    VERDICT,
    Column("MSE", "Mean squared error against the labels.", regression("mse")),
    Column("MAE", "Mean absolute error against the labels.", regression("mae")),
    Column("Δ MSE", "Change in MSE against the baseline.", mse_change),
    *TIMING_AND_SIZE,
    SQNR,
)

UNLABELLED_COLUMNS = (VERDICT, *TIMING_AND_SIZE, AGREEMENT, SQNR)


def perplexity(v: VariantState, base: VariantState | None) -> Cell:
    value = _metric(v, "perplexity")
    return ("" if value is None else f"{value:.4g}", None)


def perplexity_change(v: VariantState, base: VariantState | None) -> Cell:
    """The perplexity's rise against the baseline's, in percent (graded on the ratio's thresholds)."""
    r = v.result
    if _is_baseline(v) or r is None or not r.ok or r.verdict is None or r.verdict.accuracy_drop is None:
        return ("", None)
    return (format_percent(r.verdict.accuracy_drop, signed=True, typographic=True), r.verdict.accuracy)


def next_token_accuracy(v: VariantState, base: VariantState | None) -> Cell:
    value = _metric(v, "next_token_accuracy")
    return ("" if value is None else format_percent(value), None)


def kl_divergence(v: VariantState, base: VariantState | None) -> Cell:
    value = _fidelity(v, "kl_divergence")
    return ("" if value is None or _is_baseline(v) else f"{value:.2g}", None)


LANGUAGE_MODEL_COLUMNS = (
    VERDICT,
    Column("PPL", "Perplexity over the real (unpadded) next tokens: lower is better.", perplexity),
    Column("Δ PPL", "The perplexity's change against the baseline's (good at most ×1.02, bad over ×1.10 by default).",
           perplexity_change),
    Column("Next tok.", "Next-token accuracy: share of real next tokens that are the most likely one.",
           next_token_accuracy),
    *TIMING_AND_SIZE,
    Column("KL", "Mean KL divergence of the next-token distributions from the baseline's, in nats.", kl_divergence),
    SQNR,
)


def columns_for(task: str, paired: bool = False) -> tuple[Column, ...]:
    """The columns for ``task``; ``paired``: some speed-ups come from paired rounds (marked, with their p50)."""
    columns = {"regression": REGRESSION_COLUMNS, "unlabelled": UNLABELLED_COLUMNS,
               "causal-lm": LANGUAGE_MODEL_COLUMNS}.get(task, CLASSIFICATION_COLUMNS)
    if not paired:
        return columns
    # The marked Speed in the plain one's place; the rounds' p50 beside the first timing's p50/p99.
    swapped = {SPEED: (PAIRED_SPEED,), LATENCY: (LATENCY, PAIRED_LATENCY)}
    return tuple(c for column in columns for c in swapped.get(column, (column,)))


def failure_text(v: VariantState) -> str:
    """The reason a variant failed, as one sentence starting with what failed."""
    stage = v.error_stage or (v.result.error_stage if v.result else None)
    reason = (v.error or (v.result.error if v.result else None) or "unknown error").strip()
    if reason.startswith(f"{v.label} "):
        return reason[len(v.label) + 1 :]  # the engine already wrote "LABEL failed while STAGE: ..."
    return f"failed while {stage}: {reason}" if stage else f"failed: {reason}"


def verdict_tooltip(r: VariantResult | None) -> str:
    if r is None or r.verdict is None:
        return ""
    lines = list(r.verdict.reasons)
    return "\n".join(lines)


def thresholds_text(th: dict[str, float], task: str | None = None) -> str:
    """The verdict rule in one line, from the thresholds the engine used (written by the rules themselves); a
    language model's (``task`` causal-lm) grades its perplexity ratio in place of accuracy."""
    from core.measures.verdict import verdict_legend
    from core.study.spec import Task

    return verdict_legend(th, Task.CAUSAL_LM if task == Task.CAUSAL_LM.value else None)
