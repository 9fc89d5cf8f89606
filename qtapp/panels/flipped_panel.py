"""Samples whose prediction changed against the baseline, per variant, with the input when it is an image."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

THUMB_PX = 88
MAX_SHOWN = 400  # a list longer than this is not read by anyone; the count says how many there are


def image_of(sample: np.ndarray, image_shape: tuple[int, ...] | None = None) -> QImage | None:
    """A displayable image of one input sample, or None if it is not image-shaped.

    Accepts (H, W), (1|3, H, W) and (H, W, 1|3); values are stretched to 0..255
    per image so normalised inputs (e.g. ImageNet mean/std) still show.
    """
    a = np.asarray(sample, dtype=np.float64)
    if image_shape is not None and a.size == int(np.prod(image_shape)):
        a = a.reshape(image_shape)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 4 or (a.ndim == 3 and a.shape[2] != 3):
        return None
    lo, hi = float(a.min()), float(a.max())
    scaled = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo)
    pixels = np.ascontiguousarray((scaled * 255).round().astype(np.uint8))
    h, w = pixels.shape[:2]
    if pixels.ndim == 2:
        return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FlippedPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._flips: dict[str, dict] = {}
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._class_names: list[str] | None = None
        self._image_shape: tuple[int, ...] | None = None
        #: Why the inputs are not shown (a stored study whose dataset is not the one loaded), or None.
        self._no_inputs: str | None = None
        self._stale = False
        self.variant = QComboBox(self)
        self.variant.currentIndexChanged.connect(self._show_current)
        self.summary = QLabel(self)
        self.summary.setObjectName("mutedLabel")
        # Which way each caption reads: the baseline's prediction, then the variant's.
        self.direction = QLabel(self)
        self.direction.setObjectName("mutedLabel")
        self.direction.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setSpacing(6)
        self.list.setUniformItemSizes(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Variant:", self))
        top.addWidget(self.variant, 1)
        top.addWidget(self.summary, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.direction)
        layout.addWidget(self.list, 1)

    def clear(self) -> None:
        self._flips = {}
        self.variant.clear()
        self.list.clear()
        self.direction.clear()
        self.summary.setText("No variant has finished yet.")

    def set_dataset(self, x: np.ndarray | None, y: np.ndarray | None, class_names: list[str] | None = None,
                    image_shape: tuple[int, ...] | None = None) -> None:
        """The evaluated inputs and labels, to show what each flipped sample was."""
        self._x, self._y, self._class_names, self._image_shape = x, y, class_names, image_shape
        self._no_inputs = None
        self._show_current()

    def set_inputs_missing(self, reason: str, class_names: list[str] | None = None) -> None:
        """No inputs to show (e.g. a stored study whose dataset is not loaded): ``reason`` says why."""
        self._x, self._y, self._class_names, self._image_shape = None, None, class_names, None
        self._no_inputs = reason
        self._show_current()

    def set_flips(self, label: str, fidelity: dict | None) -> None:
        """A finished variant's fidelity block; its ``flipped`` lists dataset indices."""
        if not fidelity or fidelity.get("flipped") is None:
            return
        first = label not in self._flips
        self._flips[label] = fidelity
        count = int(fidelity.get("flipped_count", len(fidelity["flipped"])))
        text = f"{label}  ({count} flipped)"
        if first:
            self.variant.addItem(text, label)  # the first item becomes current and is shown
        else:
            self.variant.setItemText(self.variant.findData(label), text)
            if self.variant.currentData() == label:
                self._show_current()

    def show_variant(self, label: str) -> None:
        i = self.variant.findData(label)
        if i >= 0:
            self.variant.setCurrentIndex(i)

    def _show_current(self) -> None:
        # Thumbnails cost real time; while another tab is showing, draw them when this one is shown.
        if not self.isVisible():
            self._stale = True
            return
        self._fill()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._fill()

    def _fill(self) -> None:
        self._stale = False
        self.list.clear()
        self.direction.clear()
        label = self.variant.currentData()
        if label is None:
            return
        fidelity = self._flips[label]
        indices = [int(i) for i in fidelity.get("flipped", [])]
        count = int(fidelity.get("flipped_count", len(indices)))
        if not count:
            self.summary.setText(f"{label} predicts the same class as the baseline on every sample.")
            return
        more = f"; the first {MAX_SHOWN} shown" if len(indices) > MAX_SHOWN else ""
        self.summary.setText(f"{count} samples predicted differently from the baseline{more}.")
        # Optional: the two predicted classes of each flipped sample, aligned with "flipped".
        base_pred = fidelity.get("flipped_from")
        var_pred = fidelity.get("flipped_to")
        self.direction.setText(self._direction_text(label, base_pred is not None and var_pred is not None))
        for k, index in enumerate(indices[:MAX_SHOWN]):
            item = QListWidgetItem(self._caption(index, k, base_pred, var_pred))
            icon = self._icon(index)
            if icon is not None:
                item.setIcon(icon)
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.list.addItem(item)

    def _direction_text(self, label: str, predictions: bool) -> str:
        """The header that says how to read the captions, and why there are no pictures when there are none."""
        parts = []
        if predictions:
            parts.append(f"Under each sample: its number, its true class, then the predicted class baseline → {label}.")
        if self._no_inputs:
            parts.append(self._no_inputs)
        return " ".join(parts)

    def _name(self, cls: int) -> str:
        if self._class_names and 0 <= cls < len(self._class_names):
            return self._class_names[cls]
        return str(cls)

    def _caption(self, index: int, k: int, base_pred, var_pred) -> str:
        lines = [f"#{index}"]
        if self._y is not None and index < len(self._y) and self._y.ndim == 1:
            lines.append(f"true {self._name(int(self._y[index]))}")
        if base_pred is not None and var_pred is not None and k < len(base_pred) and k < len(var_pred):
            lines.append(f"{self._name(int(base_pred[k]))} → {self._name(int(var_pred[k]))}")
        return "\n".join(lines)

    def _icon(self, index: int) -> QIcon | None:
        if self._x is None or index >= len(self._x):
            return None
        image = image_of(self._x[index], self._image_shape)
        if image is None:
            return None
        small = max(image.width(), image.height()) < THUMB_PX
        mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        return QIcon(QPixmap.fromImage(image.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio, mode)))

    # --- reading -------------------------------------------------------
    def shown_indices(self) -> list[int]:
        if self._stale:
            self._fill()
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def has_images(self) -> bool:
        if self._stale:
            self._fill()
        return self.list.count() > 0 and not self.list.item(0).icon().isNull()
