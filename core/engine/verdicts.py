"""Grading the variants against the baseline: as each finishes, and again once every float variant is known."""

from __future__ import annotations

from typing import Any

from core.study.result import VariantResult, find_baseline
from core.study.spec import StudySpec, Task


def fastest_float_p50(results: list[VariantResult]) -> float | None:
    """The lowest median latency among the measured float variants (None when there is none)."""
    p50s = [r.latency.p50 for r in results if r.ok and r.is_float and r.latency is not None]
    return min(p50s) if p50s else None


def grade_variant(
    spec: StudySpec,
    task: Task,
    baseline: VariantResult | None,
    result: VariantResult,
    fastest: float | None = None,
    *,
    paired_speedup: float | None = None,
    paired_rounds: int | None = None,
    fastest_paired: float | None = None,
) -> None:
    """Set ``result.verdict`` against ``baseline`` (the baseline itself gets the yardstick's verdict)."""
    from core.measures.verdict import baseline_verdict, verdict

    if result.is_baseline:
        result.verdict = baseline_verdict(spec.thresholds)
        return
    if baseline is None or not baseline.ok:
        return
    from core.measures.degenerate import on_fidelity, relative_output_error

    # A degenerate baseline (constant or tied outputs) makes accuracy meaningless: fidelity only.
    degenerate = bool((result.fidelity or {}).get("baseline_degenerate"))
    result.verdict = verdict(
        task=task,
        # A variant evaluated on its first samples only is compared with the baseline on those same samples.
        baseline_metrics=None if degenerate else (result.evaluated or {}).get("baseline_metrics", baseline.metrics),
        metrics=None if degenerate else result.metrics,
        baseline_size=baseline.size_bytes,
        size=result.size_bytes,
        baseline_p50=baseline.latency.p50 if baseline.latency else None,
        p50=result.latency.p50 if result.latency else None,
        fastest_float_p50=fastest if fastest is not None else fastest_float_p50([baseline, result]),
        agreement=None if degenerate else (result.fidelity or {}).get("agreement"),
        thresholds=spec.thresholds,
        paired_speedup=paired_speedup,
        paired_rounds=paired_rounds,
        paired_vs_fastest_float=(paired_speedup / fastest_paired) if paired_speedup and fastest_paired else None,
        output_error=relative_output_error(result.fidelity) if degenerate else None,
    )
    if degenerate:
        result.verdict.reasons = [on_fidelity(reason) for reason in result.verdict.reasons]


def final_verdicts(
    results: list[VariantResult], spec: StudySpec, task: Task, paired: dict[str, Any] | None = None
) -> None:
    """Recompute verdicts once every float variant is known (speed-up vs the fastest float); with
    ``paired`` (the machine changed speed), speeds come from the interleaved rounds."""
    base = find_baseline(results)
    if base is None or not base.ok:
        return
    fastest = fastest_float_p50(results)
    rounds = (paired or {}).get("speedup") or {}
    speedups = {label: s["median"] for label, s in rounds.items()}
    floats = [speedups[r.label] for r in results if r.ok and r.is_float and r.label in speedups] + [1.0]
    for r in results:
        if r.ok:
            grade_variant(
                spec, task, base, r, fastest,
                paired_speedup=speedups.get(r.label),
                paired_rounds=(paired or {}).get("rounds"),
                fastest_paired=max(floats),
            )
    if speedups:
        from core.engine.explain import explain_slowdown

        # The first explanations compared two stretches of time the machine ran at different speeds.
        for r in results:
            if r.ok and not r.is_baseline and r.label in rounds:
                r.explanation = explain_slowdown(r, base, rounds[r.label])
    if base.verdict is not None and base.latency is not None and fastest:
        # Eager PyTorch float is often a weak baseline: show how it compares with the fastest float too.
        base.verdict.speedup_vs_fastest_float = 1.0 / max(floats) if speedups else fastest / base.latency.p50
