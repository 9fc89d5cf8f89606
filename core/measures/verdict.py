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
    #: A "bad" rule's "good" counterpart: a bad limit set below the good one counts as the good one, so a
    #: figure is never both (the window's controls, the command line and a project file all read it so).
    at_least: str | None = None

    def limit(self, thresholds: Thresholds) -> float:
        """The limit this rule compares with under ``thresholds`` (a fraction)."""
        if not self.field:
            return 0.0
        own = float(getattr(thresholds, self.field))
        return max(own, float(getattr(thresholds, self.at_least))) if self.at_least else own

    def applies(self, measured: float, thresholds: Thresholds) -> bool:
        """Whether ``measured`` (a fraction) earns this rule's grade."""
        return self.holds(measured, self.limit(thresholds))

    def describe(self, thresholds: Thresholds) -> str:
        """The rule in the legend's words, with its limit filled in (a ratio as it is, a fraction in percent)."""
        limit = self.limit(thresholds)
        return self.legend.format(limit=f"{limit:g}" if "×" in self.legend else f"{limit * 100:g}")


def _slower_than(reduction: float, limit: float) -> bool:
    return -reduction > limit  # a negative reduction is a slowdown


#: Accuracy drop: in accuracy points, R² or disagreement with the baseline's predictions.
ACCURACY_GOOD = Rule(Grade.GOOD, "accuracy_drop_good", operator.lt, "accuracy drop < {limit} pt")
ACCURACY_BAD = Rule(Grade.BAD, "accuracy_drop_bad", operator.gt, "accuracy drop > {limit} pt", "accuracy_drop_good")
#: Measured as how far 0 lies outside the accuracy change's 95 % interval (0 when inside it).
WITHIN_NOISE = Rule(Grade.GOOD, None, operator.le, "within noise")
#: The largest fall in one class's recall (a fraction; the legend says points).
CLASS_RECALL_BAD = Rule(Grade.BAD, "class_recall_drop_bad", operator.gt, "a class's recall down > {limit} pt")
#: A language model's perplexity over the baseline's (a ratio, not a percentage): the accuracy axis of task causal-lm.
PERPLEXITY_GOOD = Rule(Grade.GOOD, "perplexity_ratio_good", operator.le, "perplexity ≤ {limit}× the baseline's")
PERPLEXITY_BAD = Rule(
    Grade.BAD, "perplexity_ratio_bad", operator.gt, "perplexity > {limit}× the baseline's", "perplexity_ratio_good"
)
#: Measured as 1 when accuracy cannot be judged (no labels and no class predictions), else 0.
ACCURACY_UNKNOWN = Rule(Grade.UNKNOWN, None, operator.gt, "accuracy cannot be judged")
#: Size: the fraction of the baseline's bytes saved.
SIZE_GOOD = Rule(Grade.GOOD, "size_reduction_good", operator.ge, "size −{limit} % or more")
SIZE_BAD = Rule(Grade.BAD, None, operator.lt, "a larger file")
#: Speed: the fraction of the baseline's median latency saved.
SPEED_GOOD = Rule(Grade.GOOD, "latency_reduction_good", operator.ge, "latency −{limit} % or more")
SPEED_BAD = Rule(Grade.BAD, "latency_increase_bad", _slower_than, "over {limit} % slower")

#: What the noise rule means, said once under the legend.
NOISE_MEANING = "within noise: the accuracy change's 95 % interval (paired on the same samples) includes 0"


@dataclass(frozen=True)
class AnyOf:
    """Holds when one of ``terms`` (rules or conditions) holds."""

    terms: tuple[Condition, ...]
    joiner = "or"

    def holds(self, fired: frozenset[Rule]) -> bool:
        return any(_holds(term, fired) for term in self.terms)


@dataclass(frozen=True)
class AllOf:
    """Holds when every one of ``terms`` holds."""

    terms: tuple[Condition, ...]
    joiner = "and"

    def holds(self, fired: frozenset[Rule]) -> bool:
        return all(_holds(term, fired) for term in self.terms)


@dataclass(frozen=True)
class Not:
    """Holds when ``term`` does not."""

    term: Condition

    def holds(self, fired: frozenset[Rule]) -> bool:
        return not _holds(self.term, fired)


