"""Render QuantBench's scalable icon to the PNG sizes a desktop asks for (16 to 512 px).

Run with the project's Python: ``python packaging/render_icons.py``. It uses Qt's own SVG renderer,
so no other tool is needed; the PNGs are committed, this script says how they were made. The files
sit in the freedesktop icon theme's layout (``hicolor/<size>/apps/<application id>.<ext>``), so an
install copies the tree as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The application's id, the icon's name; qtapp/app.py holds the one copy (not imported: that starts Qt's GUI).
APP_ID = "org.quantbench.QuantBench"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
SVG = HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"
#: The hicolor sizes desktops look up (freedesktop icon theme specification).
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    """Where the ``size`` px PNG of the icon lives."""
    return HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def render(sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Render the SVG at each size; returns the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPainter needs an application
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = png_path(size)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path)):
            raise SystemExit(f"cannot write {path}")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in render():
        print(written_path, file=sys.stdout)
