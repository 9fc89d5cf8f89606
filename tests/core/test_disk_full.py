"""A disk that fills up and a folder that is read-only (issue 12): one sentence, exit 2, nothing half-written.

Two ways to fill a disk, each test running with whichever this machine allows:

- ``tmpfs``: a tiny tmpfs mounted for the output alone (needs root and ``mount``): real ENOSPC,
  only for that folder, so the other outputs and the history are written as usual;
- ``rlimit``: a file-size limit (RLIMIT_FSIZE) on the whole `quantbench` process, with SIGXFSZ
  ignored so that a write past it fails with EFBIG instead of killing the process; it limits
  every file the process writes, so those runs ask for the one output under test only.

A read-only folder is a tmpfs mounted read-only (root ignores permission bits, so a chmod would
prove nothing), else, for a user who is not root, a folder without write permission.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.history.store import DB_NAME, StudyStore

ROOT = Path(__file__).resolve().parents[2]
DEMO = ["run", "--demo", "--in-process", "--threads", "1", "--max-time", "0.05", "--limit", "20", "--scheme", "fp32"]
FULL = "no space left on device (the disk is full)"
SAMPLES = 20_000

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmpfs mounts and RLIMIT_FSIZE are Linux tools")


# ---- filling a disk, making a folder read-only ---------------------------------------------------


def _mount(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def mounts() -> Iterator[Callable[[Path, str], None]]:
    """``mount(path, options)`` mounts a tmpfs there (skips the test when it cannot); unmounted afterwards."""
    made: list[Path] = []

    def mount(path: Path, options: str) -> None:
        if not _mount(path, options):
            pytest.skip("a tmpfs cannot be mounted here (it needs root and the mount command)")
        made.append(path)

    yield mount
    for path in reversed(made):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death; an ignored signal survives exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture(params=["tmpfs", "rlimit"])
def full(request: pytest.FixtureRequest, tmp_path: Path, mounts: Callable[[Path, str], None]) -> SimpleNamespace:
    """``full.folder(size_kb)``: a folder with about that much room; ``full.preexec`` for the process
    that writes there (the file-size limit in the ``rlimit`` case, where the folder itself is normal)."""
    ns = SimpleNamespace(kind=request.param, preexec=None, limit=None)

    def folder(size_kb: int, name: str = "full") -> Path:
        path = tmp_path / name
        if ns.kind == "tmpfs":
            mounts(path, f"size={size_kb}k")
        else:
            path.mkdir()
            ns.limit = size_kb * 1024
            ns.preexec = _file_size_limit(ns.limit)
        return path

    ns.folder = folder
    return ns


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "read-only"
    if _mount(path, "ro,size=64k"):
        yield path
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        return
    if os.geteuid() == 0:
        pytest.skip("root writes into chmod-read-only folders and a read-only tmpfs cannot be mounted here")
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def _quantbench(*argv: str, preexec: Callable[[], None] | None = None, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
        preexec_fn=preexec, env=env,
    )


def _python(script: str, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, capture_output=True, text=True,
        timeout=300, preexec_fn=preexec,
    )


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "lost+found")


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one sentence on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


# ---- files written whole or not at all -------------------------------------------------------------


def test_an_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(full: SimpleNamespace) -> None:
    folder = full.folder(64)
    target = folder / "out.json"
    target.write_text("the previous report")
    done = _python(
        """
        import sys
        from pathlib import Path
        from core.errors import BadInput
        from core.files.atomic import write_atomic
        try:
            write_atomic(Path(sys.argv[1]), "x" * 300_000)
            print("written")
        except BadInput as exc:
            print(exc)
        """,
        str(target), preexec=full.preexec,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"could not write {target}: {FULL}."
    assert target.read_text() == "the previous report"
    assert _entries(folder) == ["out.json"]


def test_json_on_a_full_disk_is_one_sentence_and_exit_2(full: SimpleNamespace, tmp_path: Path) -> None:
    folder = full.folder(4)
    out = folder / "out.json"
    home = tmp_path / "home"
    history = ["--home", str(home)] if full.kind == "tmpfs" else ["--no-history"]  # rlimit: the one file
    done = _quantbench(*DEMO, "--quiet", *history, "--json", str(out), preexec=full.preexec)
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr) == f"quantbench: could not write {out}: {FULL}."
    assert "fp32" in done.stdout  # the study's table was printed before
    assert _entries(folder) == []  # no partial out.json, no temporary file
    if full.kind == "tmpfs":  # the history, on another disk, has the study
        (summary,) = StudyStore(home).list_studies()
        assert summary.status == "finished"


def test_html_on_a_full_disk_is_one_sentence_and_exit_2_after_the_json(full: SimpleNamespace, tmp_path: Path) -> None:
    folder = full.folder(8)
    html = folder / "report.html"
    out = tmp_path / "out.json"
    others = ["--json", str(out), "--home", str(tmp_path / "home")] if full.kind == "tmpfs" else ["--no-history"]
    done = _quantbench(*DEMO, "--quiet", *others, "--html", str(html), preexec=full.preexec)
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr) == f"quantbench: could not write {html}: {FULL}."
    assert _entries(folder) == []
    if full.kind == "tmpfs":
        assert json.loads(out.read_text())["status"] == "finished"


def test_saved_variants_on_a_full_disk_are_whole_or_absent(tmp_path: Path, mounts: Callable[[Path, str], None]) -> None:
    # tmpfs only: a file-size limit would stop the engine building the same file before the saving.
    dest = tmp_path / "variants"
    mounts(dest, "size=64k")  # the int8 ONNX variant is about 240 KB
    out = tmp_path / "out.json"
    home = tmp_path / "home"
    done = _quantbench(*DEMO, "--scheme", "ort-int8-dynamic", "--quiet", "--home", str(home), "--json", str(out),
                       "--save-variants", str(dest))
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr) == f"quantbench: could not write {dest / 'ort-int8-dynamic.onnx'}: {FULL}."
    assert _entries(dest) == []  # neither a partial model, nor a sidecar without its model, nor a .part
    result = json.loads(out.read_text())  # the study itself went on to the end
    assert [r["status"] for r in result["results"]] == ["ok", "ok"]
    (summary,) = StudyStore(home).list_studies()
    assert (summary.status, summary.variants_ok) == ("finished", 2)


def test_a_variant_whose_sidecar_does_not_fit_is_not_saved_at_all(tmp_path: Path) -> None:
    """The model file fits, its sidecar does not: neither is left, and what DEST held before stays."""
    dest = tmp_path / "variants"
    dest.mkdir()
    (dest / "keep.onnx").write_bytes(b"an earlier study's variant")
    done = _python(
        """
        import json, resource, signal, sys
        from pathlib import Path
        from core.study.events import StudyStarted, VariantFinished
        from core.study.result import VariantResult, VariantStatus
        from core.history.saved_variants import VariantSaver

        saver = VariantSaver(Path(sys.argv[1]))
        built = saver.workdir / "int8" / "model.onnx"
        built.parent.mkdir()
        built.write_bytes(b"m" * 300)  # what the engine built; its sidecar is about 700 bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))
        saver.handle(StudyStarted("s1", model={"path": "m.onnx"}, dataset={"spec": "synthetic:8"}, variants=["int8"],
                                  environment={}))
        saver.handle(VariantFinished("s1", VariantResult(label="int8", scheme="ort-int8-dynamic",
                                                         status=VariantStatus.OK, source_path=str(built))))
        saver.close()
        print(json.dumps({"saved": list(saver.saved), "failed": saver.failed}))
        """,
        str(dest),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"saved": [], "failed": {"int8": f"could not write {dest / 'int8.quantbench.json'}: {FULL}."}}
    assert _entries(dest) == ["keep.onnx"]


# ---- the history ------------------------------------------------------------------------------------


def _samples(study: int, variant: int) -> list[float]:
    return [0.1 + 1e-6 * ((study * 31 + variant * 17 + j) % 9973) for j in range(SAMPLES)]


_STORE_WRITER = """
import json, sys
from core.errors import BadInput
from core.study.result import VariantResult, VariantStatus
from core.history.store import StudyStore

