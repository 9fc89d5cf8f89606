"""Child process for benchmark 5: ``quantbench --demo`` with marks, or the engine's steps headless.

``python -m tests.perf.first_result_child window`` runs the console script's
own entry point (``qtapp.launcher.main(["--demo"])``) with a few read-only hooks,
put in only once the launcher has started its study process (as the console
script does, before Qt is imported), that note when things happen (``time.monotonic()``, which is system-wide on
Linux, so the parent can subtract the moment it started this process):

- ``prewarmed``: the launcher has started the study process;
- ``event_loop``: the window exists and Qt's event loop has started;
- ``study_start``: the window hands the study to its controller;
- ``<EventName>``: the first engine event of each kind reaching the window;
- ``first_histogram``: the first paint of the latency histogram once a row
  has counts (``LatencyHistogram.counts``) — the first result on screen. Then
  the window is closed.

``window-in-thread`` is the same with "Run in a separate process" unticked,
which shows what the study's child process costs before the first result.

``python -m tests.perf.first_result_child engine`` runs the same demo study
headless in this process (``core.engine.run.run_study``), importing torch and ONNX
Runtime first, one at a time, and times the steps the window
waits through: each import, model and dataset load, the baseline's build (session init), evaluation, the first
timed inference and the warm-up before the first samples.

Both print one JSON line last on stdout.
"""

from __future__ import annotations

import time

T_PYTHON = time.monotonic()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

#: After the first histogram the window is closed (which cancels the study); if the process
#: has not ended this long after that, it exits hard.
EXIT_AFTER_S = 30.0


def _window(in_thread: bool) -> dict[str, Any]:
    """The console script's own path, hooked. The hooks go in only after the launcher's prewarm:
    importing Qt first would make that prewarm spawn instead of fork and start it half a second late,
    which is not what a user's ``quantbench --demo`` does."""
    import core.engine.isolation
    from qtapp import launcher

    marks: dict[str, float] = {"python": T_PYTHON}
    real_prewarm = core.engine.isolation.prewarm

    def prewarm(*args: Any, **kwargs: Any) -> None:
        real_prewarm(*args, **kwargs)
        if "prewarmed" not in marks:
            marks["prewarmed"] = time.monotonic()
            _hook_window(in_thread, marks)

    core.engine.isolation.prewarm = prewarm  # type: ignore[assignment]
    launcher.main(["--demo"])
    return {"marks": marks}


def _hook_window(in_thread: bool, marks: dict[str, float]) -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from qtapp.threads.controller import StudyController
    from qtapp.threads.live_buffer import LiveBuffer
    from qtapp.window.main_window import MainWindow

    state: dict[str, Any] = {"window": None}

    original_init = MainWindow.__init__
    original_push = LiveBuffer.push
    original_start = StudyController.start

    def has_counts() -> bool:
        window = state["window"]
        if window is None:
            return False
        histogram = window.results.histogram
        return any(histogram.counts(label).sum() > 0 for label in histogram.labels())

    class PaintWatch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Paint and "first_histogram" not in marks and has_counts():
                marks["first_histogram"] = time.monotonic()
                QTimer.singleShot(0, lambda: finish())
            return False

    watch = PaintWatch()

    def init(self: MainWindow, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        state["window"] = self
        marks["window_created"] = time.monotonic()
        if in_thread:
            self.run_panel.isolated.setChecked(False)
        # A study that fails, or ends without a histogram, ends the run at once (with the reason).
        self.controller.study_failed.connect(lambda message: finish(f"the study failed: {message}"))
        self.controller.running_changed.connect(
            lambda running: None if running or "first_histogram" in marks else finish("the study ended with no samples")
        )
        self.results.histogram.viewport().installEventFilter(watch)
        QTimer.singleShot(0, lambda: marks.setdefault("event_loop", time.monotonic()))

    def push(self: LiveBuffer, event: Any) -> None:
        marks.setdefault(type(event).__name__, time.monotonic())
        if type(event).__name__ == "VariantBuilt":
            marks.setdefault("baseline_build_s", float(event.build_s))
        original_push(self, event)

    def start(self: StudyController, *args: Any, **kwargs: Any) -> str:
        marks.setdefault("study_start", time.monotonic())
        return original_start(self, *args, **kwargs)

    def finish(error: str | None = None) -> None:
        if state.get("finished"):
            return
        state["finished"] = True
        sys.stdout.write("\n" + json.dumps({"marks": marks, "error": error}) + "\n")
        sys.stdout.flush()
        QTimer.singleShot(int(EXIT_AFTER_S * 1000), lambda: os._exit(0))
        window = state["window"]
        if window is not None:
            # Cancels the study and closes once its thread has stopped; the last window closing quits.
            window.close()
        else:
            QApplication.instance().quit()

    MainWindow.__init__ = init  # type: ignore[method-assign]
    LiveBuffer.push = push  # type: ignore[method-assign]
    StudyController.start = start  # type: ignore[method-assign]


def _engine() -> dict[str, Any]:
    import importlib

    steps: dict[str, float | None] = {"python_to_script_s": time.monotonic() - T_PYTHON}
    # Each heavy library the demo study needs, imported on its own so its cost is visible
    # (the engine would import them lazily inside model load, dataset load and build).
    # scikit-learn is not among them: the digits and the metrics no longer need it.
    for name in ("torch", "onnxruntime", "core.engine.run"):
        t = time.monotonic()
        importlib.import_module(name)
        steps[f"import_{name.replace('.', '_')}_s"] = time.monotonic() - t

    from core.engine.run import demo_study_spec, run_study
    from core.study.events import LatencySamples, Progress, StudyFinished, StudyStarted, VariantBuilt, VariantFinished

    marks: dict[str, float] = {}
    first_ms = None
    start = time.monotonic()
    for event in run_study(demo_study_spec()):
        now = time.monotonic()
        if isinstance(event, StudyStarted):
            marks.setdefault("started", now)
        elif isinstance(event, VariantBuilt):
            marks.setdefault("built", now)
            steps.setdefault("session_init_s", float(event.build_s))
        elif isinstance(event, Progress) and event.stage == "timing":
            marks.setdefault("timing", now)
        elif isinstance(event, LatencySamples):
            marks.setdefault("samples", now)
        elif isinstance(event, VariantFinished):
            if first_ms is None and event.result.latency is not None:
                first_ms = event.result.latency.first_ms
            break  # the baseline is what the first histogram shows; the rest is not needed
        elif isinstance(event, StudyFinished):
            break
    steps["model_and_dataset_load_s"] = marks["started"] - start
    steps["evaluation_s"] = marks["timing"] - marks["built"]
    steps["first_inference_ms"] = float(first_ms) if first_ms is not None else None
    # From "timing" to the first batch: first call, warm-up, then one report interval of samples.
    steps["first_call_warmup_and_first_batch_s"] = marks["samples"] - marks["timing"]
    steps["study_start_to_first_samples_s"] = marks["samples"] - start
    return {"steps": steps}


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "window"
    result = _window(mode == "window-in-thread") if mode.startswith("window") else _engine()
    if not mode.startswith("window"):
        sys.stdout.write("\n" + json.dumps(result) + "\n")
        sys.stdout.flush()