Condition = Rule | AnyOf | AllOf | Not


def _holds(condition: Condition, fired: frozenset[Rule]) -> bool:
    return condition in fired if isinstance(condition, Rule) else condition.holds(fired)


def describe(condition: Condition, thresholds: Thresholds, nested: bool = False) -> str:
    """``condition`` in the legend's words: 'and', 'or', 'not' and brackets, as it is evaluated."""
    if isinstance(condition, Rule):
        return condition.describe(thresholds)
    if isinstance(condition, Not):
        return f"not {describe(condition.term, thresholds, nested=True)}"
    text = f" {condition.joiner} ".join(describe(term, thresholds, nested=True) for term in condition.terms)
    return f"({text})" if nested else text


#: The accuracy axis: bad on a real (not noise) drop over the limit or on one class collapsing.
ACCURACY_IS_BAD = AnyOf((AllOf((ACCURACY_BAD, Not(WITHIN_NOISE))), CLASS_RECALL_BAD))
ACCURACY_IS_GOOD = AnyOf((ACCURACY_GOOD, WITHIN_NOISE))
#: The overall grade: the first of these that holds, else ACCEPTABLE. Larger *and* slower is bad
#: (it costs more and buys nothing); one clear loss beside a clear gain is a trade, not good.
OVERALL: tuple[tuple[Grade, Condition], ...] = (
    (Grade.BAD, AnyOf((*ACCURACY_IS_BAD.terms, AllOf((SIZE_BAD, SPEED_BAD))))),
    (Grade.UNKNOWN, ACCURACY_UNKNOWN),
    (Grade.GOOD, AllOf((ACCURACY_IS_GOOD, AnyOf((SIZE_GOOD, SPEED_GOOD)), Not(AnyOf((SIZE_BAD, SPEED_BAD)))))),
)


#: The overall grade of a language model (task causal-lm): as ``OVERALL``, with the perplexity ratio as its
#: accuracy axis.
OVERALL_LANGUAGE_MODEL: tuple[tuple[Grade, Condition], ...] = (
    (Grade.BAD, AnyOf((PERPLEXITY_BAD, AllOf((SIZE_BAD, SPEED_BAD))))),
    (Grade.UNKNOWN, ACCURACY_UNKNOWN),
    (Grade.GOOD, AllOf((PERPLEXITY_GOOD, AnyOf((SIZE_GOOD, SPEED_GOOD)), Not(AnyOf((SIZE_BAD, SPEED_BAD)))))),
)


def _overall_table(fired: frozenset[Rule] | None, task: Task | None = None) -> tuple[tuple[Grade, Condition], ...]:
    """The language model's table when perplexity was graded (or the task says so), else ``OVERALL``."""
    if task is Task.CAUSAL_LM or (fired is not None and fired & {PERPLEXITY_GOOD, PERPLEXITY_BAD}):
        return OVERALL_LANGUAGE_MODEL
    return OVERALL


def thresholds_from(values: Thresholds | Mapping[str, Any]) -> Thresholds:
    """``values`` as ``Thresholds``; a mapping (a stored verdict's ``thresholds``) keeps the defaults it lacks."""
    if isinstance(values, Thresholds):
        return values
    known = {f.name for f in fields(Thresholds)}
    return Thresholds(**{k: float(v) for k, v in values.items() if k in known and v is not None})


def verdict_legend(thresholds: Thresholds | Mapping[str, Any], task: Task | None = None) -> str:
    """The overall rule in one line, written from the conditions the grading evaluates (``OVERALL``, or
    ``OVERALL_LANGUAGE_MODEL`` for a causal language model)."""
    t = thresholds_from(thresholds)
    clauses = [f"{grade.value.upper()}: {describe(condition, t)}" for grade, condition in _overall_table(None, task)]
    return " · else ".join(clauses) + f" · else ACCEPTABLE · {NOISE_MEANING}"


