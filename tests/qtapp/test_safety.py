"""Safety in the window: files with code need the user's trust, hostile files are refused with a
clear message, a crashing runtime ends only its child, and no error is silent."""

from __future__ import annotations

import os
import pickle
import shlex
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import SLOW_TIMING, close_window
from PySide6.QtCore import QTimer

from core.engine.run import demo_study_spec
from core.files.trust import TrustList, file_sha256
from core.models.detect import FileKind
from core.study.events import LatencySamples, StudyStarted, VariantFinished
from qtapp.models.study_state import Phase
from qtapp.panels.model_panel import ModelPanel
from qtapp.threads.controller import StudyController
from qtapp.threads.tasks import TaskRunner
from qtapp.window.errors import ErrorReporter, setup_app_logging
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT
from qtapp.window.trust_dialog import TrustRequest, ask_trust, trust_request

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot):
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh data folder (trust list, logs); a study's child process inherits it."""
    folder = tmp_path / "home"
    monkeypatch.setenv("QUANTBENCH_HOME", str(folder))
    return folder


def _torchscript(path: Path, out_features: int = 2) -> Path:
    import torch

    torch.manual_seed(out_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, yet users have such files
        module = torch.jit.trace(torch.nn.Linear(4, out_features).eval(), torch.zeros(1, 4))
        torch.jit.save(module, str(path))
    return path


class _Answers:
    """Stands in for the user at the trust question: records each question, answers on cue."""

    def __init__(self) -> None:
        self.asked: list[TrustRequest] = []
        self._pending: list = []

    def __call__(self, parent, request: TrustRequest, answer) -> None:
        self.asked.append(request)
        self._pending.append(answer)

    def answer(self, accepted: bool) -> None:
        self._pending.pop(0)(accepted)


# --- trust ---------------------------------------------------------------
def test_trust_question_names_the_file_the_risk_and_the_hash(qtbot, tmp_path, home):
    script = _torchscript(tmp_path / "net.pt")
    request = trust_request(script)
    assert request == TrustRequest(str(script), FileKind.TORCHSCRIPT, file_sha256(script), trusted=False)
    parent = ModelPanel(TaskRunner())
    qtbot.addWidget(parent)
    answers: list[bool] = []
    dialog = ask_trust(parent, request, answers.append)
    assert dialog.isVisible() and not answers  # it waits for the user, without a nested event loop
    assert "net.pt" in dialog.text()
    details = dialog.informativeText()
    assert str(script) in details and "code that will run on this computer" in details
    assert request.sha256 in details
    assert dialog.defaultButton() is dialog.cancel_button  # Enter does not open it
    dialog.trust_button.click()
    assert answers == [True]
    ask_trust(parent, request, answers.append).cancel_button.click()
    assert answers == [True, False]
    # The exported-program kind is code too; a plain state dict is not.
    import torch

    program = torch.export.export(torch.nn.Linear(4, 2).eval(), (torch.zeros(1, 4),))
    torch.export.save(program, str(tmp_path / "net.pt2"))
    assert trust_request(tmp_path / "net.pt2").kind is FileKind.TORCH_EXPORT
    torch.save(torch.nn.Linear(4, 2).state_dict(), str(tmp_path / "weights.pt"))
    assert trust_request(tmp_path / "weights.pt") is None


def test_code_opens_only_after_the_user_trusts_that_file(qtbot, tmp_path, home, monkeypatch):
    import torch

    loads: list[str] = []
    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda path, *a, **k: loads.append(str(path)) or real_load(path, *a, **k))
    script = _torchscript(tmp_path / "net.pt")
    tasks = TaskRunner()
    panel = ModelPanel(tasks)
    qtbot.addWidget(panel)
    panel.show()
    panel.ask_trust = answers = _Answers()

    panel.open_path(str(script))
    qtbot.waitUntil(lambda: len(answers.asked) == 1, timeout=30_000)
    assert answers.asked[0].sha256 == file_sha256(script) and panel.busy
    assert panel.trusted.isVisibleTo(panel) and not panel.trusted.isChecked()
    answers.answer(False)  # Cancel: nothing loads, nothing is remembered
    assert panel.loaded is None and not panel.busy and loads == []
    assert panel.error.text() == (f"{script} was not opened: it contains code and you did not trust it "
                                  "(tick “Trust this file” to be asked again).")
    assert panel.problem() == panel.error.text() and not TrustList().is_trusted(script)

    panel.trusted.setChecked(True)  # asks again; ticked only once the user says yes
    assert len(answers.asked) == 2 and not panel.trusted.isChecked()
    answers.answer(True)
    qtbot.waitUntil(lambda: panel.loaded is not None, timeout=30_000)
    assert loads == [str(script)] and panel.trusted.isChecked() and TrustList().is_trusted(script)
    assert panel.problem() is None and "torchscript" in panel.info.text()

    # Remembered by content: the same bytes elsewhere open without a question...
    copy = tmp_path / "elsewhere" / "copy.pt"
    copy.parent.mkdir()
    copy.write_bytes(script.read_bytes())
    panel.open_path(str(copy))
    qtbot.waitUntil(lambda: panel.loaded is not None, timeout=30_000)
    assert len(answers.asked) == 2 and panel.trusted.isChecked()
    # ...and other bytes at a trusted path do not.
    _torchscript(script, out_features=3)
    panel.open_path(str(script))
    qtbot.waitUntil(lambda: len(answers.asked) == 3, timeout=30_000)
    answers.answer(False)
    assert panel.loaded is None and len(loads) == 2

    # Unticking forgets the trust and closes the model.
    panel.open_path(str(copy))
    qtbot.waitUntil(lambda: panel.loaded is not None, timeout=30_000)
    panel.trusted.setChecked(False)
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
    assert panel.loaded is None and not TrustList().is_trusted(copy)
    assert "is no longer trusted, so it was closed" in panel.error.text()

    # A variant file with code is added only once trusted.
    panel.variant_files.add(str(copy))
    qtbot.waitUntil(lambda: len(answers.asked) == 4, timeout=30_000)
    answers.answer(False)
    assert panel.variant_specs() == [] and "was not added" in panel.variant_files.error.text()
    panel.variant_files.add(str(copy))
    qtbot.waitUntil(lambda: len(answers.asked) == 5, timeout=30_000)
    answers.answer(True)
    qtbot.waitUntil(lambda: len(panel.variant_specs()) == 1, timeout=30_000)
    assert TrustList().is_trusted(copy)
    tasks.wait(30_000)


