"""Stored studies shown in the results view: replayed as the events they ran with.

Plain Python, no Qt. A finished ``StudyResult`` becomes the StudyStarted and
StudyFinished events its run ended with, so the results panel draws it with the
very code that drew it live: the same charts from the same numbers. Several
studies compared side by side become one study whose variants are labelled
"study / variant", each measured against its own study's baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

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
    titles: dict[str, str]  # study id -> short display name
    result: StudyResult  # the merged study the results view shows
    baselines: dict[str, str] = field(default_factory=dict)  # merged label -> its study's baseline label

    @property
    def ids(self) -> list[str]:
        return [s.study_id for s in self.studies]

    def header(self) -> str:
        """One line naming what is compared."""
        names = ", ".join(self.titles[s.study_id] for s in self.studies)
        variants = len(self.result.results)
        return f"Comparing {len(self.studies)} studies ({names}): {variants} variants, each against its own baseline"


def compare(studies: list[StudyResult], names: dict[str, str] | None = None) -> Comparison:
    """Merge ``studies`` for display; ``names`` maps study ids to their names in the history."""
    from core.reports.html import study_titles

    if len(studies) < 2:
        raise ValueError("a comparison needs at least two studies")
    titles = study_titles(studies, dict(names or {}))
    merged: list[VariantResult] = []
    baselines: dict[str, str] = {}
    for study in studies:
        title = titles[study.study_id]
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
        timing=dict(first.timing),
        spec={"thresholds": (first.spec or {}).get("thresholds")} if (first.spec or {}).get("thresholds") else {},
        results=merged,
    )
    return Comparison(studies=list(studies), titles=titles, result=result, baselines=baselines)


def best_verdict(result: StudyResult) -> str:
    """The best overall grade among the study's measured variants, with who earned it ("" if none)."""
    return best_of_verdicts(
        [(r.label, r.status.value, r.verdict.overall.value if r.verdict else "") for r in result.results]
    )


def best_of_verdicts(verdicts: list[tuple[str, str, str]]) -> str:
    """The same from the store's (label, status, overall) rows, baseline first (``StudyStore.verdicts``)."""
    order = [g.value for g in _GRADE_ORDER]
    graded = [(label, overall) for label, status, overall in verdicts[1:] if status == "ok" and overall in order]
    if not graded:
        return ""
    label, overall = min(graded, key=lambda lv: order.index(lv[1]))
    return f"{overall.upper()} ({label})"


def model_name(path: str) -> str:
    return Path(path).name or path
