"""Several processes writing one history at once (issue 12): nothing lost, nothing locked, nothing torn.

Three writer processes (each what one `quantbench run` or the window does: a StudyRecorder fed
StudyStarted, three VariantFinished with 20 000 float64 latency samples each, a rename, and
StudyFinished) open one *new* history at the same instant, so they also race to create its
schema, and write studies for a few seconds while this process and `quantbench history --json`
list and load studies. Afterwards every study a writer says it recorded is there, finished and
bit-identical, `PRAGMA integrity_check` is ok, and no writer or reader met an exception.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.history.store import DB_NAME, StudyStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = 20_000
LABELS = ("fp32", "int8", "fp16")
WRITERS = 3
WRITE_SECONDS = 3.0
MAX_STUDIES = 200  # the bound on each writer's loop besides the time


def expected_samples(study: int, variant: int) -> list[float]:
    """The latency samples writer-study ``study`` stores for its ``variant``-th variant (distinct per row)."""
    return [0.05 + 1e-6 * ((study * 7919 + variant * 104729 + j) % 100003) for j in range(SAMPLES)]


_WRITER = f"""
import json, sys, time, traceback
from core.study.events import StudyFinished, StudyStarted, VariantFinished
from core.measures.latency_stats import latency_stats
from core.study.result import StudyResult, VariantResult, VariantStatus
from core.history.recorder import StudyRecorder
from core.history.store import StudyStore

SAMPLES, LABELS = {SAMPLES}, {LABELS!r}
def expected_samples(study, variant):
    return [0.05 + 1e-6 * ((study * 7919 + variant * 104729 + j) % 100003) for j in range(SAMPLES)]

home, name, seconds, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
model, dataset = {{"path": "m.onnx", "format": "onnx"}}, {{"spec": "synthetic:8", "task": "classification"}}
print("ready", flush=True)
sys.stdin.readline()  # go: every writer opens the new history at the same moment
recorded, error, retries, started = [], None, 0, time.monotonic()
try:
    store = StudyStore(home)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end and k < limit:
        sid = f"{{name}}-{{k:04d}}"
        recorder = StudyRecorder(store)
        recorder.handle(StudyStarted(sid, model=model, dataset=dataset, variants=list(LABELS), environment={{}}))
        results = []
        for i, label in enumerate(LABELS):
            samples = expected_samples(k, i)
            result = VariantResult(label=label, scheme=label, status=VariantStatus.OK,
                                   latency=latency_stats(samples), samples_ms=samples)
            recorder.handle(VariantFinished(sid, result))
            results.append(result)
        store.rename(sid, f"{{name}} study {{k}}")  # what --name does, between the variants and the end
        recorder.handle(StudyFinished(sid, StudyResult(
            study_id=sid, created="2026-01-01T00:00:00+00:00", status="finished", model=model, dataset=dataset,
            environment={{}}, timing={{}}, spec={{}}, results=results, duration_s=1.0)))
        recorded.append([sid, k])
        k += 1
    retries = store.retries
except BaseException:
    error = traceback.format_exc()
print(json.dumps({{"recorded": recorded, "error": error, "retries": retries,
                  "seconds": time.monotonic() - started}}), flush=True)
"""


def _start_writers(home: Path, n: int, seconds: float) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(home), f"w{i}", str(seconds), str(MAX_STUDIES)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]
    for p in procs:  # all imported and waiting
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.communicate()[1]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Three writers on one new history for WRITE_SECONDS, read all the while in and out of process."""
    home = tmp_path_factory.mktemp("writers") / "home"
    reads: list[int] = []  # finished studies seen by each in-process listing
    loads = 0
    cli: list[subprocess.CompletedProcess[str]] = []
    procs = _start_writers(home, WRITERS, WRITE_SECONDS)
    writing = threading.Event()
    writing.set()

    def cli_reader() -> None:
        # What a user typing `quantbench history` meanwhile sees.
        while writing.is_set():
            cli.append(subprocess.run(
                [sys.executable, "-m", "core.cli", "history", "--json", "--home", str(home)],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            ))

    reader = threading.Thread(target=cli_reader)
    started = time.monotonic()
    try:
        while not (home / DB_NAME).exists() and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        reader.start()
        while any(p.poll() is None for p in procs):
            studies = StudyStore(home).list_studies()
            done = [s for s in studies if s.status == "finished"]
            reads.append(len(done))
            if done:
                study = StudyStore(home).load_study(done[-1].id)
                assert [len(r.samples_ms) for r in study.results] == [SAMPLES] * len(LABELS)
                loads += 1
    finally:
        writing.clear()
        outputs = [p.communicate(timeout=120) for p in procs]
        if reader.is_alive():
            reader.join(timeout=180)
    elapsed = time.monotonic() - started
    reports = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    ns = SimpleNamespace(home=home, reports=reports, reads=reads, loads=loads, cli=cli, elapsed=elapsed)
    total = sum(len(r["recorded"]) for r in reports)
    print(
        f"\n{WRITERS} writers recorded {total} studies ({[len(r['recorded']) for r in reports]}) in "
        f"{elapsed:.1f} s, {len(LABELS) * SAMPLES} samples each; retries {[r['retries'] for r in reports]}; "
        f"{len(reads)} listings and {loads} loads in this process, {len(cli)} `quantbench history` runs"
    )
    return ns


