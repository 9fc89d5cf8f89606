"""The study history: every study in a local SQLite database, each variant committed as it finishes.

The database lives in QuantBench's home folder: the ``home`` argument, else the
``QUANTBENCH_HOME`` environment variable, else the user data folder
(platformdirs). It runs in WAL mode, so the window can list and open studies
while a study process writes; every call opens its own short-lived connection,
so a store object may be shared by threads and survives a fork.

A study is inserted as "running" with the writing process's id; each variant is
a committed row the moment it finishes, so a study killed with SIGKILL keeps
every finished variant and is shown as "interrupted" once its process is gone.
A file that is not a QuantBench history, is corrupt, or was written by a newer
schema is refused with one clear sentence and never written to.

Several processes write one history at once (two or three ``quantbench run`` and
the window): every write is one ``BEGIN IMMEDIATE`` transaction, SQLite waits up
to ``_BUSY_MS`` for the lock, and a transaction that still meets "busy" or
"locked" (SQLite does not wait in every case, e.g. while another connection
recovers the WAL or switches the journal mode) is rolled back and run again
whole, with a growing, jittered pause, for up to ``_RETRY_S``. Opening races
the same way (two processes creating or upgrading one new history) and is
retried the same way, so "database is locked" never reaches the user.

A write that fails for want of room (SQLITE_FULL; a file-size limit, which
SQLite reports as an I/O error) or on a read-only file is rolled back, so the
file keeps every study committed before, and it is BadInput with
``core.files.atomic.could_not_write``'s sentence, e.g. "could not write the history
database H/history.sqlite3: no space left on device (the disk is full)."

Latency samples (10^5 and more per variant) are stored as raw little-endian
float64 bytes in their own column, not inside the variant's JSON: encoding and
decoding them as text took ~100 ms holding the interpreter lock, and the window
records from its worker thread, so every variant's end froze the GUI thread for
that long. Each variant's overall verdict has its own column as well, so the
History list reads the best verdict without loading any study. Schema 1 files
are upgraded in place on first opening (one transaction).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from core.errors import BadInput
from core.files.atomic import DISK_FULL, could_not_write
from core.files.home import ENV_HOME, resolve_home
from core.study.result import StudyResult, VariantResult, variant_from_json, variant_to_json

SCHEMA_VERSION = 2
DB_NAME = "history.sqlite3"
#: Statuses a study can have; "running" becomes "interrupted" when its process is gone.
STATUSES = ("running", "finished", "cancelled", "interrupted", "failed")
#: SQLite's own wait for the write lock, per attempt.
_BUSY_MS = 10_000
#: How long a transaction that still meets "busy" is retried, in all, before the user is told.
_RETRY_S = 60.0
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE studies (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL DEFAULT '',
    model_format TEXT NOT NULL DEFAULT '',
    dataset_spec TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL DEFAULT '',
    variants_planned INTEGER NOT NULL DEFAULT 0,
    labels_json TEXT NOT NULL DEFAULT '[]',
    spec_json TEXT NOT NULL DEFAULT '{}',
    model_json TEXT NOT NULL DEFAULT '{}',
    dataset_json TEXT NOT NULL DEFAULT '{}',
    environment_json TEXT NOT NULL DEFAULT '{}',
    timing_json TEXT NOT NULL DEFAULT '{}',
    pid INTEGER,
    pid_start TEXT NOT NULL DEFAULT '',
    boot_id TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    ended TEXT,
    duration_s REAL
);
CREATE INDEX studies_created ON studies (created);
CREATE TABLE variants (
    study_id TEXT NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL,
    result_json TEXT NOT NULL,
    verdict TEXT NOT NULL DEFAULT '',
    samples BLOB,
    PRIMARY KEY (study_id, idx)
);
"""

#: Schema 1 kept the samples inside result_json and had no verdict column.
_UPGRADE_FROM_1 = (
    "ALTER TABLE variants ADD COLUMN verdict TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE variants ADD COLUMN samples BLOB",
)


