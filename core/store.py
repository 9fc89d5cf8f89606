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

Latency samples (10^5 and more per variant) are stored as raw little-endian
float64 bytes in their own column, not inside the variant's JSON: encoding and
decoding them as text took ~100 ms holding the interpreter lock, and the window
records from its worker thread, so every variant's end froze the GUI thread for
that long. Each variant's overall verdict has its own column as well, so the
History list reads the best verdict without loading any study. Schema 1 files
are upgraded in place on first opening (one transaction).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.result import StudyResult, VariantResult, variant_from_json, variant_to_json

SCHEMA_VERSION = 2
DB_NAME = "history.sqlite3"
ENV_HOME = "QUANTBENCH_HOME"
#: Statuses a study can have; "running" becomes "interrupted" when its process is gone.
STATUSES = ("running", "finished", "cancelled", "interrupted", "failed")
_BUSY_MS = 10_000

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


def resolve_home(home: Path | str | None = None) -> Path:
    """QuantBench's data folder: ``home``, else $QUANTBENCH_HOME, else the user data folder."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("quantbench", appauthor=False))


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
        self._open()

    # ---- reading -------------------------------------------------------------------------------

    def list_studies(self) -> list[StudySummary]:
        """Every study, newest first; a "running" study whose process is gone is marked interrupted."""
        with self._connection() as con:
            rows = con.execute(_SUMMARY_SQL + " GROUP BY s.id ORDER BY s.created DESC, s.rowid DESC").fetchall()
            return [self._summary(con, row) for row in rows]

    def summary(self, study_id: str) -> StudySummary:
        """The list entry of one study (id or unique prefix)."""
        with self._connection() as con:
            sid = self._resolve(con, study_id)
            row = con.execute(_SUMMARY_SQL + " WHERE s.id = ? GROUP BY s.id", (sid,)).fetchone()
            return self._summary(con, row)

    def resolve_id(self, study_id: str) -> str:
        """The full id of the one study whose id starts with ``study_id``; BadInput otherwise."""
        with self._connection() as con:
            return self._resolve(con, study_id)

    def load_study(self, study_id: str) -> StudyResult:
        """The stored study with every variant finished so far, in run order."""
        with self._connection() as con:
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
        with self._connection() as con:
            sid = self._resolve(con, study_id)
            rows = con.execute(
                "SELECT label, status, verdict FROM variants WHERE study_id = ? ORDER BY idx", (sid,)
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2] or "")) for r in rows]

    def spec_dict(self, study_id: str) -> dict[str, Any]:
        """The study's spec as stored (a plain dict; ``load_spec`` makes a StudySpec of it)."""
        with self._connection() as con:
            sid = self._resolve(con, study_id)
            (spec_json,) = con.execute("SELECT spec_json FROM studies WHERE id = ?", (sid,)).fetchone()
        return json.loads(spec_json)

    def load_spec(self, study_id: str) -> Any:
        """The study's StudySpec with a new id, to run it again."""
        from core.project import spec_from_dict

        with self._connection() as con:
            sid = self._resolve(con, study_id)
            (spec_json,) = con.execute("SELECT spec_json FROM studies WHERE id = ?", (sid,)).fetchone()
        return spec_from_dict(json.loads(spec_json), source=f"study {sid}")

    # ---- editing -------------------------------------------------------------------------------

    def rename(self, study_id: str, name: str) -> None:
        self._set_column(study_id, "name", name.strip())

    def set_note(self, study_id: str, note: str) -> None:
        self._set_column(study_id, "note", note)

    def delete(self, study_id: str) -> None:
        """Remove a study and its variants; a study still running is refused."""
        with self._connection() as con:
            sid = self._resolve(con, study_id)
            if self._live_status(con, sid) == "running":
                raise BadInput(f"study {sid} is still running; cancel it before deleting it.")
            with _transaction(con):
                con.execute("DELETE FROM variants WHERE study_id = ?", (sid,))
                con.execute("DELETE FROM studies WHERE id = ?", (sid,))

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
        with self._connection() as con, _transaction(con):
            if con.execute("SELECT 1 FROM studies WHERE id = ?", (study_id,)).fetchone():
                raise BadInput(f"study {study_id} is already in the history {self.path}; a new run needs a new id.")
            con.execute(
                "INSERT INTO studies (id, created, status, model_path, model_format, dataset_spec, task,"
                " variants_planned, labels_json, spec_json, model_json, dataset_json, environment_json, timing_json,"
                " pid, pid_start, boot_id, host) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    study_id, created, str(model.get("path", "")), str(model.get("format", "")),
                    str(dataset.get("spec", "")), str(dataset.get("task", "")), len(labels), _dumps(labels),
                    _dumps(spec), _dumps(model), _dumps(dataset), _dumps(environment), _dumps(timing),
                    pid, _process_start(pid), _boot_id(), socket.gethostname(),
                ),
            )

    def add_variant(self, study_id: str, index: int, result: VariantResult) -> None:
        """Commit one finished (or failed) variant at once."""
        with self._connection() as con, _transaction(con):
            _put_variant(con, study_id, index, result)

    def finish_study(self, result: StudyResult) -> None:
        """Store the final result (verdicts are recomputed at the end) and its status, in one transaction."""
        with self._connection() as con, _transaction(con):
            exists = con.execute("SELECT 1 FROM studies WHERE id = ?", (result.study_id,)).fetchone()
            if exists is None:
                raise BadInput(f"study {result.study_id} was never started in {self.path}.")
            con.execute(
                "UPDATE studies SET status = ?, created = ?, spec_json = ?, model_json = ?, dataset_json = ?,"
                " environment_json = ?, timing_json = ?, duration_s = ?, ended = ? WHERE id = ?",
                (
                    result.status, result.created, _dumps(result.spec), _dumps(result.model), _dumps(result.dataset),
                    _dumps(result.environment), _dumps(result.timing), result.duration_s, _now(), result.study_id,
                ),
            )
            con.execute("DELETE FROM variants WHERE study_id = ?", (result.study_id,))
            for index, variant in enumerate(result.results):
                _put_variant(con, result.study_id, index, variant)

    def set_status(self, study_id: str, status: str) -> None:
        """Set a study's status (e.g. "interrupted" when its driver stopped early)."""
        if status not in STATUSES:
            raise ValueError(f"unknown study status {status!r}")
        with self._connection() as con, _transaction(con):
            con.execute("UPDATE studies SET status = ?, ended = ? WHERE id = ?", (status, _now(), study_id))

    # ---- internals -----------------------------------------------------------------------------

    def _set_column(self, study_id: str, column: str, value: str) -> None:
        with self._connection() as con:
            sid = self._resolve(con, study_id)
            with _transaction(con):
                con.execute(f"UPDATE studies SET {column} = ? WHERE id = ?", (value, sid))

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
            pass  # a read-only or busy database: the status is still reported right
        return "interrupted"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise BadInput(f"the history database {self.path} cannot be opened ({exc}).") from None
        try:
            con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            # A commit must survive the process being killed right after it (SIGKILL mid-study).
            con.execute("PRAGMA synchronous = FULL")
            yield con
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            raise BadInput(f"the history database {self.path} cannot be used ({exc}).") from None
        except sqlite3.DatabaseError as exc:
            raise BadInput(_corrupt_message(self.path, exc)) from None
        finally:
            con.close()

    def _open(self) -> None:
        if self.home.exists() and not self.home.is_dir():
            raise BadInput(f"QuantBench's home {self.home} is a file, not a folder (set {ENV_HOME} or --home).")
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"QuantBench's home {self.home} cannot be created ({exc.strerror}).") from None
        if self.path.is_dir():
            raise BadInput(f"the history database {self.path} is a folder, not a file.")
        with self._connection() as con:
            if self._check_schema(con):
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
            _enable_wal(con)

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
        from core.events import (
            StudyFinished,
            StudyStarted,
            VariantFailed,
            VariantFinished,
        )

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


def _enable_wal(con: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch a new history to WAL. The switch needs the file to itself and SQLite answers "busy"
    at once rather than waiting, so a second process opening the same new history retries."""
    import time

    for attempt in range(attempts):
        try:
            con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.02 * (attempt + 1))
    con.execute("PRAGMA journal_mode = WAL")


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of deadlocking.
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _put_variant(con: sqlite3.Connection, study_id: str, index: int, result: VariantResult) -> None:
    verdict = result.verdict.overall.value if result.verdict is not None else ""
    con.execute(
        "INSERT OR REPLACE INTO variants (study_id, idx, label, status, result_json, verdict, samples)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            study_id, index, result.label, result.status.value,
            _dumps(variant_to_json(result, include_samples=False)), verdict, _pack(result.samples_ms),
        ),
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
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
