"""The details of the variant selected in the summary table (the view of qtapp.models.variant_details)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from qtapp.models.variant_details import CLASS_COLUMNS, VariantDetails
from qtapp.panels.scroll_page import fill_with_scrolling

NO_SELECTION = "Select a variant in the table above to see what changed in it, every figure measured, and its classes."
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
#: The explanation is not squeezed narrower than this beside the figures: below it, the figures go under it.
TEXT_MIN_PX = 320


class DetailsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.details: VariantDetails | None = None
        self.title = QLabel(NO_SELECTION)
        self.title.setObjectName("chartTitle")
        self.title.setWordWrap(True)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.figures = _table(["Figure", "Value"])
        self.classes_title = QLabel("Per class: baseline against this variant, the largest recall drop first")
        self.classes_title.setObjectName("chartTitle")
        self.classes_note = QLabel()
        self.classes_note.setObjectName("mutedLabel")
        self.classes = _table(list(CLASS_COLUMNS))

        # Side by side when both fit whole, else the figures under the explanation (never cut).
        top = self.top = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        top.addWidget(self.text, 3)
        top.addWidget(self.figures, 2)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addWidget(self.classes_title)
        layout.addWidget(self.classes_note)
        layout.addWidget(self.classes)
        layout.addStretch(1)
        fill_with_scrolling(self, page)
        self.show_details(None)

    def show_details(self, details: VariantDetails | None) -> None:
        """Show ``details`` (None: no variant selected)."""
        self.details = details
        self.title.setText(NO_SELECTION if details is None else details.title)
        sections = details.sections if details else []
        self.text.setText("".join(
            f"<p><b>{escape(heading)}</b><br>{'<br>'.join(escape(line) for line in lines)}</p>"
            for heading, lines in sections
        ))
        self.text.setVisible(bool(sections))
        figures = details.figures if details else []
        _fill(self.figures, [[name, value] for name, value in figures])
        self.figures.setVisible(bool(figures))
        rows = details.classes if details else []
        _fill(self.classes, [row.cells() for row in rows])
        note = details.classes_note if details else None
        self.classes_note.setText(note or "")
        self.classes_note.setVisible(bool(note))
        self.classes_title.setVisible(bool(rows or note))
        self.classes.setVisible(bool(rows))
        self._measure()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._measure()  # filled while its tab was hidden, the tables read narrower and shorter than shown

    def _measure(self) -> None:
        """Size the tables to their styled contents (when filled and when shown, not on every resize)."""
        self.figures.setMinimumWidth(_whole_width(self.figures))
        for table in (self.figures, self.classes):
            _fit_height(table)
        self._arrange()

    def _arrange(self) -> None:
        side_by_side = self.width() >= TEXT_MIN_PX + self.figures.minimumWidth() + 40
        direction = QBoxLayout.Direction.LeftToRight if side_by_side else QBoxLayout.Direction.TopToBottom
        if self.top.direction() != direction:
            self.top.setDirection(direction)

    # --- reading (tests) ----------------------------------------------
    def figure_texts(self) -> dict[str, str]:
        return {self.figures.item(r, 0).text(): self.figures.item(r, 1).text() for r in range(self.figures.rowCount())}

    def class_rows(self) -> list[list[str]]:
        return [[self.classes.item(r, c).text() for c in range(self.classes.columnCount())]
                for r in range(self.classes.rowCount())]


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)  # compact: more figures in view
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _whole_width(table: QTableWidget) -> int:
    """The width that shows every column of ``table`` whole."""
    table.resizeColumnsToContents()
    columns = sum(table.horizontalHeader().sectionSizeHint(c) if table.rowCount() == 0 else table.columnWidth(c)
                  for c in range(table.columnCount()))
    return columns + 2 * table.frameWidth() + 4


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c > 0:
                item.setTextAlignment(_RIGHT)
            table.setItem(r, c, item)
    _fit_height(table)


def _fit_height(table: QTableWidget) -> None:
    """Every row shown: the page scrolls, not the table (a scroll bar of its own would also take the width
    its last column needs)."""
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(table.rowCount()))
    table.setFixedHeight(height + 2)
