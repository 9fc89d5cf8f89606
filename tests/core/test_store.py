"""The study history in a real SQLite file: recording, reopening, crashes, concurrency, bad files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.errors import BadInput
from core.files.home import ENV_HOME, resolve_home
from core.history.recorder import StudyRecorder
from core.history.store import DB_NAME, StudyStore
from core.study.events import StudyFinished, StudyStarted, VariantFailed, VariantFinished
from core.study.result import VariantResult, VariantStatus
from core.study.spec import SchemeSpec, TimingSpec, VariantSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_run() -> tuple:
    """(spec, every event) of one real, short demo study: the baseline and two ONNX Runtime variants."""
    from dataclasses import replace

    from core.engine.run import demo_study_spec, run_study

    spec = demo_study_spec(TimingSpec(threads=1, max_time_s=0.15, min_samples=10, warmup_runs=1, warmup_s=0.01))
    spec = replace(
        spec,
        dataset=replace(spec.dataset, limit=60),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-dynamic")), VariantSpec(scheme=SchemeSpec("ort-fp16"))),
    )
    return spec, list(run_study(spec))


def _final(events: list) -> StudyFinished:
    return next(e for e in events if isinstance(e, StudyFinished))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        **kwargs,
    )


def test_recorded_study_reopens_identically_in_a_new_process(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    recorder = StudyRecorder(StudyStore(tmp_path), spec=spec)
    for event in events:
        recorder.handle(event)
    expected = _final(events).result.to_json_dict()

    out = _python(
        """
        import json, sys
        from core.history.store import StudyStore
        store = StudyStore(sys.argv[1])
        print(json.dumps({"study": store.load_study(sys.argv[2][:6]).to_json_dict(),
                          "list": [s.to_json_dict() for s in store.list_studies()]}))
        """,
        str(tmp_path), spec.study_id,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["study"] == json.loads(json.dumps(expected))  # samples and confusion matrices included
    assert len(got["study"]["results"][1]["latency_ms"]["samples"]) == expected["results"][1]["latency_ms"]["n"]
    (entry,) = got["list"]
    assert entry["id"] == spec.study_id
    assert entry["status"] == "finished"
    assert entry["model"].endswith("digits_cnn.pt") and entry["dataset"] == "builtin:digits"
    assert entry["variants_finished"] == entry["variants_planned"] == 3
    assert entry["variants_ok"] == sum(r["status"] == "ok" for r in expected["results"])


def test_each_variant_is_committed_as_it_finishes(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    recorder = StudyRecorder(StudyStore(tmp_path), spec=spec)
    done = 0
    for event in events:
        recorder.handle(event)
        if isinstance(event, (VariantFinished, VariantFailed)):
            done += 1
            # Another connection (as another process would) sees the variant before the next one starts.
            study = StudyStore(tmp_path).load_study(spec.study_id)
            assert [r.label for r in study.results] == [
                e.result.label for e in events if isinstance(e, (VariantFinished, VariantFailed))
            ][:done]
            assert study.status == "running"  # this process, its writer, is alive
            if done == 2:
                break
    recorder.abandon()
    (summary,) = StudyStore(tmp_path).list_studies()
    assert (summary.status, summary.variants_finished, summary.variants_planned) == ("interrupted", 2, 3)
    # The interrupted study still carries its spec and timing, so it can be re-run and reported.
    assert summary.model.endswith("digits_cnn.pt")
    assert StudyStore(tmp_path).load_spec(spec.study_id).dataset.limit == 60


def test_sigkill_mid_study_keeps_finished_variants(tmp_path: Path) -> None:
    """Kill a real `quantbench run` with SIGKILL after two variants; read the store all the while."""
    home = tmp_path / "home"
    cmd = [
        sys.executable, "-m", "core.cli", "run", "--demo", "--in-process", "--home", str(home), "--quiet",
        "--limit", "60", "--threads", "1", "--max-time", "1.5",
        "--scheme", "onnx-fp32", "--scheme", "ort-int8-dynamic", "--scheme", "ort-fp16", "--scheme", "ort-int8-static",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (home / DB_NAME).exists():
                studies = StudyStore(home).list_studies()  # concurrent reads while the study writes
                if studies:
                    seen.append(studies[0].variants_finished)
                    StudyStore(home).load_study(studies[0].id)
                    if studies[0].variants_finished >= 2:
                        break
            time.sleep(0.05)
        assert proc.poll() is None, f"the study ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert seen == sorted(seen), "the number of stored variants went down while reading"

    store = StudyStore(home)
    (summary,) = store.list_studies()
    assert summary.status == "interrupted"
    assert 2 <= summary.variants_finished < summary.variants_planned == 5
    study = store.load_study(summary.id)
    assert study.status == "interrupted"
    assert [r.label for r in study.results][:2] == ["fp32", "onnx-fp32"]
    assert all(r.status is VariantStatus.OK and r.latency is not None and r.samples_ms for r in study.results)
    with sqlite3.connect(home / DB_NAME) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Persisted, so it no longer depends on whether the pid is reused.
        assert con.execute("SELECT status FROM studies").fetchone() == ("interrupted",)


_WRITER = """
import sys, time
from core.measures.latency_stats import latency_stats
from core.study.result import VariantResult, VariantStatus
from core.history.store import StudyStore
samples = [0.05 + 0.001 * (k % 97) for k in range(4000)]
latency = latency_stats(samples)
store = StudyStore(sys.argv[1])
store.begin_study("concurrent01", created="2026-01-01T00:00:00+00:00", model={"path": "m.onnx"},
                  dataset={"spec": "synthetic:8"}, environment={}, timing={}, spec={}, labels=[], pid=int(sys.argv[3]))