# --- bad input -----------------------------------------------------------
class _Bomb:
    """Unpickling it runs a shell command that creates the canary file."""

    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.canary)}",))


def test_hostile_files_are_refused_by_name_and_run_nothing(qtbot, window, tmp_path):
    import torch

    canary = tmp_path / "canary"
    files = {
        "empty.pt": b"",
        "random.onnx": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "bomb.pkl": pickle.dumps(_Bomb(canary), protocol=2),
        "page.pt": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save(_Bomb(canary), str(tmp_path / "bomb.pt"))  # the zip format, with os.system in its pickle
    panel = window.model_panel
    for name in (*files, "bomb.pt"):
        path = tmp_path / name
        panel.open_path(str(path))
        qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
        message = panel.error.text()
        assert panel.error.isVisible() and panel.loaded is None, name
        assert message.startswith(str(path)) and message.endswith(".") and "\n" not in message, message
        assert "Traceback" not in message and not canary.exists(), name
        assert window.isVisible() and not window.run_panel.run_button.isEnabled()
        assert message in window.run_panel.blocker.text()


# --- crash isolation -----------------------------------------------------
def test_a_segfault_in_the_runtime_ends_only_its_child(qtbot, window, home):
    seen: list = []
    window.controller.event_received.connect(seen.append)
    window.open_demo(start=True, spec=demo_study_spec(SLOW_TIMING))
    qtbot.waitUntil(lambda: any(isinstance(e, VariantFinished) for e in seen), timeout=60_000)
    qtbot.waitUntil(lambda: isinstance(seen[-1], LatencySamples) and seen[-1].label != "fp32", timeout=30_000)
    running = seen[-1].label
    pid = next(e for e in seen if isinstance(e, StudyStarted)).environment["pid"]
    assert pid != os.getpid()  # the study really runs in a child process
    os.kill(pid, signal.SIGSEGV)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=10_000)

    assert window.isVisible()
    state, model = window.results.state, window.results.table.model
    assert state.variants["fp32"].phase is Phase.OK  # finished before the crash: kept, with its numbers
    assert model.text(state.labels.index("fp32"), 2).endswith("%")
    assert state.variants[running].phase is Phase.FAILED
    reason = model.text(state.labels.index(running), 2)
    assert "the study process crashed (segmentation fault) while this variant was running" in reason
    # The child's own trace of the crash is in the log folder.
    faults = home / "logs" / "child-faults.log"
    qtbot.waitUntil(faults.exists, timeout=5_000)
    assert "Segmentation fault" in faults.read_text()


