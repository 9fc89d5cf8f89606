"""The window driven like a user would, on the real engine and the bundled demo."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np
import pytest
from helpers import FAST_TIMING, SLOW_TIMING, close_window
from PySide6.QtCore import Qt

from core.engine.run import demo_study_spec
from core.measures.drift_notes import paired_p50_ms
from core.study.events import LatencySamples, StudyFinished, StudyStarted, VariantFinished
from core.study.spec import DatasetSpec, SchemeSpec, VariantSpec
from qtapp.models.study_state import Phase
from qtapp.threads.controller import live_threads
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


@pytest.fixture
def window(qtbot):
    # Not qtbot.addWidget: pytest-qt would delete the window before this fixture's teardown,
    # with the study possibly still running; close_window stops it the way a user would.
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _events(window) -> list:
    seen: list = []
    window.controller.event_received.connect(seen.append)
    return seen


def _wait_idle(qtbot, window, timeout=60_000) -> None:
    qtbot.waitUntil(lambda: not (window.model_panel.busy or window.dataset_panel.busy), timeout=timeout)
    qtbot.waitUntil(lambda: bool(window.schemes_panel.rows), timeout=timeout)


def _wait_finished(qtbot, window, seen: list, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=timeout)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=timeout)


def _row(window, label: str) -> int:
    return window.results.state.labels.index(label)


def test_demo_study_end_to_end(qtbot, window):
    spec = demo_study_spec(FAST_TIMING)
    # A strongly pruned variant changes some predictions, so the flipped list has samples.
    spec = replace(spec, variants=spec.variants + (VariantSpec(scheme=SchemeSpec("prune-l1", (("sparsity", "0.6"),))),))
    seen = _events(window)
    window.open_demo(start=True, spec=spec)  # starts at once; the panels load once it has ended
    _wait_finished(qtbot, window, seen)
    _wait_idle(qtbot, window)
    final = [e for e in seen if isinstance(e, StudyFinished)]
    assert len(final) == 1 and not final[0].cancelled
    results = final[0].result.results
    assert [r.label for r in results] == window.results.state.labels
    res, model = window.results, window.results.table.model
    for r in results:
        assert r.ok, r.error
        row = _row(window, r.label)
        # Latency histogram: every kept sample counted once, p50/p99 marked where the engine says.
        assert res.histogram.counts(r.label).sum() + res.histogram.beyond(r.label) == len(r.samples_ms) == r.latency.n
        assert res.histogram.marks(r.label) == pytest.approx((r.latency.p50, r.latency.p99))
        # Confusion matrix cells are the engine's.
        np.testing.assert_array_equal(res.matrices.cells(r.label), np.asarray(r.metrics["confusion_matrix"]))
        # Size bars are bytes on disk.
        assert res.sizes.values()[r.label] == r.size_bytes
        assert res.sizes.bar_lengths_bytes()[row] == pytest.approx(r.size_bytes)
        # Summary table cells.
        assert model.text(row, 0) == r.label
        assert model.text(row, 2) == f"{r.metrics['accuracy'] * 100:.1f} %"
        verdict = model.text(row, 1)
        assert verdict == ("baseline" if row == 0 else r.verdict.overall.value.upper())
        # The bubble at the latency the table shows: the paired rounds' median when the machine's speed moved.
        shown_ms = paired_p50_ms(final[0].result.timing, r.label) or r.latency.p50
        assert res.scatter.points()[r.label][:2] == pytest.approx((shown_ms, r.metrics["accuracy"] * 100))
    # The verdict colour is the theme's colour for that grade.
    graded = next(i for i, r in enumerate(results) if i > 0)
    brush = model.data(model.index(graded, 1), role=8)  # BackgroundRole
    assert brush.color().name() == LIGHT.grade_color(results[graded].verdict.overall)
    # Flipped samples of the pruned variant, with the digit images.
    pruned = results[-1]
    assert pruned.fidelity["flipped_count"] > 0
    res.flipped.show_variant(pruned.label)
    assert res.flipped.shown_indices() == pruned.fidelity["flipped"][: len(res.flipped.shown_indices())]
    assert res.flipped.has_images()
    # The panels show what was run.
    assert window.model_panel.loaded is not None and "Parameters" in window.model_panel.info.text()
    assert window.dataset_panel.loaded is not None and "450" in window.dataset_panel.info.text()
    assert window.run_panel.bar.value() == 1000


def test_cancel_mid_run_keeps_finished_variants(qtbot, window):
    seen = _events(window)
    window.open_demo(start=True, spec=demo_study_spec(SLOW_TIMING))
    qtbot.waitUntil(lambda: any(isinstance(e, VariantFinished) for e in seen), timeout=60_000)
    # Cancel while the second variant streams latency samples.
    qtbot.waitUntil(lambda: isinstance(seen[-1], LatencySamples) and seen[-1].label != "fp32", timeout=30_000)
    asked = time.monotonic()
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # the Cancel shortcut
    qtbot.waitUntil(lambda: not window.controller.running, timeout=1_000)
    assert time.monotonic() - asked < 1.0
    # The engine's process then closes; the thread ends shortly after.
    qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
    state = window.results.state
    assert state.cancelled
    done = [label for label, v in state.variants.items() if v.phase is Phase.OK]
    assert done and done[0] == "fp32"
    model = window.results.table.model
    for label in done:  # finished rows stay, with their numbers
        assert model.text(_row(window, label), 2).endswith("%")
    rest = [v for v in state.variants.values() if v.phase is not Phase.OK]
    assert rest and all(v.phase is Phase.CANCELLED for v in rest)
    # Run is back once the panels have loaded (the demo held their loading back while it ran).
    qtbot.waitUntil(lambda: window.run_panel.run_button.isEnabled(), timeout=60_000)


def test_closing_mid_run_cancels_and_waits_for_the_thread(qtbot, window):
    seen = _events(window)
    window.open_demo(start=True, spec=demo_study_spec(FAST_TIMING))
    qtbot.waitUntil(lambda: any(isinstance(e, StudyStarted) for e in seen), timeout=60_000)
    closed = []
    window.closed.connect(lambda: closed.append(True))
    window.close()
    assert window.isVisible() and not closed  # kept open until the worker has stopped
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert closed == [True]
    assert not window.controller.threads_alive and not live_threads()
    assert any(isinstance(e, StudyFinished) and e.cancelled for e in seen)


def test_failing_variant_shows_as_a_failed_row(qtbot, window, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a model")
    spec = replace(demo_study_spec(FAST_TIMING),
                   variants=(VariantSpec(path=str(broken)), VariantSpec(scheme=SchemeSpec("onnx-fp32"))))
    seen = _events(window)
    window.open_demo(start=True, spec=spec)
    _wait_finished(qtbot, window, seen)
    state = window.results.state
    label = VariantSpec(path=str(broken)).label
    assert state.variants[label].phase is Phase.FAILED
    assert state.variants["onnx-fp32"].phase is Phase.OK and state.variants["fp32"].phase is Phase.OK
    model, view = window.results.table.model, window.results.table.view
    row = _row(window, label)
    assert model.text(row, 1) == "FAILED"
    reason = model.text(row, 2)
    assert reason.startswith("failed while building") and "broken.onnx" in reason
    assert view.columnSpan(row, 2) == model.columnCount() - 2
    assert "failed" in window.results.histogram.caption(label)


def test_dataset_mismatch_is_reported_before_the_run(qtbot, window):
    window.model_panel.open_demo()
    window.dataset_panel.set_spec(DatasetSpec.parse("builtin:iris"))
    _wait_idle(qtbot, window)
    problem = window.dataset_panel.problem()
    assert problem and "iris" in problem and "8x8" in problem
    assert window.dataset_panel.error.isVisible()
    assert not window.run_panel.run_button.isEnabled()
    assert problem in window.run_panel.blocker.text()
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # the Run shortcut
    assert not window.controller.running and window.results.state.study_id is None
    # Choosing data that fits clears the report; with a scheme ticked, Run is enabled.
    window.dataset_panel.set_spec(DatasetSpec.parse("builtin:digits"))
    _wait_idle(qtbot, window)
    assert window.dataset_panel.problem() is None and not window.dataset_panel.error.isVisible()
    assert window.blocker() == "tick at least one scheme or add a variant file"
    window.schemes_panel.rows["ort-int8-static"].check.setChecked(True)
    assert window.blocker() is None and window.run_panel.run_button.isEnabled()
    assert [v.scheme.id for v in window.study_spec().variants] == ["ort-int8-static"]


def test_event_loop_never_stalls_while_samples_stream(qtbot, window):
    """While latency samples stream in and the charts redraw, the GUI thread never works
    100 ms without returning to its event loop.

    The work is measured as the GUI thread's own CPU time between two ticks of a 10 ms
    timer, so a machine busy with other processes does not count as a stall of ours.
    """
    from PySide6.QtCore import QTimer

    seen = _events(window)
    ticks: list[tuple[float, float]] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    window.open_demo(start=True, spec=demo_study_spec(SLOW_TIMING))
    qtbot.waitUntil(lambda: any(isinstance(e, LatencySamples) for e in seen), timeout=60_000)
    assert window.tasks.holding  # the panels load after the study, never while it is timed
    timer.start()
    qtbot.waitUntil(lambda: sum(isinstance(e, VariantFinished) for e in seen) >= 3, timeout=60_000)
    timer.stop()
    window.cancel_study()
    assert len(ticks) > 50
    busy = [b[1] - a[1] for a, b in itertools.pairwise(ticks)]
    wall = [b[0] - a[0] for a, b in itertools.pairwise(ticks)]
    assert max(busy) < 0.1, (
        f"the GUI thread worked {max(busy) * 1000:.0f} ms without a break "
        f"(longest wall-clock gap {max(wall) * 1000:.0f} ms)"
    )
