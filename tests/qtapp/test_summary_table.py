"""The summary table's cells, colours and spans, from event streams."""

from __future__ import annotations

from fake_study import fake_run_study
from helpers import fake_spec
from PySide6.QtCore import Qt

from core.study.events import StudyFinished, StudyStarted, VariantFinished
from core.study.result import Grade, LatencyStats, StudyResult, VariantResult, VariantStatus, Verdict
from qtapp.charts.palette import VariantPalette
from qtapp.models.study_state import StudyState
from qtapp.models.summary_columns import thresholds_text
from qtapp.panels.summary_table import SummaryTable
from qtapp.window.theme import DARK, LIGHT


def _table(qtbot, events, theme=LIGHT) -> SummaryTable:
    state = StudyState()
    palette = VariantPalette()
    table = SummaryTable(state, palette, theme)
    qtbot.addWidget(table)
    for event in events:
        state.apply(event)
        if isinstance(event, StudyStarted):
            palette.reset(event.variants)
            table.reset()
    table.refresh(set(state.labels), resize=True)
    return table


def test_classification_rows_verdicts_and_failed_span(qtbot):
    events = list(fake_run_study(fake_spec()))
    table = _table(qtbot, events)
    model, view = table.model, table.view
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:4] == ["Variant", "Verdict", "Acc.", "Δ acc."]
    results = {e.result.label: e.result for e in events if isinstance(e, VariantFinished)}
    for row, label in enumerate(table.model._state.labels):
        assert model.text(row, 0) == label
        if label in results:
            r = results[label]
            assert model.text(row, 2) == f"{r.metrics['accuracy'] * 100:.1f} %"
            assert model.text(row, 1) == ("baseline" if row == 0 else r.verdict.overall.value.upper())
    failed = table.model._state.labels.index("litert-int8")
    assert model.text(failed, 1) == "FAILED"
    assert model.text(failed, 2) == "failed while building: the converter does not support this operator"
    assert view.columnSpan(failed, 2) == model.columnCount() - 2
    # Verdict cells carry the theme's grade colour, solid; sub-grades only a tint.
    bad = next(i for i, label in enumerate(table.model._state.labels) if label == "torch-int8-dynamic")
    assert model.data(model.index(bad, 1), Qt.ItemDataRole.BackgroundRole).color().name() == LIGHT.bad
    tint = model.data(model.index(bad, 3), Qt.ItemDataRole.BackgroundRole).color()
    assert tint.alpha() < 255


def test_regression_columns(qtbot):
    sid = "s"
    lat = LatencyStats(1.0, 1.1, 1.2, 1.0, 0.1, 0.9, 1.3, 50, (0.98, 1.02), 0.05, False)

    def result(label: str, mse: float, verdict: Verdict | None) -> VariantResult:
        return VariantResult(label=label, scheme=label, status=VariantStatus.OK, size_bytes=1000, latency=lat,
                             metrics={"mse": mse, "mae": mse / 2, "r2": 0.9}, fidelity={"sqnr_db": 30.0},
                             verdict=verdict)

    worse = Verdict(Grade.BAD, Grade.ACCEPTABLE, Grade.ACCEPTABLE, Grade.BAD, None, 0.0, 0.0, 1.0, None, {})
    events = [
        StudyStarted(sid, {}, {"spec": "csv:x.csv", "task": "regression", "samples": 10}, ["fp32", "int8"], {}),
        VariantFinished(sid, result("fp32", 0.5, None)),
        VariantFinished(sid, result("int8", 0.6, worse)),
    ]
    table = _table(qtbot, events, DARK)
    model = table.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:5] == ["Variant", "Verdict", "MSE", "MAE", "Δ MSE"]
    assert model.text(1, 2) == "0.6" and model.text(1, 3) == "0.3" and model.text(1, 4) == "+20.0 %"
    assert model.text(1, 1) == "BAD"
    assert model.data(model.index(1, 1), Qt.ItemDataRole.BackgroundRole).color().name() == DARK.bad


def test_thresholds_line_uses_the_engine_thresholds():
    text = thresholds_text({"accuracy_drop_good": 0.02, "accuracy_drop_bad": 0.1, "size_reduction_good": 0.4,
                            "latency_reduction_good": 0.25, "latency_increase_bad": 0.2})
    assert "drop < 2 pt" in text and "drop > 10 pt" in text and "size −40 %" in text and "−25 %" in text


def test_finished_study_result_is_what_the_table_shows(qtbot):
    events = list(fake_run_study(fake_spec()))
    final = events[-1]
    assert isinstance(final, StudyFinished) and isinstance(final.result, StudyResult)
    table = _table(qtbot, events)
    assert table.model.rowCount() == len(final.result.results)
