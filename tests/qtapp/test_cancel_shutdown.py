"""Cancel answers at once, a child that ignores it is ended, closing mid-run exits quickly and
cleanly, and nothing of a cancelled study shows up in the next one."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_study import FakeVariant, fake_run_study
from helpers import SLOW_TIMING, close_window, fake_spec
from PySide6.QtCore import Qt, QTimer

from core.engine.isolation import KILL_AFTER_S
from core.engine.run import demo_study_spec
from core.study.events import LatencySamples, StudyFinished, StudyStarted, VariantFinished
from qtapp.models.study_state import Phase
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

REPO = Path(__file__).resolve().parents[2]
ACK_S = 0.1


@pytest.fixture
def window(qtbot):
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _start_demo_and_wait_for_the_second_variant(qtbot, window) -> list:
    """The demo study in its child process, caught while it times its second variant."""
    seen: list = []
    window.controller.event_received.connect(seen.append)
    window.open_demo(start=True, spec=demo_study_spec(SLOW_TIMING))
    qtbot.waitUntil(lambda: any(isinstance(e, VariantFinished) for e in seen), timeout=60_000)
    qtbot.waitUntil(lambda: isinstance(seen[-1], LatencySamples) and seen[-1].label != "fp32", timeout=30_000)
    return seen


def _acknowledged(window) -> bool:
    cancel = window.run_panel.cancel_button
    step = window.run_panel.step.text()
    return not cancel.isEnabled() and cancel.text() == "Cancelling…" and step.startswith("cancelling")


def test_cancel_is_acknowledged_at_once_and_the_study_stops_within_a_second(qtbot, window):
    seen = _start_demo_and_wait_for_the_second_variant(qtbot, window)
    clicked = time.perf_counter()
    qtbot.mouseClick(window.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert _acknowledged(window) and time.perf_counter() - clicked < ACK_S
    assert window.statusBar().currentMessage().startswith("Cancelling")
    qtbot.waitUntil(lambda: not window.controller.running, timeout=2_000)
    assert time.perf_counter() - clicked < 1.0 + ACK_S  # the child stopped on its own, between two batches
    final = next(e for e in seen if isinstance(e, StudyFinished))
    assert final.cancelled and window.results.state.variants["fp32"].phase is Phase.OK
    # Run comes back once the panels, whose loading the demo held back while it ran, have loaded.
    assert not window.tasks.holding
    qtbot.waitUntil(lambda: window.run_panel.run_button.isEnabled(), timeout=60_000)


def test_a_child_that_ignores_cancel_is_ended_and_the_window_stays_responsive(qtbot, window):
    seen = _start_demo_and_wait_for_the_second_variant(qtbot, window)
    running = seen[-1].label
    pid = next(e for e in seen if isinstance(e, StudyStarted)).environment["pid"]
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot read the stop request
    try:
        timer.start()
        pressed = time.perf_counter()
        qtbot.keyClick(window, Qt.Key.Key_Escape)
        assert _acknowledged(window) and time.perf_counter() - pressed < ACK_S
        qtbot.waitUntil(lambda: not window.controller.running, timeout=int((KILL_AFTER_S + 5) * 1000))
        ended = time.perf_counter() - pressed
        timer.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # in case the test failed before the window ended it
    assert KILL_AFTER_S <= ended < KILL_AFTER_S + 2.0
    # The window kept running its event loop all along, and says how the study ended.
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > KILL_AFTER_S / 0.05 and max(gaps) < 0.25
    state, model = window.results.state, window.results.table.model
    assert state.cancelled and state.variants["fp32"].phase is Phase.OK
    assert state.variants[running].phase is Phase.FAILED
    note = model.text(state.labels.index(running), 2)
    assert f"did not stop within {KILL_AFTER_S:g} s of Cancel and was ended" in note
    assert window.statusBar().currentMessage().startswith("Study cancelled")
    assert window.isVisible()
    qtbot.waitUntil(lambda: window.run_panel.run_button.isEnabled(), timeout=60_000)  # once the panels have loaded


def test_a_cancelled_study_never_shows_in_the_next_one(qtbot):
    """The first engine goes on sending events after its end (as a late thread might); they must not
    reach the second study, which starts the moment the first has ended."""
    first_variants = (FakeVariant("old-fp32", 0.3, 1.0, 0.0), FakeVariant("old-int8", 0.1, 0.3, 0.0))
    new_variants = (FakeVariant("new-fp32", 0.5, 1.0, 0.0), FakeVariant("new-int8", 0.2, 0.3, 0.0))
    calls: list[str] = []

    def engine(spec, cancel):
        calls.append(spec.study_id)
        if len(calls) > 1:
            yield from fake_run_study(spec, cancel, variants=new_variants, delay_s=0.005)
            return
        events = fake_run_study(spec, cancel, variants=first_variants, batches=400, delay_s=0.005)
        yield from events
        for _ in range(40):  # stale: after its StudyFinished
            yield LatencySamples(spec.study_id, "old-int8", [0.1] * 40, 0)
            time.sleep(0.005)

    window = MainWindow(LIGHT, run_study=engine)
    window.show()
    try:
        seen: list = []
        window.controller.event_received.connect(seen.append)
        starts: list[str | None] = []
        window.controller.running_changed.connect(
            lambda running: running or len(starts) > 1 or starts.append(window.start_study(fake_spec())))
        starts.append(window.start_study(fake_spec()))
        qtbot.waitUntil(lambda: len(seen) > 5 and isinstance(seen[-1], LatencySamples), timeout=10_000)
        window.cancel_study()
        qtbot.waitUntil(lambda: len(starts) == 2, timeout=5_000)
        first, second = starts
        assert second is not None and second != first
        qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) and e.study_id == second for e in seen),
                        timeout=20_000)
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        window.buffer.flush()
        assert window.controller.dropped_events > 0  # the stale events did arrive, and were dropped
        assert [e.study_id for e in seen].index(second) > max(i for i, e in enumerate(seen) if e.study_id == first)
        state = window.results.state
        assert state.study_id == second and state.labels == ["new-fp32", "new-int8"]
        final = next(e for e in seen if isinstance(e, StudyFinished) and e.study_id == second)
        for result in final.result.results:
            hist = window.results.histogram
            assert hist.counts(result.label).sum() + hist.beyond(result.label) == len(result.samples_ms) == 240
    finally:
        close_window(qtbot, window)


def test_closing_the_window_mid_run_exits_within_5_s(tmp_path):
    """The whole program, on the demo in its child process: close once samples stream."""
    driver = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "def close_when_timing(window):\n"
        "    def seen(event):\n"
        "        if type(event).__name__ == 'LatencySamples' and window.isVisible() and not window.asked:\n"
        "            window.asked = True\n"
        "            print('closing', flush=True)\n"
        "            window.close()\n"
        "    window.asked = False\n"
        "    window.controller.event_received.connect(seen)\n"
        "def find_window():\n"
        "    from qtapp.window.main_window import MainWindow\n"
        "    for widget in app.topLevelWidgets():\n"
        "        if isinstance(widget, MainWindow):\n"
        "            finder.stop()\n"
        "            close_when_timing(widget)\n"
        "finder = QTimer()\n"
        "finder.timeout.connect(find_window)\n"
        "finder.start(10)\n"
        "sys.argv[1:] = ['--demo', '--max-time', '5']\n"
        "import runpy\n"
        "runpy.run_module('qtapp', run_name='__main__')\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QUANTBENCH_HOME": str(tmp_path)}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=stderr, text=True)
        try:
            line = proc.stdout.readline()  # blocks until the driver closes the window (or the program ends)
            asked = time.monotonic()
            code = proc.wait(timeout=60)
            took = time.monotonic() - asked
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = stderr_path.read_text()
    assert line.strip() == "closing", errors[-2000:]
    assert code == 0, errors[-2000:]
    assert took < 5.0, f"the program took {took:.1f} s to exit after the window was closed"
    assert "QThread: Destroyed" not in errors and "Traceback" not in errors, errors[-2000:]
