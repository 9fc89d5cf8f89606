"""The comparison table: one row per variant, verdicts coloured, thresholds written below."""

from __future__ import annotations

from dataclasses import asdict, replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QFontMetrics, QGuiApplication, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.study.spec import Thresholds
from qtapp.charts.palette import VariantPalette
from qtapp.models.study_state import Phase, StudyState
from qtapp.models.summary_columns import columns_for, failure_text, thresholds_text, verdict_tooltip
from qtapp.panels.elided_label import ElidedLabel
from qtapp.window.theme import Theme

_Index = QModelIndex | QPersistentModelIndex
TABLE_POINT_SIZE = 11
#: A long label is shortened in the middle to this width when the columns do not fit: at 1280 px the verdict,
#: quality, Speed and Size columns then stay in view ("prune-chann…:ratio=0.35", "20:30 / torc…int8-dynamic").
MAX_VARIANT_PX = 250
ROW_PX = 27
VERDICT_COLUMN = 1
FAILURE_COLUMN = 2  # a failed row's reason starts here and spans the rest of the row


#: The invalid index Qt passes for the root: one shared default (not a call per default argument).
_NO_PARENT = QModelIndex()

class SummaryModel(QAbstractTableModel):
    """Reads the StudyState; ``refresh`` says which rows changed."""

    def __init__(self, state: StudyState, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        self._state = state
        self._palette = palette
        self._theme = theme
        self._columns = columns_for("classification")
        self._cells: dict[str, list] = {}
        self._swatches: dict[str, QIcon] = {}
        self._bold = QFont()
        self._bold.setBold(True)

    def reset(self) -> None:
        self.beginResetModel()
        self._columns = columns_for(self._state.task, self._state.has_paired)
        self._cells = {}
        self.endResetModel()

    @property
    def task(self) -> str | None:
        """The study's task as the table shows it (its columns follow it)."""
        return self._state.task

    def columns_stale(self) -> bool:
        """Whether the study's columns changed since the last reset (paired rounds add theirs at the end)."""
        return self._columns != columns_for(self._state.task, self._state.has_paired)

    def refresh(self, labels: set[str], whole_rows: bool = False) -> None:
        """Re-read the rows of ``labels``. Only the cells whose text or grade changed are
        repainted (while a variant is timed that is one cell: its live latency), unless
        ``whole_rows`` (the theme, the failure span or the row's tooltip may have changed)."""
        last = self.columnCount() - 1
        for row, label in enumerate(self._state.labels):
            if label not in labels:
                continue
            old = self._cells.pop(label, None)
            if old is None or whole_rows or len(old) != last:
                self.dataChanged.emit(self.index(row, 0), self.index(row, last))
                continue
            new = [self._cell(label, col) for col in range(1, last + 1)]
            changed = [col for col, (a, b) in enumerate(zip(old, new, strict=True), start=1) if a != b]
            if changed:
                self.dataChanged.emit(self.index(row, changed[0]), self.index(row, changed[-1]))

    def _cell(self, label: str, col: int):
        # Views ask for every role of every cell on each paint; format a row once per change.
        row = self._cells.get(label)
        if row is None:
            v, base = self._state.variants[label], self._state.baseline_for(label)
            if base is None and v.index > 0:
                v = replace(v, index=0)  # another study's baseline, in a comparison: shown as a baseline
            row = self._cells[label] = [column.cell(v, base) for column in self._columns]
        return row[col - 1]

    def set_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.refresh(set(self._state.labels), whole_rows=True)

    def rowCount(self, parent: _Index = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._state.variants)

    def columnCount(self, parent: _Index = _NO_PARENT) -> int:
        return 0 if parent.isValid() else 1 + len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "Variant" if section == 0 else self._columns[section - 1].title
        if role == Qt.ItemDataRole.ToolTipRole and section > 0:
            return self._columns[section - 1].tooltip
        return None

    def is_failed_row(self, row: int) -> bool:
        v = self._state.variants[self._state.labels[row]]
        return v.phase is Phase.FAILED

    def _failure_cell(self, v, role: int):
        """The view spans this cell over a failed row: the reason is the whole row."""
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return failure_text(v)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor(self._theme.error_text))
        if role == Qt.ItemDataRole.FontRole:
            return self._bold
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        label = self._state.labels[index.row()]
        v = self._state.variants[label]
        col = index.column()
        if col == 0:
            return self._variant_cell(v, role)
        if v.phase is Phase.FAILED and col == FAILURE_COLUMN:
            return self._failure_cell(v, role)
        column = self._columns[col - 1]
        text, grade = self._cell(label, col)
        is_verdict = col == VERDICT_COLUMN
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == Qt.ItemDataRole.TextAlignmentRole:
            align = Qt.AlignmentFlag.AlignCenter if is_verdict else Qt.AlignmentFlag.AlignRight
            return int(align | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and grade is not None:
            color = QColor(self._theme.grade_color(grade))
            if not is_verdict:
                color.setAlpha(70)  # a tint on the detail cells; the verdict cell is solid
            return QBrush(color)
        if role == Qt.ItemDataRole.ForegroundRole and is_verdict and grade is not None:
            return QBrush(QColor(self._theme.grade_text_color(grade)))
        if role == Qt.ItemDataRole.FontRole and (is_verdict or grade is not None):
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            if is_verdict:
                return verdict_tooltip(v.result) or column.tooltip
            return (column.cell_tooltip(v) if column.cell_tooltip else "") or column.tooltip
        return None

    def _swatch(self, label: str) -> QIcon:
        # Asked for on every paint of the row; a pixmap per colour is made once.
        color = self._palette.color(label)
        icon = self._swatches.get(color.name())
        if icon is None:
            swatch = QPixmap(14, 14)
            swatch.fill(color)
            icon = self._swatches[color.name()] = QIcon(swatch)
        return icon

    def _variant_cell(self, v, role: int):
        if role == Qt.ItemDataRole.DisplayRole:
            return v.label
        if role == Qt.ItemDataRole.DecorationRole:
            return self._swatch(v.label)
        if role == Qt.ItemDataRole.FontRole:
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            r = v.result
            parts = [v.label, f"scheme: {v.scheme or (r.scheme if r else '')}"]
            if v.runtime or (r and r.runtime):
                parts.append(f"runtime: {v.runtime or r.runtime}")  # type: ignore[union-attr]
            if r is not None:
                parts += r.notes + r.advice
            parts += self._state.advice.get(v.label, [])
            return "\n".join(parts)
        return None

    def text(self, row: int, col: int) -> str:
        return str(self.data(self.index(row, col)) or "")

    def as_text(self) -> str:
        """The table as tab-separated text: a header line, then one line per variant.

        A failed row holds its reason in place of the numbers, as on screen."""
        columns = self.columnCount()
        header = [str(self.headerData(c, Qt.Orientation.Horizontal)) for c in range(columns)]
        lines = ["\t".join(header)]
        for row in range(self.rowCount()):
            last = FAILURE_COLUMN + 1 if self.is_failed_row(row) else columns
            cells = [self.text(row, c).replace("\t", " ").replace("\n", " ") for c in range(last)]
            lines.append("\t".join(cells))
        return "\n".join(lines) + "\n"


class _FailureSpanDelegate(QStyledItemDelegate):
    """Keeps a failed row's long reason (spanning the row) from widening its first column; the
    labels are elided in the middle (set on the view), every other cell at its end."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        hint = super().sizeHint(option, index)
        model = index.model()
        if index.column() == FAILURE_COLUMN and isinstance(model, SummaryModel) and model.is_failed_row(index.row()):
            return QSize(0, hint.height())
        return hint

    def initStyleOption(self, option: QStyleOptionViewItem, index: _Index) -> None:
        super().initStyleOption(option, index)
        if index.column() != 0:  # only labels keep both ends; a failure's reason reads from its start
            option.textElideMode = Qt.TextElideMode.ElideRight


class SummaryTable(QWidget):
    def __init__(self, state: StudyState, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent)
        self._state = state
        self.model = SummaryModel(state, palette, theme, self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(_FailureSpanDelegate(self.view))
        self.view.setObjectName("summaryTable")
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(ROW_PX)
        self.view.setWordWrap(False)
        # A long label keeps both ends: a scheme and its parameters, a compared study's time and its variant.
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # One point smaller than the window: at 1280 px the verdict, quality, speed-up and size columns fit
        # beside the setup column; the latencies and fidelity scroll in.
        font = self.view.font()
        font.setPointSize(TABLE_POINT_SIZE)
        self.view.setFont(font)
        self.view.horizontalHeader().setFont(font)
        header = self.view.horizontalHeader()
        # Sized to the contents when results change, not on every live latency update:
        # measuring every cell 15 times a second is what "ResizeToContents" would do.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.copy_action = QAction("&Copy table as text", self.view)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(self.copy_text)
        self.view.addAction(self.copy_action)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        # One line under the table (its tooltip holds the whole legend): wrapped, it would need the
        # height the table's rows have, and squeeze them at 1280x800.
        self.thresholds = ElidedLabel("", self)
        self.thresholds.setObjectName("thresholdsLabel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        layout.addWidget(self.thresholds)
        self.set_thresholds(asdict(Thresholds()))

    def reset(self) -> None:
        self.model.reset()
        self._update_spans()
        if self._legend_task != self.model.task:  # a language model's legend grades its perplexity
            self.set_thresholds(self._thresholds)
        self.fit_columns()

    def refresh(self, labels: set[str], resize: bool = False, live: bool = False) -> None:
        """Redraw the rows of ``labels``; ``resize`` refits the columns (when results arrived);
        ``live``: only their samples changed, so only the cells that read differently are repainted."""
        self.model.refresh(labels, whole_rows=not live)
        self._update_spans()
        if resize:
            self.fit_columns()

    def fit_columns(self) -> None:
        """Size the columns to their contents (after results arrived)."""
        self.view.resizeColumnsToContents()
        # When the columns do not fit, long labels (a scheme with parameters, a file name) give
        # way first, shortened in the middle; the tooltip has them whole.
        widths = [self.view.columnWidth(c) for c in range(self.model.columnCount())]
        free = self.view.viewport().width() - sum(widths)
        if free < 0 and widths and widths[0] > MAX_VARIANT_PX:
            self.view.setColumnWidth(0, max(MAX_VARIANT_PX, widths[0] + free))
        elif free > 0 and len(widths) > FAILURE_COLUMN:
            # A failed row's reason spans the detail columns; give it the spare width it needs.
            needed = max((self._text_px(r, FAILURE_COLUMN) for r in range(self.model.rowCount())
                          if self.model.is_failed_row(r)), default=0)
            short = min(needed - sum(widths[FAILURE_COLUMN:]), free)
            if short > 0:  # spread over the spanned columns, so no single one looks odd
                spanned = range(FAILURE_COLUMN, len(widths))
                extra = -(-short // len(spanned))
                for c in spanned:
                    self.view.setColumnWidth(c, widths[c] + extra)

    def _text_px(self, row: int, col: int) -> int:
        font = QFont(self.view.font())
        font.setBold(True)
        return QFontMetrics(font).horizontalAdvance(self.model.text(row, col)) + 16

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_columns()

    def copy_text(self) -> str:
        """Put the whole table on the clipboard as tab-separated text (pastes into a spreadsheet)."""
        text = self.model.as_text()
        QGuiApplication.clipboard().setText(text)
        return text

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        self._thresholds, self._legend_task = thresholds, self.model.task
        text = thresholds_text(thresholds, self.model.task)
        self.thresholds.setText(text)
        self.thresholds.setToolTip(text)

    def set_theme(self, theme: Theme) -> None:
        self.model.set_theme(theme)

    def _update_spans(self) -> None:
        columns = self.model.columnCount()
        for row in range(self.model.rowCount()):
            wanted = columns - FAILURE_COLUMN if self.model.is_failed_row(row) else 1
            if self.view.columnSpan(row, FAILURE_COLUMN) != wanted:
                self.view.setSpan(row, FAILURE_COLUMN, 1, wanted)

    def fit_height(self) -> None:
        """Show every row without a vertical scroll bar (one row per variant; a study has few)."""
        rows = max(1, self.model.rowCount())
        header = self.view.horizontalHeader().sizeHint().height()
        scroll = self.view.horizontalScrollBar().sizeHint().height()
        height = header + rows * self.view.verticalHeader().defaultSectionSize() + scroll + 2 * self.view.frameWidth()
        self.view.setFixedHeight(min(height, 480))