for i in range(int(sys.argv[2])):
    store.add_variant("concurrent01", i, VariantResult(label=f"v{i}", scheme="fp32", status=VariantStatus.OK,
                                                       latency=latency, samples_ms=samples))
    time.sleep(0.01)
print("done")
"""


def test_reads_never_see_a_torn_write(tmp_path: Path) -> None:
    StudyStore(tmp_path)  # create the file first, so both sides only open it
    n = 40
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), str(n), str(os.getpid())], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    counts = []
    store = StudyStore(tmp_path)
    while writer.poll() is None:
        if store.list_studies():
            study = store.load_study("concurrent01")
            assert all(len(r.samples_ms) == 4000 for r in study.results)
            assert [r.label for r in study.results] == [f"v{i}" for i in range(len(study.results))]
            counts.append(len(study.results))
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0 and out.strip() == "done", err
    assert counts == sorted(counts) and len(set(counts)) > 3  # reads happened throughout the writing
    assert len(store.load_study("concurrent01").results) == n


def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    db.write_bytes(os.urandom(8192))
    before = _digest(db)
    with pytest.raises(BadInput, match="corrupt") as info:
        StudyStore(tmp_path)
    assert str(db) in str(info.value)
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_a_truncated_history_is_refused_and_left_untouched(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    recorder = StudyRecorder(StudyStore(tmp_path), spec=spec)
    for event in events:
        recorder.handle(event)
    db = tmp_path / DB_NAME
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 3)
    before = _digest(db)
    with pytest.raises(BadInput, match="corrupt"):
        StudyStore(tmp_path).load_study(spec.study_id)
    assert _digest(db) == before


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    StudyStore(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("UPDATE schema_version SET version = 7")
    con.close()
    before = _digest(tmp_path / DB_NAME)
    with pytest.raises(BadInput, match=r"newer QuantBench \(history schema 7; this version reads up to 2\)"):
        StudyStore(tmp_path)
    assert _digest(tmp_path / DB_NAME) == before


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("CREATE TABLE accounts (id INTEGER)")
    con.close()
    before = _digest(tmp_path / DB_NAME)
    with pytest.raises(BadInput, match="not a QuantBench history"):
        StudyStore(tmp_path)
    assert _digest(tmp_path / DB_NAME) == before


def test_home_is_the_argument_then_the_environment_then_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda name, appauthor=None: str(tmp_path / "data" / name))
    monkeypatch.delenv(ENV_HOME, raising=False)
    assert resolve_home() == tmp_path / "data" / "quantbench"
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "env"))
    assert resolve_home() == tmp_path / "env"
    store = StudyStore(tmp_path / "arg")
    assert store.path == tmp_path / "arg" / DB_NAME and store.path.is_file()
    assert StudyStore().path == tmp_path / "env" / DB_NAME


def test_a_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="is a file, not a folder"):
        StudyStore(tmp_path / "file")


def _begin(store: StudyStore, study_id: str, pid: int, created: str = "2026-01-01T00:00:00+00:00") -> None:
    store.begin_study(
        study_id, created=created, model={"path": "/m/model.onnx", "format": "onnx"}, dataset={"spec": "npz:x.npz"},
        environment={}, timing={}, spec={}, labels=["fp32", "ort-int8-static"], pid=pid,
    )


def test_ids_by_unique_prefix_and_editing(tmp_path: Path) -> None:
    store = StudyStore(tmp_path)
    _begin(store, "abc111000000", os.getpid(), "2026-01-01T00:00:00+00:00")
    _begin(store, "abc222000000", os.getpid(), "2026-01-02T00:00:00+00:00")
    assert store.resolve_id("abc1") == "abc111000000"
    with pytest.raises(BadInput, match="ambiguous: it matches abc222000000, abc111000000"):
        store.resolve_id("abc")
    with pytest.raises(BadInput, match="no study 'zz'"):
        store.load_study("zz")
    with pytest.raises(BadInput, match="no study '%'"):
        store.resolve_id("%")  # LIKE wildcards are literal
    store.rename("abc1", "  int8 on the laptop ")
    store.set_note("abc2", "thermal throttling suspected")
    listed = {s.id: s for s in StudyStore(tmp_path).list_studies()}
    assert [s for s in listed] == ["abc222000000", "abc111000000"]  # newest first
    assert listed["abc111000000"].name == "int8 on the laptop"
    assert listed["abc222000000"].note == "thermal throttling suspected"
    with pytest.raises(BadInput, match="still running"):
        store.delete("abc1")
    store.set_status("abc111000000", "finished")
    store.add_variant("abc111000000", 0, VariantResult(label="fp32", scheme="fp32", status=VariantStatus.OK))
    store.delete("abc1")
    assert [s.id for s in store.list_studies()] == ["abc222000000"]
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        assert con.execute("SELECT COUNT(*) FROM variants").fetchone() == (0,)


def test_a_running_study_whose_process_is_gone_is_interrupted(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = StudyStore(tmp_path)
    _begin(store, "dead00000000", gone.pid)
    _begin(store, "alive0000000", os.getpid())
    _begin(store, "reboot000000", os.getpid())
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("UPDATE studies SET boot_id = 'another-boot' WHERE id = 'reboot000000'")
    con.close()
    status = {s.id: s.status for s in store.list_studies()}
    assert status == {"dead00000000": "interrupted", "alive0000000": "running", "reboot000000": "interrupted"}


def test_recorder_ignores_events_of_another_study(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    store = StudyStore(tmp_path)
    recorder = StudyRecorder(store, spec=spec)
    started = next(e for e in events if isinstance(e, StudyStarted))
    recorder.handle(started)
    stale = next(e for e in events if isinstance(e, VariantFinished))
    recorder.handle(VariantFinished("someone-else", stale.result))
    assert store.summary(spec.study_id).variants_finished == 0
    with pytest.raises(BadInput, match="already in the history"):
        StudyRecorder(store, spec=spec).handle(started)


_SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE studies (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, status TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '', model_path TEXT NOT NULL DEFAULT '', model_format TEXT NOT NULL DEFAULT '',
    dataset_spec TEXT NOT NULL DEFAULT '', task TEXT NOT NULL DEFAULT '', variants_planned INTEGER NOT NULL DEFAULT 0,
    labels_json TEXT NOT NULL DEFAULT '[]', spec_json TEXT NOT NULL DEFAULT '{}', model_json TEXT NOT NULL DEFAULT '{}',
    dataset_json TEXT NOT NULL DEFAULT '{}', environment_json TEXT NOT NULL DEFAULT '{}',
    timing_json TEXT NOT NULL DEFAULT '{}', pid INTEGER, pid_start TEXT NOT NULL DEFAULT '',
    boot_id TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '', ended TEXT, duration_s REAL
);
CREATE INDEX studies_created ON studies (created);
CREATE TABLE variants (
    study_id TEXT NOT NULL REFERENCES studies (id) ON DELETE CASCADE, idx INTEGER NOT NULL, label TEXT NOT NULL,
    status TEXT NOT NULL, result_json TEXT NOT NULL, PRIMARY KEY (study_id, idx)
);
"""