""" + f"SAMPLES = {SAMPLES}\n" + """
def samples(study, variant):
    return [0.1 + 1e-6 * ((study * 31 + variant * 17 + j) % 9973) for j in range(SAMPLES)]

store = StudyStore(sys.argv[1])
done, error = [], None
try:
    for k in range(2, 200):
        sid = f"study{k}"
        store.begin_study(sid, created="2026-01-01T00:00:00+00:00", model={"path": "m.onnx"}, dataset={},
                          environment={}, timing={}, spec={}, labels=["a", "b", "c"], pid=0)
        for i in range(3):
            store.add_variant(sid, i, VariantResult(label="abc"[i], scheme="fp32", status=VariantStatus.OK,
                                                    samples_ms=samples(k, i)))
        store.set_status(sid, "finished")
        done.append(k)
except BadInput as exc:
    error = str(exc)
listed = len(StudyStore(sys.argv[1]).list_studies())  # still readable, the disk still full
print(json.dumps({"done": done, "error": error, "listed": listed}))
"""


def _two_studies(home: Path) -> None:
    store = StudyStore(home)
    from core.study.result import VariantResult, VariantStatus

    for k in range(2):
        sid = f"study{k}"
        store.begin_study(sid, created="2026-01-01T00:00:00+00:00", model={"path": "m.onnx"}, dataset={},
                          environment={}, timing={}, spec={}, labels=["a", "b", "c"], pid=0)
        for i in range(3):
            store.add_variant(sid, i, VariantResult(label="abc"[i], scheme="fp32", status=VariantStatus.OK,
                                                    samples_ms=_samples(k, i)))
        store.set_status(sid, "finished")


def _check_history(home: Path, finished: list[int]) -> None:
    """integrity ok; every study said finished is whole; any other one holds only whole variants."""
    with sqlite3.connect(home / DB_NAME) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = StudyStore(home)
    summaries = {s.id: s for s in store.list_studies()}
    for k in finished:
        assert summaries[f"study{k}"].status == "finished"
    for sid in summaries:
        k = int(sid.removeprefix("study"))
        study = store.load_study(sid)
        if k in finished:
            assert len(study.results) == 3
        for i, variant in enumerate(study.results):
            assert variant.samples_ms == _samples(k, i), f"{sid} {variant.label}"


def test_a_full_disk_rolls_the_history_back_and_keeps_it_readable(full: SimpleNamespace) -> None:
    home = full.folder(2048, "home")
    _two_studies(home)  # about 1 MB, written before the disk is full
    done = _python(_STORE_WRITER, str(home), preexec=_file_size_limit(1 << 20) if full.kind == "rlimit" else None)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["error"] == f"could not write the history database {home / DB_NAME}: {FULL}."
    assert report["listed"] >= 2 + len(report["done"])
    _check_history(home, [0, 1, *report["done"]])


def _fill(folder: Path) -> Path:
    """Take every free block of ``folder``'s file system; returns the file to remove to give them back."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)
    return filler


