"""Verdict rules: how a variant is graded against the baseline on accuracy, size and speed.

Each threshold rule is one ``Rule`` value; the grading below applies them and ``verdict_legend``
(the one-line legend the window, the CLI and the reports show) is written from the same values, so
the legend cannot say something the grading does not do.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from core.study.result import Grade, Verdict
from core.study.spec import Task, Thresholds


@dataclass(frozen=True)
class Rule:
    """One threshold the verdict grades by: the grade it gives when ``holds(measured, limit)``."""

    grade: Grade
    #: The ``Thresholds`` field holding the limit; None for a fixed limit of zero.
    field: str | None
    holds: Callable[[float, float], bool]
    #: How the legend says it; ``{limit}`` is filled with the limit in percent (points for accuracy).
    legend: str

    def limit(self, thresholds: Thresholds) -> float:
        """The limit this rule compares with under ``thresholds`` (a fraction)."""
        return float(getattr(thresholds, self.field)) if self.field else 0.0

    def applies(self, measured: float, thresholds: Thresholds) -> bool:
        """Whether ``measured`` (a fraction) earns this rule's grade."""
        return self.holds(measured, self.limit(thresholds))

    def describe(self, thresholds: Thresholds) -> str:
        """The rule in the legend's words, with its limit filled in."""
        return self.legend.format(limit=f"{self.limit(thresholds) * 100:g}")


def _slower_than(reduction: float, limit: float) -> bool:
    return -reduction > limit  # a negative reduction is a slowdown


#: Accuracy drop: in accuracy points, R² or disagreement with the baseline's predictions.
ACCURACY_GOOD = Rule(Grade.GOOD, "accuracy_drop_good", operator.lt, "accuracy drop < {limit} pt")
ACCURACY_BAD = Rule(Grade.BAD, "accuracy_drop_bad", operator.gt, "accuracy drop > {limit} pt")
#: Size: the fraction of the baseline's bytes saved.
SIZE_GOOD = Rule(Grade.GOOD, "size_reduction_good", operator.ge, "size −{limit} % or more")
SIZE_BAD = Rule(Grade.BAD, None, operator.lt, "a larger file")
#: Speed: the fraction of the baseline's median latency saved.
SPEED_GOOD = Rule(Grade.GOOD, "latency_reduction_good", operator.ge, "latency −{limit} % or more")
SPEED_BAD = Rule(Grade.BAD, "latency_increase_bad", _slower_than, "over {limit} % slower")


def thresholds_from(values: Thresholds | Mapping[str, Any]) -> Thresholds:
    """``values`` as ``Thresholds``; a mapping (a stored verdict's ``thresholds``) keeps the defaults it lacks."""
    if isinstance(values, Thresholds):
        return values
    known = {f.name for f in fields(Thresholds)}
    return Thresholds(**{k: float(v) for k, v in values.items() if k in known and v is not None})


def verdict_legend(thresholds: Thresholds | Mapping[str, Any]) -> str:
    """The verdict's rules in one line, written from the rules the grading applies."""
    t = thresholds_from(thresholds)
    good = ", ".join(r.describe(t) for r in (ACCURACY_GOOD, SIZE_GOOD, SPEED_GOOD))
    bad = [r.describe(t) for r in (ACCURACY_BAD, SIZE_BAD, SPEED_BAD)]
    return f"GOOD: {good} · BAD: {', '.join(bad[:-1])} or {bad[-1]} · else ACCEPTABLE"


def baseline_verdict(thresholds: Thresholds) -> Verdict:
    """The baseline's own verdict: it is the yardstick, so every grade is BASELINE."""
    return Verdict(
        accuracy=Grade.BASELINE,
        size=Grade.BASELINE,
        speed=Grade.BASELINE,
        overall=Grade.BASELINE,
        accuracy_drop=0.0,
        size_reduction=0.0,
        latency_reduction=0.0,
        speedup=1.0,
        speedup_vs_fastest_float=None,
        thresholds=asdict(thresholds),
        reasons=["the float baseline every other variant is compared with"],
    )


