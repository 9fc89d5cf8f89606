"""Samples whose prediction changed against the baseline, per variant, with the input when it is an image.

A click on a sample (or "Layers for this sample") shows that one input's per-layer error, float against the
variant, with the first layer where it departs marked: read from the study's layer step (``flipped_layers``
beside ``flipped``), or computed on demand in a background job when the two model files are still on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from qtapp.charts.sample_layers import SampleLayersChart
from qtapp.panels.compact import compact_combos
from qtapp.threads.tasks import TaskRunner
from qtapp.window.theme import LIGHT, Theme

THUMB_PX = 88
MAX_SHOWN = 400  # a list longer than this is not read by anyone; the count says how many there are
NO_SAMPLE_LAYERS = ("No per-layer error recorded for this sample: run the study with layer analysis (Layers "
                    "option, or --layers) to record it for the first flipped samples")


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


#: Token ids shown under a flipped sample of a classifier over tokens.
TOKENS_SHOWN = 8
#: Characters of a sample's decoded text shown under it (when the model has a tokenizer).
TEXT_SHOWN = 60


class FlippedPanel(QWidget):
    def __init__(self, parent=None, theme: Theme | None = None, tasks: TaskRunner | None = None) -> None:
        super().__init__(parent)
        self._flips: dict[str, dict] = {}
        #: label -> (float model file, variant file, runtime) for a sample's layers computed on demand.
        self._sources: dict[str, tuple[Path, Path, str]] = {}
        self._tasks = tasks if tasks is not None else TaskRunner(self, max_threads=1)
        self._asked: tuple[str, int] | None = None  # the sample whose layers are shown or being computed
        self._computed_here: dict[tuple[str, int], dict[str, Any]] = {}  # records computed on demand
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._class_names: list[str] | None = None
        self._image_shape: tuple[int, ...] | None = None
        #: Why the inputs are not shown (a stored study whose dataset is not the one loaded), or None.
        self._no_inputs: str | None = None
        #: The model's tokenizer file and what reads it (core.models.tokenizer): token ids shown as text.
        self._tokenizer: tuple[Path | None, Any] = (None, None)
        #: Why a tokenizer beside the model is not used (the package missing, an unreadable file), or None.
        self.tokenizer_problem: str | None = None
        self._stale = False
        self.variant = QComboBox(self)
        self.variant.currentIndexChanged.connect(self._show_current)
        self.summary = QLabel(self)
        self.summary.setObjectName("mutedLabel")
        # Wrapped on a line of its own: one line of it was 1,000 px wide, and the window grew to show it.
        self.summary.setWordWrap(True)
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
        self.list.currentItemChanged.connect(lambda *_: self.layers_button.setEnabled(self._selected() is not None))
        self.list.itemClicked.connect(lambda _item: self.show_sample_layers())
        self.layers_button = QPushButton("Layers for this sample", self)
        self.layers_button.setToolTip("This input's per-layer error, float against the variant, and the first "
                                      "layer where it departs")
        self.layers_button.setEnabled(False)
        self.layers_button.clicked.connect(lambda: self.show_sample_layers())
        self.sample_status = QLabel(self)
        self.sample_status.setObjectName("mutedLabel")
        self.sample_status.setWordWrap(True)
        self.sample_chart = SampleLayersChart(theme or LIGHT, self)
        self.sample_chart.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Variant:", self))
        top.addWidget(self.variant, 1)
        top.addWidget(self.layers_button)
        compact_combos(self, 16)  # a long variant name must not widen the window either
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.direction)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.sample_status)
        layout.addWidget(self.sample_chart, 1)

    def clear(self) -> None:
        self._flips = {}
        self._sources = {}
        self._computed_here = {}
        self._hide_sample_layers()
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

    def set_sources(self, label: str, model: dict[str, Any], variant_path: str | None, runtime: str | None) -> None:
        """Where variant ``label``'s files are (the study's ``model`` block, its ``source_path``), so a sample's
        layers not recorded by the study can be computed on demand; ONNX Runtime pairs whose files still exist."""
        float_path = Path(str(model.get("path") or ""))
        self._use_tokenizer_of(float_path)
        if (runtime == "onnxruntime" and model.get("format") == "onnx" and variant_path
                and float_path.is_file() and Path(variant_path).is_file()):
            self._sources[label] = (float_path, Path(variant_path), runtime)
        else:
            self._sources.pop(label, None)

    def _use_tokenizer_of(self, model_path: Path) -> None:
        """Read the tokenizer beside ``model_path`` (once per file), so token ids are shown as text."""
        from core.models.tokenizer import load_decoder, tokenizer_file

        found = tokenizer_file(model_path) if str(model_path) not in ("", ".") else None
        if found == self._tokenizer[0]:
            return
        decoder, self.tokenizer_problem = load_decoder(found) if found is not None else (None, None)
        self._tokenizer = (found, decoder)
        self._show_current()

    def apply_theme(self, theme: Theme) -> None:
        self.sample_chart.apply_theme(theme)

    # --- one sample's layers -------------------------------------------
    def _selected(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def show_sample_layers(self, index: int | None = None) -> None:
        """Show sample ``index``'s (default: the selected one's) per-layer error for the chosen variant."""
        label = self.variant.currentData()
        index = self._selected() if index is None else index
        if label is None or index is None:
            return
        self._asked = (label, index)
        recorded = next((r for r in self._flips[label].get("flipped_layers") or [] if int(r["index"]) == index),
                        self._computed_here.get((label, index)))
        if recorded is not None:
            self._show_record(label, recorded)
            return
        source = self._sources.get(label)
        if source is None or self._x is None or index >= len(self._x):
            self.sample_chart.setVisible(False)
            self.sample_status.setText(NO_SAMPLE_LAYERS)
            return
        self.sample_chart.setVisible(False)
        self.sample_status.setText(f"Comparing sample #{index}'s layers, float against {label}…")
        float_path, variant_path, runtime = source
        sample = np.array(self._x[index])

        def job() -> dict[str, Any]:
            from core.layers import analyse_sample

            return analyse_sample(float_path, variant_path, runtime, sample, index)

        self._tasks.submit(job, lambda record: self._computed(label, record), self._failed, replaces="sample-layers")

    def _computed(self, label: str, record: dict[str, Any]) -> None:
        if self._asked != (label, int(record["index"])):
            return  # another sample was asked for meanwhile
        self._computed_here[(label, int(record["index"]))] = record  # a second click shows it at once
        self._show_record(label, record)

    def _failed(self, message: str) -> None:
        self.sample_chart.setVisible(False)
        self.sample_status.setText(f"This sample's layers could not be compared: {message}")

    def _show_record(self, label: str, record: dict[str, Any]) -> None:
        self.sample_status.setText("")
        self.sample_chart.show_record(record, label)
        self.sample_chart.setVisible(True)

    def _hide_sample_layers(self) -> None:
        self._asked = None
        self.sample_chart.setVisible(False)
        self.sample_status.setText("")

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
        self._hide_sample_layers()
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
        if self.tokenizer_problem:
            parts.append(f"{self.tokenizer_problem}: token ids are shown as numbers.")
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
        tokens = self._tokens(index)
        if tokens:
            lines.append(tokens)
        return "\n".join(lines)

    def _tokens(self, index: int) -> str | None:
        """A classifier over tokens: the sample's first real token ids, shown in place of a picture."""
        from core.models.io_spec import attention_mask, token_ids

        if self._x is None or index >= len(self._x) or self._x.dtype.kind not in "iuV":
            return None
        sample = self._x[index : index + 1]
        ids, mask = token_ids(sample), attention_mask(sample)
        if ids is None:
            return None
        real = ids[0][mask[0] != 0] if mask is not None else ids[0]
        decode = self._tokenizer[1]
        if decode is not None:
            text = " ".join(decode(real).split())
            return f"“{text[:TEXT_SHOWN]}{'…' if len(text) > TEXT_SHOWN else ''}”"
        shown = " ".join(str(int(t)) for t in real[:TOKENS_SHOWN])
        return f"ids {shown}{' …' if len(real) > TOKENS_SHOWN else ''}"

    def _icon(self, index: int) -> QIcon | None:
        if self._x is None or index >= len(self._x) or self._x.dtype.names is not None:
            return None  # several named inputs (token ids and a mask): the caption shows the ids
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