def test_a_history_on_a_full_disk_is_one_warning_and_the_study_goes_on(full: SimpleNamespace, tmp_path: Path) -> None:
    home = full.folder(2048, "home")
    _two_studies(home)
    if full.kind == "tmpfs":
        filler = _fill(home)
        preexec, outputs = None, ["--json", str(tmp_path / "out.json")]
    else:
        # Under the size of the WAL's shared-memory index (32 KB): the history can be read, not written.
        preexec, outputs = _file_size_limit(16 << 10), []
    done = _quantbench(*DEMO, "--scheme", "ort-int8-dynamic", "--quiet", "--home", str(home), *outputs,
                       preexec=preexec)
    assert done.returncode == 0, done.stderr
    line = _one_line(done.stderr)
    assert re.fullmatch(
        r"quantbench: warning: (the rest of )?the study is not recorded in the history \(could not write the "
        rf"history database {re.escape(str(home / DB_NAME))}: {re.escape(FULL)}\); the run goes on\.", line
    ), line
    assert "ort-int8-dynamic" in done.stdout  # the table
    if full.kind == "tmpfs":
        assert json.loads((tmp_path / "out.json").read_text())["status"] == "finished"
        filler.unlink()
    _check_history(home, [0, 1])  # the new study, if it began, holds only whole variants


# ---- read-only folders ------------------------------------------------------------------------------


def test_a_read_only_home_is_refused_before_the_study_runs(read_only: Path) -> None:
    done = _quantbench(*DEMO, "--home", str(read_only))  # not --quiet: a study that started would say so
    assert done.returncode == 2
    reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert _one_line(done.stderr) == (
        f"quantbench: QuantBench's home {read_only} is not writable ({reason}), so the study cannot be recorded: "
        "point QUANTBENCH_HOME or --home to a writable folder, or add --no-history."
    )
    assert done.stdout == ""


def test_a_read_only_quantbench_home_variable_is_refused_too(read_only: Path) -> None:
    done = _quantbench(*DEMO, env=dict(os.environ, QUANTBENCH_HOME=str(read_only / "sub")))
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert (
        line.startswith(f"quantbench: QuantBench's home {read_only / 'sub'} cannot be created (") and done.stdout == ""
    )


def test_a_read_only_home_with_no_history_runs(read_only: Path) -> None:
    done = _quantbench(*DEMO, "--quiet", "--home", str(read_only), "--no-history")
    assert done.returncode == 0, done.stderr
    assert "fp32" in done.stdout


@pytest.mark.parametrize("option", ["--json", "--html", "--save-spec", "--save-variants"])
def test_a_read_only_output_folder_is_refused_before_the_study_runs(
    option: str, read_only: Path, tmp_path: Path
) -> None:
    target = read_only / ("variants" if option == "--save-variants" else "out.file")
    done = _quantbench(*DEMO, "--home", str(tmp_path / "home"), option, str(target))
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert line.startswith("quantbench: ") and ("not writable (" in line or "cannot be created (" in line), line
    assert str(read_only) in line and done.stdout == ""
    assert StudyStore(tmp_path / "home").list_studies() == []
