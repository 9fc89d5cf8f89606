"""`csv:PATH`: a numeric table, one sample per row, the label in one column.

The label column is ``spec.label_column`` (a header name or a 0-based index, negative
counting from the end) or else the last column; with ``Task.UNLABELLED`` and no label
column every column is a feature. The first row is a header when any of its cells is not
a number. Rows and columns in messages are counted from 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input, infer_task
from core.errors import BadInput
from core.study.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

_DELIMITERS = ",;\t"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The most data rows (samples) a CSV dataset may have without a sample limit; past it the file is
#: refused. With a limit (--limit N) the rows after the first N are never read, whatever their number.
MAX_ROWS = 5_000_000
#: The longest line read: csv's own field limit (131072 characters) does not bound a line of many fields.
MAX_LINE_CHARS = 1 << 22
#: Values parsed between two checks of the memory the table takes (about 10 MB as Python floats).
_CHUNK_VALUES = 1 << 18
#: Copies of the float32 table alive at once while it is finished (joined, label split off, conformed).
_TABLE_COPIES = 3


def load_csv(spec: DatasetSpec, model_input: TensorInfo | None = None) -> Dataset:
    """Read a numeric CSV file into float32 features and (optional) labels.

    The file is streamed: rows become float32 as they are read and the table's memory is
    checked as it grows; without ``spec.limit`` the row count is capped (``MAX_ROWS``), with
    it only the first that many rows are read at all.
    """
    text = spec.describe()
    table, label_at, stopped = _read_table(Path(spec.location).expanduser(), spec, text)
    width = table.shape[1]
    if label_at is None:
        x, y = table, None
    else:
        if width == 1:
            raise BadInput(f"{text}: the file has only the label column and no feature columns.")
        x = np.delete(table, label_at, axis=1)
        y = table[:, label_at].copy()  # a copy, not a view, so the whole table can be freed
    del table
    ds = Dataset(
        x=conform_to_input(x, model_input, text),
        y=y,
        task=infer_task(y),
        spec=text,
        preprocessing="none (numbers used as written)",
    )
    if stopped:
        ds.notes.append(f"Evaluating the first {len(ds)} rows; the rest of the file was not read.")
    return ds


def _read_table(path: Path, spec: DatasetSpec, text: str) -> tuple[np.ndarray, int | None, bool]:
    """The float32 table of every data row (the first ``spec.limit`` ones with a limit), the label
    column's index, and whether rows were left unread because of the limit.

    Nothing but the current chunk of rows is held as text; BadInput names the line at fault.
    """
    if not path.is_file():
        raise BadInput(f"{text}: {'is a folder, not a CSV file' if path.is_dir() else 'no such file'}.")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return _parse(fh, spec, text)
    except UnicodeDecodeError:
        raise BadInput(f"{text}: not a UTF-8 text file.") from None


def _parse(fh: Any, spec: DatasetSpec, text: str) -> tuple[np.ndarray, int | None, bool]:
    from core.models.limits import memory_budget_bytes

    lines = _lines(fh, text)
    first, skipped = _first_line_with_text(lines, text)
    delimiter = max(_DELIMITERS, key=first.count)
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    limit = spec.limit
    budget = memory_budget_bytes()
    header: list[str] | None = None
    width = 0
    label_at: int | None = None
    seen_row = stopped = False
    rows = 0
    chunk: list[list[float]] = []
    parts: list[np.ndarray] = []
    try:
        for raw in reader:
            row = [c.strip() for c in raw]
            if not any(row):
                continue
            line = reader.line_num + skipped
            if not seen_row:
                seen_row = True
                # Empty cells do not make a header: a data row with a gap must be reported, not skipped.
                if any(c and not _is_number(c) for c in row):
                    header = row
                width = len(row)
                label_at = _label_index(spec, header, width, text)
                if header is not None:
                    continue
            if limit is not None and rows >= limit:
                stopped = True
                break
            _check_row(row, width, rows, limit, line, text)
            chunk.append(_numbers(row, line, header, text))
            rows += 1
            if len(chunk) * width >= _CHUNK_VALUES:
                parts.append(np.array(chunk, dtype=np.float32))
                chunk = []
                _check_memory(rows, width, line, budget, text)
    except csv.Error as exc:  # e.g. a field over csv's size limit
        raise BadInput(f"{text}: line {reader.line_num + skipped} cannot be read as CSV ({exc}).") from None
    if not seen_row:
        raise BadInput(f"{text}: the file holds only separators, no values.")
    if rows == 0:
        raise BadInput(f"{text}: the file has a header but no data rows.")
    if chunk:
        parts.append(np.array(chunk, dtype=np.float32))
    del chunk
    table = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return table, label_at, stopped


def _first_line_with_text(lines: Iterator[str], text: str) -> tuple[str, int]:
    """The first line with text, read from ``lines``, and the number of blank lines before it
    (csv's line numbers start after them); BadInput for a file with none."""
    skipped = 0
    first = ""
    for first in lines:
        if first.strip():
            break
        skipped += 1
    if not first.strip():
        raise BadInput(f"{text}: the file is empty.")
    return first, skipped


def _check_row(row: list[str], width: int, rows: int, limit: int | None, line: int, text: str) -> None:
    """BadInput for a data row with the wrong number of columns, or one past MAX_ROWS without a limit."""
    if len(row) != width:
        raise BadInput(f"{text}: row {line} has {len(row)} columns but the file has {width}.")
    if limit is None and rows >= MAX_ROWS:
        raise BadInput(
            f"{text}: the file has more than {MAX_ROWS:,} data rows (reading stopped at row {line}), more "
            "than QuantBench reads; pass --limit N to evaluate only its first N rows."
        )


def _lines(fh: Any, text: str) -> Iterator[str]:
    """The file's lines, none longer than ``MAX_LINE_CHARS``; BadInput for a longer one or a NUL byte."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if "\0" in line:
            raise BadInput(f"{text}: not a text file (it contains NUL bytes).")
        if len(line) > MAX_LINE_CHARS:
            raise BadInput(
                f"{text}: line {number} is longer than {MAX_LINE_CHARS:,} characters, more than a row of numbers needs."
            )
        yield line


def _check_memory(rows: int, width: int, line: int, budget: int | None, text: str) -> None:
    """BadInput, naming the rows read so far, once the table would not fit in the memory that can be spared."""
    from core.models.limits import format_bytes

    need = rows * width * 4 * _TABLE_COPIES
    if budget is not None and need > budget:
        raise BadInput(
            f"{text}: its first {rows:,} rows of {width} values (up to line {line}) already need "
            f"{format_bytes(need)} to load but only {format_bytes(budget)} of memory can be spared; "
            "pass --limit N to evaluate only its first N rows."
        )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_index(spec: DatasetSpec, header: list[str] | None, width: int, text: str) -> int | None:
    wanted = spec.label_column
    if wanted is None:
        return None if spec.task is Task.UNLABELLED else width - 1
    if header is not None and wanted in header:
        return header.index(wanted)
    try:
        index = int(wanted)
    except ValueError:
        if header is None:
            where = "the file has no header row"
        else:
            shown = header[:12] + (["..."] if len(header) > 12 else [])  # a wide file must not swamp the message
            where = f"columns are {', '.join(shown)}"
        raise BadInput(f"{text}: no label column named {wanted!r} ({where}).") from None
    if not -width <= index < width:
        raise BadInput(f"{text}: label column index {index} is out of range for {width} columns.")
    return index % width


def _numbers(row: list[str], line: int, header: list[str] | None, text: str) -> list[float]:
    """The cells of data row ``row`` (at ``line``) as numbers a float32 holds; BadInput naming the cell otherwise."""
    values = []
    for c, cell in enumerate(row):
        try:
            value = float(cell)
        except ValueError:
            what = "is empty" if not cell else f"is {_shown(cell)}, not a number"
            raise BadInput(f"{text}: row {line}, {_column_name(c, header)} {what}.") from None
        if not math.isfinite(value):
            raise BadInput(
                f"{text}: row {line}, {_column_name(c, header)} is {_shown(cell)}; "
                "missing or infinite values are not allowed."
            )
        if abs(value) > _FLOAT32_MAX:  # would become infinite in the float32 the models take
            raise BadInput(
                f"{text}: row {line}, {_column_name(c, header)} is {_shown(cell)}, "
                "beyond the range of 32-bit floats."
            )
        values.append(value)
    return values


def _column_name(index: int, header: list[str] | None) -> str:
    if header is not None and header[index]:
        return f"column {index + 1} ({_shown(header[index])})"
    return f"column {index + 1}"


def _shown(cell: str, limit: int = 40) -> str:
    """A cell quoted for a message, shortened so a huge cell cannot swamp it."""
    return repr(cell if len(cell) <= limit else cell[:limit] + "...")
