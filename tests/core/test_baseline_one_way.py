"""Symptom 7 of issue 13: the baseline is found one way (``VariantResult.is_baseline``) everywhere.

Before, the engine and the reports looked for the row labelled "fp32" while the window took the
first row. A stored study whose results list puts the baseline last, next to a file variant that
came from a file named fp32.onnx, must read the same in the engine's verdicts, the reports and the
window's state.
"""

from __future__ import annotations

import json
import re

from core.engine.verdicts import final_verdicts
from core.measures.latency_stats import latency_stats
from core.reports.html import render_html
from core.reports.text import format_table
from core.study.result import Grade, StudyResult, VariantResult, VariantStatus, study_from_json
from core.study.spec import DatasetSpec, ModelSpec, StudySpec, Task
from qtapp.models.stored_study import replay_events
from qtapp.models.study_state import StudyState


def _variant(label: str, scheme: str, p50: float, size: int, accuracy: float, **extra: object) -> VariantResult:
    samples = [p50 * (1 + 0.001 * (i % 5)) for i in range(40)]
    return VariantResult(
        label=label, scheme=scheme, status=VariantStatus.OK, runtime="onnxruntime", size_bytes=size,
        latency=latency_stats(samples), metrics={"accuracy": accuracy}, samples_ms=samples, **extra,  # type: ignore[arg-type]
    )


def _reordered_study() -> StudyResult:
    """The engine's three rows, stored with the baseline last and a file variant from fp32.onnx first."""
    spec = StudySpec(model=ModelSpec(path="model.onnx"), dataset=DatasetSpec.parse("synthetic:64"))
    baseline = _variant("fp32", "fp32", 2.0, 1000, 0.90, is_float=True, is_baseline=True)
    int8 = _variant("int8", "ort-int8-dynamic", 1.0, 300, 0.895, fidelity={"agreement": 0.99}, is_baseline=False)
    from_file = _variant("fp32 (2)", "file", 2.0, 1000, 0.90, is_float=True, is_baseline=False,
                         source_path="/elsewhere/fp32.onnx", fidelity={"agreement": 1.0})
    results = [from_file, int8, baseline]
    final_verdicts(results, spec, Task.CLASSIFICATION)
    study = StudyResult(
        study_id="s-baseline", created="2024-01-01T00:00:00+00:00", status="finished",
        model={"path": "model.onnx", "format": "onnx"}, dataset={"spec": "synthetic:64", "task": "classification"},
        environment={}, timing={"threads": 1}, spec=spec.to_dict(), results=results,
    )
    # Through the stored JSON, as the history and `quantbench show` read it.
    return study_from_json(json.loads(json.dumps(study.to_json_dict())))


def test_the_engine_grades_against_the_flagged_baseline_wherever_it_sits() -> None:
    study = _reordered_study()
    by_label = {r.label: r for r in study.results}
    assert study.baseline() is by_label["fp32"]
    assert by_label["fp32"].verdict is not None and by_label["fp32"].verdict.overall is Grade.BASELINE
    int8 = by_label["int8"].verdict
    assert int8 is not None and int8.overall is not Grade.BASELINE
    assert int8.speedup is not None and abs(int8.speedup - 2.0) < 0.01
    assert by_label["fp32 (2)"].verdict is not None and by_label["fp32 (2)"].verdict.overall is not Grade.BASELINE


def test_the_reports_mark_the_same_row_as_the_baseline() -> None:
    study = _reordered_study()
    table = format_table(study).splitlines()
    rows = {line.split("  ")[0]: line for line in table[2:5]}
    assert "(base)" in rows["fp32"]
    assert "(base)" not in rows["int8"] and "(base)" not in rows["fp32 (2)"]

    html = render_html([study])
    table_html = html[html.index('<table class="results">'):]
    html_rows = re.findall(r"<tr>(.*?)</tr>", table_html[: table_html.index("</table>")])
    marked = [row for row in html_rows if "(base)" in row]
    assert len(marked) == 1 and "</span>fp32</td>" in marked[0]


def test_the_window_reads_the_same_baseline() -> None:
    study = _reordered_study()
    state = StudyState()
    for event in replay_events(study):
        state.apply(event)
    assert state.labels[0] == "fp32 (2)"  # the baseline is not the first row here
    assert state.baseline is not None and state.baseline.label == "fp32"
    for label in ("int8", "fp32 (2)"):
        base = state.baseline_for(label)
        assert base is not None and base.label == "fp32"
    assert state.baseline_for("fp32") is None


def test_a_study_stored_before_the_flag_finds_its_baseline_by_its_scheme() -> None:
    stored = _reordered_study().to_json_dict()
    for row in stored["results"]:
        del row["is_baseline"]  # as written by earlier versions (schema_version 1 all the same)
    study = study_from_json(stored)
    assert [r.label for r in study.results if r.is_baseline] == ["fp32"]
    assert study.baseline() is not None and study.baseline().label == "fp32"
