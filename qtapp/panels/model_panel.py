"""Choose the model (file, drag and drop, recent list, demo) and extra variant files; show what it is."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
)

from core.spec import ModelSpec, VariantSpec
from qtapp import loading, recent_files
from qtapp.charts.size_bars import format_bytes
from qtapp.tasks import TaskRunner

MODEL_FILTER = "Models (*.onnx *.pt *.pth *.bin *.tflite *.ts *.pt2 *.ep);;All files (*)"
ARCH_CHOICES = ("", "demo", "torchvision:resnet18", "torchvision:mobilenet_v3_small", "torchvision:resnet50")


class ModelPanel(QGroupBox):
    #: A model finished loading (the ModelLoad), or was cleared (None).
    model_changed = Signal(object)
    #: The variant files list changed.
    variants_changed = Signal()

    def __init__(self, tasks: TaskRunner, parent=None) -> None:
        super().__init__("Model", parent)
        self._tasks = tasks
        self._load: loading.ModelLoad | None = None
        self._generation = 0  # bumped per load, so a superseded load's answer is ignored
        self._loading = False
        self._path: str | None = None
        self.setAcceptDrops(True)

        self.open_button = QPushButton("Open…", self)
        self.open_button.setToolTip("Open a model file (Ctrl+O); you can also drop a file on the window.")
        self.open_button.clicked.connect(self.choose_file)
        self.recent_button = QToolButton(self)
        self.recent_button.setText("Recent")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.demo_button = QPushButton("Open demo", self)
        self.demo_button.setToolTip("The bundled digits CNN and scikit-learn's digits test set (Ctrl+D).")
        buttons = QHBoxLayout()
        for w in (self.open_button, self.recent_button, self.demo_button):
            buttons.addWidget(w)
        buttons.addStretch(1)

        self.path_label = QLabel("No model loaded. Open a file, drop one here, or open the demo.", self)
        self.path_label.setWordWrap(True)
        self.path_label.setObjectName("mutedLabel")
        self.arch = QComboBox(self)
        self.arch.setEditable(True)
        self.arch.addItems(ARCH_CHOICES)
        self.arch.setToolTip("A PyTorch state dict holds weights only: name the network, e.g. torchvision:resnet18.")
        self.arch.lineEdit().setPlaceholderText("state dicts only, e.g. torchvision:resnet18")
        self.arch.activated.connect(self._reload)
        self.arch.lineEdit().editingFinished.connect(self._reload)
        self.trusted = QCheckBox("Trust this file (it may run code)", self)
        self.trusted.setToolTip("TorchScript and torch.export files can run code when loaded; only tick for files you made or trust.")
        self.trusted.toggled.connect(self._reload)
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.hide()

        self.variant_list = QListWidget(self)
        self.variant_list.setMaximumHeight(58)
        self.variant_list.setToolTip("Files of the same model quantized or optimized elsewhere, compared as variants.")
        add_variant = QPushButton("Add variant file…", self)
        add_variant.clicked.connect(self.choose_variant_file)
        remove_variant = QPushButton("Remove", self)
        remove_variant.clicked.connect(self._remove_selected_variant)
        variant_buttons = QHBoxLayout()
        variant_buttons.addWidget(add_variant)
        variant_buttons.addWidget(remove_variant)
        variant_buttons.addStretch(1)

        form = QFormLayout()
        form.addRow("Architecture", self.arch)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.path_label)
        layout.addLayout(form)
        layout.addWidget(self.trusted)
        layout.addWidget(self.info)
        layout.addWidget(self.error)
        layout.addWidget(QLabel("Extra variant files", self))
        layout.addWidget(self.variant_list)
        layout.addLayout(variant_buttons)

    # --- state ---------------------------------------------------------
    @property
    def loaded(self) -> loading.ModelLoad | None:
        return self._load

    @property
    def busy(self) -> bool:
        return self._loading

    def problem(self) -> str | None:
        """Why a study cannot start with this panel as it is (None: it can)."""
        if self.busy:
            return "the model is still loading"
        if self.error.isVisible():
            return self.error.text()
        if self._load is None:
            return "open a model first"
        return None

    def model_spec(self) -> ModelSpec | None:
        return None if self._load is None else self._load.spec

    def variant_specs(self) -> list[VariantSpec]:
        return [VariantSpec(path=self.variant_list.item(i).data(Qt.ItemDataRole.UserRole))
                for i in range(self.variant_list.count())]

    # --- opening -------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self._path).parent) if self._path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, MODEL_FILTER)
        if path:
            self.open_path(path)

    def open_demo(self) -> None:
        from core.demo import DEMO_ARCH, DEMO_WEIGHTS, demo_available

        if not demo_available():
            self._show_error(f"The demo model is not installed ({DEMO_WEIGHTS} is missing).")
            return
        self.open_path(str(DEMO_WEIGHTS), arch=DEMO_ARCH)

    def open_path(self, path: str, arch: str | None = None, trusted: bool = False) -> None:
        """Load ``path`` in the background; ``model_changed`` fires when it is done."""
        self._path = os.path.abspath(path)
        self._set_arch(arch or "")
        self.trusted.blockSignals(True)
        self.trusted.setChecked(trusted)
        self.trusted.blockSignals(False)
        self._start_load()

    def _set_arch(self, arch: str) -> None:
        self.arch.blockSignals(True)
        self.arch.setCurrentText(arch)
        self.arch.blockSignals(False)

    def _reload(self, *_args) -> None:
        current = self.model_spec()
        if self._path is None or (current is not None and current == self._spec()):
            return
        self._start_load()

    def _spec(self) -> ModelSpec:
        arch = self.arch.currentText().strip() or None
        return ModelSpec(path=self._path or "", arch=arch, trusted=self.trusted.isChecked())

    def _start_load(self) -> None:
        spec = self._spec()
        self._load = None
        self.error.hide()
        self.path_label.setText(spec.path)
        self.info.setText("Loading…")
        self._generation += 1
        self._loading = True
        self.model_changed.emit(None)
        generation = self._generation
        self._tasks.submit(
            lambda: loading.load_model(spec),
            lambda result: self._loaded(generation, result),
            lambda message: self._failed(generation, message),
        )

    def _loaded(self, generation: int, result: loading.ModelLoad) -> None:
        if generation != self._generation:
            return  # superseded by a later open
        self._loading = False
        self._load = result
        self.error.hide()
        self.info.setText(describe_model(result.model.info()))
        recent_files.remember_model(result.spec.path, result.spec.arch)
        self.model_changed.emit(result)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self.info.setText("")
        self._show_error(message)
        self.model_changed.emit(None)

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = recent_files.recent_models()
        if not items:
            self.recent_menu.addAction("No recent models").setEnabled(False)
        for path, arch in items:
            text = os.path.basename(path) + (f"  ({arch})" if arch else "")
            action = self.recent_menu.addAction(text)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path, a=arch: self.open_path(p, arch=a))

    # --- variant files -------------------------------------------------
    def choose_variant_file(self) -> None:
        start = str(Path(self._path).parent) if self._path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Add a variant file", start, MODEL_FILTER)
        if path:
            self.add_variant_file(path)

    def add_variant_file(self, path: str) -> None:
        path = os.path.abspath(path)
        for i in range(self.variant_list.count()):
            if self.variant_list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                return
        self.variant_list.addItem(os.path.basename(path))
        item = self.variant_list.item(self.variant_list.count() - 1)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        self.variants_changed.emit()

    def _remove_selected_variant(self) -> None:
        for item in self.variant_list.selectedItems():
            self.variant_list.takeItem(self.variant_list.row(item))
        self.variants_changed.emit()


def describe_model(info: dict) -> str:
    """Rich text: format, inputs and outputs with shapes, parameter count, file size."""

    def tensors(items: list[dict]) -> str:
        parts = []
        for t in items:
            dims = "×".join("?" if d is None else str(d) for d in t.get("shape", []))
            parts.append(f"{t.get('name', '?')} [{dims}] {t.get('dtype', '')}")
        return ", ".join(parts) or "—"

    rows = [
        ("Format", str(info.get("format", "?")) + (f" ({info['arch']})" if info.get("arch") else "")),
        ("Inputs", tensors(info.get("inputs", []))),
        ("Outputs", tensors(info.get("outputs", []))),
        ("Parameters", f"{int(info.get('params') or 0):,}"),
        ("File size", format_bytes(int(info.get("file_bytes") or 0))),
    ]
    return "<br>".join(f"<b>{k}</b>&nbsp; {v}" for k, v in rows)
