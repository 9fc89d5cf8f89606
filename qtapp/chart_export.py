"""Save any chart of the window as PNG or SVG, from its context menu.

Every chart is a pyqtgraph view. Its scene is drawn through a QPainter onto
either a QImage (PNG, at twice the on-screen size so it stays sharp on a
slide) or a QSvgGenerator (SVG: lines and bars stay vectors, text stays text).
The scene is drawn as the view shows it, background included, so the file
matches the screen.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QRegion
from PySide6.QtWidgets import QFileDialog, QGraphicsView, QMenu, QMessageBox, QWidget

#: PNG pixels per on-screen pixel.
PNG_SCALE = 2


def _paint(view: QGraphicsView, painter: QPainter) -> None:
    # The widget's own paint path (QWidget.render), not QGraphicsScene.render: rendered through the
    # scene, pyqtgraph's clipped view boxes come out shifted in SVG.
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    flags = QWidget.RenderFlag.DrawChildren | QWidget.RenderFlag.DrawWindowBackground
    QWidget.render(view, painter, QPoint(), QRegion(), flags)


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
    from PySide6.QtSvg import QSvgGenerator

    size = view.size()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(size)
    generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
    generator.setTitle(title or "QuantBench chart")
    generator.setDescription("Exported from QuantBench")
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"{path} could not be written")
    _paint(view, painter)
    painter.end()


def export_menu(view: QGraphicsView, name: str, parent: QWidget | None = None) -> QMenu:
    """The chart's context menu: Save as PNG…, Save as SVG…. ``name`` is the default file name."""
    menu = QMenu(parent or view)
    menu.addAction("Save as &PNG…", lambda: _ask_and_save(view, name, "png"))
    menu.addAction("Save as &SVG…", lambda: _ask_and_save(view, name, "svg"))
    return menu


def install_export_menu(view: QGraphicsView, name: str) -> None:
    """Right-clicking the chart offers to save it (pyqtgraph's own menus are off in these charts)."""
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show(pos: QPoint) -> None:
        menu = export_menu(view, name)
        menu.exec(view.mapToGlobal(pos))
        menu.deleteLater()

    view.customContextMenuRequested.connect(show)


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
