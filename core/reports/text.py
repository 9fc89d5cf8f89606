"""Text rendering of a study: the comparison table the command line prints."""

from __future__ import annotations

import re
import shutil
import textwrap

from core.measures.drift_notes import (
    DRIFT_PREFIX,
    PAIRED_MARK,
    paired_footnote,
    paired_speedup_range,
    study_drift_warning,
)
from core.reports.format import (
    format_bytes,
    format_ms,
    format_percent,
    format_points,
    format_speedup,
)
from core.study.result import StudyResult, VariantResult, VariantStatus


def _quality(v: VariantResult, task: str) -> tuple[str, str]:
    """(headline metric, change against the baseline) for the table."""
    m = v.metrics or {}
    if m.get("perplexity") is not None:  # a causal language model: perplexity, and its change in percent
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        return f"{m['perplexity']:.4g}", ("-" if drop is None else format_percent(drop, signed=True))
    if "accuracy" in m:
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        # The change's 95 % interval is in the verdict's reasons under the table (the table fits 100 columns).
        return format_percent(m["accuracy"], decimals=2), ("-" if drop is None else format_points(-drop))
    if "mse" in m:
        drop = v.verdict.accuracy_drop if v.verdict and v.verdict.accuracy_drop is not None else None
        return f"{m['mse']:.3g}", ("-" if drop is None else f"R2 {format_points(-drop)}")
    return "-", "-"


#: The table is never wider than this (a CI log, a 100-column terminal, a slide); the notes under it
#: wrap to the terminal's width.
TABLE_WIDTH = 100
#: Columns by how much they matter: when the table would be wider than ``TABLE_WIDTH``, the highest
#: number goes first (the JSON and HTML reports keep every column). Unlisted columns always stay.
_LEFT_OUT_FIRST = {"vs best float": 5, "p99 ms": 4, "SQNR dB": 3, "Runtime": 2, "Agree": 1}


def terminal_width() -> int:
    """The terminal's width in columns ($COLUMNS first; 100 when the output is not a terminal)."""
    return shutil.get_terminal_size((TABLE_WIDTH, 24)).columns


def format_table(study: StudyResult, width: int = TABLE_WIDTH) -> str:
    """The comparison table (at most ``TABLE_WIDTH`` and ``width`` columns wide), then coverage, advice and
    failures, each note wrapped to ``width`` (the terminal's, for the command line)."""
    width = max(width, 40)
    task = study.dataset.get("task", "")
    quality_head = {"regression": "MSE", "causal-lm": "Perplexity"}.get(task, "Accuracy")
    headers = [
        "Variant", "Runtime", quality_head, "vs base", "p50 ms", "p99 ms", "Speed-up", "vs best float", "Size",
        "Size vs base", "Agree", "SQNR dB", "Verdict",
    ]
    rows = [_row(v, task, study.timing) for v in study.results]
    lines, left_out = _fit_table(headers, rows, min(width, TABLE_WIDTH))

    drift = study_drift_warning(study.timing)
    details = [line for v in study.results for line in _details(v)]
    out = "\n".join(lines)
    if left_out:
        out += "\n" + _wrap(
            f"Left out to fit {min(width, TABLE_WIDTH)} columns: {', '.join(left_out)} (in the JSON and HTML reports).",
            width, "  ",
        )
    if details:
        out += "\n\nWhat each variant changed, and why its verdict:\n" + "\n".join(
            _wrap(line, width, "      ") for line in details
        )
    if drift:
        out += "\n\n" + _wrap(f"warning: {drift}.", width, "  ")
    footnote = paired_footnote(study.timing, [v.label for v in study.results if v.ok], format_ms)
    if footnote:
        out += "\n" + _wrap(f"{footnote}.", width, "  ")
    env = study.environment
    for note in study.model.get("notes") or []:
        if "untrained" in note or "quantiz" in note or "scale" in note:
            out += "\n\n" + _wrap(f"model: {note}", width, "  ")
    mode = study.timing.get("mode") or env.get("timing_mode") or "?"
    out += "\n\n" + _wrap(
        f"{study.model.get('format')} model {study.model.get('path')} | dataset {study.dataset.get('spec')} "
        f"({study.dataset.get('samples')} samples, {task}) | {env.get('cpu', '?')} "
        f"| threads {study.timing.get('threads')} | timing {mode} | '~' marks noisy timings", width, "  ",
    )
    return out


def _fit_table(headers: list[str], rows: list[list[str]], width: int) -> tuple[list[str], list[str]]:
    """The table's lines, leaving out the least needed columns until it fits ``width``; and those left out."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    for title in sorted(_LEFT_OUT_FIRST, key=_LEFT_OUT_FIRST.__getitem__, reverse=True):
        if sum(widths[i] for i in keep) + 2 * (len(keep) - 1) <= width:
            break
        keep.remove(headers.index(title))
    left_out = [h for i, h in enumerate(headers) if i not in keep]

    def line(cells: list[str]) -> str:
        return "  ".join(cells[i].ljust(widths[i]) for i in keep).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)], left_out


#: A number and its unit ("14.3 %", "2 pt") stay on one line.
_NUMBER_AND_UNIT = re.compile(r"(?<=\d) (?=(?:%|pt\b|points?\b|ms\b|[kMG]B\b))")


def _wrap(text: str, width: int, indent: str) -> str:
    """``text`` wrapped to ``width``, its later lines indented; a path, a long word or a number and its unit
    are never cut."""
    glued = _NUMBER_AND_UNIT.sub("\u00a0", text)  # textwrap breaks at ASCII whitespace only
    wrapped = textwrap.fill(glued, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return wrapped.replace("\u00a0", " ")


def _row(v: VariantResult, task: str, timing: dict | None = None) -> list[str]:
    """One variant's row of the comparison table; a speed-up from the paired rounds is marked."""
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
    if not v.is_baseline and speedup is not None and paired_speedup_range(timing, v.label):
        speed += PAIRED_MARK
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
