"""Ask before opening a model file that contains code (TorchScript, torch.export).

Such files run code with the user's permissions when they are loaded, so they
open only after the user trusted that exact file. ``trust_request`` (run off
the GUI thread: it hashes the whole file) says whether a file needs asking;
``ask_trust`` shows the confirmation without a nested event loop and reports
the answer through a callback, so a test can answer in its place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from core.models.detect import FileKind, detect_file

#: File kinds whose loading runs code from the file.
CODE_KINDS = (FileKind.TORCHSCRIPT, FileKind.TORCH_EXPORT)

_KIND_NAMES = {FileKind.TORCHSCRIPT: "a TorchScript archive", FileKind.TORCH_EXPORT: "a torch.export program"}


@dataclass(frozen=True)
class TrustRequest:
    """A file that contains code and what the user is asked to trust: these exact bytes."""

    path: str
    kind: FileKind
    sha256: str
    trusted: bool  # already in the trust list (by content hash)

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES.get(self.kind, self.kind.value)


#: Answers the question for one file: (parent, request, answer(accepted)). Tests swap it.
AskTrust = Callable[[QWidget, TrustRequest, Callable[[bool], None]], object]


def trust_request(path: str | Path) -> TrustRequest | None:
    """For a file whose loading runs code, what to ask about it (None: plain data, nothing to ask).

    Reads and hashes the file; BadInput (from detection) names the file when it is no model at all.
    """
    from core.files.trust import TrustList, file_sha256

    path = Path(path)
    kind = detect_file(path)
    if kind not in CODE_KINDS:
        return None
    digest = file_sha256(path)
    trusted = TrustList().is_trusted(path)
    return TrustRequest(str(path), kind, digest, trusted)


def trust_file(request: TrustRequest) -> None:
    """Remember the file as trusted, refusing if its bytes changed since the user was asked."""
    from core.errors import BadInput
    from core.files.trust import TrustList

    trust_list = TrustList()
    digest = trust_list.trust(request.path)
    if digest != request.sha256:
        trust_list.revoke(request.path)
        raise BadInput(f"{request.path} changed while you were deciding; it was not trusted. Open it again.")


def question_text(request: TrustRequest) -> tuple[str, str]:
    """The question and its details, naming the file, the risk and the hash being trusted."""
    name = os.path.basename(request.path)
    text = f"Open “{name}” and run the code it contains?"
    details = (
        f"{request.path} is {request.kind_name}. It contains code that will run on this computer with your "
        "permissions as soon as it is opened, and that code can read, change or delete your files.\n\n"
        "Open it only if you made it or trust where it came from. QuantBench remembers your answer for these "
        "exact bytes: a changed file will be asked about again.\n\n"
        f"SHA-256: {request.sha256}"
    )
    return text, details


class TrustDialog(QMessageBox):
    """"Trust and open" / "Cancel" for one file; Cancel is the default (Enter and Esc do not open it)."""

    def __init__(self, request: TrustRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        text, details = question_text(request)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("This file contains code")
        self.setText(text)
        self.setInformativeText(details)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.trust_button = self.addButton("Trust and open", QMessageBox.ButtonRole.AcceptRole)
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.cancel_button)
        self.setEscapeButton(self.cancel_button)

    def accepted_trust(self) -> bool:
        return self.clickedButton() is self.trust_button


def ask_trust(parent: QWidget, request: TrustRequest, answer: Callable[[bool], None]) -> TrustDialog:
    """Show the confirmation, modal to the window, and call ``answer`` once the user chose."""
    dialog = TrustDialog(request, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.finished.connect(lambda _code: answer(dialog.accepted_trust()))
    dialog.open()  # not exec(): no nested event loop while a study may be streaming
    return dialog
