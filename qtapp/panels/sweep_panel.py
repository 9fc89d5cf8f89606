"""The Sweep view's table: one row per study of the sweep, filled in as each study changes state.

Its columns and their text are the terminal's (``core.sweep.outcome.table_row``); a finished study's row opens it
from the history on a double-click (``study_activated``). Layout and slots only.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from core.sweep.outcome import TABLE_HEADERS, StudyOutcome, StudyState, table_row, timing_text

STATUS_COLUMN = TABLE_HEADERS.index("Status")
STUDY_COLUMN = TABLE_HEADERS.index("Study")
#: Rows whose study is in the history, and so can be opened.
OPENABLE = (StudyState.DONE, StudyState.SKIPPED)


class SweepTable(QTableWidget):
    """The studies of one sweep; ``show_outcome`` writes a study's row, ``study_activated`` names one to open."""

    #: A study id: the user asked to open this finished study (double-click, or Enter on its row).
    study_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(TABLE_HEADERS), parent)
        self.setHorizontalHeaderLabels(list(TABLE_HEADERS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TABLE_HEADERS.index("Schemes"), QHeaderView.ResizeMode.Stretch)
        self._states: dict[int, StudyState] = {}
        self._colours: dict[StudyState, QColor] = {}
        # "activated": a double-click, or Enter on the row (once each: not also cellDoubleClicked).
        self.activated.connect(lambda index: self._activated(index.row()))

    def set_colours(self, good: str, bad: str, muted: str) -> None:
        """The theme's colours for done, failed and waiting rows' status cells."""
        self._colours = {StudyState.DONE: QColor(good), StudyState.FAILED: QColor(bad),
                         StudyState.QUEUED: QColor(muted), StudyState.SKIPPED: QColor(muted),
                         StudyState.CANCELLED: QColor(muted)}

    def set_outcomes(self, outcomes: list[StudyOutcome]) -> None:
        """Start over with these studies (a new sweep)."""
        self.setRowCount(0)
        self._states.clear()
        for outcome in outcomes:
            self.show_outcome(outcome)

    @Slot(object)
    def show_outcome(self, outcome: StudyOutcome) -> None:
        """Write ``outcome``'s row (added when the table does not have it yet)."""
        row = outcome.index
        if row >= self.rowCount():
            self.setRowCount(row + 1)
        self._states[row] = outcome.state
        for column, text in enumerate(table_row(outcome)):
            item = self.item(row, column)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(row, column, item)
            item.setText(text)
        status = self.item(row, STATUS_COLUMN)
        status.setToolTip(outcome.error or "")
        colour = self._colours.get(outcome.state)
        status.setForeground(QBrush(colour) if colour is not None else QBrush())
        where = self.item(row, TABLE_HEADERS.index("Where"))
        where.setToolTip(_where_tip(outcome))

    def row_text(self, row: int) -> list[str]:
        """The texts of a row, as shown."""
        return [self.item(row, c).text() if self.item(row, c) else "" for c in range(self.columnCount())]

    def openable_study(self, row: int) -> str | None:
        """The history id of the study in ``row`` when it can be opened, else None."""
        item = self.item(row, STUDY_COLUMN)
        if self._states.get(row) not in OPENABLE or item is None or item.text() in ("", "-"):
            return None
        return item.text()

    def _activated(self, row: int) -> None:
        study = self.openable_study(row)
        if study is not None:
            self.study_activated.emit(study)


def _where_tip(outcome: StudyOutcome) -> str:
    """Where the study's figures were measured, in full."""
    p = outcome.placement
    if not p.get("host"):
        return ""
    lines = [f"host {p['host']}", f"node {p.get('node')}"]
    if p.get("target"):
        lines.append(f"target device {p['target']}")
    if p.get("cpu"):
        lines.append(f"CPU {p['cpu']}, {p.get('threads')} threads")
    timing = timing_text(p)
    if timing == "not exclusive":
        lines.append("the node offers no quantbench_timing resource: its timings were not exclusive")
    elif timing == "alone":
        lines.append("timed alone: no other study of the sweep was on its node meanwhile")
    elif timing:
        lines.append(f"timed {timing} of the sweep building or evaluating on its node")
    if p.get("other_load_cores") is not None:
        lines.append(f"other processes kept {p['other_load_cores']:.1f} cores busy while it timed")
    return "\n".join(lines)
