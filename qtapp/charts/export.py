"""Save any chart of the window as PNG or SVG, from its context menu.

Every chart is a pyqtgraph view. Its scene is drawn through a QPainter onto
either a QImage (PNG, at twice the on-screen size so it stays sharp on a
slide) or a QSvgGenerator (SVG: lines and bars stay vectors, text stays text).
The scene is drawn as the view shows it, background included, so the file
matches the screen.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QRectF, QSize, Qt, Slot
from PySide6.QtGui import QImage, QPainter, QRegion
from PySide6.QtWidgets import QFileDialog, QGraphicsItem, QGraphicsView, QMenu, QMessageBox, QWidget

#: PNG pixels per on-screen pixel.
PNG_SCALE = 2


def _paint(view: QGraphicsView, painter: QPainter) -> None:
    # The widget's own paint path (QWidget.render), not QGraphicsScene.render: rendered through the
    # scene, pyqtgraph's clipped view boxes come out shifted in SVG.
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    flags = QWidget.RenderFlag.DrawChildren | QWidget.RenderFlag.DrawWindowBackground
    # Items cached as screen pixmaps (the histogram's axes) are drawn afresh: a cached pixmap
    # would come out blurred in the 2x PNG and as an image inside the SVG.
    cached = [item for item in view.scene().items() if item.cacheMode() != QGraphicsItem.CacheMode.NoCache]
    modes = [item.cacheMode() for item in cached]
    for item in cached:
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        QWidget.render(view, painter, QPoint(), QRegion(), flags)
    finally:
        for item, mode in zip(cached, modes, strict=True):
            item.setCacheMode(mode)


def save_png(view: QGraphicsView, path: str | Path, scale: int = PNG_SCALE) -> QSize:
    """Write the chart to ``path`` as PNG at ``scale`` times its on-screen size; returns the image size."""
    image = QImage(view.size() * scale, QImage.Format.Format_ARGB32)
    image.fill(view.backgroundBrush().color())
    painter = QPainter(image)
    painter.scale(scale, scale)
    _paint(view, painter)
    painter.end()
    if not image.save(str(path), "PNG"):
        raise OSError(f"{path} could not be written")
    return image.size()


def save_svg(view: QGraphicsView, path: str | Path, title: str = "") -> None:
    """Write the chart to ``path`` as SVG (vector lines and bars, text as text)."""
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtSvg import QSvgGenerator

    size = view.size()
    # Drawn into memory, then written by Python: an unwritable path is an OSError that names the
    # reason, where a generator writing the file itself has Qt warn "QPainter::begin(): Returned false".
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
    generator.setTitle(title or "QuantBench chart")
    generator.setDescription("Exported from QuantBench")
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"{path} could not be drawn")
    _paint(view, painter)
    painter.end()
    Path(path).write_bytes(bytes(buffer.data()))


class ChartExporter(QObject):
    """A chart's context menu (Save as PNG…, Save as SVG…); a child of the chart.

    Its slots are methods, not lambdas holding the chart: a Python closure kept by a
    connection would tie the chart into a reference cycle, and deleting a Qt object
    from the cycle collector can happen at any moment (and deadlock in Qt's locks)."""

    def __init__(self, view: QGraphicsView, name: str) -> None:
        super().__init__(view)
        self.name = name
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self.show_menu)

    def view(self) -> QGraphicsView:
        return self.parent()  # type: ignore[return-value]

    def menu(self) -> QMenu:
        menu = QMenu(self.view())
        menu.addAction("Save as &PNG…", self.ask_png)
        menu.addAction("Save as &SVG…", self.ask_svg)
        return menu

    @Slot(QPoint)
    def show_menu(self, pos: QPoint) -> None:
        menu = self.menu()
        menu.exec(self.view().mapToGlobal(pos))
        menu.deleteLater()

    @Slot()
    def ask_png(self) -> None:
        _ask_and_save(self.view(), self.name, "png")

    @Slot()
    def ask_svg(self) -> None:
        _ask_and_save(self.view(), self.name, "svg")


def install_export_menu(view: QGraphicsView, name: str) -> ChartExporter:
    """Right-clicking the chart offers to save it (pyqtgraph's own menus are off in these charts);
    ``name`` is the default file name."""
    return ChartExporter(view, name)


def exporter_of(view: QGraphicsView) -> ChartExporter | None:
    """The chart's exporter, if it has one."""
    return view.findChild(ChartExporter)


def _ask_and_save(view: QGraphicsView, name: str, kind: str) -> None:
    caption = "Save chart as PNG" if kind == "png" else "Save chart as SVG"
    pattern = "PNG images (*.png)" if kind == "png" else "SVG drawings (*.svg)"
    path, _ = QFileDialog.getSaveFileName(view.window(), caption, f"{name}.{kind}", pattern)
    if not path:
        return
    if not path.lower().endswith(f".{kind}"):
        path += f".{kind}"
    try:
        if kind == "png":
            save_png(view, path)
        else:
            save_svg(view, path, name)
    except OSError as exc:
        QMessageBox.warning(view.window(), caption, f"The chart was not saved: {exc}.")