def test_a_native_crash_of_the_window_leaves_a_trace_in_the_log(tmp_path):
    code = (
        "import faulthandler, sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "QTimer.singleShot(300, faulthandler._sigsegv)\n"
        "from qtapp.launcher import main\n"
        "sys.exit(main([]))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QUANTBENCH_HOME": str(tmp_path)}
    env.pop("PYTHONFAULTHANDLER", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == -signal.SIGSEGV, out.stderr[-2000:]
    trace = (tmp_path / "logs" / "faults.log").read_text()
    assert "Segmentation fault" in trace and "qtapp/app.py" in trace


# --- errors are never silent ---------------------------------------------
def test_exceptions_in_slots_and_threads_reach_the_window_and_the_log(qtbot, window):
    log_path = setup_app_logging()
    reporter = ErrorReporter(window)
    saved = sys.excepthook, threading.excepthook
    # The hooks chain to the ones they replace: quiet ones here, so the test harness does not
    # count these deliberate errors as its own failures.
    sys.excepthook, threading.excepthook = (lambda *a: None), (lambda args: None)
    shown: list[tuple[str, str]] = []
    reporter.reported.connect(lambda message, path: shown.append((message, path)))
    try:
        reporter.install()

        def broken_slot() -> None:
            raise ValueError("slot-error-7f3a")

        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: len(shown) == 1, timeout=5_000)
        thread = threading.Thread(target=lambda: 1 / 0, name="loader-thread")
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: len(shown) == 2, timeout=5_000)
    finally:
        reporter.uninstall()
        installed = sys.excepthook, threading.excepthook
        sys.excepthook, threading.excepthook = saved
    assert installed[0] is not reporter._excepthook  # uninstall put the previous hooks back
    assert shown[0] == ("unexpected error: ValueError: slot-error-7f3a", str(log_path))
    assert shown[1][0] == "unexpected error in loader-thread: ZeroDivisionError: division by zero"
    box = reporter.box
    assert box is not None and box.isVisible() and not box.isModal()
    assert str(log_path) in box.informativeText() and "1 earlier error" in box.informativeText()
    assert "ZeroDivisionError" in window.statusBar().currentMessage()
    log = log_path.read_text()
    assert "slot-error-7f3a" in log and "in broken_slot" in log and "Traceback" in log
    box.close()


def test_an_internal_study_error_is_logged_with_its_traceback(qtbot):
    log_path = setup_app_logging()

    def failing(spec, cancel):
        # As the isolated engine reports an exception of its child: the child's traceback follows.
        raise RuntimeError("KeyError: 'conv9'\nTraceback (most recent call last):\n  child-frame-51c2")
        yield  # pragma: no cover - makes this a generator

    controller = StudyController(failing)
    failures: list[str] = []
    controller.study_failed.connect(failures.append)
    with qtbot.waitSignal(controller.running_changed, timeout=5_000, check_params_cb=lambda r: r is False):
        controller.start(demo_study_spec(SLOW_TIMING))
    assert failures == [f"internal error: RuntimeError: KeyError: 'conv9' (the details are in {log_path})"]
    log = log_path.read_text()
    assert "child-frame-51c2" in log and "in failing" in log  # the child's and the worker's tracebacks
    qtbot.waitUntil(lambda: not controller.threads_alive, timeout=5_000)
