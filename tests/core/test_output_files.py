"""Where an output goes that is not a plain new file: a link, a device, a named pipe, the same file twice."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from core.errors import BadInput
from core.files.atomic import check_distinct, check_output_file, write_atomic

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="links, devices and pipes of POSIX")


def test_a_link_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "latest.json"
    target.parent.mkdir()
    link = tmp_path / "out.json"
    link.symlink_to(target)  # dangling: the report does not exist yet
    check_output_file("--json", str(link))
    write_atomic(link, '{"a": 1}')
    assert link.is_symlink() and target.read_text() == '{"a": 1}'
    write_atomic(link, '{"a": 2}')
    assert link.is_symlink() and target.read_text() == '{"a": 2}'
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["latest.json", "out.json", "reports"]  # no .part left


def test_a_device_is_written_to_not_replaced() -> None:
    null = Path("/dev/null")
    assert check_output_file("--json", str(null)) == null
    write_atomic(null, "{}")
    assert stat.S_ISCHR(os.stat(null).st_mode)  # still the device
    if Path("/dev/full").exists():
        with pytest.raises(BadInput, match=r"^could not write /dev/full: no space left on device"):
            write_atomic(Path("/dev/full"), "{}")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_named_pipe_receives_the_text(tmp_path: Path) -> None:
    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    check_output_file("--html", str(fifo))
    write_atomic(fifo, "<html></html>")
    reader.join(10)
    assert got == ["<html></html>"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_an_empty_name_and_one_file_for_two_outputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"^--json needs a file name\.$"):
        check_output_file("--json", "")
    same = tmp_path / "out"
    (tmp_path / "alias").symlink_to(same)
    with pytest.raises(BadInput, match=r"^--json and --html both name .*alias: give each its own file\.$"):
        check_distinct({"--json": same, "--csv": None, "--html": tmp_path / "alias"})
    check_distinct({"--json": Path("/dev/null"), "--html": Path("/dev/null"), "--csv": same})  # a device takes both
