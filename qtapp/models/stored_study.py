"""Stored studies shown in the results view: replayed as the events they ran with.

Plain Python, no Qt. A finished ``StudyResult`` becomes the StudyStarted and
StudyFinished events its run ended with, so the results panel draws it with the
very code that drew it live: the same charts from the same numbers. Several
studies compared side by side become one study whose variants are labelled
"study / variant", each measured against its own study's baseline.

A study is named by ``core.reports.names``, as the command line and the HTML report name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from core.measures.drift_notes import PAIRED_MARK, drift_subject, paired_block, study_drift_warning
from core.reports.names import common_day, row_prefixes, study_model, study_titles
from core.study.events import Event, StudyFinished, StudyStarted
from core.study.result import Grade, StudyResult, VariantResult

#: Best first: the order in which a study's best verdict is chosen.
_GRADE_ORDER = (Grade.GOOD, Grade.ACCEPTABLE, Grade.BAD)


def replay_events(result: StudyResult) -> list[Event]:
    """The events that leave a StudyState exactly as the end of ``result``'s run did."""
    labels = [r.label for r in result.results]
    advice = {r.label: list(r.advice) for r in result.results if r.advice}
    started = StudyStarted(
        result.study_id,
        model=dict(result.model),
        dataset=dict(result.dataset),
        variants=labels,
        environment=dict(result.environment),
        advice=advice,
    )
    return [started, StudyFinished(result.study_id, result, cancelled=result.status == "cancelled")]


@dataclass
class Comparison:
    """Several studies as one: variants labelled "study / variant", baselines per study."""

    studies: list[StudyResult]
    titles: dict[str, str]  # study id -> display title ("digits_cnn.pt · 7 Dec 14:02")
    result: StudyResult  # the merged study the results view shows
    baselines: dict[str, str] = field(default_factory=dict)  # merged label -> its study's baseline label
    prefixes: dict[str, str] = field(default_factory=dict)  # study id -> what its variant labels start with

    @property
    def ids(self) -> list[str]:
        return [s.study_id for s in self.studies]

    def names(self) -> str:
        """The compared studies in a few words: "of digits_cnn.pt (7 Dec 14:02 and 8 Dec 09:10)"."""
        models = {study_model(s) for s in self.studies}
        if len(models) == 1 and all(self.prefixes.get(i, self.titles[i]) != self.titles[i] for i in self.ids):
            day = common_day(self.studies)
            on = f" on {day}" if day and not any(day in self.prefixes[i] for i in self.ids) else ""
            return f"of {models.pop()}{on} ({_and(self.prefixes[i] for i in self.ids)})"
        return f"({_and(self.titles[i] for i in self.ids)})"

    def drift_warnings(self) -> list[str]:
        """Each compared study's drift warning in one short line naming the study (a comparison has no single
        one; each variant's notes and details keep the whole sentence)."""
        warnings = []
        for study in self.studies:
            if not study_drift_warning(study.timing):
                continue
            moved = _what_moved(study.timing.get("baseline_recheck") or {})
            paired = paired_block(study.timing)
            then = (f"its speed-ups ({PAIRED_MARK}) come from {paired.get('rounds', '?')} interleaved rounds"
                    if paired else "its speed-ups can be off by that much")
            warnings.append(f"{self.titles[study.study_id]}: the machine's speed changed during the study{moved}; "
                            f"{then}")
        return warnings

    def header(self) -> str:
        """One line naming what is compared."""
        count = f"{len(self.result.results)} variants"
        return f"Comparing {len(self.studies)} studies {self.names()}: {count}, each against its own baseline"


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def compare(studies: list[StudyResult], names: dict[str, str] | None = None) -> Comparison:
    """Merge ``studies`` for display; ``names`` maps study ids to their names in the history."""
    if len(studies) < 2:
        raise ValueError("a comparison needs at least two studies")
    titles = study_titles(studies, dict(names or {}))
    prefixes = row_prefixes(studies, dict(names or {}))
    merged: list[VariantResult] = []
    baselines: dict[str, str] = {}
    for study in studies:
        title = prefixes[study.study_id]
        baseline = study.baseline()
        base = f"{title} / {baseline.label}" if baseline is not None else None
        for r in study.results:
            label = f"{title} / {r.label}"
            merged.append(replace(r, label=label))
            if base is not None:
                baselines[label] = base
    first = studies[0]
    result = StudyResult(
        study_id="compare-" + "-".join(s.study_id[:8] for s in studies),
        created=first.created,
        status="finished",
        model=dict(first.model),
        dataset=dict(first.dataset),
        environment=dict(first.environment),
        timing=_merged_timing(studies, prefixes),
        spec={"thresholds": (first.spec or {}).get("thresholds")} if (first.spec or {}).get("thresholds") else {},
        results=merged,
    )
    return Comparison(studies=list(studies), titles=titles, result=result, baselines=baselines, prefixes=prefixes)


def _what_moved(recheck: dict) -> str:
    """" (X's median moved +N %)": the baseline when it moved past the drift limit, else the variant that moved most."""
    moved = drift_subject(recheck)
    return f" ({moved[0]}'s median moved {moved[2] / moved[1] - 1:+.0%})" if moved else ""


def _merged_timing(studies: list[StudyResult], prefixes: dict[str, str]) -> dict:
    """The first study's timing settings, with every study's paired rounds under the merged labels;
    the drift re-checks stay per study (``Comparison.drift_warnings``)."""
    timing = {k: v for k, v in studies[0].timing.items() if k not in ("baseline_recheck", "paired")}
    speedup: dict[str, dict] = {}
    p50: dict[str, float] = {}
    rounds = 0
    for study in studies:
        paired = paired_block(study.timing)
        if paired is None:
            continue
        rounds = max(rounds, int(paired.get("rounds") or 0))
        prefix = prefixes[study.study_id]
        speedup.update({f"{prefix} / {label}": v for label, v in paired["speedup"].items()})
        p50.update({f"{prefix} / {label}": v for label, v in (paired.get("p50_ms") or {}).items()})
    if speedup:
        timing["paired"] = {"rounds": rounds, "speedup": speedup, "p50_ms": p50}
    return timing


def best_verdict(result: StudyResult) -> str:
    """The best overall grade among the study's measured variants, with who earned it ("" if none)."""
    return best_of_verdicts(
        [(r.label, r.status.value, r.verdict.overall.value if r.verdict else "") for r in result.results]
    )


def best_of_verdicts(verdicts: list[tuple[str, str, str]]) -> str:
    """The same from the store's (label, status, overall) rows, baseline first (``StudyStore.verdicts``):
    "GOOD (onnx-fp32)", or "GOOD (onnx-fp32 +3)" when three more earned it too: the first is not the best of
    them, only the first listed."""
    order = [g.value for g in _GRADE_ORDER]
    graded = [(label, overall) for label, status, overall in verdicts[1:] if status == "ok" and overall in order]
    if not graded:
        return ""
    label, overall = min(graded, key=lambda lv: order.index(lv[1]))
    more = sum(1 for _, grade in graded if grade == overall) - 1
    return f"{overall.upper()} ({label}{f' +{more}' if more else ''})"
