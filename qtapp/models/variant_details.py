"""What the details view says about one variant: its coverage, advice, "why slower", every
fidelity figure, notes, build time, and its classes before and after, worst recall drop first.

Plain Python, no Qt: ``variant_details`` reads the StudyState (live, or a stored study replayed
through the same events) and returns text; the details panel only lays it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.measures.drift_notes import DRIFT_PREFIX
from core.reports.format import MISSING, format_bytes, format_ms, format_percent, format_points, format_speedup
from qtapp.models.study_state import Phase, StudyState, VariantState

#: The per-class table's columns: recall first, as the rows are sorted by its change.
CLASS_COLUMNS = (
    "Class", "Samples",
    "Recall (baseline)", "Recall", "Δ recall",
    "Precision (baseline)", "Precision", "Δ precision",
    "F1 (baseline)", "F1", "Δ F1",
)
_MEASURES = ("recall", "precision", "f1")

#: Every fidelity figure the engine writes, in the order it is read, with how it is written.
FIDELITY_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("agreement", "Agreement with the baseline", "percent"),
    ("flipped_count", "Flipped predictions", "count"),
    ("mae", "Output MAE", "number"),
    ("mse", "Output MSE", "number"),
    ("max_abs", "Output max |error|", "number"),
    ("sqnr_db", "SQNR (dB)", "decibel"),
    ("cosine", "Cosine similarity", "number"),
    ("nonfinite", "Non-finite output values", "count"),
    ("baseline_nonfinite", "Non-finite baseline values", "count"),
    ("samples", "Samples compared", "count"),
    ("kl_divergence", "Next-token KL divergence (nats)", "number"),
    ("next_token_agreement", "Next tokens agreeing with the baseline", "percent"),
)
#: The task metrics, as the CLI and HTML name them.
METRIC_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "Accuracy", "percent"),
    ("precision_macro", "Precision (macro)", "percent"),
    ("recall_macro", "Recall (macro)", "percent"),
    ("f1_macro", "F1 (macro)", "percent"),
    ("mse", "MSE", "number"),
    ("mae", "MAE", "number"),
    ("r2", "R²", "number"),
    ("perplexity", "Perplexity", "number"),
    ("next_token_accuracy", "Next-token accuracy", "percent"),
    ("tokens", "Tokens scored", "count"),
    ("tokens_per_s", "Throughput (tokens/s)", "number"),
)


@dataclass(frozen=True)
class ClassRow:
    """One class, baseline against variant (fractions; None where a side has no figure)."""

    name: str
    support: int | None
    baseline: dict[str, float | None]
    variant: dict[str, float | None]

    def change(self, measure: str) -> float | None:
        a, b = self.baseline.get(measure), self.variant.get(measure)
        return None if a is None or b is None else b - a

    def cells(self) -> list[str]:
        """The row as the table shows it, in ``CLASS_COLUMNS`` order."""
        out = [self.name, MISSING if self.support is None else f"{self.support:,}"]
        for m in _MEASURES:
            out += [format_percent(self.baseline.get(m)), format_percent(self.variant.get(m)),
                    format_points(self.change(m), decimals=1, typographic=True)]
        return out


@dataclass
class VariantDetails:
    """Everything the details view shows for one variant."""

    label: str
    title: str
    #: (heading, lines): what changed, parameters, advice, why slower, verdict, notes, error.
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    #: (name, value) figures: fidelity, task metrics, size, latency, build time.
    figures: list[tuple[str, str]] = field(default_factory=list)
    #: Per class, the largest recall drop first (empty unless both sides have per-class metrics).
    classes: list[ClassRow] = field(default_factory=list)
    #: Why there is no per-class table (None when there is one, or nothing to say).
    classes_note: str | None = None


def variant_details(state: StudyState, label: str | None) -> VariantDetails | None:
    """The details of ``label`` in ``state`` (None: no such variant)."""
    v = state.variants.get(label or "")
    if v is None:
        return None
    base = state.baseline_for(v.label)
    details = VariantDetails(label=v.label, title=_title(v, base))
    details.sections = _sections(state, v)
    details.figures = _figures(v)
    details.classes, details.classes_note = _classes(state, v, base)
    return details


def _title(v: VariantState, base: VariantState | None) -> str:
    r = v.result
    if r is None:
        return f"{v.label}: {v.status_text} (its figures appear when it finishes)"
    if not r.ok:
        return f"{v.label}: failed"
    if v.is_baseline or base is None:
        return f"{v.label}: the baseline every variant is measured against"
    grade = r.verdict.overall.value.upper() if r.verdict else "not graded"
    return f"{v.label}: {grade}, against {base.label}"


def _sections(state: StudyState, v: VariantState) -> list[tuple[str, list[str]]]:
    r = v.result
    sections: list[tuple[str, list[str]]] = []
    if v.phase is Phase.FAILED or (r is not None and not r.ok):
        stage = v.error_stage or (r.error_stage if r else None)
        error = v.error or (r.error if r else None) or "it failed"
        sections.append(("Failed", [f"{error} (while {stage})" if stage else error]))
    # Advice said before the run (StudyStarted) and the result's own, each once.
    advice = list(dict.fromkeys([*state.advice.get(v.label, []), *(r.advice if r else [])]))
    if r is not None:
        if r.coverage.get("summary"):
            # What was counted: the session's optimized graph, or for a large model the nodes one call ran.
            counted = [f"counted on: {r.coverage['graph']}"] if r.coverage.get("graph") else []
            sections.append(("What changed", [str(r.coverage["summary"]), *counted]))
        if r.params:
            sections.append(("Parameters", [", ".join(f"{k}={x}" for k, x in r.params.items())]))
    if advice:
        sections.append(("Advice", advice))
    if r is not None:
        if r.explanation:
            sections.append(("Why slower", list(r.explanation)))
        if r.verdict and r.verdict.reasons and not v.is_baseline:
            sections.append((f"Verdict: {r.verdict.overall.value}", list(r.verdict.reasons)))
        notes = [n for n in r.notes if not n.startswith(DRIFT_PREFIX)]  # said once, above the table
        if notes:
            sections.append(("Notes", notes))
    return sections


def _figures(v: VariantState) -> list[tuple[str, str]]:
    r = v.result
    if r is None or not r.ok:
        return []
    figures: list[tuple[str, str]] = []
    for source, table in ((r.fidelity or {}, FIDELITY_FIGURES), (r.metrics or {}, METRIC_FIGURES)):
        for key, name, kind in table:
            text = _figure(source.get(key), kind)
            if text is not None:
                figures.append((name, text))
    if r.verdict is not None and r.verdict.speedup is not None:
        figures.append(("Speed-up against the baseline", format_speedup(r.verdict.speedup)))
    if r.verdict is not None and r.verdict.speedup_vs_fastest_float is not None:
        figures.append(("Speed-up against the fastest float", format_speedup(r.verdict.speedup_vs_fastest_float)))
    if r.latency is not None:
        figures.append(("Latency p50 (ms)", format_ms(r.latency.p50)))
        figures.append(("Latency p99 (ms)", format_ms(r.latency.p99)))
    if r.size_bytes is not None:
        figures.append(("Size on disk", format_bytes(r.size_bytes)))
    if r.runtime:
        figures.append(("Runtime", r.runtime))
    if r.build_s is not None:
        figures.append(("Build time", f"{r.build_s:.2f} s"))
    return figures


def _figure(value: Any, kind: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return str(value)
    if kind == "percent":
        return format_percent(value, decimals=2)
    if kind == "count":
        return f"{int(value):,}"
    if kind == "decibel":
        return f"{value:.1f}"
    return f"{value:.4g}"


def _classes(state: StudyState, v: VariantState, base: VariantState | None) -> tuple[list[ClassRow], str | None]:
    mine = _per_class(v)
    if not mine:
        if v.result is not None and v.result.ok and state.task == "classification":
            return [], "No per-class figures were recorded for this variant."
        return [], None
    theirs = _per_class(base) if base is not None else {}
    names = state.dataset.get("class_names") or []
    rows = []
    for index, entry in mine.items():
        other = theirs.get(index, {})
        name = names[index] if isinstance(index, int) and 0 <= index < len(names) else str(index)
        rows.append(ClassRow(
            name=str(name),
            support=entry.get("support"),
            baseline={m: other.get(m) for m in _MEASURES},
            variant={m: entry.get(m) for m in _MEASURES},
        ))
    # The largest recall drop first; classes without a change (e.g. the baseline itself) keep their order.
    rows.sort(key=lambda row: (row.change("recall") if row.change("recall") is not None else math.inf))
    return rows, None


def _per_class(v: VariantState | None) -> dict[Any, dict[str, Any]]:
    r = v.result if v is not None else None
    if r is None or not r.ok or not r.metrics:
        return {}
    return {entry.get("label"): entry for entry in r.metrics.get("per_class") or [] if isinstance(entry, dict)}
