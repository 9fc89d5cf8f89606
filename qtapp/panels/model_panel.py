"""Choose the model (file, drag and drop, recent list, demo, a Hugging Face folder, a torchvision network) and
show what it is; the extra variant files below it are ``qtapp.panels.variant_files``.

A file that contains code (TorchScript, torch.export) opens only once the user
trusted it: the panel asks (``ask_trust``, a seam tests answer in place of the
user), remembers the answer by content hash in the trust list, and its "Trust
this file" box always shows the trust list's answer for the current file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
)

from core.printable import markup_escape, printable
from core.reports.format import format_bytes
from core.study.spec import ModelSpec, VariantSpec
from qtapp.models import loading
from qtapp.models.window_words import in_window_words
from qtapp.panels.variant_files import VariantFiles
from qtapp.threads.tasks import TaskRunner
from qtapp.window import recent_files
from qtapp.window.trust_dialog import AskTrust, TrustRequest, ask_trust, trust_file, trust_request

MODEL_FILTER = "Models (*.onnx *.pt *.pth *.bin *.tflite *.ts *.pt2 *.ep);;All files (*)"
ARCH_CHOICES = ("", "demo", "torchvision:resnet18", "torchvision:mobilenet_v3_small", "torchvision:resnet50")
TORCHVISION = "torchvision:"
#: Offered by "torchvision…"; any other torchvision classifier can be typed.
TORCHVISION_CHOICES = tuple(a for a in ARCH_CHOICES if a.startswith(TORCHVISION))


def is_torchvision_name(path: str) -> bool:
    """Whether ``path`` names a torchvision network ("torchvision:resnet18") rather than a file."""
    return path.strip().startswith(TORCHVISION) and not os.path.exists(path)


class ModelPanel(QGroupBox):
    """The model and the extra variant files: this panel's part of the StudySpec is read with
    ``model_spec`` and ``variant_specs`` and written with ``set_spec``."""

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
        self._loading_spec: ModelSpec | None = None  # what the load under way is loading
        self._path: str | None = None
        #: Input shape for formats that do not record it; kept from the spec that opened the file.
        self._input_shape: tuple[int, ...] | None = None
        #: The output chosen as the prediction, for a model with several (None: chosen by the loader).
        self._output: str | None = None
        #: The model file of a past study is gone (show_missing); cleared by the next open.
        self._missing = False
        #: What the current file holds, when it holds code (None: plain data, or not known yet).
        self._code: TrustRequest | None = None
        #: Shows the trust confirmation; tests replace it to answer without a dialog.
        self.ask_trust: AskTrust = ask_trust
        self.setAcceptDrops(True)

        self.open_button = QPushButton("Open…", self)
        self.open_button.setToolTip("Open a model file (Ctrl+O); you can also drop a file on the window.")
        self.open_button.clicked.connect(self.choose_file)
        self.folder_button = QPushButton("HF folder…", self)
        self.folder_button.setToolTip(
            "Open a local Hugging Face model folder (config.json and *.safetensors weights), read offline;\n"
            "needs the optional transformers package (pip install 'quantbench[transformers]')."
        )
        self.folder_button.clicked.connect(self.choose_folder)
        # A push button with a menu keeps room for its arrow (a tool button's arrow covered the last letter).
        self.recent_button = QPushButton("Recent", self)
        self.recent_button.setToolTip("Models opened before, newest first.")
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.demo_button = QPushButton("Open demo", self)
        self.demo_button.setToolTip("The bundled digits CNN and scikit-learn's digits test set (Ctrl+D).")
        self.torchvision_button = QPushButton("torchvision…", self)
        self.torchvision_button.setToolTip(
            "Open a torchvision network by name, e.g. resnet18 (pretrained weights from the local torch cache,\n"
            "else untrained: its latency and size are real, its accuracy means nothing). You can also type\n"
            "torchvision:NAME in the Architecture box when no file is open."
        )
        self.torchvision_button.clicked.connect(self.choose_torchvision)
        # Two rows, so the setup column keeps a quarter of a 1280 px window: files first, then the
        # sources that are not a file (a folder of weights, a torchvision network by name).
        buttons = QVBoxLayout()
        for row_buttons in ((self.open_button, self.recent_button, self.demo_button),
                            (self.folder_button, self.torchvision_button)):
            row = QHBoxLayout()
            for w in row_buttons:
                row.addWidget(w)
            row.addStretch(1)
            buttons.addLayout(row)

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
        self.trusted = QCheckBox("Trust this file (it runs code when opened)", self)
        self.trusted.setToolTip(
            "TorchScript and torch.export files run code when loaded; trust only files you made or trust.\n"
            "Trust is remembered for these exact bytes. Untick to stop trusting the file."
        )
        self.trusted.toggled.connect(self._trust_toggled)
        self.trusted.hide()  # shown for files that contain code
        self.output = QComboBox(self)
        self.output.setToolTip("The model has several outputs: the one that carries the prediction is judged "
                               "(--output on the command line).")
        self.output.activated.connect(self._output_chosen)
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.hide()

        self.variant_files = VariantFiles(tasks, lambda: self.ask_trust, self._start_folder, MODEL_FILTER, self)
        self.variant_files.changed.connect(self.variants_changed)
        self.model_changed.connect(self.variant_files.model_changed)

        form = QFormLayout()
        form.addRow("Architecture", self.arch)
        form.addRow("Prediction output", self.output)
        form.setRowVisible(self.output, False)  # shown for a model with several outputs
        self._form = form
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.path_label)
        layout.addLayout(form)
        layout.addWidget(self.trusted)
        layout.addWidget(self.info)
        layout.addWidget(self.error)
        layout.addWidget(self.variant_files)

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
        if self._missing:
            return "the study's model file no longer exists (see the Model panel)"
        if self.error.isVisible():
            return self.error.text()
        if self._load is None:
            return "open a model first"
        return None

    def model_spec(self) -> ModelSpec | None:
        return None if self._load is None else self._load.spec

    def variant_specs(self) -> list[VariantSpec]:
        """The extra variant files, in the order they were added."""
        return self.variant_files.specs()

    def set_spec(self, model: ModelSpec, variants: Sequence[VariantSpec] = ()) -> None:
        """Open ``model`` and make the variant files those of ``variants`` that are files.

        Scheme variants belong to the schemes panel and are skipped. Trust is asked of the trust
        list for each file, as when the user opens it: a spec's own word cannot grant it.
        """
        self.open_path(model.path, arch=model.arch, trusted=model.trusted, input_shape=model.input_shape,
                       output=model.output)
        self.variant_files.set_paths([v.path for v in variants if v.path is not None])

    # --- opening -------------------------------------------------------
    def _start_folder(self) -> str:
        """Where a file dialog opens: the current model's folder."""
        return str(Path(self._path).parent) if self._path else ""

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self._start_folder(), MODEL_FILTER)
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        """Open a Hugging Face model folder (a file dialog cannot pick a folder)."""
        path = QFileDialog.getExistingDirectory(self, "Open a Hugging Face model folder", self._start_folder())
        if path:
            self.open_path(path)

    def open_demo(self) -> None:
        from core.study.demo import DEMO_ARCH, DEMO_WEIGHTS, demo_available

        if not demo_available():
            self._show_error(f"The demo model is not installed ({DEMO_WEIGHTS} is missing).")
            return
        self.open_path(str(DEMO_WEIGHTS), arch=DEMO_ARCH)

    def open_path(
        self, path: str, arch: str | None = None, trusted: bool = False, input_shape: tuple[int, ...] | None = None,
        output: str | None = None,
    ) -> None:
        """Load ``path`` in the background; ``model_changed`` fires when it is done.

        ``trusted``: the user already trusted this file elsewhere (e.g. ``--trust`` on the
        command line): it is added to the trust list instead of asking again. ``input_shape``:
        batch first, for formats that do not record it (TorchScript, state dicts).
        """
        self._path = path.strip() if is_torchvision_name(path) else os.path.abspath(path)
        self._input_shape = input_shape
        self._output = output
        self._set_arch(arch or "")
        self._code = None
        self._show_trust(None)
        self._start_load(trust_first=trusted)

    def show_missing(self, model: ModelSpec, variant_paths: Sequence[str] = ()) -> None:
        """A past study's model whose file is gone: nothing is loaded, and one sentence says so."""
        self._generation += 1  # a load still under way is dropped
        self._loading, self._loading_spec, self._load = False, None, None
        self._path, self._input_shape, self._code = os.path.abspath(model.path), model.input_shape, None
        self._set_arch(model.arch or "")
        self._show_trust(None)
        self.path_label.setText(printable(model.path))
        self.info.setText("")
        folder, name = os.path.split(self._path)
        self._show_error(f"This study's model {name} no longer exists in {folder}: "
                         "open it where it is now to run the study again.")
        self._missing = True
        self.model_changed.emit(None)
        self.variant_files.set_paths(variant_paths)

    def choose_torchvision(self) -> None:
        examples = ", ".join(c.removeprefix(TORCHVISION) for c in TORCHVISION_CHOICES)
        name, ok = QInputDialog.getText(self, "Open a torchvision network",
                                        f"Network name (a torchvision classifier, e.g. {examples}):",
                                        text=TORCHVISION_CHOICES[0].removeprefix(TORCHVISION))
        if ok and name.strip():
            self.open_torchvision(name)

    def open_torchvision(self, name: str) -> None:
        """Open torchvision's network ``name`` ("resnet18" or "torchvision:resnet18"), as ``open_path`` opens a file."""
        name = name.strip()
        self.open_path(name if name.startswith(TORCHVISION) else TORCHVISION + name)

    def _set_arch(self, arch: str) -> None:
        self.arch.blockSignals(True)
        self.arch.setCurrentText(arch)
        self.arch.blockSignals(False)

    def _reload(self, *_args) -> None:
        typed = self.arch.currentText().strip()
        if typed.startswith(TORCHVISION) and (self._path is None or is_torchvision_name(self._path)):
            # No file to give an architecture to: the name itself is the model.
            if typed != self._path:
                self.open_torchvision(typed)
            return
        current = self.model_spec()
        if current is not None:
            current = dataclasses.replace(current, trusted=False)  # _spec() leaves trust to the load
        # The field lost focus or was confirmed again: nothing to do if that model is loaded or loading.
        if self._path is None or self._spec() in (current, self._loading_spec if self._loading else None):
            return
        self._start_load()

    def _spec(self) -> ModelSpec:
        # Trust is added to the spec by the load (_inspect_and_load), from the trust list by content hash.
        arch = self.arch.currentText().strip() or None
        return ModelSpec(path=self._path or "", arch=arch, input_shape=self._input_shape, output=self._output)

    def _start_load(self, trust_first: bool = False) -> None:
        spec = self._spec()
        self._load = None
        self._missing = False
        self.error.hide()
        self.path_label.setText(printable(spec.path))
        # The demo's study runs first and the panels' loading waits for it (MainWindow.open_demo).
        self.info.setText("Opens when the study has ended (loading now would disturb its timing)."
                          if self._tasks.holding else "Loading…")
        self._generation += 1
        self._loading = True
        self._loading_spec = spec
        self.model_changed.emit(None)
        generation = self._generation
        self._tasks.submit(
            lambda: _inspect_and_load(spec, trust_first),
            lambda result: self._loaded(generation, result),
            lambda message: self._failed(generation, message),
            replaces="model",
        )

    def _loaded(self, generation: int, result: tuple[TrustRequest | None, loading.ModelLoad | None]) -> None:
        if generation != self._generation:
            return  # superseded by a later open
        code, load = result
        self._code = code
        self._show_trust(code)
        if load is None:
            assert code is not None  # only a file with code stops to ask
            self.info.setText("Waiting for your answer: this file contains code.")
            self.ask_trust(self.window(), code, lambda ok: self._answered(generation, code, ok))
            return
        self._loading = False
        self._load = load
        self.error.hide()
        self.info.setText(describe_model(load.model.info()))
        self._show_outputs(load.model)
        recent_files.remember_model(load.spec.path, load.spec.arch)
        self.model_changed.emit(load)

    def _show_outputs(self, model: Any) -> None:
        """The output combo box, for a model with several outputs; the sentence when none is chosen yet."""
        names = [t.name for t in model.outputs]
        self._form.setRowVisible(self.output, len(names) > 1)
        self.output.blockSignals(True)
        self.output.clear()
        if len(names) > 1:
            if model.output_problem:
                self.output.addItem("choose the prediction output…", None)
            for name in names:
                self.output.addItem(printable(name), name)
            if not model.output_problem:
                self.output.setCurrentIndex(names.index(model.output.name))
        self.output.blockSignals(False)
        if model.output_problem:
            self._show_error(model.output_problem.replace("with --output NAME", "in the Prediction output box"))

    def _output_chosen(self, index: int) -> None:
        name = self.output.itemData(index)
        if name is not None and name != self._output:
            self._output = name
            self._start_load()

    def _answered(self, generation: int, code: TrustRequest, accepted: bool) -> None:
        """The user's answer about the current file; nothing is loaded unless they trusted it."""
        if generation != self._generation:
            return  # another file was opened meanwhile
        if not accepted:
            self._show_trust(code)
            self._failed(generation, f"{code.path} was not opened: it contains code and you did not trust it "
                                     "(tick “Trust this file” to be asked again).")
            return
        self._trust_then_load(code)

    def _trust_then_load(self, code: TrustRequest) -> None:
        self._generation += 1
        generation = self._generation
        self._loading = True
        self.info.setText("Loading…")
        self._tasks.submit(
            lambda: trust_file(code),  # hashes the file again: off the GUI thread
            lambda _none: self._start_load() if generation == self._generation else None,
            lambda message: self._failed(generation, message),
        )

    def _trust_toggled(self, checked: bool) -> None:
        code = self._code
        if code is None or checked == code.trusted:
            return
        if checked:
            self._show_trust(code)  # ticked only once the user confirms in the dialog
            self._generation += 1
            generation = self._generation
            self._loading = True
            self.ask_trust(self.window(), code, lambda ok: self._answered(generation, code, ok))
            return
        self._generation += 1
        generation = self._generation
        self._load = None
        self._loading = True
        self.model_changed.emit(None)
        self._tasks.submit(
            lambda: _revoke(code),
            lambda revoked: self._revoked(generation, revoked),
            lambda message: self._failed(generation, message),
        )

    def _revoked(self, generation: int, code: TrustRequest) -> None:
        if generation != self._generation:
            return
        self._code = code
        self._show_trust(code)
        self._failed(generation, f"{code.path} is no longer trusted, so it was closed "
                                 "(tick “Trust this file” to open it again).")

    def _show_trust(self, code: TrustRequest | None) -> None:
        """The box mirrors the trust list for the current file; hidden for files without code."""
        self.trusted.blockSignals(True)
        self.trusted.setChecked(code is not None and code.trusted)
        self.trusted.blockSignals(False)
        self.trusted.setVisible(code is not None)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._loading = False
        self.info.setText("")
        self._show_error(message)
        self.model_changed.emit(None)

    def _show_error(self, message: str) -> None:
        self._missing = False  # show_missing sets it again after this
        self.error.setText(printable(in_window_words(message)))
        self.error.show()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = recent_files.recent_models()
        if not items:
            self.recent_menu.addAction("No recent models").setEnabled(False)
        for path, arch in items:
            text = printable(os.path.basename(path)) + (f"  ({arch})" if arch else "")
            action = self.recent_menu.addAction(text)
            action.setToolTip(printable(path))
            action.triggered.connect(lambda _=False, p=path, a=arch: self.open_path(p, arch=a))


def _inspect_and_load(spec: ModelSpec, trust_first: bool) -> tuple[TrustRequest | None, loading.ModelLoad | None]:
    """In the background: what the file holds and, unless it is code nobody trusted yet, its load.

    Returns (the file's code status or None, the load or None when the user must be asked first).
    """
    from dataclasses import replace

    code = trust_request(spec.path) if Path(spec.path).is_file() else None
    if code is not None and not code.trusted:
        if not trust_first:
            return code, None  # nothing of the file runs before the user said yes
        trust_file(code)
        code = replace(code, trusted=True)
    # The loader takes trust from the spec only; the spec says what the trust list said just now.
    return code, loading.load_model(replace(spec, trusted=code is not None and code.trusted))


def _revoke(code: TrustRequest) -> TrustRequest:
    from dataclasses import replace

    from core.files.trust import TrustList

    TrustList().revoke(code.path)
    return replace(code, trusted=False)


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
    # Names come from the file: control characters written out, markup shown as text.
    return "<br>".join(f"<b>{k}</b>&nbsp; {markup_escape(v)}" for k, v in rows)
