"""Which of the summary table's columns show: right-click the table's header to tick them.

The variant and its verdict always show. A choice is kept by column title, so it holds for the
next study (and for every task whose table has that column)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtWidgets import QMenu

from qtapp.panels.summary_table import VERDICT_COLUMN, SummaryTable


class ColumnChooser(QObject):
    def __init__(self, table: SummaryTable) -> None:
        super().__init__(table)
        self._table = table
        self.hidden: set[str] = set()
        header = table.view.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._open_menu)
        header.setToolTip("Right-click to choose the columns")
        # A new study rebuilds the columns (another task has others): the choice is applied again.
        table.model.modelReset.connect(self.apply)

    def titles(self) -> list[str]:
        """The columns that can be hidden, left to right."""
        model = self._table.model
        columns = range(VERDICT_COLUMN + 1, model.columnCount())
        return [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in columns]

    def menu(self) -> QMenu:
        """A menu with one tick per column that can be hidden."""
        menu = QMenu(self._table)
        for title in self.titles():
            action = menu.addAction(title)
            action.setCheckable(True)
            action.setChecked(title not in self.hidden)
            action.toggled.connect(lambda on, title=title: self.set_shown(title, on))
        return menu

    def set_shown(self, title: str, shown: bool) -> None:
        (self.hidden.discard if shown else self.hidden.add)(title)
        self.apply()
        self._table.fit_columns()

    def is_shown(self, title: str) -> bool:
        titles = self.titles()
        return title in titles and not self._table.view.isColumnHidden(VERDICT_COLUMN + 1 + titles.index(title))

    def apply(self) -> None:
        for offset, title in enumerate(self.titles()):
            self._table.view.setColumnHidden(VERDICT_COLUMN + 1 + offset, title in self.hidden)

    def _open_menu(self, pos: QPoint) -> None:
        menu = self.menu()
        menu.exec(self._table.view.horizontalHeader().mapToGlobal(pos))
        menu.deleteLater()
