"""How a study is named wherever it is shown: the window, the command line and the HTML report.

A study is named as its user knows it: its name in the history, else its model and when it ran
("digits_cnn.pt · 7 Dec 14:02"), with a short id only where two would read the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from core.study.result import StudyResult


def model_name(path: str) -> str:
    """A model path as a name: its file name (a torchvision name as it is)."""
    return Path(path).name or path


SHORT_ID = 8  # characters of a study id, as ``quantbench history`` lists them


def study_date(created: str, now: datetime | None = None, seconds: bool = False) -> str:
    """When a study ran, in local time: "7 Dec 14:02" (``seconds``: "7 Dec 14:02:37"), with the year when it
    is not this year's.

    Text that is not a time stamp comes back unchanged, so an odd record still shows something."""
    try:
        moment = datetime.fromisoformat(created).astimezone()
    except (TypeError, ValueError):
        return created
    year = f" {moment.year}" if moment.year != (now or datetime.now().astimezone()).year else ""
    clock = f"{moment:%H:%M:%S}" if seconds else f"{moment:%H:%M}"
    return f"{moment.day} {moment:%b}{year} {clock}"


def study_model(study: StudyResult) -> str:
    """The file name of the study's model (a torchvision name as it is), else "model"."""
    path = str(study.model.get("path") or ((study.spec or {}).get("model") or {}).get("path") or "")
    return model_name(path) if path else "model"


def study_title(study: StudyResult, name: str | None = None) -> str:
    """The study's name in the history, else its model and date: "digits_cnn.pt · 7 Dec 14:02"."""
    return name or f"{study_model(study)} · {study_date(study.created)}"


def _untied(
    studies: list[StudyResult], title: Callable[[StudyResult], str],
    finer: Callable[[StudyResult], str] | None = None,
) -> dict[str, str]:
    """``title(study)`` per study id; studies whose titles are equal get ``finer(study)`` (the time to the
    second) where that tells them apart, else their short id."""
    plain = {s.study_id: title(s) for s in studies}
    if finer is not None and len(set(plain.values())) < len(plain):
        fine = {s.study_id: finer(s) for s in studies}
        if len(set(fine.values())) == len(fine):
            return {sid: fine[sid] if list(plain.values()).count(text) > 1 else text for sid, text in plain.items()}
    counts: dict[str, int] = {}
    for text in plain.values():
        counts[text] = counts.get(text, 0) + 1
    return {sid: text if counts[text] == 1 else f"{text} ({sid[:SHORT_ID]})" for sid, text in plain.items()}


def study_titles(studies: list[StudyResult], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """A display title per study id (``study_title``), unique among ``studies``."""
    names = names or {}
    return _untied(
        studies, lambda s: study_title(s, names.get(s.study_id)),
        lambda s: names.get(s.study_id) or f"{study_model(s)} · {study_date(s.created, seconds=True)}",
    )


def row_prefixes(studies: list[StudyResult], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the rows and chart labels of a comparison put before each variant: the study's title,
    without the model when every study is of the same model (the header names it once), so the
    part that tells the studies apart is what a narrow column or a chart's axis keeps."""
    names = names or {}
    if any(names.get(s.study_id) for s in studies) or len({study_model(s) for s in studies}) > 1:
        return study_titles(studies, names)
    if common_day(studies):  # the same day too: the time tells them apart ("14:02 / ort-int8-static")
        return _untied(studies, lambda s: study_date(s.created).rsplit(" ", 1)[-1],
                       lambda s: study_date(s.created, seconds=True).rsplit(" ", 1)[-1])
    return _untied(studies, lambda s: study_date(s.created), lambda s: study_date(s.created, seconds=True))


def common_day(studies: list[StudyResult]) -> str | None:
    """The day every study ran on ("7 Dec"), or None when they ran on different days (or a date is odd)."""
    days = {study_date(s.created).rsplit(" ", 1)[0] if ":" in study_date(s.created) else None for s in studies}
    day = days.pop() if len(days) == 1 else None
    return day or None
