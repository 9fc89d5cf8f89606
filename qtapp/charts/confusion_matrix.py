"""One confusion matrix per variant on one colour scale, or each against the baseline.

In "counts" mode every matrix shares the levels 0..largest cell, so a darker
cell means the same count everywhere. In "difference" mode each variant shows
its matrix minus the baseline's, coloured by harm: red where it makes more
mistakes (fewer on the diagonal, more off it), blue where it makes fewer.
Cells carry their numbers while the class count is small enough to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics

from qtapp.charts.cell_labels import CellLabels, contrast_colors
from qtapp.charts.export import install_export_menu
from qtapp.charts.palette import VariantPalette
from qtapp.charts.style import TICK_POINT_SIZE, TITLE_POINT_SIZE, bold_font, set_axis_label, style_axes, tick_font
from qtapp.window.theme import Theme

COUNTS = "counts"
DIFFERENCE = "difference"
MAX_LABELLED_CLASSES = 12  # beyond this the numbers no longer fit their cells
MAX_COLUMNS = 3
#: A cell with any count is at least this far along the colour scale: a count of 1 beside a
#: largest cell of 400 stays visibly apart from an empty cell, in both themes.
MIN_TINT = 0.2


def _counts_map(theme: Theme) -> pg.ColorMap:
    low = theme.plot_bg
    high = "#08306b" if theme.name == "light" else "#6cb6ff"
    mid = "#6baed6" if theme.name == "light" else "#2a5d8f"
    return pg.ColorMap([0.0, 0.35, 1.0], [QColor(low), QColor(mid), QColor(high)])


def _harm_map(theme: Theme) -> pg.ColorMap:
    return pg.ColorMap([0.0, 0.5, 1.0], [QColor("#2166ac"), QColor(theme.plot_bg), QColor("#b2182b")])


@dataclass
class _Panel:
    plot: pg.PlotItem
    image: pg.ImageItem
    labels: CellLabels | None = None
    matrix: np.ndarray | None = None
    shown: np.ndarray | None = None  # what the cells display in the current mode
    failed: bool = False
    note: pg.TextItem | None = None  # "identical to the baseline", inside a difference matrix of zeros


class ConfusionMatrices(pg.GraphicsLayoutWidget):
    def __init__(self, palette: VariantPalette, theme: Theme, parent=None) -> None:
        super().__init__(parent=parent)
        self._palette = palette
        self._theme = theme
        self._panels: dict[str, _Panel] = {}
        self._pending: dict[str, np.ndarray | None] = {}
        self._stale = False
        self._order: list[str] = []
        self._columns = 1
        self._class_names: list[str] | None = None
        self._mode = COUNTS
        self._baseline: str | None = None  # the study's baseline, once its result said so
        self._baselines: dict[str, str] = {}  # label -> its own study's baseline (a comparison)
        self.setBackground(theme.plot_bg)
        install_export_menu(self, "confusion-matrices")

    # --- building ------------------------------------------------------
    def set_variants(self, labels: list[str], class_names: list[str] | None = None) -> None:
        """Forget the last study. A variant's panel is made when its matrix arrives, which spreads the
        cost of building plots over the study instead of freezing the window when it starts."""
        self.clear()
        self._panels = {}
        self._pending = {}
        self._order = list(labels)
        self._baseline = None
        self._baselines = {}
        self._class_names = class_names
        self._columns = self.columns_for(len(labels))
        # Every column and row the same share: a plot's own size hint (its title's, its axis labels')
        # must not make one matrix smaller than the others.
        layout = self.ci.layout
        for column in range(self._columns):
            layout.setColumnStretchFactor(column, 1)
        for row in range(self.rows_for(len(labels))):
            layout.setRowStretchFactor(row, 1)

    @staticmethod
    def columns_for(variants: int) -> int:
        """Matrices per row: at most three, so each stays big enough to read its numbers."""
        return max(1, min(variants, MAX_COLUMNS, math.ceil(math.sqrt(variants * 1.5))))

    def rows_for(self, variants: int) -> int:
        return math.ceil(variants / self.columns_for(variants)) if variants else 0

    def _panel(self, label: str) -> _Panel | None:
        if label in self._panels:
            return self._panels[label]
        if label not in self._order:
            return None
        i = self._order.index(label)
        plot = self.addPlot(row=i // self._columns, col=i % self._columns, enableMenu=False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setAspectLocked(True)
        # Its title (the variant's name) must not widen its column: every matrix gets the same share.
        plot.setPreferredWidth(1)
        plot.titleLabel.setMinimumWidth(0)
        plot.titleLabel.setPreferredWidth(1)
        plot.getViewBox().invertY(True)
        image = pg.ImageItem(axisOrder="row-major")
        plot.addItem(image)
        self._panels[label] = _Panel(plot, image)
        return self._panels[label]

    def _style_panel(self, label: str) -> None:
        panel = self._panels[label]
        style_axes(panel.plot, self._theme, grid=False)
        set_axis_label(panel.plot, "bottom", "predicted", self._theme)
        set_axis_label(panel.plot, "left", "true", self._theme)
        for side in ("left", "bottom"):  # after setLabel, which shows the axis again
            panel.plot.showAxis(side, not panel.failed)
        self._set_title(label, panel)

    def _set_title(self, label: str, panel: _Panel) -> None:
        """The matrix's title, shortened in the middle to its column's width: drawn whole, three long titles
        ("onnx-fp32 − baseline: identical") ran into each other across the columns."""
        room = max(40, self.width() // max(1, self._columns) - 16)
        metrics = QFontMetrics(bold_font(TITLE_POINT_SIZE))
        title = metrics.elidedText(self._title(label, panel), Qt.TextElideMode.ElideMiddle, room)
        panel.plot.setTitle(title, color=self._palette.hex(label), size=f"{TITLE_POINT_SIZE}pt", bold=True)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for label, panel in getattr(self, "_panels", {}).items():  # Qt resizes it once before __init__ ends
            self._set_title(label, panel)

    def _title(self, label: str, panel: _Panel) -> str:
        if panel.failed:
            return f"{label}: failed"
        if self._mode == DIFFERENCE and self._is_baseline(label):
            return f"{label} (baseline counts)"
        return label  # the other matrices of the Difference view say so above them, and inside when all zero

    def _note_identical(self, panel: _Panel, identical: bool) -> None:
        """Say "identical to the baseline" inside a difference matrix of zeros: drawn, it is an empty square."""
        if identical and panel.note is None:
            panel.note = pg.TextItem("identical to\nthe baseline", anchor=(0.5, 0.5), color=self._theme.plot_fg)
            panel.plot.addItem(panel.note)
        if panel.note is not None:
            if identical and panel.matrix is not None:
                rows, cols = panel.matrix.shape
                panel.note.setPos((cols - 1) / 2, (rows - 1) / 2)
            panel.note.setVisible(identical)

    def _baseline_of(self, label: str) -> str | None:
        if label in self._baselines:
            return self._baselines[label]
        if self._baseline is not None:
            return self._baseline
        return self._order[0] if self._order else None  # until the baseline's result says which it is

    def _is_baseline(self, label: str) -> bool:
        return self._baseline_of(label) == label

    def set_baselines(self, baselines: dict[str, str]) -> None:
        """Each variant against its own study's baseline (studies compared side by side); then ``redraw``."""
        self._baselines = dict(baselines)

    # --- feeding -------------------------------------------------------
    def set_matrix(self, label: str, matrix: list[list[int]] | np.ndarray | None, is_baseline: bool = False) -> None:
        """The variant's confusion matrix (rows: true class, columns: predicted); None if it failed.
        ``is_baseline`` marks the study's baseline, which "difference" compares the others with.

        While the view is hidden (another tab is showing) the matrix is only kept: building
        plots and writing cells then waits until the view is shown or read.
        """
        self._pending[label] = None if matrix is None else np.asarray(matrix, dtype=np.int64)
        if is_baseline:
            self._baseline = label

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for label, matrix in pending.items():
            self._apply_matrix(label, matrix)

    def _apply_matrix(self, label: str, matrix: np.ndarray | None) -> None:
        panel = self._panel(label)
        if panel is None:
            return
        panel.failed = matrix is None
        panel.matrix = matrix
        if panel.matrix is not None and panel.labels is None:
            self._make_cells(panel, panel.matrix.shape[0])
        self._style_panel(label)

    def set_mode(self, mode: str) -> None:
        if mode not in (COUNTS, DIFFERENCE):
            raise ValueError(f"unknown confusion matrix mode {mode!r}")
        self._mode = mode
        self._apply_pending()
        for label in self._panels:
            self._style_panel(label)
        self.redraw()

    def mode(self) -> str:
        return self._mode

    def _make_cells(self, panel: _Panel, n: int) -> None:
        names = self._class_names if self._class_names and len(self._class_names) == n else [str(k) for k in range(n)]
        step = max(1, n // 10)  # at most about ten tick labels per axis
        ticks = [(i, name) for i, name in enumerate(names) if i % step == 0]
        for side in ("bottom", "left"):
            panel.plot.getAxis(side).setTicks([ticks, []])
        if n > MAX_LABELLED_CLASSES:
            return
        font = tick_font()
        font.setPointSize(TICK_POINT_SIZE if n <= 10 else TICK_POINT_SIZE - 2)
        panel.labels = CellLabels(font)
        panel.plot.addItem(panel.labels)

    # --- drawing -------------------------------------------------------
    def redraw(self) -> None:
        if not self.isVisible():
            self._stale = True
            return
        self._sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._sync()

    def _sync(self) -> None:
        self._stale = False
        self._apply_pending()
        self._draw()

    def _draw(self) -> None:
        matrices = [p.matrix for p in self._panels.values() if p.matrix is not None]
        if not matrices:
            return
        top = max(1, max(int(m.max()) for m in matrices))
        bases: dict[str, np.ndarray] = {}
        harms = {}
        if self._mode == DIFFERENCE:
            for label, p in self._panels.items():
                base_panel = self._panels.get(self._baseline_of(label) or "")
                base = base_panel.matrix if base_panel is not None else None
                if (
                    p.matrix is not None
                    and base is not None
                    and not self._is_baseline(label)
                    and p.matrix.shape == base.shape
                ):
                    bases[label], harms[label] = base, _harm(p.matrix, base)
        spread = max([1] + [int(np.abs(h).max()) for h in harms.values()])
        counts_map, harm_map = _counts_map(self._theme), _harm_map(self._theme)
        for label, p in self._panels.items():
            if p.matrix is None:
                p.image.clear()
                p.shown = None
                if p.labels is not None:
                    p.labels.set_cells([], [])
                self._note_identical(p, False)
                continue
            if label in harms:
                diff = p.matrix - bases[label]
                p.shown = diff
                tint = _tinted(harms[label], spread)
                p.image.setImage(
                    tint, levels=(-1.0, 1.0), lut=harm_map.getLookupTable(nPts=256), rect=_cells_rect(p.matrix)
                )
                self._write_cells(p, diff, tint, harm_map, -1.0, 1.0, signed=True)
            else:
                p.shown = p.matrix
                tint = _tinted(p.matrix, top)
                p.image.setImage(
                    tint, levels=(0.0, 1.0), lut=counts_map.getLookupTable(nPts=256), rect=_cells_rect(p.matrix)
                )
                self._write_cells(p, p.matrix, tint, counts_map, 0.0, 1.0, signed=False)
            if self._mode == DIFFERENCE:
                self._set_title(label, p)
            self._note_identical(p, label in harms and not p.shown.any())

    def _write_cells(
        self,
        p: _Panel,
        values: np.ndarray,
        colour_values: np.ndarray,
        cmap: pg.ColorMap,
        lo: float,
        hi: float,
        signed: bool,
    ) -> None:
        if p.labels is None:
            return
        if signed:
            texts = [["" if v == 0 else f"{v:+d}" for v in row] for row in values.tolist()]
        else:
            texts = [[str(v) if v else "" for v in row] for row in values.tolist()]
        cells = cmap.map(np.clip((colour_values - lo) / (hi - lo), 0.0, 1.0), mode="byte")
        p.labels.set_cells(texts, contrast_colors(cells))

    # --- theme ---------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.setBackground(theme.plot_bg)
        for label, panel in self._panels.items():
            self._style_panel(label)
            if panel.note is not None:
                panel.note.setColor(theme.plot_fg)
        self.redraw()

    def title_item(self, label: str):
        """``label``'s title as drawn (a QGraphicsTextItem)."""
        self._sync_if_stale()
        return self._panels[label].plot.titleLabel.item

    def identical_note(self, label: str) -> bool:
        """Whether ``label``'s difference matrix says it is identical to the baseline."""
        self._sync_if_stale()
        note = self._panels[label].note if label in self._panels else None
        return note is not None and note.isVisible()

    # --- reading -------------------------------------------------------
    def _sync_if_stale(self) -> None:
        if self._stale or self._pending:
            self._sync()

    def cells(self, label: str) -> np.ndarray | None:
        """The numbers the panel of ``label`` shows (counts, or the difference to the baseline)."""
        self._sync_if_stale()
        if label not in self._panels:
            return None
        shown = self._panels[label].shown
        return None if shown is None else shown.copy()

    def cell_color(self, label: str, row: int, col: int) -> QColor:
        """The colour the panel of ``label`` paints cell (row, col) in, read off its rendered image."""
        self._sync_if_stale()
        image = self._panels[label].image
        image.render()
        return image.qimage.pixelColor(col, row)

    def cell_text_color(self, label: str, row: int, col: int) -> QColor:
        self._sync_if_stale()
        return self._panels[label].labels.color(row, col)

    def cell_text(self, label: str, row: int, col: int) -> str:
        self._sync_if_stale()
        labels = self._panels[label].labels
        return "" if labels is None else labels.text(row, col)

    def labels(self) -> list[str]:
        """The variants that have a panel so far, in study order."""
        self._sync_if_stale()
        return [label for label in self._order if label in self._panels]


def _cells_rect(matrix: np.ndarray) -> QRectF:
    # Pixel i covers [i - 0.5, i + 0.5), so ticks and numbers sit at the cell centres.
    rows, cols = matrix.shape
    return QRectF(-0.5, -0.5, cols, rows)


def _tinted(values: np.ndarray, top: float) -> np.ndarray:
    """Where each cell sits on its colour scale, -1..1 (0: empty): any non-zero cell at least MIN_TINT."""
    scaled = np.abs(values.astype(float)) / max(top, 1)
    return np.where(values != 0, np.sign(values) * (MIN_TINT + (1 - MIN_TINT) * np.clip(scaled, 0, 1)), 0.0)


def _harm(matrix: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Positive where the variant is worse than the baseline: fewer hits on the diagonal, more misses off it."""
    diff = (matrix - base).astype(np.int64)
    harm = diff.copy()
    np.fill_diagonal(harm, -np.diag(diff))
    return harm