def verdict(
    *,
    task: Task,
    baseline_metrics: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    baseline_size: int | None,
    size: int | None,
    baseline_p50: float | None,
    p50: float | None,
    fastest_float_p50: float | None,
    agreement: float | None,
    thresholds: Thresholds,
    paired_speedup: float | None = None,
    paired_rounds: int | None = None,
    paired_vs_fastest_float: float | None = None,
) -> Verdict:
    """Grade a variant against the baseline on accuracy, size and speed.

    Accuracy drop: accuracy points lost (classification with labels), R² lost
    (regression), or 1 − agreement with the baseline's predictions (no labels);
    UNKNOWN when none of these is available. Good when the drop is under
    ``accuracy_drop_good``, bad when over ``accuracy_drop_bad``, else acceptable.
    Size: good when at least ``size_reduction_good`` of the bytes are saved,
    bad when the variant is larger than the baseline, else acceptable.
    Speed: good when the median latency falls by ``latency_reduction_good`` or
    more, bad when it rises by more than ``latency_increase_bad``, else acceptable.
    ``paired_speedup`` (baseline ÷ variant, median of ``paired_rounds`` interleaved
    rounds, measured when the machine's speed changed during the study) replaces
    the ratio of the two medians for the speed grade and the speed-ups.

    Overall: BAD if accuracy is bad, or if size and speed are both bad (it costs
    more and buys nothing); otherwise UNKNOWN if accuracy is unknown. With
    accuracy good: ACCEPTABLE when one of size/speed is bad (a trade at best);
    GOOD if size or speed is good; ACCEPTABLE otherwise. With accuracy acceptable: ACCEPTABLE.
    """
    drop, drop_kind = _accuracy_drop(task, baseline_metrics, metrics, agreement)
    acc_grade, acc_reason = _grade_accuracy(drop, drop_kind, thresholds)
    size_reduction = _reduction(baseline_size, size)
    size_grade, size_reason = _grade_size(size_reduction, thresholds)
    latency_reduction, speed_grade, speed_reason = _speed(baseline_p50, p50, thresholds, paired_speedup, paired_rounds)
    overall, overall_reason = _overall(acc_grade, size_grade, speed_grade)
    return Verdict(
        accuracy=acc_grade,
        size=size_grade,
        speed=speed_grade,
        overall=overall,
        accuracy_drop=drop,
        size_reduction=size_reduction,
        latency_reduction=latency_reduction,
        speedup=paired_speedup if paired_speedup is not None else _ratio(baseline_p50, p50),
        speedup_vs_fastest_float=(
            paired_vs_fastest_float if paired_speedup is not None else _ratio(fastest_float_p50, p50)
        ),
        thresholds=asdict(thresholds),
        reasons=[acc_reason, size_reason, speed_reason, overall_reason],
    )


def _speed(
    base: float | None, p50: float | None, t: Thresholds, paired_speedup: float | None, paired_rounds: int | None
) -> tuple[float | None, Grade, str]:
    """(latency reduction, grade, reason): from the paired rounds when there are some, else the two medians."""
    if paired_speedup is not None and paired_speedup > 0:
        reduction = 1.0 - 1.0 / paired_speedup
        where = f"{paired_speedup:.3g}x the baseline's speed over {paired_rounds or '?'} interleaved rounds"
        return (reduction, *_grade_speed(reduction, base, p50, t, where))
    reduction = _reduction(base, p50)
    return (reduction, *_grade_speed(reduction, base, p50, t))


def _accuracy_drop(
    task: Task, bm: dict[str, Any] | None, m: dict[str, Any] | None, agreement: float | None
) -> tuple[float | None, str]:
    bm, m = bm or {}, m or {}
    if task in (Task.CLASSIFICATION, Task.AUTO) and _both(bm, m, "accuracy"):
        return float(bm["accuracy"]) - float(m["accuracy"]), "accuracy"
    if task in (Task.REGRESSION, Task.AUTO) and _both(bm, m, "r2"):
        return float(bm["r2"]) - float(m["r2"]), "r2"
    if task is not Task.REGRESSION and agreement is not None:
        return 1.0 - float(agreement), "agreement"
    return None, "unknown"