@dataclass
class StudySummary:
    """One line of the history list (no per-variant data)."""

    id: str
    created: str
    status: str
    name: str
    note: str
    model: str  # the model path
    model_format: str
    dataset: str  # the dataset spec, e.g. builtin:digits
    task: str
    variants_planned: int
    variants_finished: int  # variants whose run completed: ok, failed or skipped
    variants_ok: int
    duration_s: float | None

    @property
    def title(self) -> str:
        """The name, or the model file name when the study has none."""
        return self.name or Path(self.model).name or self.id

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


class StudyStore:
    """The history database in ``home`` (see ``resolve_home``); ids may be given as unique prefixes."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = resolve_home(home)
        self.path = self.home / DB_NAME
        self.logs_dir = self.home / "logs"
        #: Transactions (or openings) run again because another connection held the database: a figure
        #: for tests and logs; each one is invisible to the user.
        self.retries = 0
        self._open()

    # ---- reading -------------------------------------------------------------------------------

    def list_studies(self) -> list[StudySummary]:
        """Every study, newest first; a "running" study whose process is gone is marked interrupted."""

        def work(con: sqlite3.Connection) -> list[StudySummary]:
            rows = con.execute(_SUMMARY_SQL + " GROUP BY s.id ORDER BY s.created DESC, s.rowid DESC").fetchall()
            return [self._summary(con, row) for row in rows]

        return self._run(work)

    def summary(self, study_id: str) -> StudySummary:
        """The list entry of one study (id or unique prefix)."""

        def work(con: sqlite3.Connection) -> StudySummary:
            sid = self._resolve(con, study_id)
            row = con.execute(_SUMMARY_SQL + " WHERE s.id = ? GROUP BY s.id", (sid,)).fetchone()
            return self._summary(con, row)

        return self._run(work)

    def resolve_id(self, study_id: str) -> str:
        """The full id of the one study whose id starts with ``study_id``; BadInput otherwise."""
        return self._run(lambda con: self._resolve(con, study_id))

    def load_study(self, study_id: str) -> StudyResult:
        """The stored study with every variant finished so far, in run order."""

        def work(con: sqlite3.Connection) -> tuple[Any, str, list[Any]]:
            sid = self._resolve(con, study_id)
            row = con.execute(
                "SELECT id, created, status, spec_json, model_json, dataset_json, environment_json, timing_json,"
                " duration_s FROM studies WHERE id = ?",
                (sid,),
            ).fetchone()
            status = self._live_status(con, sid)
            variants = con.execute(
                "SELECT result_json, samples FROM variants WHERE study_id = ? ORDER BY idx", (sid,)
            ).fetchall()
            return row, status, variants

        row, status, variants = self._run(work)
        return StudyResult(
            study_id=row[0],
            created=row[1],
            status=status,
            spec=json.loads(row[3]),
            model=json.loads(row[4]),
            dataset=json.loads(row[5]),
            environment=json.loads(row[6]),
            timing=json.loads(row[7]),
            results=[_variant_from_row(v[0], v[1]) for v in variants],
            duration_s=row[8],
        )

    def verdicts(self, study_id: str) -> list[tuple[str, str, str]]:
        """(label, status, overall verdict or "") of each stored variant, in run order, without loading
        the results: cheap enough for a list of every study."""

        def work(con: sqlite3.Connection) -> list[Any]:
            sid = self._resolve(con, study_id)
            return con.execute(
                "SELECT label, status, verdict FROM variants WHERE study_id = ? ORDER BY idx", (sid,)
            ).fetchall()

        return [(str(r[0]), str(r[1]), str(r[2] or "")) for r in self._run(work)]

    def spec_dict(self, study_id: str) -> dict[str, Any]:
        """The study's spec as stored (a plain dict; ``load_spec`` makes a StudySpec of it)."""
        return json.loads(self._spec_json(study_id)[1])

    def load_spec(self, study_id: str) -> Any:
        """The study's StudySpec with a new id, to run it again."""
        from core.study.project import spec_from_dict

        sid, spec_json = self._spec_json(study_id)
        return spec_from_dict(json.loads(spec_json), source=f"study {sid}")

    # ---- editing -------------------------------------------------------------------------------

    def rename(self, study_id: str, name: str) -> None:
        self._set_column(study_id, "name", name.strip())

    def set_note(self, study_id: str, note: str) -> None:
        self._set_column(study_id, "note", note)

    def delete(self, study_id: str) -> None:
        """Remove a study and its variants; a study still running is refused."""

        def work(con: sqlite3.Connection) -> None:
            sid = self._resolve(con, study_id)
            if self._live_status(con, sid) == "running":
                raise BadInput(f"study {sid} is still running; cancel it before deleting it.")
            with _transaction(con):
                con.execute("DELETE FROM variants WHERE study_id = ?", (sid,))
                con.execute("DELETE FROM studies WHERE id = ?", (sid,))

        self._run(work)

    # ---- writing (used by StudyRecorder) ---------------------------------------------------------

    def begin_study(
        self,
        study_id: str,
        *,
        created: str,
        model: dict[str, Any],
        dataset: dict[str, Any],
        environment: dict[str, Any],
        timing: dict[str, Any],
        spec: dict[str, Any],
        labels: list[str],
        pid: int,
    ) -> None:
        """Insert a study as "running", owned by process ``pid``."""
        values = (
            study_id, created, str(model.get("path", "")), str(model.get("format", "")),
            str(dataset.get("spec", "")), str(dataset.get("task", "")), len(labels), _dumps(labels),
            _dumps(spec), _dumps(model), _dumps(dataset), _dumps(environment), _dumps(timing),
            pid, _process_start(pid), _boot_id(), socket.gethostname(),
        )

        def work(con: sqlite3.Connection) -> None:
            if con.execute("SELECT 1 FROM studies WHERE id = ?", (study_id,)).fetchone():
                raise BadInput(f"study {study_id} is already in the history {self.path}; a new run needs a new id.")
            con.execute(
                "INSERT INTO studies (id, created, status, model_path, model_format, dataset_spec, task,"
                " variants_planned, labels_json, spec_json, model_json, dataset_json, environment_json, timing_json,"
                " pid, pid_start, boot_id, host) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

        self._run(work, write=True)

    def add_variant(self, study_id: str, index: int, result: VariantResult) -> None:
        """Commit one finished (or failed) variant at once."""
        row = _variant_row(study_id, index, result)
        self._run(lambda con: _put_variant(con, row), write=True)

    def finish_study(self, result: StudyResult) -> None:
        """Store the final result (verdicts are recomputed at the end) and its status, in one transaction."""
        study = (
            result.status, result.created, _dumps(result.spec), _dumps(result.model), _dumps(result.dataset),
            _dumps(result.environment), _dumps(result.timing), result.duration_s,
        )
        # Encoded once, outside the lock: a retried transaction only writes again.
        rows = [_variant_row(result.study_id, index, variant) for index, variant in enumerate(result.results)]

        def work(con: sqlite3.Connection) -> None:
            exists = con.execute("SELECT 1 FROM studies WHERE id = ?", (result.study_id,)).fetchone()
            if exists is None:
                raise BadInput(f"study {result.study_id} was never started in {self.path}.")
            con.execute(
                "UPDATE studies SET status = ?, created = ?, spec_json = ?, model_json = ?, dataset_json = ?,"
                " environment_json = ?, timing_json = ?, duration_s = ?, ended = ? WHERE id = ?",
                (*study, _now(), result.study_id),
            )
            con.execute("DELETE FROM variants WHERE study_id = ?", (result.study_id,))
            for row in rows:
                _put_variant(con, row)

        self._run(work, write=True)

    def set_status(self, study_id: str, status: str) -> None:
        """Set a study's status (e.g. "interrupted" when its driver stopped early)."""
        if status not in STATUSES:
            raise ValueError(f"unknown study status {status!r}")
        self._run(
            lambda con: con.execute(
                "UPDATE studies SET status = ?, ended = ? WHERE id = ?", (status, _now(), study_id)
            ),
            write=True,
        )

    # ---- internals -----------------------------------------------------------------------------

    def _spec_json(self, study_id: str) -> tuple[str, str]:
        def work(con: sqlite3.Connection) -> tuple[str, str]:
            sid = self._resolve(con, study_id)
            (spec_json,) = con.execute("SELECT spec_json FROM studies WHERE id = ?", (sid,)).fetchone()
            return sid, spec_json

        return self._run(work)

    def _set_column(self, study_id: str, column: str, value: str) -> None:
        def work(con: sqlite3.Connection) -> None:
            sid = self._resolve(con, study_id)
            with _transaction(con):
                con.execute(f"UPDATE studies SET {column} = ? WHERE id = ?", (value, sid))

        self._run(work)

    def _resolve(self, con: sqlite3.Connection, study_id: str) -> str:
        prefix = study_id.strip()
        if not prefix:
            raise BadInput("the study id is empty (see quantbench history).")
        if con.execute("SELECT 1 FROM studies WHERE id = ?", (prefix,)).fetchone():
            return prefix
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = con.execute(
            "SELECT id FROM studies WHERE id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT 6", (escaped + "%",)
        ).fetchall()
        if not rows:
            raise BadInput(f"no study {prefix!r} in {self.path} (see quantbench history).")
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:5])
            raise BadInput(f"study id {prefix!r} is ambiguous: it matches {shown}{', ...' if len(rows) > 5 else ''}.")
        return rows[0][0]

    def _summary(self, con: sqlite3.Connection, row: tuple[Any, ...]) -> StudySummary:
        status = row[2]
        if status == "running" and not _owner_alive(row[10], row[11], row[12]):
            status = self._mark_interrupted(con, row[0])
        return StudySummary(
            id=row[0], created=row[1], status=status, name=row[3], note=row[4], model=row[5], model_format=row[6],
            dataset=row[7], task=row[8], variants_planned=row[9], duration_s=row[13],
            variants_finished=int(row[14] or 0), variants_ok=int(row[15] or 0),
        )

    def _live_status(self, con: sqlite3.Connection, sid: str) -> str:
        status, pid, start, boot = con.execute(
            "SELECT status, pid, pid_start, boot_id FROM studies WHERE id = ?", (sid,)
        ).fetchone()
        if status == "running" and not _owner_alive(pid, start, boot):
            return self._mark_interrupted(con, sid)
        return status

    def _mark_interrupted(self, con: sqlite3.Connection, sid: str) -> str:
        # Persist it, so the answer no longer depends on whether the pid gets reused.
        try:
            with _transaction(con):
                con.execute("UPDATE studies SET status = 'interrupted' WHERE id = ? AND status = 'running'", (sid,))
        except sqlite3.OperationalError:
            pass  # a read-only, full or busy database: the status is still reported right, and stored next time
        return "interrupted"

    def _run(self, work: Callable[[sqlite3.Connection], _T], write: bool = False) -> _T:
        """``work(con)`` on a fresh connection (inside one BEGIN IMMEDIATE transaction when ``write``), run
        again whole, after a growing jittered pause, while SQLite answers "busy" or "locked"; any other
        SQLite error is BadInput with one sentence naming the file. ``work`` must be safe to repeat: a
        failed attempt is rolled back before the next.

        A read on a full disk, where SQLite cannot make the WAL's shared-memory file, is tried once more
        in exclusive locking mode, which keeps that index in memory: the history stays readable."""
        deadline: float | None = None
        pause = 0.005
        exclusive = False
        while True:
            try:
                con = self._connect(exclusive)
                try:
                    if not write:
                        return work(con)
                    with _transaction(con):
                        return work(con)
                finally:
                    con.close()
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise  # QuantBench's own mistake, not the file's
            except sqlite3.DatabaseError as exc:
                if not write and not exclusive and _no_room_for_index(exc):
                    exclusive = True
                    continue
                if not _is_busy(exc):
                    raise BadInput(self._failure(exc, write)) from None
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + _RETRY_S
                if now >= deadline:
                    raise BadInput(
                        f"the history database {self.path} stayed locked by another program for over "
                        f"{_RETRY_S + _BUSY_MS / 1000:.3g} s; try again once it is done."
                    ) from None
                self.retries += 1
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.5)

    def _connect(self, exclusive: bool = False) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        try:
            if exclusive:
                con.execute("PRAGMA locking_mode = EXCLUSIVE")  # before the first read: no -shm file needed
            con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            # A commit must survive the process being killed right after it (SIGKILL mid-study).
            con.execute("PRAGMA synchronous = FULL")
        except BaseException:
            con.close()
            raise
        return con

    def _failure(self, exc: sqlite3.DatabaseError, write: bool) -> str:
        """One sentence for an SQLite error other than busy: the file, and what went wrong in words."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        name = getattr(exc, "sqlite_errorname", "") or ""
        db = f"the history database {self.path}"
        if code == _SQLITE_FULL:
            return could_not_write(db, DISK_FULL)
        if code == _SQLITE_IOERR:
            if "READ" in name and write is False:
                return f"could not read {db}: a disk input/output error."
            return could_not_write(db, DISK_FULL if self._out_of_room() else "a disk input/output error")
        if code == _SQLITE_READONLY:
            return could_not_write(db, "the file or its folder is read-only")
        if code == _SQLITE_CANTOPEN:
            return f"{db} cannot be opened (check that its folder {self.home} can be read and written)."
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or not isinstance(exc, sqlite3.OperationalError):
            return _corrupt_message(self.path, exc)
        return f"{db} cannot be used ({exc})."

    def _out_of_room(self) -> bool:
        """After an I/O error: is it a full disk? SQLite says "full" for ENOSPC but "I/O error" for EFBIG
        (a file-size limit), so look at the free space and at the limit."""
        try:
            st = os.statvfs(self.home)
            if st.f_bavail * st.f_frsize < (1 << 20):
                return True
        except (OSError, AttributeError):
            pass
        try:
            import resource

            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        except (ImportError, OSError, ValueError):
            return False
        if limit == resource.RLIM_INFINITY:
            return False
        sizes = []
        for suffix in ("", "-wal", "-journal"):
            with contextlib.suppress(OSError):
                sizes.append(os.path.getsize(str(self.path) + suffix))
        return any(size + (64 << 10) >= limit for size in sizes)

    def _open(self) -> None:
        from core.files.atomic import os_reason

        if self.home.exists() and not self.home.is_dir():
            raise BadInput(f"QuantBench's home {self.home} is a file, not a folder (set {ENV_HOME} or --home).")
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"QuantBench's home {self.home} cannot be created ({os_reason(exc)}).") from None
        if self.path.is_dir():
            raise BadInput(f"the history database {self.path} is a folder, not a file.")
        # Two processes may open a new (or old-schema) history at once: the whole preparation is retried.
        self._run(self._prepare)

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Check the file, turn WAL on, create the schema or upgrade it; safe to run again after "busy"."""
        existing = self._check_schema(con)  # before anything is written: a foreign or damaged file stays untouched
        if str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            # Persistent once set; the switch needs the file to itself for a moment (else "busy": retried).
            con.execute("PRAGMA journal_mode = WAL")
        if existing:
            self._upgrade(con)
            return
        with _transaction(con):
            # Another process may have created it while this one waited for the lock.
            if self._check_schema(con):
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def _upgrade(self, con: sqlite3.Connection) -> None:
        """Bring an older schema up to this one, in one transaction (a crash leaves the old file intact)."""
        (version,) = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version >= SCHEMA_VERSION:
            return
        with _transaction(con):
            (version,) = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if version >= SCHEMA_VERSION:
                return  # another process upgraded it while this one waited for the lock
            for statement in _UPGRADE_FROM_1:
                con.execute(statement)
            rows = con.execute("SELECT study_id, idx, result_json FROM variants").fetchall()
            for study_id, idx, result_json in rows:
                data = json.loads(result_json)
                latency = data.get("latency_ms") or {}
                samples = latency.pop("samples", None) or []
                con.execute(
                    "UPDATE variants SET result_json = ?, verdict = ?, samples = ? WHERE study_id = ? AND idx = ?",
                    (_dumps(data), ((data.get("verdict") or {}).get("overall") or ""), _pack(samples), study_id, idx),
                )
            con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def _check_schema(self, con: sqlite3.Connection) -> bool:
        """True when the file is a usable history; False when it is empty; BadInput otherwise."""
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return False
        if "schema_version" not in tables:
            raise BadInput(
                f"{self.path} is an SQLite database but not a QuantBench history; it was left untouched "
                f"(move it aside, or point {ENV_HOME} or --home elsewhere)."
            )
        row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if not isinstance(version, int):
            raise BadInput(_corrupt_message(self.path, "no schema version recorded"))
        if version > SCHEMA_VERSION:
            raise BadInput(
                f"the history database {self.path} was written by a newer QuantBench (history schema {version}; "
                f"this version reads up to {SCHEMA_VERSION}); it was left untouched: upgrade QuantBench or point "
                f"{ENV_HOME} or --home elsewhere."
            )
        if not {"studies", "variants"} <= tables:
            raise BadInput(_corrupt_message(self.path, "tables are missing"))
        return True


