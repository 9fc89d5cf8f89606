"""Text rendering of a study: the comparison table the command line prints."""

from __future__ import annotations

from core.measures.drift_notes import DRIFT_PREFIX, study_drift_warning
from core.reports.format import format_bytes, format_ms, format_percent, format_speedup
from core.study.result import StudyResult, VariantResult, VariantStatus


def _quality(v: VariantResult, task: str) -> tuple[str, str]:
    """(headline metric, change against the baseline) for the table."""
    m = v.metrics or {}
    if "accuracy" in m:
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        return format_percent(m["accuracy"], decimals=2), ("-" if drop is None else f"{0.0 - drop * 100:+.2f} pt")
    if "mse" in m:
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        return f"{m['mse']:.3g}", ("-" if drop is None else f"R2 {0.0 - drop * 100:+.2f} pt")
    return "-", "-"


def format_table(study: StudyResult) -> str:
    """The comparison table, then coverage, advice and failures, one line each."""
    task = study.dataset.get("task", "")
    quality_head = "MSE" if task == "regression" else "Accuracy"
    headers = [
        "Variant", "Runtime", quality_head, "vs base", "p50 ms", "p99 ms", "Speed-up", "vs best float", "Size",
        "Size vs base", "Agree", "SQNR dB", "Verdict",
    ]
    rows = [_row(v, task) for v in study.results]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]

    drift = study_drift_warning(study.timing)
    details = [line for v in study.results for line in _details(v)]
    out = "\n".join(lines)
    if details:
        out += "\n\nWhat each variant changed, and why its verdict:\n" + "\n".join(details)
    if drift:
        out += f"\n\nwarning: {drift}."
    env = study.environment
    for note in study.model.get("notes") or []:
        if "untrained" in note or "quantiz" in note or "scale" in note:
            out += f"\n\nmodel: {note}"
    out += (
        f"\n\n{study.model.get('format')} model {study.model.get('path')} | dataset {study.dataset.get('spec')} "
        f"({study.dataset.get('samples')} samples, {task}) | {env.get('cpu', '?')} "
        f"| threads {study.timing.get('threads')} | timing {study.timing.get('mode')} | '~' marks noisy timings"
    )
    return out


def _row(v: VariantResult, task: str) -> list[str]:
    """One variant's row of the comparison table."""
    if v.status is not VariantStatus.OK:
        return [v.label, v.runtime or "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", v.status.value.upper()]
    quality, change = _quality(v, task)
    fid = v.fidelity or {}
    agree = fid.get("agreement")
    sqnr = fid.get("sqnr_db")
    verdict = v.verdict
    size_change = None
    if verdict and verdict.size_reduction is not None:
        size_change = -verdict.size_reduction
    speedup = verdict.speedup if verdict else None
    speed = format_speedup(1.0 if speedup is None and v.is_baseline else speedup)
    vs_float = format_speedup(verdict.speedup_vs_fastest_float if verdict else None)
    p50 = format_ms(v.latency.p50 if v.latency else None)
    if v.latency and v.latency.noisy:
        p50 += "~"
    return [
        v.label,
        v.runtime,
        quality,
        change if not v.is_baseline else "(base)",
        p50,
        format_ms(v.latency.p99 if v.latency else None),
        speed,
        vs_float,
        format_bytes(v.size_bytes),
        format_percent(size_change, signed=True) if not v.is_baseline else "(base)",
        format_percent(agree),
        "-" if sqnr is None else f"{sqnr:.1f}",
        verdict.overall.value if verdict else "-",
    ]


def _details(v: VariantResult) -> list[str]:
    """One variant's lines under the table: its error, or its coverage, advice, notes and verdict's reasons."""
    if v.status is not VariantStatus.OK:
        return [f"  {v.label}: {v.error}"]
    details: list[str] = []
    if v.coverage.get("summary"):
        details.append(f"  {v.label}: {v.coverage['summary']}")
    for note in v.advice:
        details.append(f"  {v.label}: advice: {note}")
    for note in v.explanation:
        details.append(f"  {v.label}: why slower: {note}")
    for note in v.notes:
        if not note.startswith(DRIFT_PREFIX):  # said once for the whole study, below
            details.append(f"  {v.label}: note: {note}")
    if v.verdict and v.verdict.reasons and not v.is_baseline:
        details.append(f"  {v.label}: verdict {v.verdict.overall.value}: " + "; ".join(v.verdict.reasons))
    return details