def overall_grade(fired: frozenset[Rule]) -> Grade:
    """The overall grade once ``fired`` (the rules whose measurements hold) is known."""
    for grade, condition in _overall_table(fired):
        if _holds(condition, fired):
            return grade
    return Grade.ACCEPTABLE


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
    output_error: float | None = None,
) -> Verdict:
    """Grade a variant against the baseline on accuracy, size and speed.

    Accuracy drop: accuracy points lost (classification with labels), R² lost
    (regression), or 1 − agreement with the baseline's predictions (no labels);
    UNKNOWN when none of these is available; ``output_error`` (the relative RMS output
    error, given when the baseline's outputs are degenerate) replaces all of them. Good when the drop is under
    ``accuracy_drop_good`` or within noise (the accuracy change's 95 % interval,
    ``metrics["accuracy_delta_ci95"]``, includes 0), bad when over
    ``accuracy_drop_bad`` and not within noise, or when any class's recall falls by
    more than ``class_recall_drop_bad``; else acceptable.
    Size: good when at least ``size_reduction_good`` of the bytes are saved,
    bad when the variant is larger than the baseline, else acceptable.
    Speed: good when the median latency falls by ``latency_reduction_good`` or
    more, bad when it rises by more than ``latency_increase_bad``, else acceptable.
    ``paired_speedup`` (baseline ÷ variant, median of ``paired_rounds`` interleaved
    rounds, measured when the machine's speed changed during the study) replaces
    the ratio of the two medians for the speed grade and the speed-ups.

    Overall: the first of ``OVERALL`` that holds, else ACCEPTABLE; ``verdict_legend``
    says the same conditions in words.
    """
    fired: set[Rule] = set()
    drop, drop_kind = _accuracy_drop(task, baseline_metrics, metrics, agreement)
    if output_error is not None:  # degenerate baseline outputs: graded on fidelity only (core.measures.degenerate)
        drop, drop_kind = output_error, "output error"
    acc_grade, acc_reasons = _grade_accuracy(drop, drop_kind, baseline_metrics, metrics, thresholds, fired)
    size_reduction = _reduction(baseline_size, size)
    size_grade, size_reason = _grade_size(size_reduction, thresholds, fired)
    latency_reduction, speed_grade, speed_reason = _speed(
        baseline_p50, p50, thresholds, paired_speedup, paired_rounds, fired
    )
    overall = overall_grade(frozenset(fired))
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
        reasons=[
            *acc_reasons, size_reason, speed_reason,
            _overall_reason(overall, acc_grade, size_grade, speed_grade, CLASS_RECALL_BAD in fired),
        ],
    )


def _fire(rule: Rule, measured: float | None, t: Thresholds, fired: set[Rule]) -> bool:
    """Whether ``rule`` holds for ``measured``, noting it in ``fired`` when it does."""
    if measured is None or not rule.applies(measured, t):
        return False
    fired.add(rule)
    return True


def _speed(
    base: float | None,
    p50: float | None,
    t: Thresholds,
    paired_speedup: float | None,
    paired_rounds: int | None,
    fired: set[Rule],
) -> tuple[float | None, Grade, str]:
    """(latency reduction, grade, reason): from the paired rounds when there are some, else the two medians."""
    if paired_speedup is not None and paired_speedup > 0:
        reduction = 1.0 - 1.0 / paired_speedup
        where = f"{paired_speedup:.3g}x the baseline's speed over {paired_rounds or '?'} interleaved rounds"
        return (reduction, *_grade_speed(reduction, base, p50, t, fired, where))
    reduction = _reduction(base, p50)
    return (reduction, *_grade_speed(reduction, base, p50, t, fired))


def _accuracy_drop(
    task: Task, bm: dict[str, Any] | None, m: dict[str, Any] | None, agreement: float | None
) -> tuple[float | None, str]:
    bm, m = bm or {}, m or {}
    if task is Task.CAUSAL_LM:
        # The drop is the perplexity's relative rise (ratio - 1): 0.03 for 1.03x the baseline's.
        ratio = _ratio(m.get("perplexity"), bm.get("perplexity"))
        return (ratio - 1.0, "perplexity") if ratio is not None else (None, "unknown")
    if task in (Task.CLASSIFICATION, Task.AUTO) and _both(bm, m, "accuracy"):
        return float(bm["accuracy"]) - float(m["accuracy"]), "accuracy"
    if task in (Task.REGRESSION, Task.AUTO) and _both(bm, m, "r2"):
        return float(bm["r2"]) - float(m["r2"]), "r2"
    if task is not Task.REGRESSION and agreement is not None:
        return 1.0 - float(agreement), "agreement"
    return None, "unknown"


