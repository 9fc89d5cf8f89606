"""Study ▸ Calibration and batch-size sweeps…: both sweeps on the bundled demo (a few seconds each), the
charts checked against the sweep's own result, and the HTML page saved from the dialog."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.run import demo_study_spec
from core.study.spec import TimingSpec

SWEEP_TIMEOUT_MS = 120_000


@pytest.fixture
def dialog(qtbot):
    from qtapp.window.sweeps_dialog import SweepsDialog
    from qtapp.window.theme import LIGHT

    made = SweepsDialog(lambda: demo_study_spec(TimingSpec(threads=1)), LIGHT)
    qtbot.addWidget(made)
    made.show()
    yield made
    made.shutdown()
    assert not made.thread_alive


def _run(qtbot, dialog, kind: str) -> str:
    with qtbot.waitSignal(dialog.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        assert dialog.start(kind)
        assert not dialog.start(kind)  # one sweep at a time
    qtbot.waitUntil(lambda: not dialog.thread_alive, timeout=30_000)
    return ended.args[1]


def test_the_calibration_and_batch_sweeps_draw_their_results(qtbot, qapp, dialog, tmp_path: Path) -> None:
    dialog.counts.setText("16,64")
    assert _run(qtbot, dialog, "calibration") == "finished"
    sweep = dialog.results["calibration"]
    assert [(p["method"], p["samples"]) for p in sweep["points"]] == [
        (m, n) for m in ("minmax", "entropy", "percentile") for n in (16, 64)
    ]
    lines = dialog.accuracy_chart.line_points()
    assert set(lines) == {"minmax", "entropy", "percentile"}
    for p in sweep["points"]:
        assert (p["samples"], pytest.approx(100 * p["accuracy"])) in lines[p["method"]]
    sqnr = dialog.sqnr_chart.line_points()
    assert [y for _, y in sqnr["entropy"]] == [p["sqnr_db"] for p in sweep["points"] if p["method"] == "entropy"]

    dialog.batch_sizes.setText("1,4")
    dialog.latency_limit.setValue(1000.0)
    assert _run(qtbot, dialog, "batch") == "finished"
    batch = dialog.results["batch"]
    assert [v["label"] for v in batch["variants"]] == ["fp32", "ort-int8-static"]
    assert all([p["batch_size"] for p in v["points"]] == [1, 4] for v in batch["variants"])
    assert dialog.latency_chart.limit() == 1000.0
    throughput = dialog.throughput_chart.line_points()
    for v in batch["variants"]:
        assert [y for _, y in throughput[v["label"]]] == [p["throughput_per_s"] for p in v["points"]]
        best = max(v["points"], key=lambda p: p["throughput_per_s"])  # all within 1 s per call
        assert v["best_batch_size"] == best["batch_size"]
    assert sorted(dialog.throughput_chart.ring_points()) == sorted(
        (float(v["best_batch_size"]), next(p["throughput_per_s"] for p in v["points"]
                                           if p["batch_size"] == v["best_batch_size"]))
        for v in batch["variants"]
    )
    assert "best throughput" in dialog.status.text()

    page = tmp_path / "sweeps.html"
    dialog.save_html(str(page))
    html = page.read_text()
    assert 'data-chart="calibration-accuracy"' in html and 'data-chart="batch-throughput"' in html
    assert html.count('data-best="') == 4  # ringed on the latency and the throughput charts, two variants each
    dialog.tabs.setCurrentIndex(1)
    qapp.processEvents()
    assert dialog.grab().save(str(tmp_path / "sweeps_dialog.png"))


def test_bad_sizes_are_one_sentence_and_start_nothing(qtbot, dialog) -> None:
    dialog.batch_sizes.setText("1,eight")
    assert not dialog.start("batch")
    assert "Batch sizes" in dialog.status.text() and not dialog.thread_alive
    dialog.batch_sizes.setText("1")
    dialog.schemes.setText("no-such-scheme")
    assert not dialog.start("batch")
    assert "no-such-scheme" in dialog.status.text()
