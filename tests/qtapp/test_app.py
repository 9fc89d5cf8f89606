"""The entry points: ``quantbench --demo --screenshot``, ``python -m qtapp``, and a light first import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from qtapp.launcher import main

REPO = Path(__file__).resolve().parents[2]


def _run_script(code: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -c code`` in a fresh interpreter from the repository, offscreen: what a user's process sees."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def test_demo_screenshot_renders_the_finished_study(qapp, tmp_path):
    target = tmp_path / "demo.png"
    code = main(["--demo", "--screenshot", str(target), "--max-time", "0.2", "--size", "1280x800"])
    assert code == 0
    image = QImage(str(target))
    assert not image.isNull()
    assert image.width() >= 1280 and image.height() >= 800


def test_screenshot_needs_something_to_study(capsys):
    assert main(["--screenshot", "x.png"]) == 2
    assert "--screenshot needs --demo or a model" in capsys.readouterr().err


def test_the_windows_options_are_checked_before_anything_starts(capsys, tmp_path):
    """A screenshot that cannot be written was told only after the whole study had run; --max-time -1 ran."""
    cases = {
        ("--max-time", "-1"): "quantbench: --max-time must be positive.",
        ("--screenshot", str(tmp_path / "nowhere" / "s.png")): "the folder",
        ("--screenshot", str(tmp_path / "s.txt")): "the picture's format is chosen by its suffix, one of .png",
        ("--screenshot", str(tmp_path)): "is a folder; give a file name.",
        ("--size", "100000x100000"): "the width and the height must be at most 8192",
    }
    for args, expected in cases.items():
        shot = [] if "--screenshot" in args else ["--screenshot", str(tmp_path / "a.png")]
        try:
            code = main(["--demo", *args, *shot])
        except SystemExit as exc:  # the parser's own refusals end there, as for any bad option
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (args, err)
    assert list(tmp_path.iterdir()) == []


def test_python_m_qtapp_help_exits_cleanly():
    out = subprocess.run([sys.executable, "-m", "qtapp", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0 and "--screenshot" in out.stdout


def test_opening_the_window_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from qtapp.window.main_window import MainWindow\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = _run_script(code, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


def test_closing_mid_study_exits_cleanly():
    """The whole program: close the window while samples stream; it must cancel, wait, exit 0."""
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "import qtapp.window.main_window as mw\n"
        "class ClosingWindow(mw.MainWindow):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        self.asked = False\n"
        "        self.controller.event_received.connect(self.close_once)\n"
        "    def close_once(self, event):\n"
        "        if type(event).__name__ == 'LatencySamples' and not self.asked:\n"
        "            self.asked = True\n"
        "            QTimer.singleShot(0, self.close)\n"
        "mw.MainWindow = ClosingWindow\n"
        "from qtapp.launcher import main\n"
        "sys.exit(main(['--demo', '--max-time', '5']))\n"
    )
    out = _run_script(code, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Destroyed while thread" not in out.stderr


def test_after_a_study_the_next_study_process_is_started_ahead():
    """Once the demo's study has ended, the window starts the next study process, so the next Run
    skips the imports; the process it used is gone."""
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "import core.engine.isolation as iso\n"
        "import qtapp.window.main_window as mw\n"
        "seen = {}\n"
        "class Window(mw.MainWindow):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        self.controller.event_received.connect(self.note)\n"
        "        self.controller.threads_finished.connect(lambda: QTimer.singleShot(500, self.check))\n"
        "    def note(self, event):\n"
        "        if type(event).__name__ == 'StudyStarted':\n"
        "            seen['study_pid'] = event.environment['pid']\n"
        "    def check(self):\n"
        "        warm = iso._warm\n"
        "        print('warm', warm is not None and warm.proc.is_alive() and warm.proc.pid != seen['study_pid'])\n"
        "        self.close()\n"
        "mw.MainWindow = Window\n"
        "from qtapp.launcher import main\n"
        "code = main(['--demo', '--max-time', '0.2'])\n"
        "print('warm after exit', iso._warm is not None)\n"
        "sys.exit(code)\n"
    )
    out = _run_script(code, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warm True" in out.stdout and "warm after exit False" in out.stdout, out.stdout