_SUMMARY_SQL = (
    "SELECT s.id, s.created, s.status, s.name, s.note, s.model_path, s.model_format, s.dataset_spec, s.task,"
    " s.variants_planned, s.pid, s.pid_start, s.boot_id, s.duration_s,"
    " COUNT(v.idx), SUM(v.status = 'ok')"
    " FROM studies s LEFT JOIN variants v ON v.study_id = s.id"
)


class StudyRecorder:
    """Feeds engine events into a StudyStore: ``recorder.handle(event)`` for every event.

    StudyStarted inserts the study as running; VariantFinished and VariantFailed
    commit that variant at once; StudyFinished stores the final result with
    status finished or cancelled. Events of another study are ignored.
    """

    def __init__(self, store: StudyStore, spec: Any | None = None, pid: int | None = None) -> None:
        self.store = store
        self.spec = spec  # the StudySpec, so an interrupted study still records its spec and timing
        self.pid = os.getpid() if pid is None else pid
        self.study_id: str | None = None
        self.finished = False
        self._labels: list[str] = []

    def handle(self, event: Any) -> None:
        from core.study.events import StudyFinished, StudyStarted, VariantFailed, VariantFinished

        if isinstance(event, StudyStarted):
            self._start(event)
        elif event.study_id != self.study_id or self.finished:
            return
        elif isinstance(event, (VariantFinished, VariantFailed)):
            result = event.result
            index = self._labels.index(result.label) if result.label in self._labels else len(self._labels)
            if index == len(self._labels):
                self._labels.append(result.label)
            self.store.add_variant(event.study_id, index, result)
        elif isinstance(event, StudyFinished):
            self.store.finish_study(event.result)
            self.finished = True

    def abandon(self, status: str = "interrupted") -> None:
        """The driver stopped before StudyFinished (an error, a crash of the engine): say so in the history."""
        if self.study_id is not None and not self.finished:
            self.store.set_status(self.study_id, status)
            self.finished = True

    def _start(self, event: Any) -> None:
        self.study_id = event.study_id
        self.finished = False
        self._labels = list(event.variants)
        spec = self.spec.to_dict() if self.spec is not None else {}
        self.store.begin_study(
            event.study_id,
            created=_now(),
            model=event.model,
            dataset=event.dataset,
            environment=event.environment,
            timing=_timing_of(self.spec, event.environment),
            spec=spec,
            labels=self._labels,
            pid=self.pid,
        )