def _both(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    return a.get(key) is not None and b.get(key) is not None


def _grade_accuracy(drop: float | None, kind: str, t: Thresholds) -> tuple[Grade, str]:
    if drop is None:
        return Grade.UNKNOWN, "accuracy unknown: no labels and no class predictions to compare"
    good, bad = ACCURACY_GOOD.limit(t), ACCURACY_BAD.limit(t)
    if ACCURACY_GOOD.applies(drop, t):
        grade = Grade.GOOD
        rule = f"good: under {_amount(good, kind)}"
    elif ACCURACY_BAD.applies(drop, t):
        grade = Grade.BAD
        rule = f"bad: over {_amount(bad, kind)}"
    else:
        grade = Grade.ACCEPTABLE
        rule = f"acceptable: between {_amount(good, kind)} and {_amount(bad, kind)}"
    if kind == "agreement":
        what = f"predictions differ from the baseline's on {_pct(drop)} of samples"
    else:
        name = "accuracy" if kind == "accuracy" else "R²"
        verb = "dropped" if drop >= 0 else "rose"
        what = f"{name} {verb} {_amount(abs(drop), kind)}"
    return grade, f"{what} ({rule})"


def _amount(value: float, kind: str) -> str:
    if kind == "accuracy":
        points = f"{value * 100:.3g}"
        return f"{points} point" if points == "1" else f"{points} points"
    if kind == "r2":
        return f"{value:.3g}"
    return _pct(value)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g} %"


def _reduction(base: float | None, value: float | None) -> float | None:
    if base is None or value is None or not base > 0:
        return None
    return 1.0 - float(value) / float(base)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator > 0 or not numerator > 0:
        return None
    return float(numerator) / float(denominator)


def _grade_size(reduction: float | None, t: Thresholds) -> tuple[Grade, str]:
    if reduction is None:
        return Grade.UNKNOWN, "size unknown"
    good = SIZE_GOOD.limit(t)
    if SIZE_GOOD.applies(reduction, t):
        return Grade.GOOD, f"size shrank {_pct(reduction)} (good: {_pct(good)} or more)"
    if SIZE_BAD.applies(reduction, t):
        return Grade.BAD, f"size grew {_pct(-reduction)} (bad: larger than the baseline)"
    return (
        Grade.ACCEPTABLE,
        f"size shrank {_pct(reduction)} (acceptable: good needs {_pct(good)} or more)",
    )


def _grade_speed(
    reduction: float | None, base: float | None, p50: float | None, t: Thresholds, where: str | None = None
) -> tuple[Grade, str]:
    if reduction is None or base is None or p50 is None:
        return Grade.UNKNOWN, "speed unknown"
    where = where or f"median {p50:.3g} ms vs {base:.3g} ms"
    good = SPEED_GOOD.limit(t)
    if SPEED_GOOD.applies(reduction, t):
        return Grade.GOOD, f"latency fell {_pct(reduction)}, {where} (good: {_pct(good)} or more)"
    if SPEED_BAD.applies(reduction, t):
        return Grade.BAD, f"latency rose {_pct(-reduction)}, {where} (bad: over {_pct(SPEED_BAD.limit(t))} slower)"
    verb = "fell" if reduction >= 0 else "rose"
    return (
        Grade.ACCEPTABLE,
        f"latency {verb} {_pct(abs(reduction))}, {where} "
        f"(acceptable: good needs {_pct(good)} less)",
    )


def _overall(acc: Grade, size: Grade, speed: Grade) -> tuple[Grade, str]:
    if acc is Grade.BAD:
        return Grade.BAD, "overall bad: it loses too much accuracy"
    if size is Grade.BAD and speed is Grade.BAD:
        return Grade.BAD, "overall bad: it is both larger and slower than the baseline"
    if acc is Grade.UNKNOWN:
        return Grade.UNKNOWN, "overall unknown: accuracy could not be judged"
    if acc is Grade.GOOD and Grade.BAD in (size, speed):
        # A clear gain on one axis does not excuse a clear loss on the other.
        cost = "slower" if speed is Grade.BAD else "larger"
        return Grade.ACCEPTABLE, f"overall acceptable: keeps accuracy, but is clearly {cost} than the baseline"
    if acc is Grade.GOOD and (size is Grade.GOOD or speed is Grade.GOOD):
        gains = " and ".join(name for name, g in (("smaller", size), ("faster", speed)) if g is Grade.GOOD)
        return Grade.GOOD, f"overall good: keeps accuracy and is clearly {gains}"
    if acc is Grade.GOOD:
        return Grade.ACCEPTABLE, "overall acceptable: keeps accuracy but neither size nor speed improve enough"
    return Grade.ACCEPTABLE, "overall acceptable: some accuracy is lost"
