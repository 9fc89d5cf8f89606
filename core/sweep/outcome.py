"""One study of a sweep as the sweep sees it: where it stands, where it ran, what it found."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from core.study.result import Grade, StudyResult
from core.study.spec import StudySpec


class StudyState(str, Enum):  # noqa: UP042 - str() and f-strings give the value, as the spec's enums do
    QUEUED = "queued"
    RUNNING = "running"
    #: Finished and recorded in the history.
    DONE = "done"
    #: Already in the history (same spec fingerprint, finished): not run again.
    SKIPPED = "skipped"
    #: Its node died; sent again, once, to another node.
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (StudyState.DONE, StudyState.SKIPPED, StudyState.FAILED, StudyState.CANCELLED)


@dataclass
class StudyOutcome:
    """A sweep's study: ``index`` is its place in the sweep file; ``study_id`` its id in the history."""

    index: int
    spec: StudySpec
    fingerprint: str
    state: StudyState = StudyState.QUEUED
    study_id: str | None = None
    #: Where it ran: host, node, target, cpu, threads, timing_intervals, others_meanwhile, timed_alone (set by
    #: core.sweep.remote on Ray, core.sweep.driver here).
    placement: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: "bad_input" (the study's files or spec: exit 2) or "internal" (exit 1) when it failed.
    error_kind: str | None = None
    attempts: int = 0
    result: StudyResult | None = None

    @property
    def model_name(self) -> str:
        return Path(self.spec.model.path).name

    @property
    def schemes(self) -> list[str]:
        return [v.label for v in self.spec.variants]

    @property
    def where(self) -> str:
        """"host" or "host (node 3a87f1…)", with its target; empty before it ran."""
        return where_text(self.placement)

    @property
    def best(self) -> str | None:
        return best_variant(self.result) if self.result is not None else None

    def to_json_dict(self) -> dict[str, Any]:
        """The ``--json`` entry: the study's result (the result contract) and where it ran."""
        p = self.placement
        return {
            "index": self.index,
            "model": self.spec.model.path,
            "schemes": self.schemes,
            "status": self.state.value,
            "study_id": self.study_id,
            "fingerprint": self.fingerprint,
            "host": p.get("host"),
            "node": p.get("node"),
            "target": p.get("target"),
            "placement": dict(p),
            "attempts": self.attempts,
            "error": self.error,
            "best": self.best,
            "result": self.result.to_json_dict() if self.result is not None else None,
        }


_GRADE_ORDER = {Grade.GOOD: 0, Grade.ACCEPTABLE: 1, Grade.BAD: 2}


def best_variant(result: StudyResult) -> str | None:
    """The variant a sweep's table names as the study's best: among the measured, non-baseline variants, the best
    overall grade, then the lowest median latency. None when nothing but the baseline was measured."""
    rows = [v for v in result.results if v.ok and not v.is_baseline and v.latency is not None]
    if not rows:
        return None

    def key(v: Any) -> tuple[int, float]:
        grade = v.verdict.overall if v.verdict is not None else Grade.BAD
        return _GRADE_ORDER.get(grade, 3), v.latency.p50

    return min(rows, key=key).label


#: The sweep table's columns, the same in the terminal (``quantbench sweep``) and the window's Sweep view.
TABLE_HEADERS = ("#", "Model", "Schemes", "Status", "Where", "Timing", "Best", "Study")


def table_row(outcome: StudyOutcome) -> list[str]:
    """One study's row of the sweep table (TABLE_HEADERS), as text."""
    return [str(outcome.index + 1), outcome.model_name, ", ".join(outcome.schemes) or "fp32 only",
            outcome.state.value, outcome.where or "-", timing_text(outcome.placement) or "-", outcome.best or "-",
            outcome.study_id or "-"]


def where_text(placement: dict[str, Any]) -> str:
    """Where a study ran, short: "vm", "vm (node 3a87f1…)", "…, target rpi5"; empty when not known."""
    host = placement.get("host")
    if not host:
        return ""
    node = placement.get("node")
    text = f"{host} (node {node[:6]}…)" if node and node != "here" else str(host)
    target = placement.get("target")
    return f"{text}, target {target}" if target else text


def timing_text(placement: dict[str, Any]) -> str:
    """Whether anything else ran on the node while the study timed: "alone", "beside 2 studies", or
    "not exclusive" (a node without the quantbench_timing resource); empty before it was timed."""
    if placement.get("timing_exclusive") is False:
        return "not exclusive"
    if "timed_alone" not in placement:
        return ""
    others = placement.get("others_meanwhile") or []
    return "alone" if placement["timed_alone"] else f"beside {len(others)} {'study' if len(others) == 1 else 'studies'}"


def measured_where(environment: dict[str, Any]) -> str:
    """The words a study's view adds to say where its figures were measured ("" for a study run in the window or
    by `quantbench run`, which carries no placement)."""
    placement = environment.get("placement") or {}
    where = where_text(placement)
    if not where:
        return ""
    timing = timing_text(placement)
    return f"measured on {where}" + (f", timed {timing}" if timing and timing != "not exclusive" else
                                     ", timing not exclusive" if timing else "")


def conclude(outcome: StudyOutcome, finished: Any) -> None:
    """Set ``outcome`` from its study's StudyFinished (already recorded): done, failed or cancelled."""
    result = finished.result
    outcome.result = result
    outcome.study_id = result.study_id
    if finished.cancelled:
        outcome.state = StudyState.CANCELLED
        return
    ran_on = outcome.placement.get("node")
    failure = result.baseline_failure("here" if ran_on in (None, "here") else f"on {where_text(outcome.placement)}")
    if failure is not None:
        failed(outcome, failure, "bad_input")
        return
    outcome.state = StudyState.DONE


def failed(outcome: StudyOutcome, message: str, kind: str) -> None:
    """Mark ``outcome`` failed with one sentence; ``kind`` is "bad_input" (exit 2) or "internal" (exit 1)."""
    outcome.state = StudyState.FAILED
    outcome.error = message.strip()
    outcome.error_kind = kind