def _both(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    return a.get(key) is not None and b.get(key) is not None


def _grade_accuracy(
    drop: float | None,
    kind: str,
    bm: dict[str, Any] | None,
    m: dict[str, Any] | None,
    t: Thresholds,
    fired: set[Rule],
) -> tuple[Grade, list[str]]:
    if drop is None:
        fired.add(ACCURACY_UNKNOWN)
        return Grade.UNKNOWN, ["accuracy unknown: no labels and no class predictions to compare"]
    if kind == "perplexity":
        return _grade_perplexity(1.0 + drop, bm, m, t, fired)
    good, bad = ACCURACY_GOOD.limit(t), ACCURACY_BAD.limit(t)
    interval = (m or {}).get("accuracy_delta_ci95") if kind == "accuracy" else None
    _fire(WITHIN_NOISE, _noise_distance(interval), t, fired)
    _fire(ACCURACY_GOOD, drop, t, fired)
    _fire(ACCURACY_BAD, drop, t, fired)
    worst = _worst_class_recall_drop(bm, m)
    _fire(CLASS_RECALL_BAD, None if worst is None else worst[1], t, fired)
    frozen = frozenset(fired)
    if _holds(ACCURACY_IS_BAD, frozen):
        grade = Grade.BAD
    elif _holds(ACCURACY_IS_GOOD, frozen):
        grade = Grade.GOOD
    else:
        grade = Grade.ACCEPTABLE

    if ACCURACY_GOOD in fired:
        rule = f"good: under {_amount(good, kind)}"
    elif WITHIN_NOISE in fired:
        rule = "good: within noise, its 95 % interval includes 0"
    elif ACCURACY_BAD in fired:
        rule = f"bad: over {_amount(bad, kind)}"
    else:
        rule = f"acceptable: between {_amount(good, kind)} and {_amount(bad, kind)}"
    if kind == "agreement":
        what = f"predictions differ from the baseline's on {_pct(drop)} of samples"
    elif kind == "output error":
        what = f"outputs differ from the baseline's by {_pct(drop)} of their RMS"
    else:
        name = "accuracy" if kind == "accuracy" else "R²"
        verb = "dropped" if drop >= 0 else "rose"
        what = f"{name} {verb} {_amount(abs(drop), kind)}"
    if _noise_distance(interval) is not None and any(float(x) != 0 for x in interval):  # [0, 0]: nothing changed
        low, high = interval
        what += f", 95 % interval of the change {low * 100:+.2f} to {high * 100:+.2f} points"
    reasons = [f"{what} ({rule})"]
    if CLASS_RECALL_BAD in fired and worst is not None:
        label, fall, before, after = worst
        reasons.append(
            f"class {label}'s recall fell {_amount(fall, 'accuracy')}, from {_pct(before)} to {_pct(after)} "
            f"(bad: a class's recall down over {_amount(CLASS_RECALL_BAD.limit(t), 'accuracy')})"
        )
    return grade, reasons


def _grade_perplexity(
    ratio: float, bm: dict[str, Any] | None, m: dict[str, Any] | None, t: Thresholds, fired: set[Rule]
) -> tuple[Grade, list[str]]:
    """A language model's accuracy axis: its perplexity over the baseline's against the two ratio limits."""
    good, bad = PERPLEXITY_GOOD.limit(t), PERPLEXITY_BAD.limit(t)
    if _fire(PERPLEXITY_GOOD, ratio, t, fired):
        grade, rule = Grade.GOOD, f"good: at most {good:g}×"
    elif _fire(PERPLEXITY_BAD, ratio, t, fired):
        grade, rule = Grade.BAD, f"bad: over {bad:g}×"
    else:
        grade, rule = Grade.ACCEPTABLE, f"acceptable: between {good:g}× and {bad:g}×"
    before, after = float((bm or {})["perplexity"]), float((m or {})["perplexity"])
    return grade, [f"perplexity {before:.4g} → {after:.4g}, {ratio:.4f}× the baseline's ({rule})"]


def _noise_distance(interval: Any) -> float | None:
    """How far 0 lies outside the change's interval (0 inside it); None without an interval."""
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return None
    try:
        low, high = float(interval[0]), float(interval[1])
    except (TypeError, ValueError):
        return None
    return max(low, -high, 0.0)


def _worst_class_recall_drop(
    bm: dict[str, Any] | None, m: dict[str, Any] | None
) -> tuple[Any, float, float, float] | None:
    """(class label, recall fall, recall before, after) of the class whose recall fell most, among the
    classes the labels hold; None without per-class figures on both sides."""
    before = {c.get("label"): c for c in (bm or {}).get("per_class") or [] if isinstance(c, dict)}
    after = {c.get("label"): c for c in (m or {}).get("per_class") or [] if isinstance(c, dict)}
    worst: tuple[Any, float, float, float] | None = None
    for label, b in before.items():
        a = after.get(label)
        if a is None or not b.get("support") or b.get("recall") is None or a.get("recall") is None:
            continue
        fall = float(b["recall"]) - float(a["recall"])
        if worst is None or fall > worst[1]:
            worst = (label, fall, float(b["recall"]), float(a["recall"]))
    return worst


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


def _grade_size(reduction: float | None, t: Thresholds, fired: set[Rule]) -> tuple[Grade, str]:
    if reduction is None:
        return Grade.UNKNOWN, "size unknown"
    good = SIZE_GOOD.limit(t)
    if _fire(SIZE_GOOD, reduction, t, fired):
        return Grade.GOOD, f"size shrank {_pct(reduction)} (good: {_pct(good)} or more)"
    if _fire(SIZE_BAD, reduction, t, fired):
        return Grade.BAD, f"size grew {_pct(-reduction)} (bad: larger than the baseline)"
    return (
        Grade.ACCEPTABLE,
        f"size shrank {_pct(reduction)} (acceptable: good needs {_pct(good)} or more)",
    )


def _grade_speed(
    reduction: float | None,
    base: float | None,
    p50: float | None,
    t: Thresholds,
    fired: set[Rule],
    where: str | None = None,
) -> tuple[Grade, str]:
    if reduction is None or base is None or p50 is None:
        return Grade.UNKNOWN, "speed unknown"
    where = where or f"median {p50:.3g} ms vs {base:.3g} ms"
    good = SPEED_GOOD.limit(t)
    if _fire(SPEED_GOOD, reduction, t, fired):
        return Grade.GOOD, f"latency fell {_pct(reduction)}, {where} (good: {_pct(good)} or more)"
    if _fire(SPEED_BAD, reduction, t, fired):
        return Grade.BAD, f"latency rose {_pct(-reduction)}, {where} (bad: over {_pct(SPEED_BAD.limit(t))} slower)"
    verb = "fell" if reduction >= 0 else "rose"
    return (
        Grade.ACCEPTABLE,
        f"latency {verb} {_pct(abs(reduction))}, {where} "
        f"(acceptable: good needs {_pct(good)} less)",
    )


def _overall_reason(overall: Grade, acc: Grade, size: Grade, speed: Grade, class_collapsed: bool) -> str:
    """The overall grade (from ``OVERALL``) in a sentence saying which condition decided it."""
    if overall is Grade.BAD:
        if class_collapsed:
            return "overall bad: one class loses too much recall (named above)"
        if acc is Grade.BAD:
            return "overall bad: it loses too much accuracy"  # for a language model: its perplexity rose too far
        return "overall bad: it is both larger and slower than the baseline"
    if overall is Grade.UNKNOWN:
        return "overall unknown: accuracy could not be judged"
    if overall is Grade.GOOD:
        gains = " and ".join(name for name, g in (("smaller", size), ("faster", speed)) if g is Grade.GOOD)
        return f"overall good: keeps accuracy and is clearly {gains}"
    if acc is Grade.GOOD and Grade.BAD in (size, speed):
        # A clear gain on one axis does not excuse a clear loss on the other.
        cost, other = ("slower", "larger") if speed is Grade.BAD else ("larger", "slower")
        # Said, since its own line reads "bad": the overall rule grades BAD only what is both.
        return (f"overall acceptable: keeps accuracy, but is clearly {cost} than the baseline "
                f"(bad overall only if {other} as well)")
    if acc is Grade.GOOD:
        return "overall acceptable: keeps accuracy but neither size nor speed improve enough"
    return "overall acceptable: some accuracy is lost"
