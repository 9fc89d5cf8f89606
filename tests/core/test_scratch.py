"""Temporary folders that a killed process leaves behind are removed by the next one made beside them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.files.scratch import LOCK_NAME, Scratch, remove_orphans

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the owner's lock is an flock (POSIX)")


def _owner(parent: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that makes a Scratch in ``parent``, fills it, says where, and waits to be killed."""
    code = (
        "import sys, time\n"
        "from core.files.scratch import Scratch\n"
        f"s = Scratch('sweep', parent={str(parent)!r})\n"
        "(s.path / 'model.onnx').write_bytes(b'x' * 4096)\n"
        "print(s.path, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_owners_folder_goes_when_the_next_one_is_made_and_a_living_ones_stays(tmp_path: Path) -> None:
    killed, orphan = _owner(tmp_path)
    living, kept = _owner(tmp_path)
    foreign = tmp_path / "quantbench-made-elsewhere"  # no lock file: not ours to judge
    foreign.mkdir()
    try:
        assert (orphan / "model.onnx").is_file() and (orphan / LOCK_NAME).is_file()
        killed.send_signal(signal.SIGKILL)  # no chance to clean up
        killed.wait(30)
        assert orphan.is_dir()
        with Scratch("run", parent=tmp_path) as mine:
            assert mine.is_dir() and mine.name.startswith("quantbench-run-")
            assert not orphan.exists()
            assert (kept / "model.onnx").is_file()  # its owner still runs
            assert foreign.is_dir()
            assert remove_orphans(tmp_path) == []  # this one's owner (the test) lives too
            assert mine.is_dir()
        assert not mine.exists()
    finally:
        living.kill()
        living.wait(30)
    assert remove_orphans(tmp_path) == [kept]
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name]


def test_a_removed_scratch_lets_go_of_its_lock(tmp_path: Path) -> None:
    scratch = Scratch("work", parent=tmp_path)
    (scratch.path / "variant.pt").write_bytes(b"x")
    fd = scratch._fd
    scratch.remove()
    assert not scratch.path.exists()
    with pytest.raises(OSError):
        os.fstat(fd)  # type: ignore[arg-type]
    scratch.remove()  # twice is harmless
