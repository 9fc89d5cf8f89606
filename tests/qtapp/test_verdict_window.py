"""Issue 14, items 2, 3, 5 and 6 as the window shows them.

A real study (the engine in the window's worker thread, a tiny ONNX classifier written here, and a
copy of it that never predicts its rare class) drives the window: the legend under the table is
the grading's own rule, the collapsed class makes the verdict BAD and is named, the Δ acc cell
carries the change's 95 % interval, and the class rule's threshold is a spin box beside the others.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import close_window
from PySide6.QtCore import Qt

from core.measures.verdict import verdict, verdict_legend
from core.reports.format import format_points, format_points_interval
from core.study.events import StudyFinished, StudyStarted, VariantFinished
from core.study.result import Grade, LatencyStats, VariantResult, VariantStatus
from core.study.spec import DatasetSpec, Device, ModelSpec, StudySpec, Task, Thresholds, TimingSpec, VariantSpec
from qtapp.charts.palette import VariantPalette
from qtapp.models.study_state import StudyState
from qtapp.panels.run_panel import RunPanel
from qtapp.panels.summary_table import SummaryTable
from qtapp.threads.worker import engine_run_study
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

TIMING = TimingSpec(threads=1, warmup_runs=1, warmup_s=0.01, min_samples=10, max_samples=200, max_time_s=0.05)


def _linear_onnx(path: Path, bias: list[float]) -> Path:
    """x [batch, 4] ─ Gemm (identity on the first 3 inputs, + bias) ─▶ logits [batch, 3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((3, 4), dtype=np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["logits"], transB=1)],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(bias, np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _collapsed_class_spec(tmp_path: Path, thresholds: Thresholds) -> StudySpec:
    """A 3-class model whose class 2 is rare (labels are its own predictions) and a copy that never predicts it."""
    bias = [0.0, 0.0, -2.2]
    x = np.random.default_rng(0).standard_normal((600, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=np.argmax(x[:, :3] + np.array(bias, np.float32), axis=1))
    return StudySpec(
        model=ModelSpec(path=str(_linear_onnx(tmp_path / "model.onnx", bias))),
        dataset=DatasetSpec.parse(f"npz:{tmp_path / 'data.npz'}"),
        variants=(VariantSpec(path=str(_linear_onnx(tmp_path / "collapsed.onnx", [0.0, 0.0, -100.0]))),),
        timing=TIMING,
        thresholds=thresholds,
    )


@pytest.fixture
def window(qtbot):
    win = MainWindow(LIGHT, run_study=engine_run_study)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def test_a_collapsed_class_reads_bad_in_the_window_with_the_rule_and_the_interval(qtbot, window, tmp_path):
    # The user sets the class rule in the run panel, beside the other thresholds.
    window.run_panel.class_recall_bad.setValue(20.0)
    thresholds = window.run_panel.thresholds()
    assert thresholds.class_recall_drop_bad == pytest.approx(0.20)
    seen: list = []
    window.controller.event_received.connect(seen.append)
    assert window.start_study(_collapsed_class_spec(tmp_path, thresholds)) is not None
    qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=120_000)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=60_000)
    qtbot.wait(200)  # the buffered events reach the table on its next refresh

    table = window.results.table
    model = table.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    row = model._state.labels.index(next(label for label in model._state.labels if "collapsed" in label))
    result = model._state.variants[model._state.labels[row]].result
    assert result is not None and result.verdict is not None

    verdict_col, delta_col = headers.index("Verdict"), headers.index("Δ acc.")
    assert model.text(row, verdict_col) == "BAD"
    tooltip = model.data(model.index(row, verdict_col), Qt.ItemDataRole.ToolTipRole)
    assert "class 2's recall fell 100 points" in tooltip and "over 20 points" in tooltip

    interval = result.metrics["accuracy_delta_ci95"]
    assert interval[0] <= -result.verdict.accuracy_drop <= interval[1] < 0
    delta = model.text(row, delta_col)
    assert delta == (
        f"{format_points(-result.verdict.accuracy_drop, 1, True)} {format_points_interval(interval, 1, True)}"
    )
    assert delta.startswith("−") and "[" in delta

    legend = table.thresholds.full_text()
    assert legend == verdict_legend(thresholds)
    assert "a class's recall down > 20 pt" in legend and "(a larger file and over 10 % slower)" in legend


def test_the_run_panel_reads_and_writes_the_class_threshold(qtbot):
    panel = RunPanel()
    qtbot.addWidget(panel)
    assert panel.thresholds().class_recall_drop_bad == pytest.approx(0.10)
    shown = Thresholds(accuracy_drop_good=0.02, class_recall_drop_bad=0.333333)
    panel.set_spec(TimingSpec(), shown, Device.CPU, 0)
    assert panel.class_recall_bad.value() == pytest.approx(33.3)
    assert panel.thresholds() == shown  # left alone, the spec's exact value comes back
    panel.class_recall_bad.setValue(15.0)
    assert panel.thresholds() == replace(shown, class_recall_drop_bad=0.15)


def test_the_window_never_rounds_a_missed_size_threshold_into_a_met_one(qtbot):
    """ort-fp16 at -49.5 %: the Size cell reads -49 %, the grade stays ACCEPTABLE, beside '-50 % or more'."""
    lat = LatencyStats(1.0, 1.1, 1.2, 1.0, 0.1, 0.9, 1.3, 50, (0.98, 1.02), 0.05, False)
    base_metrics, metrics = {"accuracy": 0.9}, {"accuracy": 0.9, "accuracy_delta_ci95": [0.0, 0.0]}
    v = verdict(
        task=Task.CLASSIFICATION, baseline_metrics=base_metrics, metrics=metrics,
        baseline_size=1_000_000, size=505_000, baseline_p50=1.0, p50=1.0, fastest_float_p50=1.0, agreement=1.0,
        thresholds=Thresholds(),
    )
    assert v.size is Grade.ACCEPTABLE
    results = [
        VariantResult(label="fp32", scheme="fp32", status=VariantStatus.OK, size_bytes=1_000_000, latency=lat,
                      metrics=base_metrics, is_baseline=True),
        VariantResult(label="ort-fp16", scheme="ort-fp16", status=VariantStatus.OK, size_bytes=505_000, latency=lat,
                      metrics=metrics, verdict=v),
    ]
    state, palette = StudyState(), VariantPalette()
    table = SummaryTable(state, palette, LIGHT)
    qtbot.addWidget(table)
    events = [StudyStarted("s", {}, {"spec": "builtin:digits", "task": "classification", "samples": 10},
                           ["fp32", "ort-fp16"], {}), *(VariantFinished("s", r) for r in results)]
    for event in events:
        state.apply(event)
        if isinstance(event, StudyStarted):
            palette.reset(event.variants)
            table.reset()
    table.set_thresholds(v.thresholds)
    table.refresh(set(state.labels), resize=True)
    headers = [table.model.headerData(c, Qt.Orientation.Horizontal) for c in range(table.model.columnCount())]
    size = table.model.text(1, headers.index("Size"))
    assert size == "505 kB \u221249 %" and "size \u221250 % or more" in table.thresholds.full_text()
    assert table.model.text(1, headers.index("Δ acc.")) == "±0.0 pt"  # no sample changed: no interval to show
