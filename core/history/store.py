"""The study history: every study in a local SQLite database, each variant committed as it finishes.

The database lives in QuantBench's home folder: the ``home`` argument, else the
``QUANTBENCH_HOME`` environment variable, else the user data folder
(platformdirs). It runs in WAL mode, so the window can list and open studies
while a study process writes; every call opens its own short-lived connection,
so a store object may be shared by threads and survives a fork.

A study is inserted as "running" with the writing process's id; each variant is
a committed row the moment it finishes (``core.history.recorder`` feeds a study's
events in), so a study killed with SIGKILL keeps every finished variant and is
shown as "interrupted" once its process is gone (``core.history.liveness``). A
file that is not a QuantBench history, is corrupt, or was written by a newer
schema is refused with one clear sentence and never written to
(``core.history.schema``, which also upgrades schema 1 files in place).

Several processes write one history at once (two or three ``quantbench run`` and
the window): every write is one ``BEGIN IMMEDIATE`` transaction, SQLite waits up
to ``_BUSY_MS`` for the lock, and a transaction (or an opening) that still meets
"busy" or "locked" (SQLite does not wait in every case, e.g. while another
connection recovers the WAL) is rolled back and run again whole, with a growing,
jittered pause, for up to ``_RETRY_S``: "database is locked" never reaches the
user. Any other failure (a full disk, a read-only file) is rolled back, so the file
keeps every study committed before, and is BadInput with one sentence
(``core.history.transactions.failure_sentence``).
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.errors import BadInput
from core.files.home import ENV_HOME, resolve_home
from core.history.liveness import boot_id, owner_alive, process_start
from core.history.schema import DB_NAME, SCHEMA_VERSION, STATUSES, prepare
from core.history.transactions import failure_sentence, is_busy, no_room_for_index, transaction
from core.history.variant_rows import dumps, now, put_variant, variant_from_row, variant_row
from core.study.result import StudyResult, VariantResult

__all__ = ["DB_NAME", "SCHEMA_VERSION", "STATUSES", "StudyStore", "StudySummary"]

#: SQLite's own wait for the write lock, per attempt.
_BUSY_MS = 10_000
#: How long a transaction that still meets "busy" is retried, in all, before the user is told.
_RETRY_S = 60.0
_T = TypeVar("_T")


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
            results=[variant_from_row(v[0], v[1]) for v in variants],
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
            with transaction(con):
                con.execute("DELETE FROM variants WHERE study_id = ?", (sid,))
                con.execute("DELETE FROM studies WHERE id = ?", (sid,))

        self._run(work)

    # ---- writing (used by core.history.recorder.StudyRecorder) -------------------------------------

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
            str(dataset.get("spec", "")), str(dataset.get("task", "")), len(labels), dumps(labels),
            dumps(spec), dumps(model), dumps(dataset), dumps(environment), dumps(timing),
            pid, process_start(pid), boot_id(), socket.gethostname(),
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
        row = variant_row(study_id, index, result)
        self._run(lambda con: put_variant(con, row), write=True)

    def finish_study(self, result: StudyResult) -> None:
        """Store the final result (verdicts are recomputed at the end) and its status, in one transaction."""
        study = (
            result.status, result.created, dumps(result.spec), dumps(result.model), dumps(result.dataset),
            dumps(result.environment), dumps(result.timing), result.duration_s,
        )
        # Encoded once, outside the lock: a retried transaction only writes again.
        rows = [variant_row(result.study_id, index, variant) for index, variant in enumerate(result.results)]

        def work(con: sqlite3.Connection) -> None:
            exists = con.execute("SELECT 1 FROM studies WHERE id = ?", (result.study_id,)).fetchone()
            if exists is None:
                raise BadInput(f"study {result.study_id} was never started in {self.path}.")
            con.execute(
                "UPDATE studies SET status = ?, created = ?, spec_json = ?, model_json = ?, dataset_json = ?,"
                " environment_json = ?, timing_json = ?, duration_s = ?, ended = ?,"
                # A search learns its candidates as it goes: more may have run than were planned at its start.
                " variants_planned = MAX(variants_planned, ?) WHERE id = ?",
                (*study, now(), len(rows), result.study_id),
            )
            con.execute("DELETE FROM variants WHERE study_id = ?", (result.study_id,))
            for row in rows:
                put_variant(con, row)

        self._run(work, write=True)

    def set_status(self, study_id: str, status: str) -> None:
        """Set a study's status (e.g. "interrupted" when its driver stopped early)."""
        if status not in STATUSES:
            raise ValueError(f"unknown study status {status!r}")
        self._run(
            lambda con: con.execute(
                "UPDATE studies SET status = ?, ended = ? WHERE id = ?", (status, now(), study_id)
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
            with transaction(con):
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
        if status == "running" and not owner_alive(row[10], row[11], row[12]):
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
        if status == "running" and not owner_alive(pid, start, boot):
            return self._mark_interrupted(con, sid)
        return status

    def _mark_interrupted(self, con: sqlite3.Connection, sid: str) -> str:
        # Persist it, so the answer no longer depends on whether the pid gets reused.
        try:
            with transaction(con):
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
                    with transaction(con):
                        return work(con)
                finally:
                    con.close()
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise  # QuantBench's own mistake, not the file's
            except sqlite3.DatabaseError as exc:
                if not write and not exclusive and no_room_for_index(exc):
                    exclusive = True
                    continue
                if not is_busy(exc):
                    raise BadInput(failure_sentence(exc, self.path, write)) from None
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
        self._run(lambda con: prepare(con, self.path))


_SUMMARY_SQL = (
    "SELECT s.id, s.created, s.status, s.name, s.note, s.model_path, s.model_format, s.dataset_spec, s.task,"
    " s.variants_planned, s.pid, s.pid_start, s.boot_id, s.duration_s,"
    " COUNT(v.idx), SUM(v.status = 'ok')"
    " FROM studies s LEFT JOIN variants v ON v.study_id = s.id"
)
