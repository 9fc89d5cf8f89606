"""How a variant's result is laid out in a row of the history's ``variants`` table.

Latency samples (10^5 and more per variant) are stored as raw little-endian
float64 bytes in their own column, not inside the variant's JSON: encoding and
decoding them as text took ~100 ms holding the interpreter lock, and the window
records from its worker thread, so every variant's end froze the GUI thread for
that long. Each variant's overall verdict has its own column as well.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from array import array
from datetime import UTC, datetime
from typing import Any

from core.errors import BadInput
from core.study.result import VariantResult, variant_from_json, variant_to_json


def variant_row(study_id: str, index: int, result: VariantResult) -> tuple[Any, ...]:
    """The values of ``result``'s row, encoded outside any lock (a retried transaction only writes again)."""
    verdict = result.verdict.overall.value if result.verdict is not None else ""
    return (
        study_id, index, result.label, result.status.value,
        dumps(variant_to_json(result, include_samples=False)), verdict, pack(result.samples_ms),
    )


def put_variant(con: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    """Insert (or replace) one row made by ``variant_row``."""
    con.execute(
        "INSERT OR REPLACE INTO variants (study_id, idx, label, status, result_json, verdict, samples)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        row,
    )


def variant_from_row(result_json: str, samples: bytes | None) -> VariantResult:
    """The VariantResult of a stored row, its samples included."""
    result = variant_from_json(json.loads(result_json))
    if samples:
        result.samples_ms = unpack(samples)
    return result


def pack(samples: Any) -> bytes | None:
    """Samples as little-endian float64 bytes (None when there are none)."""
    if samples is None or len(samples) == 0:
        return None
    packed = array("d", samples)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack(blob: bytes) -> list[float]:
    """The samples ``pack`` stored; BadInput when the bytes were cut short."""
    if len(blob) % 8:
        raise BadInput("a stored variant's latency samples are truncated; the history file is damaged.")
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def dumps(value: Any) -> str:
    """Compact JSON for a column."""
    # NaN survives a round trip through Python's json; the store is not an interchange format.
    return json.dumps(value, separators=(",", ":"))


def now() -> str:
    """The current time as the history stores it (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