def test_three_writers_lose_nothing_and_see_no_error(concurrent: SimpleNamespace) -> None:
    for report in concurrent.reports:
        assert report["error"] is None, report["error"]
        assert report["recorded"], "a writer recorded nothing"
    store = StudyStore(concurrent.home)
    summaries = {s.id: s for s in store.list_studies()}
    recorded = [(sid, k) for r in concurrent.reports for sid, k in r["recorded"]]
    assert len(summaries) >= len(recorded)
    for sid, k in recorded:
        s = summaries[sid]
        assert (s.status, s.variants_finished, s.variants_ok, s.variants_planned) == ("finished", 3, 3, 3), sid
        assert s.name == f"{sid.split('-')[0]} study {k}"
        study = store.load_study(sid)
        assert [r.label for r in study.results] == list(LABELS)
        for i, result in enumerate(study.results):
            assert result.samples_ms == expected_samples(k, i), f"{sid} {result.label}: samples differ"
    with sqlite3.connect(concurrent.home / DB_NAME) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_history_can_be_listed_while_they_write(concurrent: SimpleNamespace) -> None:
    assert len(concurrent.reads) > 3 and concurrent.loads > 0
    assert concurrent.reads == sorted(concurrent.reads), "finished studies went missing between two listings"
    assert concurrent.cli, "`quantbench history` never ran while the writers wrote"
    for run in concurrent.cli:
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert isinstance(json.loads(run.stdout), list)


_OPENER = """
import json, sys, traceback
from core.history.store import StudyStore
homes, name = sys.argv[1:-1], sys.argv[-1]
retries, errors = 0, []
for home in homes:
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store = StudyStore(home)
        store.begin_study(name, created="2026-01-01T00:00:00+00:00", model={}, dataset={}, environment={},
                          timing={}, spec={}, labels=[], pid=0)
        retries += store.retries
    except BaseException:
        errors.append(traceback.format_exc())
print(json.dumps({"retries": retries, "errors": errors}), flush=True)
"""


def test_processes_opening_a_new_history_at_once_all_get_it(tmp_path: Path) -> None:
    """Creating the schema and turning WAL on race when several processes open a new history together."""
    homes = [tmp_path / f"home{i}" for i in range(8)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPENER, *map(str, homes), f"opener{i}"], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    try:
        for _ in homes:  # a barrier per history: every process opens it at the same moment
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.communicate()[1]
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        assert report["errors"] == [], report["errors"][0]
    for home in homes:
        assert sorted(s.id for s in StudyStore(home).list_studies()) == [f"opener{i}" for i in range(4)]
        with sqlite3.connect(home / DB_NAME) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert con.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)


_HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")  # another program holding the write lock, e.g. an SQLite browser
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
"""

_IMPATIENT_WRITER = """
import json, sys
import core.history.store
from core.errors import BadInput
# SQLite's own wait shortened, so that the store's retries have to do the waiting.
core.history.store._BUSY_MS, core.history.store._RETRY_S = 100, float(sys.argv[2])
store = core.history.store.StudyStore(sys.argv[1])
try:
    store.begin_study("late", created="2026-01-01T00:00:00+00:00", model={}, dataset={}, environment={},
                      timing={}, spec={}, labels=[], pid=0)
    error = None
except BadInput as exc:
    error = str(exc)
print(json.dumps({"retries": store.retries, "error": error}))
"""


def _while_locked(home: Path, hold_s: float, retry_s: float) -> dict:
    StudyStore(home)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(home / DB_NAME), str(hold_s)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        done = subprocess.run([sys.executable, "-c", _IMPATIENT_WRITER, str(home), str(retry_s)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    finally:
        holder.wait(timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_write_that_sqlite_answers_busy_is_retried_until_the_lock_is_free(tmp_path: Path) -> None:
    report = _while_locked(tmp_path, hold_s=1.5, retry_s=60)
    assert report["error"] is None
    assert report["retries"] >= 1  # SQLite gave up after 0.1 s; the store waited for the lock
    assert [s.id for s in StudyStore(tmp_path).list_studies()] == ["late"]


def test_a_lock_held_for_too_long_is_one_sentence(tmp_path: Path) -> None:
    report = _while_locked(tmp_path, hold_s=4, retry_s=0.5)
    assert report["error"] == (
        f"the history database {tmp_path / DB_NAME} stayed locked by another program for over 0.6 s; "
        "try again once it is done."
    )
    assert StudyStore(tmp_path).list_studies() == []