def test_samples_are_stored_as_bytes_and_come_back_bit_identical(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    recorder = StudyRecorder(StudyStore(tmp_path), spec=spec)
    for event in events:
        recorder.handle(event)
    final = _final(events).result
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        rows = con.execute("SELECT result_json, samples, verdict FROM variants ORDER BY idx").fetchall()
    for (result_json, blob, verdict), variant in zip(rows, final.results, strict=True):
        assert "samples" not in (json.loads(result_json)["latency_ms"] or {})  # not as text any more
        assert len(blob) == 8 * len(variant.samples_ms) > 0
        assert verdict == variant.verdict.overall.value
    loaded = StudyStore(tmp_path).load_study(spec.study_id)
    for got, want in zip(loaded.results, final.results, strict=True):
        assert got.samples_ms == want.samples_ms  # float64 both ways: exact
    assert StudyStore(tmp_path).verdicts(spec.study_id) == [
        (v.label, v.status.value, v.verdict.overall.value) for v in final.results
    ]


def test_a_schema_1_history_is_upgraded_in_place(tmp_path: Path, demo_run: tuple) -> None:
    from core.study.result import variant_to_json

    spec, events = demo_run
    final = _final(events).result
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as con:
        con.executescript(_SCHEMA_1)
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute(
            "INSERT INTO studies (id, created, status, spec_json) VALUES (?, ?, 'finished', ?)",
            (final.study_id, final.created, json.dumps(final.spec)),
        )
        for i, variant in enumerate(final.results):
            con.execute(
                "INSERT INTO variants VALUES (?, ?, ?, ?, ?)",
                (final.study_id, i, variant.label, variant.status.value,
                 json.dumps(variant_to_json(variant, include_samples=True))),
            )
    store = StudyStore(tmp_path)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT MAX(version) FROM schema_version").fetchone() == (2,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    loaded = store.load_study(final.study_id)
    assert [v.samples_ms for v in loaded.results] == [v.samples_ms for v in final.results]
    assert [v.latency.p50 for v in loaded.results] == [v.latency.p50 for v in final.results]
    assert store.verdicts(final.study_id) == [(v.label, v.status.value, v.verdict.overall.value) for v in final.results]
    StudyStore(tmp_path)  # a second opening finds it current and changes nothing
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (2,)
