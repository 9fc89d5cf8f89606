"""`csv:PATH`: a numeric table, one sample per row, the label in one column.

The label column is ``spec.label_column`` (a header name or a 0-based index, negative
counting from the end) or else the last column; with ``Task.UNLABELLED`` and no label
column every column is a feature. The first row is a header when any of its cells is not
a number. Rows and columns in messages are counted from 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.datasets.base import Dataset
from core.datasets.check import conform_to_input, infer_task
from core.errors import BadInput
from core.spec import DatasetSpec, Task

if TYPE_CHECKING:
    from core.models.loaded import TensorInfo

_DELIMITERS = ",;\t"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def load_csv(spec: DatasetSpec, model_input: TensorInfo | None = None) -> Dataset:
    """Read a numeric CSV file into float32 features and (optional) labels."""
    text = spec.describe()
    header, rows = _read_rows(Path(spec.location).expanduser(), text)
    width = len(rows[0][1])
    label_at = _label_index(spec, header, width, text)
    table = _to_numbers(rows, header, text)
    if label_at is None:
        x, y = table, None
    else:
        if width == 1:
            raise BadInput(f"{text}: the file has only the label column and no feature columns.")
        x = np.delete(table, label_at, axis=1)
        y = table[:, label_at]
    return Dataset(
        x=conform_to_input(x, model_input, text),
        y=y,
        task=infer_task(y),
        spec=text,
        preprocessing="none (numbers used as written)",
    )


def _read_rows(path: Path, text: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """The header (or None) and every non-blank row with its line number."""
    if not path.is_file():
        raise BadInput(f"{text}: no such file.")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{text}: not a UTF-8 text file.") from None
    if "\0" in content:
        raise BadInput(f"{text}: not a text file (it contains NUL bytes).")
    lines = content.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise BadInput(f"{text}: the file is empty.")
    delimiter = max(_DELIMITERS, key=first.count)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:  # e.g. a field over csv's size limit
        raise BadInput(f"{text}: line {reader.line_num} cannot be read as CSV ({exc}).") from None
    if not rows:
        raise BadInput(f"{text}: the file holds only separators, no values.")
    header = None
    # Empty cells do not make a header: a data row with a gap must be reported, not skipped.
    if any(c and not _is_number(c) for c in rows[0][1]):
        header = rows[0][1]
        rows = rows[1:]
    if not rows:
        raise BadInput(f"{text}: the file has a header but no data rows.")
    width = len(header) if header is not None else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise BadInput(f"{text}: row {line} has {len(row)} columns but the file has {width}.")
    return header, rows


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


def _to_numbers(rows: list[tuple[int, list[str]]], header: list[str] | None, text: str) -> np.ndarray:
    table = np.empty((len(rows), len(rows[0][1])), dtype=np.float64)
    for r, (line, row) in enumerate(rows):
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
            table[r, c] = value
    return table.astype(np.float32)


def _column_name(index: int, header: list[str] | None) -> str:
    if header is not None and header[index]:
        return f"column {index + 1} ({_shown(header[index])})"
    return f"column {index + 1}"


def _shown(cell: str, limit: int = 40) -> str:
    """A cell quoted for a message, shortened so a huge cell cannot swamp it."""
    return repr(cell if len(cell) <= limit else cell[:limit] + "...")
