"""First run: a window that cannot open names the missing libraries, exits 2 and leaves no study process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from qtapp import platform_check
from qtapp.platform_check import explain_missing, missing_libraries, parse_ldd, platform_problem, requested_platforms

REPO = Path(__file__).resolve().parents[2]

# What ldd printed for PySide6 6.11's libqxcb.so on a machine without two xcb-util libraries (shortened).
LDD_LISTING = """\
\tlinux-vdso.so.1 (0x00007ffd5b5f1000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f0c1c600000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0c1c5f0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0c1c5c0000)
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1d000000)
"""


def test_parse_ldd_names_each_missing_library_once():
    assert parse_ldd(LDD_LISTING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert parse_ldd("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n") == []


def test_the_message_names_the_libraries_and_both_distributions_packages():
    text = explain_missing("xcb", Path("/p/libqxcb.so"), ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert 'Qt cannot load its "xcb" platform plugin' in text
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in text
    assert "Debian/Ubuntu: sudo apt install libxcb-icccm4 libxcb-keysyms1" in text
    assert "Fedora:        sudo dnf install xcb-util-keysyms xcb-util-wm" in text
    assert text.endswith("(checked with ldd on /p/libqxcb.so)")


def test_a_library_of_no_known_package_gets_a_way_to_find_it():
    text = explain_missing("xcb", Path("/p/libqxcb.so"), ["libquantbench-nowhere.so.1"])
    assert "sudo apt install" not in text
    assert "Find the package of libquantbench-nowhere.so.1 with 'apt-file search NAME'" in text


def test_which_platforms_qt_will_try():
    assert requested_platforms({}) == ["xcb"]
    assert requested_platforms({"QT_QPA_PLATFORM": "wayland;xcb:nomitshm"}) == ["wayland", "xcb"]
    assert requested_platforms({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]


def _fake_ldd(tmp_path: Path, listing: str) -> str:
    script = tmp_path / "ldd"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{listing}EOF\n")
    script.chmod(0o755)
    return str(script)


def test_platform_problem_reads_the_plugin_it_is_given(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    asked = []

    def find(platform: str) -> Path:
        asked.append(platform)
        return plugin

    problem = platform_problem({"DISPLAY": ":0"}, find_plugin=find, ldd=_fake_ldd(tmp_path, LDD_LISTING))
    assert asked == ["xcb"]
    assert problem is not None and "sudo apt install libxcb-icccm4 libxcb-keysyms1" in problem
    assert platform_problem({"DISPLAY": ":0"}, find_plugin=find, ldd=_fake_ldd(tmp_path, "")) is None


def test_no_display_and_headless_platforms():
    never = pytest.fail  # a headless platform needs no plugin check
    assert "DISPLAY is not set" in platform_problem({}, find_plugin=lambda _: None)
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, find_plugin=never) is None
    # The second platform of the list loads: Qt takes it, nothing stands in the way.
    assert platform_problem({"QT_QPA_PLATFORM": "xcb;offscreen"}, find_plugin=never) is None


def test_a_screenshot_without_a_display_draws_offscreen():
    environ = {"HOME": "/h"}
    platform_check.use_offscreen_without_display(environ)
    assert environ["QT_QPA_PLATFORM"] == "offscreen"
    with_display = {"DISPLAY": ":0"}
    platform_check.use_offscreen_without_display(with_display)
    assert "QT_QPA_PLATFORM" not in with_display


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("ldd") is None, reason="needs a C compiler and ldd")
def test_a_real_plugin_with_a_missing_dependency(tmp_path):
    """A shared object linked against a library that is then removed: ldd itself reports it missing."""
    (tmp_path / "gone.c").write_text("int gone(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int gone(void);\nint plugin(void) { return gone(); }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "libquantbench-gone.so.1",
                    "-Wl,-soname,libquantbench-gone.so.1", tmp_path / "gone.c"], check=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "libqfake.so", tmp_path / "plugin.c",
                    tmp_path / "libquantbench-gone.so.1"], check=True)
    (tmp_path / "libquantbench-gone.so.1").unlink()

    assert missing_libraries(tmp_path / "libqfake.so") == ["libquantbench-gone.so.1"]
    problem = platform_problem({"QT_QPA_PLATFORM": "fake"}, find_plugin=lambda _: tmp_path / "libqfake.so")
    assert problem is not None and 'its "fake" platform plugin' in problem
    assert "libquantbench-gone.so.1" in problem and str(tmp_path / "libqfake.so") in problem


def test_the_real_plugins_are_found():
    plugin = platform_check.plugin_path("offscreen")
    assert plugin is not None and plugin.name == "libqoffscreen.so" and plugin.is_file()
    assert platform_check.plugin_path("no-such-platform") is None


# --- the whole program --------------------------------------------------------------------------------------------


def _processes_with(marker: str) -> list[int]:
    """The processes whose environment holds ``marker`` (a forked or spawned study process inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # ended meanwhile, or not ours to read
    return found


def _wait_until_gone(marker: str, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _start(tmp_path: Path, platform: str, marker: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": platform, "QUANTBENCH_HOME": str(tmp_path), "QB_TEST_MARKER": marker}
    env.pop("DISPLAY", None)
    return subprocess.Popen([sys.executable, "-m", "qtapp", "--demo"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_no_display_exits_2_before_any_study_process(tmp_path):
    marker = uuid.uuid4().hex
    proc = _start(tmp_path, "xcb", marker)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "DISPLAY is not set" in err
    assert _processes_with(marker) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_window_that_aborts_leaves_no_study_process(tmp_path):
    """Qt aborts (a platform it cannot find) after the study process was forked: that process ends too."""
    marker = uuid.uuid4().hex
    proc = _start(tmp_path, "quantbench-no-such-platform", marker)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGABRT
    assert "no Qt platform plugin could be initialized" in err
    assert _wait_until_gone(marker, timeout_s=60) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_killing_the_window_early_leaves_no_study_process(tmp_path):
    marker = uuid.uuid4().hex
    proc = _start(tmp_path, "offscreen", marker)
    try:
        deadline = time.monotonic() + 60
        while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:  # the window and its study process
            time.sleep(0.05)
        assert len(_processes_with(marker)) >= 2
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert _wait_until_gone(marker, timeout_s=60) == []


# --- the application's identity: what the desktop entry, the task bar and the settings go by ------------------------


def test_the_window_has_its_icon_and_desktop_name(qapp):
    from PySide6.QtCore import QSize

    from qtapp import app

    icon = app.application_icon()
    assert not icon.isNull()
    # Every rendered size is there, and the SVG draws any other.
    assert {size.width() for size in icon.availableSizes()} >= {16, 24, 32, 48, 64, 128, 256, 512}
    assert icon.pixmap(QSize(40, 40)).width() == 40
    app._identify(qapp)
    assert qapp.desktopFileName() == app.APP_ID
    assert (qapp.applicationName(), qapp.organizationName()) == ("QuantBench", "QuantBench")
    assert not qapp.windowIcon().isNull()


def test_the_bundle_start_still_forks_its_first_study_process():
    """The desktop bundle imports QtCore before quantbench runs (PyInstaller's PySide6 hook): that alone starts no
    thread and must not turn the first study process's fork into a slower spawn; the GUI module does."""
    code = (
        "import PySide6.QtCore\n"
        "from core.engine.study_process import start_method\n"
        "print(start_method())\n"
        "import PySide6.QtGui\n"
        "print(start_method())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fork" if sys.platform == "linux" else "spawn", "spawn"]
