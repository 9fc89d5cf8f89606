"""The History panel: every recorded study, newest first, and what can be done with them.

Reading the history (and each study's schemes and best verdict, read from the
store's spec and verdict columns, never from the stored results) runs in the background; so do rename, note and delete,
since every write to the store is synced to disk. The panel only asks: the
window opens, compares or re-runs the studies it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.printable import printable
from core.reports.format import local_time
from core.reports.names import model_name
from qtapp.models.stored_study import best_of_verdicts
from qtapp.threads.tasks import TaskRunner

COLUMNS = ("Model", "Dataset", "Date", "Schemes", "Variants", "Status", "Best verdict", "Name", "Note")
MODEL, DATASET, DATE, SCHEMES, VARIANTS, STATUS, BEST, NAME, NOTE = range(len(COLUMNS))
ID_ROLE = Qt.ItemDataRole.UserRole
EMPTY_TEXT = "No studies yet: every study you run is recorded here."


@dataclass(frozen=True)
class HistoryRow:
    """One line of the list: the store's summary plus what needs the stored variants."""

    summary: Any  # core.history.store.StudySummary
    schemes: str
    best: str
    failed: int = 0  # variants that failed: "2/2" alone read as two measured


#: study id -> (status, variants finished, schemes, best verdict, variants failed); a study's details change
#: only while it runs, so a finished one is read from the store once per window.
_DetailsCache = dict[str, tuple[str, int, str, str, int]]


def load_rows(cache: _DetailsCache) -> tuple[list[HistoryRow], _DetailsCache]:
    """Read the history (in a background thread); ``cache`` spares re-reading unchanged studies."""
    from qtapp.threads.recording import open_store

    store = open_store()
    rows: list[HistoryRow] = []
    fresh: _DetailsCache = {}
    for s in store.list_studies():
        known = cache.get(s.id)
        if known is not None and known[:2] == (s.status, s.variants_finished):
            details = known
        else:
            verdicts = store.verdicts(s.id)
            schemes = _schemes(store.spec_dict(s.id), [label for label, _, _ in verdicts])
            failed = sum(1 for _, status, _ in verdicts if status == "failed")
            details = (s.status, s.variants_finished, schemes, best_of_verdicts(verdicts), failed)
        fresh[s.id] = details
        rows.append(HistoryRow(s, details[2], details[3], details[4]))
    return rows, fresh


def _schemes(spec: dict[str, Any], labels: list[str]) -> str:
    """The variants the study planned (from its spec), else the ones it stored (``labels``, baseline first)."""
    names = []
    for v in (spec or {}).get("variants", []):
        scheme = v.get("scheme")
        names.append(scheme["id"] if scheme else "file:" + str(v.get("path", "")).rsplit("/", 1)[-1])
    if not names:
        names = labels[1:]
    return ", ".join(names)