def _timing_of(spec: Any | None, env: dict[str, Any]) -> dict[str, Any]:
    """The result's ``timing`` block as known at the start (the engine's own replaces it at the end)."""
    if spec is None:
        return {"threads": env.get("threads"), "mode": env.get("timing_mode"), "device": env.get("device")}
    t = spec.timing
    return {
        "threads": t.resolved_threads,
        "mode": t.mode.value,
        "batch_size": t.batch_size,
        "max_time_s": t.max_time_s,
        "min_samples": t.min_samples,
        "max_samples": t.max_samples,
        "device": spec.device.value,
    }


# SQLite's primary result codes (an exception's sqlite_errorcode & 0xFF).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 6, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection holds what this one needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _no_room_for_index(exc: sqlite3.DatabaseError) -> bool:
    """SQLite could not create or grow the WAL's shared-memory index (a full disk, typically)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return name.startswith("SQLITE_IOERR_SHM") or code == _SQLITE_FULL


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed whole or rolled back whole.

    IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
    deadlocking. On any error, a disk-full one included, the transaction is rolled back (SQLite may
    have rolled it back itself already) and the error goes on unchanged."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            # Closing the connection rolls it back all the same; the first error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        raise


def _variant_row(study_id: str, index: int, result: VariantResult) -> tuple[Any, ...]:
    verdict = result.verdict.overall.value if result.verdict is not None else ""
    return (
        study_id, index, result.label, result.status.value,
        _dumps(variant_to_json(result, include_samples=False)), verdict, _pack(result.samples_ms),
    )


def _put_variant(con: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    con.execute(
        "INSERT OR REPLACE INTO variants (study_id, idx, label, status, result_json, verdict, samples)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        row,
    )


def _variant_from_row(result_json: str, samples: bytes | None) -> VariantResult:
    result = variant_from_json(json.loads(result_json))
    if samples:
        result.samples_ms = _unpack(samples)
    return result


def _pack(samples: Any) -> bytes | None:
    """Samples as little-endian float64 bytes (None when there are none)."""
    if samples is None or len(samples) == 0:
        return None
    packed = array("d", samples)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def _unpack(blob: bytes) -> list[float]:
    if len(blob) % 8:
        raise BadInput("a stored variant's latency samples are truncated; the history file is damaged.")
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def _dumps(value: Any) -> str:
    # NaN survives a round trip through Python's json; the store is not an interchange format.
    return json.dumps(value, separators=(",", ":"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _corrupt_message(path: Path, detail: object) -> str:
    return (
        f"the history database {path} is corrupt or not an SQLite file ({detail}); it was left untouched "
        f"(move it aside, or point {ENV_HOME} or --home elsewhere)."
    )


# ---- is the process that owns a running study still there? ------------------------------------------


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None without procfs."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _process_start(pid: int) -> str:
    # The start time tells a reused pid from the original process.
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def _owner_alive(pid: int | None, start: str, boot: str) -> bool:
    # The boot id, not the host name, tells the machine and its uptime apart (containers rename hosts freely).
    if boot and boot != _boot_id():
        return False
    if not pid:
        return False
    fields = _proc_stat(pid)
    if fields is not None:  # Linux: procfs says it all, zombies included
        if not fields or fields[0] in ("Z", "X"):
            return False
        return not start or len(fields) <= 19 or fields[19] == start
    return _pid_exists(pid)


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
