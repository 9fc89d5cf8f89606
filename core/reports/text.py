"""Text rendering of a study: the comparison table the command line prints."""

from __future__ import annotations

from core.engine.drift import DRIFT_PREFIX, study_drift_warning
from core.study.result import StudyResult, VariantResult, VariantStatus


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%"


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _quality(v: VariantResult, task: str) -> tuple[str, str]:
    """(headline metric, change against the baseline) for the table."""
    m = v.metrics or {}
    if "accuracy" in m:
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        return f"{m['accuracy'] * 100:.2f}%", ("-" if drop is None else f"{0.0 - drop * 100:+.2f} pt")
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
    speed = "-"
    if verdict and verdict.speedup is not None:
        speed = f"{verdict.speedup:.2f}x"
    elif v.label == "fp32":
        speed = "1.00x"
    vs_float = "-"
    if verdict and verdict.speedup_vs_fastest_float is not None:
        vs_float = f"{verdict.speedup_vs_fastest_float:.2f}x"
    p50 = _ms(v.latency.p50 if v.latency else None)
    if v.latency and v.latency.noisy:
        p50 += "~"
    return [
        v.label,
        v.runtime,
        quality,
        change if v.label != "fp32" else "(base)",
        p50,
        _ms(v.latency.p99 if v.latency else None),
        speed,
        vs_float,
        human_bytes(v.size_bytes),
        _pct(size_change) if v.label != "fp32" else "(base)",
        "-" if agree is None else f"{agree * 100:.1f}%",
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
    if v.verdict and v.verdict.reasons and v.label != "fp32":
        details.append(f"  {v.label}: verdict {v.verdict.overall.value}: " + "; ".join(v.verdict.reasons))
    return details