class HistoryPanel(QWidget):
    #: Show this study in the results view.
    open_requested = Signal(str)
    #: Show these studies side by side.
    compare_requested = Signal(list)
    #: Run this study's spec again.
    rerun_requested = Signal(str)
    #: These studies were deleted from the history.
    deleted = Signal(list)
    #: The list was (re)loaded from the store.
    loaded = Signal()

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._cache: _DetailsCache = {}
        self._rows: list[HistoryRow] = []
        self._loading = False
        self._again = False
        self._edits = 0
        self._busy = False  # a study is running: the results view is taken

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("historyTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(self._double_clicked)

        self.open_button = self._button(
            "&Open", "Show the study in the results view, as it ran (double-click).", self.open_selected
        )
        self.compare_button = self._button(
            "&Compare", "Show the selected studies side by side (select two or more).", self.compare_selected
        )
        self.rename_button = self._button("&Rename…", "Give the study a name.", self.ask_rename)
        self.note_button = self._button("&Note…", "Write a note on the study.", self.ask_note)
        self.delete_button = self._button("&Delete…", "Remove the selected studies from the history.", self.ask_delete)
        self.rerun_button = self._button("Re-&run", "Load the study's setup and run it again.", self.rerun_selected)
        self.message = QLabel(EMPTY_TEXT, self)
        self.message.setObjectName("mutedLabel")
        self.message.setWordWrap(True)

        buttons = QHBoxLayout()
        for b in (self.open_button, self.compare_button, self.rerun_button, self.rename_button, self.note_button,
                  self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self._update_buttons()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text, self)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # --- reading -------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A list load or an edit is under way."""
        return self._loading or self._edits > 0

    @property
    def rows(self) -> list[HistoryRow]:
        return list(self._rows)

    def refresh(self) -> None:
        """Reload the list in the background (once more after the current load, if one runs)."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        cache = dict(self._cache)
        self._tasks.submit(lambda: load_rows(cache), self._rows_loaded, self._load_failed)

    def _rows_loaded(self, payload: tuple[list[HistoryRow], _DetailsCache]) -> None:
        self._loading = False
        rows, self._cache = payload
        self._show(rows)
        self.message.setText("" if rows else EMPTY_TEXT)
        self.message.setVisible(not rows)
        self._reload_if_asked()
        self.loaded.emit()

    def _load_failed(self, message: str) -> None:
        self._loading = False
        self.message.setText(f"The history cannot be read: {message}")
        self.message.setVisible(True)
        self._reload_if_asked()
        self.loaded.emit()

    def _reload_if_asked(self) -> None:
        if self._again:
            self._again = False
            self.refresh()

    def _show(self, rows: list[HistoryRow]) -> None:
        selected = set(self.selected_ids())
        self._rows = rows
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            s = row.summary
            failed = f", {row.failed} failed" if row.failed else ""
            texts = {
                MODEL: model_name(s.model), DATASET: s.dataset, DATE: local_time(s.created), SCHEMES: row.schemes,
                VARIANTS: f"{s.variants_finished}/{s.variants_planned}{failed}", STATUS: s.status, BEST: row.best,
                NAME: s.name, NOTE: s.note.replace("\n", " "),
            }
            for col, text in texts.items():
                item = QTableWidgetItem(printable(text))  # names and notes come from files and users
                item.setData(ID_ROLE, s.id)
                item.setToolTip(self._tooltip(s, col, text))
                self.table.setItem(i, col, item)
        self.table.resizeColumnsToContents()
        for col in (SCHEMES, NOTE):  # long free text: shortened, whole in the tooltip
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), 260))
        self.select_ids([s for s in selected if any(r.summary.id == s for r in rows)])
        self._update_buttons()

    @staticmethod
    def _tooltip(s: Any, col: int, text: str) -> str:
        if col == MODEL:
            return f"{s.model}\nstudy {s.id}"
        if col == STATUS and s.status == "interrupted":
            return "The program running it stopped before the end; the variants that finished are kept."
        return text

    # --- selection -----------------------------------------------------
    def selected_ids(self) -> list[str]:
        """The selected studies, in list order (newest first)."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._rows[r].summary.id for r in rows if r < len(self._rows)]

    def select_ids(self, ids: list[str]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for r, row in enumerate(self._rows):
            if row.summary.id in ids:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    def summary(self, study_id: str) -> Any | None:
        return next((r.summary for r in self._rows if r.summary.id == study_id), None)

    def set_busy(self, busy: bool) -> None:
        """While a study runs, the results view is the live study's: no opening or comparing."""
        self._busy = busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        ids = self.selected_ids()
        running = any((self.summary(i) or _NoSummary).status == "running" for i in ids)
        self.open_button.setEnabled(len(ids) == 1 and not self._busy)
        self.compare_button.setEnabled(len(ids) >= 2 and not self._busy)
        self.rerun_button.setEnabled(len(ids) == 1 and not self._busy)
        self.rename_button.setEnabled(len(ids) == 1)
        self.note_button.setEnabled(len(ids) == 1)
        self.delete_button.setEnabled(bool(ids) and not running)

    # --- asking the window ---------------------------------------------
    def _double_clicked(self, _item: QTableWidgetItem) -> None:
        self.open_selected()

    def open_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1 and not self._busy:
            self.open_requested.emit(ids[0])

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) >= 2 and not self._busy:
            self.compare_requested.emit(list(reversed(ids)))  # oldest first, as they were run

    def rerun_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1 and not self._busy:
            self.rerun_requested.emit(ids[0])

    # --- editing -------------------------------------------------------
    def ask_rename(self) -> None:
        ids = self.selected_ids()
        s = self.summary(ids[0]) if len(ids) == 1 else None
        if s is None:
            return
        name, ok = QInputDialog.getText(self, "Rename study", "Name:", text=s.name)
        if ok:
            self.rename(s.id, name)

    def ask_note(self) -> None:
        ids = self.selected_ids()
        s = self.summary(ids[0]) if len(ids) == 1 else None
        if s is None:
            return
        note, ok = QInputDialog.getMultiLineText(self, "Note on the study", "Note:", s.note)
        if ok:
            self.set_note(s.id, note)

    def ask_delete(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        what = "this study" if len(ids) == 1 else f"these {len(ids)} studies"
        answer = QMessageBox.question(
            self, "Delete studies", f"Delete {what} from the history? Their results cannot be recovered.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(ids)

    def rename(self, study_id: str, name: str) -> None:
        self._edit(lambda store: store.rename(study_id, name))

    def set_note(self, study_id: str, note: str) -> None:
        self._edit(lambda store: store.set_note(study_id, note))

    def delete(self, ids: list[str]) -> None:
        def delete_all(store: Any) -> list[str]:
            for study_id in ids:
                store.delete(study_id)
            return list(ids)

        self._edit(delete_all, then=self.deleted.emit)

    def _edit(self, change, then=None) -> None:
        def job():
            from qtapp.threads.recording import open_store

            return change(open_store())

        def done(result) -> None:
            self._edits -= 1
            if then is not None:
                then(result)
            self.refresh()

        def failed(message: str) -> None:
            self._edits -= 1
            self.message.setText(f"The history was not changed: {message}")
            self.message.setVisible(True)
            self.refresh()

        self._edits += 1
        self._tasks.submit(job, done, failed)


class _NoSummary:
    status = ""
