"""The history database's tables, its schema version, and the upgrade from schema 1.

A file is checked before anything is written to it: one that is not a QuantBench
history, is corrupt, or was written by a newer schema is refused with one clear
sentence and left untouched. A new file gets the tables of ``SCHEMA_VERSION``; a
schema 1 file is upgraded in place, in one transaction, on its first opening.

Schema 2 moved each variant's latency samples out of its JSON into a column of raw
little-endian float64 bytes (see ``core.history.variant_rows``) and added each
variant's overall verdict as a column, so the History list reads the best verdict
without loading any study.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from core.errors import BadInput
from core.files.home import ENV_HOME
from core.history.transactions import corrupt_message, transaction
from core.history.variant_rows import dumps, pack

SCHEMA_VERSION = 2
DB_NAME = "history.sqlite3"
#: Statuses a study can have; "running" becomes "interrupted" when its process is gone.
STATUSES = ("running", "finished", "cancelled", "interrupted", "failed")

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


def prepare(con: sqlite3.Connection, path: Path) -> None:
    """Check the file at ``path``, turn WAL on, create the schema or upgrade it.

    Safe to run again after "busy": two processes may open a new (or old-schema) history at once."""
    existing = check_schema(con, path)  # before anything is written: a foreign or damaged file stays untouched
    if str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        # Persistent once set; the switch needs the file to itself for a moment (else "busy": retried).
        con.execute("PRAGMA journal_mode = WAL")
    if existing:
        upgrade(con)
        return
    with transaction(con):
        # Another process may have created it while this one waited for the lock.
        if check_schema(con, path):
            return
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def upgrade(con: sqlite3.Connection) -> None:
    """Bring an older schema up to this one, in one transaction (a crash leaves the old file intact)."""
    (version,) = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    with transaction(con):
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
                (dumps(data), ((data.get("verdict") or {}).get("overall") or ""), pack(samples), study_id, idx),
            )
        con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def check_schema(con: sqlite3.Connection, path: Path) -> bool:
    """True when the file is a usable history; False when it is empty; BadInput otherwise."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return False
    if "schema_version" not in tables:
        raise BadInput(
            f"{path} is an SQLite database but not a QuantBench history; it was left untouched "
            f"(move it aside, or point {ENV_HOME} or --home elsewhere)."
        )
    row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    version = row[0] if row else None
    if not isinstance(version, int):
        raise BadInput(corrupt_message(path, "no schema version recorded"))
    if version > SCHEMA_VERSION:
        raise BadInput(
            f"the history database {path} was written by a newer QuantBench (history schema {version}; "
            f"this version reads up to {SCHEMA_VERSION}); it was left untouched: upgrade QuantBench or point "
            f"{ENV_HOME} or --home elsewhere."
        )
    if not {"studies", "variants"} <= tables:
        raise BadInput(corrupt_message(path, "tables are missing"))
    return True

