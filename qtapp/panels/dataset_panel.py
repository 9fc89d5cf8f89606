"""Choose the evaluation data; show its size, task and preprocessing, and whether it fits the model.

The dataset is loaded (in the background) as soon as it is chosen, and checked
against the model's input and output, so a mismatch is reported here, before
the study runs.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.datasets.builtin import BUILTIN_NAMES
from core.errors import BadInput
from core.printable import printable
from core.study.spec import DatasetKind, DatasetSpec, Preprocess, Task
from qtapp.models import loading
from qtapp.models.window_words import in_window_words
from qtapp.threads.tasks import TaskRunner

KIND_TITLES = {
    DatasetKind.BUILTIN: "Built-in",
    DatasetKind.FOLDER: "Image folder",
    DatasetKind.NPZ: ".npz file",
    DatasetKind.CSV: "CSV file",
    DatasetKind.SYNTHETIC: "Synthetic",
}

PRESETS = {"0..1 (divide by 255)": "unit", "ImageNet mean/std": "imagenet"}


class DatasetPanel(QGroupBox):
    """The evaluation data: this panel's part of the StudySpec is read with ``dataset_spec`` and
    written with ``set_spec``."""

    #: A dataset was loaded and checked (DatasetLoad), or the choice changed and is not loaded yet (None).
    dataset_changed = Signal(object)

    def __init__(self, tasks: TaskRunner, parent=None) -> None:
        super().__init__("Dataset", parent)
        self._tasks = tasks
        self._model = None
        self._load: loading.DatasetLoad | None = None
        self._loading = False
        self._in_flight: tuple | None = None  # (spec, model) of the load under way
        self._generation = 0
        self._problem: str | None = None
        #: A folder's preprocessing from the last set_spec, kept while the Pixels choice shows it
        #: (the choice offers presets only; a custom one is not lost by opening it).
        self._preprocess: Preprocess | None = None

        self.kind = QComboBox(self)
        # Items carry the enum's value: Qt hands str-based enums back as plain strings.
        for kind, title in KIND_TITLES.items():
            self.kind.addItem(title, kind.value)
        self.builtin = QComboBox(self)
        self.builtin.setEditable(True)
        self.builtin.addItems(BUILTIN_NAMES)
        self.path = QLineEdit(self)
        self.path.setPlaceholderText("file or folder")
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self._browse)
        path_row = QWidget(self)
        path_box = QHBoxLayout(path_row)
        path_box.setContentsMargins(0, 0, 0, 0)
        path_box.addWidget(self.path, 1)
        path_box.addWidget(self.browse)
        self.path_row = path_row
        self.count = QSpinBox(self)
        self.count.setRange(1, 1_000_000)
        self.count.setValue(256)
        self.label_column = QLineEdit(self)
        self.label_column.setPlaceholderText("last column")
        self.preset = QComboBox(self)
        self.preset.addItems(list(PRESETS))
        self.task = QComboBox(self)
        for task in Task:
            self.task.addItem(task.value, task.value)
        self.limit = QSpinBox(self)
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Evaluate at most this many samples (all: the whole set).")
        self.calibration = QLineEdit(self)
        self.calibration.setPlaceholderText("held-out split")
        self.calibration.setToolTip(
            "What static schemes calibrate on. Empty: a held-out split of this dataset (10 %, at most 500 "
            "samples; a built-in set's train split), not evaluated. Another dataset: npz:PATH, csv:PATH, "
            "folder:PATH. same: the evaluated samples themselves (warned)."
        )

        self.form = QFormLayout()
        self.form.addRow("Source", self.kind)
        self.form.addRow("Name", self.builtin)
        self.form.addRow("Path", path_row)
        self.form.addRow("Samples", self.count)
        self.form.addRow("Label column", self.label_column)
        self.form.addRow("Pixels", self.preset)
        self.form.addRow("Task", self.task)
        self.form.addRow("Limit", self.limit)
        self.form.addRow("Calibration", self.calibration)
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.info)
        layout.addWidget(self.error)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        for signal in (self.builtin.activated, self.path.editingFinished, self.count.editingFinished,
                       self.label_column.editingFinished, self.preset.activated, self.task.activated,
                       self.limit.editingFinished, self.calibration.editingFinished):
            signal.connect(self.reload)
        self._kind_changed()

    # --- state ---------------------------------------------------------
    @property
    def loaded(self) -> loading.DatasetLoad | None:
        return self._load

    @property
    def busy(self) -> bool:
        return self._loading

    def problem(self) -> str | None:
        """Why a study cannot start with this data (None: it can)."""
        if self._loading:
            return "the dataset is still loading"
        return self._problem

    def dataset_spec(self) -> DatasetSpec:
        """The spec the widgets describe; raises BadInput for an incomplete choice."""
        kind = self._kind()
        task = Task(self.task.currentData())
        limit = self.limit.value() or None
        calibration = self.calibration.text().strip() or None
        if kind is DatasetKind.BUILTIN:
            name = self.builtin.currentText().strip()
            return DatasetSpec(kind, name, task=task, limit=limit, calibration=calibration)
        if kind is DatasetKind.SYNTHETIC:
            return DatasetSpec(kind, str(self.count.value()), task=task, limit=limit, calibration=calibration)
        path = self.path.text().strip()
        if not path:
            raise BadInput(f"Dataset: choose a {KIND_TITLES[kind]} first.")
        label_column = self.label_column.text().strip() or None if kind is DatasetKind.CSV else None
        preprocess = None
        if kind is DatasetKind.FOLDER:
            preprocess = self._preprocess_shown()
        return DatasetSpec(
            kind, path, label_column=label_column, task=task, preprocess=preprocess, limit=limit,
            calibration=calibration,
        )

    def set_spec(self, spec: DatasetSpec) -> None:
        """Show ``spec`` in the widgets and load it."""
        widgets = (self.kind, self.builtin, self.path, self.count, self.label_column, self.preset, self.task,
                   self.limit, self.calibration)
        for w in widgets:
            w.blockSignals(True)
        self.kind.setCurrentIndex(self.kind.findData(spec.kind.value))
        if spec.kind is DatasetKind.BUILTIN:
            self.builtin.setCurrentText(spec.location)
        elif spec.kind is DatasetKind.SYNTHETIC:
            self.count.setValue(int(spec.location))
        else:
            self.path.setText(spec.location)
        self.label_column.setText(spec.label_column or "")
        self._preprocess = spec.preprocess
        self.preset.setCurrentText(_preset_text(spec.preprocess))
        self.task.setCurrentIndex(self.task.findData(spec.task.value))
        self.limit.setValue(spec.limit or 0)
        self.calibration.setText(spec.calibration or "")
        for w in widgets:
            w.blockSignals(False)
        self._show_rows(spec.kind)
        self.reload()

    def _preprocess_shown(self) -> Preprocess | None:
        if self.preset.currentText() == _preset_text(self._preprocess):
            return self._preprocess  # as the spec had it (None: the loader's default)
        return Preprocess.imagenet() if PRESETS[self.preset.currentText()] == "imagenet" else Preprocess()

    def set_model(self, model) -> None:
        """The loaded model (LoadedModel or None); the dataset is checked against it again."""
        self._model = model
        self.reload()

    # --- loading -------------------------------------------------------
    def reload(self, *_args) -> None:
        if self._loading and self._in_flight is not None and self._in_flight[1] is self._model \
                and self._in_flight[0] == self._spec_or_none():
            return  # that very load is under way (a field lost focus, or was confirmed again)
        self._generation += 1
        generation = self._generation
        self._load = None
        self.error.hide()
        try:
            spec = self.dataset_spec()
        except BadInput as exc:
            self._loading = False
            self._problem = str(exc)
            self.info.setText(printable(in_window_words(str(exc))))
            self.dataset_changed.emit(None)
            return
        self._loading = True
        self._problem = None
        self.info.setText("Loading…")
        self.dataset_changed.emit(None)
        model = self._model
        self._in_flight = (spec, model)
        self._tasks.submit(
            lambda: loading.load_dataset(spec, model),
            lambda result: self._loaded(generation, result),
            lambda message: self._failed(generation, message),
            replaces="dataset",
        )

    def _spec_or_none(self) -> DatasetSpec | None:
        try:
            return self.dataset_spec()
        except BadInput:
            return None

    def _loaded(self, generation: int, result: loading.DatasetLoad) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self._load = result
        self.info.setText(describe_dataset(result.dataset.info()))
        self._problem = result.mismatch
        if result.mismatch:
            self._show_error(f"Does not fit the model: {result.mismatch}")
        self.dataset_changed.emit(result)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self._problem = message
        self.info.setText("")
        self._show_error(message)
        self.dataset_changed.emit(None)

    def _show_error(self, message: str) -> None:
        self.error.setText(printable(in_window_words(message)))
        self.error.show()

    # --- widgets -------------------------------------------------------
    def _kind_changed(self, *_args) -> None:
        self._show_rows(self._kind())
        self.reload()

    def _kind(self) -> DatasetKind:
        return DatasetKind(self.kind.currentData())

    def _show_rows(self, kind: DatasetKind) -> None:
        visible = {
            self.builtin: kind is DatasetKind.BUILTIN,
            self.path_row: kind in (DatasetKind.FOLDER, DatasetKind.NPZ, DatasetKind.CSV),
            self.count: kind is DatasetKind.SYNTHETIC,
            self.label_column: kind is DatasetKind.CSV,
            self.preset: kind is DatasetKind.FOLDER,
        }
        for widget, shown in visible.items():
            self.form.setRowVisible(widget, shown)

    def _browse(self) -> None:
        kind = self._kind()
        if kind is DatasetKind.FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Image folder (one sub-folder per class)")
        else:
            pattern = "NumPy archives (*.npz)" if kind is DatasetKind.NPZ else "CSV files (*.csv)"
            path, _ = QFileDialog.getOpenFileName(self, "Dataset", "", pattern + ";;All files (*)")
        if path:
            self.path.setText(path)
            self.reload()


def _preset_text(preprocess: Preprocess | None) -> str:
    """The Pixels choice that shows ``preprocess`` (None, the default, shows as 0..1)."""
    imagenet = preprocess is not None and preprocess.preset == "imagenet"
    return "ImageNet mean/std" if imagenet else "0..1 (divide by 255)"


def describe_dataset(info: dict) -> str:
    """Rich text: sample count, task (with classes) and the preprocessing applied."""
    task = str(info.get("task", "?"))
    if info.get("classes"):
        task += f", {info['classes']} classes"
    shape = "×".join(str(d) for d in info.get("sample_shape", []))
    rows = [
        ("Samples", f"{int(info.get('samples') or 0):,}" + (f" of shape {shape}" if shape else "")),
        ("Task", task),
        ("Preprocessing", str(info.get("preprocessing", "none"))),
    ]
    arrays = info.get("inputs") or []
    if len(arrays) > 1:  # a model with several inputs: each array with its shape and dtype
        listed = " · ".join(
            f"{html.escape(printable(str(a['name'])))} {'×'.join(str(d) for d in a['shape']) or 'scalar'} {a['dtype']}"
            for a in arrays
        )
        rows[0] = ("Samples", f"{int(info.get('samples') or 0):,}")
        rows.insert(1, ("Inputs", listed))
    if info.get("task") == "causal-lm":
        rows.append(("Labels", "the next tokens: perplexity and next-token accuracy over the real tokens"))
    elif not info.get("has_labels", True):
        rows.append(("Labels", "none: only fidelity and latency are measured"))
    calibration = info.get("calibration")
    if calibration:
        overlap = " — <b>also evaluated</b>" if calibration.get("overlaps_evaluation") else ""
        source = html.escape(printable(str(calibration.get("source"))))
        rows.append(("Calibration", f"{calibration.get('samples')} samples, {source}{overlap}"))
    return "<br>".join(f"<b>{k}</b>&nbsp; {v}" for k, v in rows)
