"""The extra variant files of the Model panel: files of the same model quantized or optimized elsewhere,
compared as variants.

A file that contains code is added only once the user trusted it (``ask_trust``, the panel's seam), and a file
whose inputs or outputs are not the open model's is dropped, with one sentence saying why, as soon as a check in
the background knows it (the engine would refuse it too: core.engine.plan).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from core.printable import printable
from core.study.spec import ModelSpec, VariantSpec
from qtapp.models import loading
from qtapp.models.window_words import in_window_words
from qtapp.threads.tasks import TaskRunner
from qtapp.window.trust_dialog import CODE_KINDS, AskTrust, TrustRequest, trust_file, trust_request

#: Item data: whether a variant file with code was trusted when it was added.
_TRUSTED_ROLE = Qt.ItemDataRole.UserRole + 1


class VariantFiles(QWidget):
    """The list of extra variant files with its Add and Remove buttons and its one-sentence error."""

    #: The list of files changed.
    changed = Signal()

    def __init__(
        self, tasks: TaskRunner, ask: Callable[[], AskTrust], start_folder: Callable[[], str], model_filter: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._ask = ask  # the panel's ask_trust as it is now (tests replace it)
        self._start_folder = start_folder
        self._filter = model_filter
        self._load: loading.ModelLoad | None = None
        self._generation = 0  # bumped per model, so a check against a model no longer open is ignored

        self.list = QListWidget(self)
        self.list.setMaximumHeight(58)
        # One line per file, '…' in the middle: a long name keeps its start and its extension.
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("Files of the same model quantized or optimized elsewhere, compared as variants.")
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.hide()
        add = QPushButton("Add variant file…", self)
        add.clicked.connect(self.choose)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(self._remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Extra variant files", self))
        layout.addWidget(self.list)
        layout.addWidget(self.error)
        layout.addLayout(buttons)

    def specs(self) -> list[VariantSpec]:
        """The files, in the order they were added."""
        items = [self.list.item(i) for i in range(self.list.count())]
        return [VariantSpec(path=item.data(Qt.ItemDataRole.UserRole), trusted=bool(item.data(_TRUSTED_ROLE)))
                for item in items]

    def set_paths(self, paths: Sequence[str]) -> None:
        """Replace the files with ``paths`` (each checked as ``add`` does)."""
        self.error.hide()
        self.list.clear()
        self.changed.emit()
        for path in paths:
            self.add(path)

    def model_changed(self, load: loading.ModelLoad | None) -> None:
        """The model now open (None while none is): every file is checked against it in the background."""
        self._generation += 1
        self._load = load
        self._check([(v.path or "", v.trusted) for v in self.specs()])

    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a variant file", self._start_folder(), self._filter)
        if path:
            self.add(path)

    def add(self, path: str) -> None:
        """Add a file to compare; one that contains code is added only once the user trusted it."""
        from core.errors import BadInput
        from core.models.detect import detect_file

        path = os.path.abspath(path)
        if path in self._paths():
            return
        self.error.hide()
        try:
            kind = detect_file(Path(path))  # reads a few bytes: cheap enough for the GUI thread
        except BadInput as exc:
            self._refused(str(exc))
            return
        if kind not in CODE_KINDS:
            self._append(path)
            return
        self._tasks.submit(lambda: trust_request(path), lambda code: self._inspected(path, code), self._refused)

    def _inspected(self, path: str, code: TrustRequest | None) -> None:
        if code is None or code.trusted:
            self._append(path, trusted=code is not None)
            return

        def answered(accepted: bool) -> None:
            if not accepted:
                self._refused(f"{code.path} was not added: it contains code and you did not trust it.")
                return
            self._tasks.submit(lambda: trust_file(code), lambda _none: self._append(code.path, trusted=True),
                               self._refused)

        self._ask()(self.window(), code, answered)

    def _refused(self, message: str) -> None:
        self.error.setText(printable(in_window_words(message)))
        self.error.show()

    def _check(self, items: list[tuple[str, bool]]) -> None:
        """In the background, drop the files among ``items`` whose inputs or outputs are not the model's."""
        load = self._load
        if load is None or not items:
            return
        generation = self._generation
        self._tasks.submit(lambda: _unfit_variants(load, items), lambda unfit: self._drop_unfit(generation, unfit),
                           lambda _message: None)  # a file that does not load fails as its own row

    def _drop_unfit(self, generation: int, unfit: list[tuple[str, str]]) -> None:
        if generation != self._generation or not unfit:
            return  # another model was opened meanwhile: its own check follows
        paths = {path for path, _reason in unfit}
        for row in reversed(range(self.list.count())):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) in paths:
                self.list.takeItem(row)
        if len(unfit) == 1:
            message = f"{unfit[0][1]} It was removed from the variant files."
        else:
            names = ", ".join(os.path.basename(path) for path, _reason in unfit)
            message = f"Removed {len(unfit)} variant files whose inputs or outputs do not fit this model: {names}."
        self._refused(message)
        self.changed.emit()

    def _paths(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _append(self, path: str, trusted: bool = False) -> None:
        if path in self._paths():
            return
        self.list.addItem(printable(os.path.basename(path)))
        item = self.list.item(self.list.count() - 1)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setData(_TRUSTED_ROLE, trusted)  # code the user trusted (by hash) when adding it
        item.setToolTip(printable(path))
        # No width of its own: the row is the list's width and a longer name is elided, not scrolled.
        item.setSizeHint(QSize(1, self.list.sizeHintForRow(self.list.row(item))))
        self.changed.emit()
        self._check([(path, trusted)])

    def _remove_selected(self) -> None:
        self.error.hide()
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.changed.emit()


def _unfit_variants(load: loading.ModelLoad, items: list[tuple[str, bool]]) -> list[tuple[str, str]]:
    """In the background: (path, why) for each variant file whose inputs or outputs are not the model's."""
    from core.models import load_model
    from core.models.signature import signature_mismatch

    unfit = []
    for path, trusted in items:
        spec = ModelSpec(path=path, arch=load.spec.arch, trusted=trusted, input_shape=load.spec.input_shape)
        try:
            variant = load_model(spec)
        except Exception:  # noqa: BLE001 - a file that does not load fails as its own row, as before
            continue
        reason = signature_mismatch(load.model, variant)
        if reason:
            unfit.append((path, reason))
    return unfit
