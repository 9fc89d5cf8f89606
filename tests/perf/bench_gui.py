"""3. GUI non-interference and 4. GUI responsiveness under load, on the real window (offscreen).

The window is composed as ``qtapp.app.main`` composes it (GUI-thread garbage
collector, theme, ``MainWindow`` at 1600×1000, shown) and driven in-process
under ``QT_QPA_PLATFORM=offscreen``.

3. Non-interference: one study (the demo CNN as ONNX plus a copy of it as a
   variant file, synthetic inputs, a fixed timing duration so both sides keep
   the same number of samples) runs with the
   window showing it live — the window's default engine, a spawned child — and
   headless through ``core.engine.isolation.run_study_isolated``, in alternating order.
   Per round and variant: window p50 and p99, headless p50 and p99; reported:
   the best (lowest) window figure over rounds and variants ÷ the best headless
   one, with the median of per-round ratios beside it (see ``run``: the pairs
   lie seconds apart, so this VM's changes of speed scatter per-round ratios). The same is measured
   for the in-thread engine (window unticked "Run in a separate process") against
   ``core.engine.run.run_study`` iterated in this thread, as extra keys (thorough
   mode only).
4. Responsiveness: a study whose model is a ~5 µs ONNX MLP streams samples as
   fast as the harness makes them (a fixed time per variant, two variants) while a
   10 ms precise QTimer in the GUI thread records when it really fires.
   Lateness = gap between ticks − 10 ms; the longest stall is the longest gap.
   The GUI thread's own CPU time per gap is reported next to it, so time taken
   by other processes on the shared machine can be told from our own work.
   Chart redraw: six variants are fed 10⁵ samples each through
   ``ResultsPanel.apply_events``; then 60 more batches stream in (every tenth
   with a slower sample that widens the shared x-range, so every row is
   recounted), each timed from ``apply_events`` to the end of a synchronous
   repaint of the window; its GUI-thread CPU time is reported too.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tests.perf.common import alternating, make_onnx_mlp, percentile, ratio_summary

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

THREADS = 1
TICK_MS = 10
REDRAW_SAMPLES = 100_000
REDRAW_VARIANTS = ("fp32", "onnx-fp32", "ort-int8-dynamic", "ort-int8-static", "ort-fp16", "torch-int8-dynamic")


# --------------------------------------------------------------------------- the window


class Window:
    """The real main window, shown offscreen, plus helpers to run a study in it and wait."""

    def __init__(self) -> None:
        from PySide6.QtWidgets import QApplication

        from qtapp.threads.gui_gc import GuiThreadGarbageCollector
        from qtapp.window.main_window import MainWindow
        from qtapp.window.theme import apply_theme, theme_named

        self.app = QApplication.instance() or QApplication(["quantbench-perf"])
        self.collector = GuiThreadGarbageCollector(self.app)
        self.collector.start()
        theme = theme_named("light")
        apply_theme(self.app, theme)
        self.window = MainWindow(theme)
        self.window.resize(1600, 1000)
        self.window.show()
        self.events: list[tuple[float, Any]] = []
        self.last_cpu_share = 0.0
        self.window.controller.event_received.connect(lambda e: self.events.append((time.perf_counter(), e)))
        self.wait_until(lambda: not self.window.tasks.pending(), 60.0)

    def wait_until(self, condition: Any, timeout_s: float) -> None:
        """Run Qt's event loop (sleeping when idle, as ``app.exec()`` does) until ``condition()``.

        A loop around ``processEvents()`` would spin a core at 100 % and be the
        very interference this benchmark measures; a 20 ms check timer does not.
        """
        from PySide6.QtCore import QEventLoop, QTimer

        if condition():
            return
        loop = QEventLoop()
        deadline = time.monotonic() + timeout_s
        timed_out = {"yes": False}

        def check() -> None:
            if condition():
                loop.quit()
            elif time.monotonic() > deadline:
                timed_out["yes"] = True
                loop.quit()

        timer = QTimer()
        timer.setInterval(20)
        timer.timeout.connect(check)
        timer.start()
        loop.exec()
        timer.stop()
        if timed_out["yes"]:
            raise TimeoutError("the window did not get there in time")

    def run_study(self, spec: Any, isolated: bool, timeout_s: float = 300.0) -> Any:
        """Run ``spec`` in the window (live charts) and return its StudyResult."""
        from core.study.events import StudyFinished

        self.window.run_panel.isolated.setChecked(isolated)
        self.events.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        if self.window.start_study(spec) is None:
            raise RuntimeError("the window refused to start the study")
        self.wait_until(lambda: not self.window.controller.running, timeout_s)
        #: Cores this process (GUI thread + the study's QThread) kept busy while the study ran.
        self.last_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        finished = [e for _, e in self.events if isinstance(e, StudyFinished)]
        if not finished:
            raise RuntimeError(f"the study in the window ended without a result: {self.window.last_failure}")
        return finished[-1].result

    def close(self) -> None:
        self.window.close()
        self.wait_until(lambda: not self.window.controller.running, 30.0)
        self.window.tasks.wait(30_000)
        self.collector.stop()


def headless(spec: Any, isolated: bool) -> Any:
    from core.engine.isolation import run_study_isolated
    from core.engine.run import run_study
    from core.study.events import StudyFinished

    spec = replace(spec, study_id=uuid.uuid4().hex[:12])
    engine = run_study_isolated if isolated else run_study
    result = None
    for event in engine(spec):
        if isinstance(event, StudyFinished):
            result = event.result
    if result is None:
        raise RuntimeError("the headless study ended without a result")
    return result


def _latencies(result: Any) -> dict[str, tuple[float, float, int]]:
    failed = [f"{r.label}: {r.error}" for r in result.results if not r.ok]
    if failed:
        raise RuntimeError("; ".join(failed))
    return {r.label: (r.latency.p50, r.latency.p99, r.latency.n) for r in result.results}


# --------------------------------------------------------------------------- 3. interference


def _demo_spec(tmp: Path, timing_s: float) -> Any:
    """The demo CNN as ONNX, plus a copy of it as a second variant, on synthetic inputs.

    Both rows run in ONNX Runtime and nothing is built, so a study's cost is little
    more than its timing, and the rounds can be many.
    """
    from core.study import demo
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingMode, TimingSpec, VariantSpec

    copy = tmp / "digits_cnn_copy.onnx"
    if not copy.exists():
        shutil.copyfile(demo.DEMO_ONNX, copy)
    # The sample floor is never met, so every run times for exactly timing_s: equal sample counts.
    timing = TimingSpec(
        threads=THREADS, mode=TimingMode.THOROUGH, min_samples=10**7, max_samples=10**7, max_time_s=timing_s
    )
    return StudySpec(
        model=ModelSpec(path=str(demo.DEMO_ONNX)),
        dataset=DatasetSpec.parse("synthetic:64"),
        variants=(VariantSpec(path=str(copy)),),
        timing=timing,
        layer_samples=0,  # timing and the window's lateness alone: no layer analysis
    )


def interference(win: Window, tmp: Path, rounds: int, timing_s: float, isolated: bool) -> dict[str, Any]:
    spec = _demo_spec(tmp, timing_s)
    p50_window: list[float] = []
    p50_headless: list[float] = []
    p99_window: list[float] = []
    p99_headless: list[float] = []
    detail: list[dict[str, Any]] = []
    shares: list[float] = []
    for window_first in alternating(rounds):
        order = ("window", "headless") if window_first else ("headless", "window")
        got: dict[str, dict[str, tuple[float, float, int]]] = {}
        for side in order:
            if side == "window":
                got[side] = _latencies(win.run_study(spec, isolated))
                shares.append(win.last_cpu_share)
            else:
                got[side] = _latencies(headless(spec, isolated))
        for label, (w50, w99, wn) in got["window"].items():
            h50, h99, hn = got["headless"][label]
            p50_window.append(w50)
            p50_headless.append(h50)
            p99_window.append(w99)
            p99_headless.append(h99)
            detail.append({"label": label, "window_p50_ms": w50, "headless_p50_ms": h50, "window_p99_ms": w99,
                           "headless_p99_ms": h99, "window_n": wn, "headless_n": hn, "window_first": window_first})
    return {
        "p50": ratio_summary(p50_window, p50_headless),
        "p99": ratio_summary(p99_window, p99_headless),
        "engine": "spawned child (core.engine.isolation)" if isolated else "worker thread in the window's process",
        "window_process_cpu_share": float(np.median(shares)),
        "study": f"demo CNN (ONNX) and a copy of it, synthetic:64, {timing_s:g} s timing each, {THREADS} thread",
        "runs": detail,
    }


# --------------------------------------------------------------------------- 4. responsiveness


def _streaming_spec(tmp: Path, timing_s: float) -> Any:
    from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingMode, TimingSpec, VariantSpec

    model = make_onnx_mlp(tmp / "tiny.onnx", 1, 16, 2)
    copy = tmp / "tiny_copy.onnx"
    shutil.copyfile(model, copy)
    timing = TimingSpec(
        threads=THREADS, mode=TimingMode.THOROUGH, min_samples=10**7, max_samples=10**7, max_time_s=timing_s
    )
    return StudySpec(
        model=ModelSpec(path=str(model)),
        dataset=DatasetSpec.parse("synthetic:16"),
        variants=(VariantSpec(path=str(copy)),),
        timing=timing,
        layer_samples=0,  # timing and the window's lateness alone: no layer analysis
    )


def responsiveness(win: Window, spec: Any, isolated: bool) -> dict[str, Any]:
    from PySide6.QtCore import Qt, QTimer

    from core.study.events import LatencySamples, StudyFinished

    ticks: list[tuple[float, float]] = []
    streaming = {"on": False}

    def watch(event: Any) -> None:
        if isinstance(event, LatencySamples):
            streaming["on"] = True
        elif isinstance(event, StudyFinished):
            streaming["on"] = False

    def tick() -> None:
        if streaming["on"]:
            ticks.append((time.perf_counter(), time.thread_time()))
        elif ticks and ticks[-1] is not None:
            ticks.append(None)  # type: ignore[arg-type]  # a break: gaps are not counted across it

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    win.window.controller.event_received.connect(watch)
    timer.start()
    try:
        result = win.run_study(spec, isolated)
    finally:
        timer.stop()
        win.window.controller.event_received.disconnect(watch)
    gaps_ms: list[float] = []
    busy_ms: list[float] = []
    for a, b in itertools.pairwise(ticks):
        if a is None or b is None:
            continue
        gaps_ms.append((b[0] - a[0]) * 1e3)
        busy_ms.append((b[1] - a[1]) * 1e3)
    if len(gaps_ms) < 20:
        raise RuntimeError(f"only {len(gaps_ms)} timer ticks while samples streamed")
    lateness = [max(0.0, g - TICK_MS) for g in gaps_ms]
    # The worst gaps with the GUI thread's own CPU time in each: a late tick with little CPU
    # of ours was waiting for a core (another process) or the interpreter lock (our other thread).
    worst = sorted(zip(gaps_ms, busy_ms, strict=True), reverse=True)[:8]
    samples = sum(r.latency.n for r in result.results if r.ok and r.latency)
    block = max((r.latency.block_size for r in result.results if r.ok and r.latency), default=1)
    return {
        "timer_lateness_p50_ms": percentile(lateness, 50),
        "timer_lateness_p99_ms": percentile(lateness, 99),
        "longest_stall_ms": max(gaps_ms),
        "gui_thread_busy_p99_ms": percentile(busy_ms, 99),
        "gui_thread_busy_max_ms": max(busy_ms),
        "worst_gaps_ms_with_gui_cpu_ms": [[round(g, 1), round(b, 1)] for g, b in worst],
        "ticks": len(gaps_ms),
        "samples_streamed": samples,
        "harness_block_size": block,
        "window_process_cpu_share": win.last_cpu_share,
        "engine": "spawned child (core.engine.isolation)" if isolated else "worker thread in the window's process",
    }


# --------------------------------------------------------------------------- 4b. chart redraw


def chart_redraw(win: Window, batches: int = 60) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from core.study.events import LatencySamples, StudyStarted, VariantStarted

    panel = win.window.results
    panel.tabs.setCurrentIndex(0)  # the latency histograms
    sid = "perf-redraw"
    rng = np.random.default_rng(0)
    centres = {label: 0.2 + 0.05 * i for i, label in enumerate(REDRAW_VARIANTS)}

    def draw(n: int, label: str) -> np.ndarray:
        return (centres[label] * rng.lognormal(0.0, 0.08, n)).tolist()

    t_new = time.perf_counter()
    panel.apply_events([
        StudyStarted(sid, model={"path": "synthetic", "format": "onnx", "params": 0, "file_bytes": 0},
                     dataset={"spec": "synthetic:1", "samples": 1, "task": "unlabelled"},
                     variants=list(REDRAW_VARIANTS), environment={"cpu": "perf", "threads": THREADS}),
    ])
    win.window.repaint()
    new_study_ms = (time.perf_counter() - t_new) * 1e3  # building every chart's rows for a new study
    totals = dict.fromkeys(REDRAW_VARIANTS, 0)
    for i, label in enumerate(REDRAW_VARIANTS):
        events: list[Any] = [VariantStarted(sid, i, label, label)]
        while totals[label] < REDRAW_SAMPLES:
            chunk = draw(10_000, label)
            totals[label] += len(chunk)
            events.append(LatencySamples(sid, label, chunk, totals[label]))
        panel.apply_events(events)
    win.window.repaint()
    QApplication.processEvents()
    times_ms: list[float] = []
    full_ms: list[float] = []
    cpu_ms: list[float] = []
    apply_cpu_ms: list[float] = []  # state, histogram counts, table model
    paint_cpu_ms: list[float] = []  # Qt and pyqtgraph painting the window
    for k in range(batches):
        label = REDRAW_VARIANTS[-1]
        chunk = draw(2_000, label)  # about 50 ms of a ~25 µs model, as the engine sends it
        if k % 10 == 9:
            chunk[0] = centres[label] * (3.0 + k / 10)  # widens the shared range: every row is recounted
        totals[label] += len(chunk)
        t0, c0 = time.perf_counter(), time.thread_time()
        panel.apply_events([LatencySamples(sid, label, chunk, totals[label])])
        panel.flush_live()  # the table's live cells too, which the window refreshes a moment later
        c1 = time.thread_time()
        win.window.repaint()
        elapsed = (time.perf_counter() - t0) * 1e3
        c2 = time.thread_time()
        cpu_ms.append((c2 - c0) * 1e3)
        apply_cpu_ms.append((c1 - c0) * 1e3)
        paint_cpu_ms.append((c2 - c1) * 1e3)
        (full_ms if k % 10 == 9 else times_ms).append(elapsed)
        QApplication.processEvents()
    every = times_ms + full_ms
    return {
        "chart_redraw_p50_ms": percentile(every, 50),
        "chart_redraw_p99_ms": percentile(every, 99),
        "chart_redraw_max_ms": max(every),
        "chart_redraw_cpu_p50_ms": percentile(cpu_ms, 50),
        "chart_redraw_cpu_p99_ms": percentile(cpu_ms, 99),
        "apply_events_cpu_p50_ms": percentile(apply_cpu_ms, 50),
        "repaint_cpu_p50_ms": percentile(paint_cpu_ms, 50),
        "streaming_row_p50_ms": percentile(times_ms, 50),
        "all_rows_recounted_p50_ms": percentile(full_ms, 50),
        "new_study_ms": new_study_ms,
        "variants": len(REDRAW_VARIANTS),
        "samples_per_variant": min(totals.values()),
        "redraws": len(every),
        "what": "ResultsPanel.apply_events + synchronous repaint of the 1600x1000 window",
    }


# --------------------------------------------------------------------------- entry


def run(quick: bool) -> dict[str, Any]:
    # More, shorter rounds: this VM changes speed about every second, and a median over many
    # window/headless pairs is what stays put from run to run.
    rounds = 11 if quick else 25
    timing_s = 0.3 if quick else 1.0
    stream_s = 2.0 if quick else 4.0
    out: dict[str, Any] = {"threads": THREADS}
    errors: list[str] = []

    def part(name: str, measure: Any) -> None:
        # One part failing (say, a study that cannot start) still leaves the others' numbers.
        try:
            out.update(measure())
        except Exception as exc:  # reported with the part's name; the suite marks the benchmark failed
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def interference_part(isolated: bool) -> dict[str, Any]:
        got = interference(win, tmp, rounds, timing_s, isolated)
        suffix = "" if isolated else "_in_thread"
        # The reported figure is each side's best round ÷ the other's (``ratio_of_best``), not the median of
        # per-round ratios the other benchmarks report. Their two sides alternate within 0.1-0.3 s; here each
        # side is a whole study in its own process, and a window/headless pair lies 2-4 s apart, long enough
        # for this VM to change speed (1.5x) between them: per-round ratios spread 0.44-1.97 and their median
        # moved from 0.87 to 1.04 from run to run, while the best-of-rounds ratio stayed within 0.996-1.010
        # (both are kept in the detail). With no load from the window, each side's best round is the same
        # machine state; a window that slowed the study would slow its best round too.
        return {
            f"gui_interference{suffix}_ratio_p50": got["p50"]["ratio_of_best"],
            f"gui_interference{suffix}_ratio_p99": got["p99"]["ratio_of_best"],
            f"gui_interference{suffix}": got,
        }

    def responsiveness_part(isolated: bool) -> dict[str, Any]:
        got = responsiveness(win, _streaming_spec(tmp, stream_s), isolated)
        suffix = "" if isolated else "_in_thread"
        return {
            f"gui_timer_lateness{suffix}_p99_ms": got["timer_lateness_p99_ms"],
            f"gui_longest_stall{suffix}_ms": got["longest_stall_ms"],
            f"gui_responsiveness{suffix}": got,
        }

    def redraw_part() -> dict[str, Any]:
        got = chart_redraw(win)
        return {"chart_redraw_p99_ms": got["chart_redraw_p99_ms"], "chart_redraw": got}

    win = Window()
    try:
        with tempfile.TemporaryDirectory(prefix="qb-perf-gui-") as name:
            tmp = Path(name)
            # One untimed study first: the window's own lazy imports and first layout stay out of the rounds.
            part("warm-up", lambda: (win.run_study(_demo_spec(tmp, 0.2), isolated=True), {})[1])
            part("interference", lambda: interference_part(True))
            if not quick:
                part("interference in thread", lambda: interference_part(False))
            part("responsiveness", lambda: responsiveness_part(True))
            part("responsiveness in thread", lambda: responsiveness_part(False))
        part("chart redraw", redraw_part)
    finally:
        win.close()
    if errors:
        out["error"] = "; ".join(errors)
    return out


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
