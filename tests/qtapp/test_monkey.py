"""The window under a random user (issue 12).

A seeded monkey drives the real main window with a few thousand random actions: clicks on
visible, enabled widgets (buttons, check boxes, combo boxes, list and table items, header
sections, tabs), key presses into the focused widget (Escape, Return, Tab, Delete, Ctrl+Z,
arrows, letters and the window's own shortcuts), text typed into the focused field, files
dropped on the window from a hostile corpus, menu commands, and Run / Cancel at any moment.
Every dialog (file choosers, questions, text input, the trust confirmation) answers at once,
at random, as a user clicking about would.

The engine is the fake one (fake_study.py) behind a seeded wrapper that sometimes streams
slowly, fails halfway, refuses its input or stops without its StudyFinished, so a study
takes well under a second and every way a study can end happens many times.

Asserted: nothing raised (pytest-qt's capture and our own hook, which names the action), Qt
never warned (``MISUSE`` below names the warnings that mean we misuse Qt; any other Qt
warning fails too, as in every Qt test here), no thread is left running once the window has
closed, and the window still answers at the end: a timer fires within a second and a tiny
study set up through the panels runs to completion.

A failure names its seed and the last actions. ``QB_MONKEY_SEED=7 QB_MONKEY_ACTIONS=5000``
runs one seed, longer. A run is reproducible up to the timing of the background threads (a
load that ends a step earlier changes which widgets are enabled, and so what is clicked).
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import pytest
import shiboken6
from fake_study import fake_run_study
from helpers import close_window, fake_spec
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QPoint,
    QPointF,
    Qt,
    QTimer,
    QtMsgType,
    QUrl,
    qInstallMessageHandler,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGraphicsView,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QRadioButton,
    QScrollArea,
    QTabBar,
    QToolButton,
    QWidget,
)

from core.errors import BadInput
from core.study.cancel import CancelToken
from core.study.events import Event, StudyFinished, StudyStarted, VariantFinished
from core.study.spec import DatasetSpec, SchemeSpec, StudySpec
from qtapp.charts.export import exporter_of
from qtapp.threads.controller import live_threads
from qtapp.threads.tasks import busy_runners
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT
from qtapp.window.trust_dialog import TrustRequest, ask_trust

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

SEEDS = (1, 2, 3)
ACTIONS = int(os.environ.get("QB_MONKEY_ACTIONS", "700"))
#: Actions shown with a failure (every one is in monkey-actions.log in the test's tmp_path).
SHOWN_ACTIONS = 40

#: Qt messages that mean the window misuses Qt: a thread or timer touched from the wrong thread,
#: an object deleted under a running thread, painting outside a paint event, a signal argument Qt
#: cannot queue, a broken connection, a bad span or layout. Any of them fails the test, whatever
#: its level (Qt prints several as plain debug messages).
MISUSE = (
    "QObject::",  # connect/disconnect to a missing signal, setParent or timers across threads
    "QThread: Destroyed while thread is still running",
    "QThread::wait: Thread tried to wait on itself",
    "QBasicTimer",  # "can only be used with threads started with QThread", "...from another thread"
    "Timers cannot be",  # started/stopped from another thread
    "QSocketNotifier",
    "Cannot queue arguments",
    "QPainter::",  # begin/end on a device that is not painting
    "QWidget::repaint: Recursive repaint",
    "QWidget::setLayout",
    "QLayout:",
    "QPixmap: It is not safe",
    "QTableView::setSpan",
    "QAbstractItemView::",
    "QItemSelectionModel",
    "QSortFilterProxyModel",
    "QGraphicsScene::",
    "QMetaObject::",
    "QCoreApplication::",
    "QApplication::",
    "QSplitter::",
    "QFont::setPointSize",
)
#: Harmless messages of the offscreen platform, which cannot do what a desktop does with top-level
#: windows: size hints (ignored by the conftest for every test), raising the History dock when it
#: floats or is shown again (QDockWidget raises itself), and the keyboard grab of a combo box's
#: list when Space opens it.
BENIGN = ("propagateSizeHints", "This plugin does not support raise()",
          "This plugin does not support grabbing the keyboard")


# --- the corpus ---------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    folder: Path
    valid_onnx: Path
    good_models: tuple[Path, ...]  # fit builtin:digits
    files: tuple[Path, ...]  # everything a user may drop, hostile or not
    datasets: tuple[Path, ...]  # what the dataset panel may be pointed at


def _mlp_onnx(path: Path, seed: int = 0) -> bytes:
    """x [batch, 64] ─ MatMul ─ Add ─ Relu ─ MatMul ─▶ y [batch, 10]: fits builtin:digits."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.standard_normal((64, 16)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((16, 10)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["hr"]),
        helper.make_node("MatMul", ["hr", "w2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    path.write_bytes(data)
    return data


def _torchscript(path: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(torch.nn.Linear(64, 10).eval(), torch.zeros(1, 64)), str(path))


def _warm_up() -> None:
    """Import what the window's loaders import (scikit-learn, torchvision) once, before the clock
    runs: on a busy two-core machine a first import in a pool thread takes 10-15 s, and the monkey
    would spend its time budget waiting for it rather than acting."""
    import torchvision.models  # noqa: F401

    from core.datasets import load_dataset

    load_dataset(DatasetSpec.parse("builtin:iris"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from core.study.demo import DEMO_ONNX, DEMO_WEIGHTS

    folder = tmp_path_factory.mktemp("monkey-corpus")
    onnx_bytes = _mlp_onnx(folder / "mlp.onnx")
    rng = np.random.default_rng(0)
    hostile = {
        "empty.onnx": b"",
        "page.onnx": b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n",
        "truncated.onnx": onnx_bytes[: len(onnx_bytes) // 2],
        "random.tflite": rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "\x1b[2Jmodel.onnx": onnx_bytes,  # a valid model whose name clears a terminal
        "two\nlines.onnx": onnx_bytes,  # a valid model whose name breaks a line
        "bad\x1b[31mred.pt": b"\x80\x02garbage that is no pickle at all",
        "garbage.npz": rng.integers(0, 256, 700, dtype=np.uint8).tobytes(),
    }
    for name, data in hostile.items():
        (folder / name).write_bytes(data)
    with zipfile.ZipFile(folder / "archive.pt", "w") as zf:  # a zip named .pt, with garbage in it
        zf.writestr("junk/data.bin", rng.integers(0, 256, 512, dtype=np.uint8).tobytes())
    with zipfile.ZipFile(folder / "notnumpy.npz", "w") as zf:
        zf.writestr("x.npy", b"not an array")
    (folder / "folder.onnx").mkdir()
    (folder / "folder.onnx" / "inside.txt").write_text("a folder named like a model")
    (folder / "gone.onnx").symlink_to(folder / "never-existed.onnx")  # dangling
    _torchscript(folder / "script.pt")  # code: opens only once trusted
    x = rng.random((40, 64), dtype=np.float32)
    np.savez(folder / "data.npz", x=x, y=np.arange(40) % 10)
    (folder / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\nfoo,bar,baz\n")
    files = (folder / "mlp.onnx", DEMO_ONNX, DEMO_WEIGHTS, folder / "script.pt",
             *(folder / n for n in hostile), folder / "archive.pt", folder / "notnumpy.npz",
             folder / "folder.onnx", folder / "gone.onnx")
    datasets = (folder / "data.npz", folder / "garbage.npz", folder / "notnumpy.npz", folder / "data.csv",
                folder / "folder.onnx", folder / "gone.onnx", folder, folder / "two\nlines.onnx")
    _warm_up()
    good = (folder / "mlp.onnx", DEMO_ONNX, folder / "\x1b[2Jmodel.onnx", folder / "two\nlines.onnx")
    return Corpus(folder, folder / "mlp.onnx", good, files, datasets)


# --- the engine ---------------------------------------------------------------
ENGINE_MODES = ("quick", "quick", "slow", "slow", "raises", "bad-input", "no-finish")


class HostileEngine:
    """The fake engine, behaving differently per study (chosen from the seed and the study's number)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.started = 0
        self.forced: str | None = None  # every study behaves so (the final check)

    def __call__(self, spec: StudySpec, cancel: CancelToken) -> Iterator[Event]:
        self.started += 1
        mode = self.forced or random.Random(f"{self.seed}/{self.started}").choice(ENGINE_MODES)
        if mode == "bad-input":
            raise BadInput("the monkey's engine refuses this input.")
        if mode == "quick":
            return fake_run_study(spec, cancel, batches=2, batch_size=20)
        if mode == "slow":
            return fake_run_study(spec, cancel, batches=8, delay_s=0.01)
        if mode == "endless":  # only when forced: runs until cancelled (a minute at most)
            return fake_run_study(spec, cancel, batches=1000, delay_s=0.01)
        return self._broken(spec, cancel, mode)

    @staticmethod
    def _broken(spec: StudySpec, cancel: CancelToken, mode: str) -> Iterator[Event]:
        """"raises": an internal error after the first variant; "no-finish": the stream ends
        right after StudyStarted, without a StudyFinished."""
        for event in fake_run_study(spec, cancel, batches=2, delay_s=0.005):
            if isinstance(event, StudyFinished):
                return
            yield event
            if isinstance(event, VariantFinished) and mode == "raises":
                raise RuntimeError("the monkey's engine broke halfway")
            if isinstance(event, StudyStarted) and mode == "no-finish":
                return


# --- dialogs ------------------------------------------------------------------
class Dialogs:
    """Answers every dialog of the window at once, at random (its own generator, so the answers
    do not shift the monkey's actions). ``asked`` counts the questions by kind."""

    def __init__(self, rng: random.Random, corpus: Corpus, out: Path) -> None:
        self.rng, self.corpus, self.out = rng, corpus, out
        self.asked: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.asked[kind] = self.asked.get(kind, 0) + 1

    def open_file(self, *_args, **_kwargs) -> tuple[str, str]:
        self._count("open")
        if self.rng.random() < 0.3:
            return "", ""
        choices = self.corpus.files + self.corpus.datasets
        return str(self.rng.choice(choices)), ""

    def save_file(self, *_args, **_kwargs) -> tuple[str, str]:
        self._count("save")
        roll = self.rng.random()
        if roll < 0.3:
            return "", ""
        if roll < 0.4:
            return str(self.out / "no-such-folder" / "x.png"), ""
        if roll < 0.45:
            return str(self.out), ""  # a folder
        name = self.rng.choice(("shot", "report", "spec", "chart", "\x1b[1mbold", "new\nline"))
        suffix = self.rng.choice(("", ".png", ".svg", ".html", ".csv", ".json", ".quantbench.json"))
        return str(self.out / f"{name}{self.rng.randrange(5)}{suffix}"), ""

    def folder(self, *_args, **_kwargs) -> str:
        self._count("folder")
        return self.rng.choice(("", str(self.out), str(self.corpus.folder), str(self.out / "missing")))

    def question(self, *_args, **_kwargs) -> QMessageBox.StandardButton:
        self._count("question")
        return self.rng.choice((QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No))

    def message(self, *_args, **_kwargs) -> QMessageBox.StandardButton:
        self._count("message")
        return QMessageBox.StandardButton.Ok

    def text(self, *_args, **_kwargs) -> tuple[str, bool]:
        self._count("text")
        text = self.rng.choice(("", "int8 trial", "\x1b[2J", "two\nlines", "x" * 300, "ünïcödé ✓", "'; drop table"))
        return text, self.rng.random() < 0.7

    def trust(self, parent: QWidget, request: TrustRequest, answer: Callable[[bool], None]) -> None:
        """The trust question: half the time the real dialog, whose button is clicked a moment
        later (unless the monkey got to it first); else answered on the next pass of the loop."""
        self._count("trust")
        accept = self.rng.random() < 0.5
        if self.rng.random() < 0.5:
            QTimer.singleShot(0, lambda: answer(accept))
            return
        dialog = ask_trust(parent, request, answer)
        button = dialog.trust_button if accept else dialog.cancel_button

        def click() -> None:
            if shiboken6.isValid(button) and button.isVisible():
                button.click()

        QTimer.singleShot(self.rng.choice((0, 10, 50)), click)

    def install(self, monkeypatch: pytest.MonkeyPatch, window: MainWindow) -> None:
        monkeypatch.setattr(QFileDialog, "getOpenFileName", self.open_file)
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self.save_file)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", self.folder)
        monkeypatch.setattr(QMessageBox, "question", self.question)
        for name in ("warning", "critical", "information"):
            monkeypatch.setattr(QMessageBox, name, self.message)
        monkeypatch.setattr(QInputDialog, "getText", self.text)
        monkeypatch.setattr(QInputDialog, "getMultiLineText", self.text)
        window.model_panel.ask_trust = self.trust


# --- what went wrong -----------------------------------------------------------
#: Qt's message types by value (the handler may get a plain int).
LEVELS = {t.value: t.name.removeprefix("Qt").removesuffix("Msg").lower() for t in
          (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg, QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg,
           QtMsgType.QtFatalMsg)}


class Trouble:
    """Exceptions (any thread) and Qt messages, each with the action that was running."""

    def __init__(self) -> None:
        self.action = "setup"
        self.errors: list[str] = []
        self.qt_messages: list[str] = []

    def misuse(self) -> list[str]:
        return [m for m in self.qt_messages if any(p in m for p in MISUSE)]

    def warnings(self) -> list[str]:
        return [m for m in self.qt_messages if m.startswith(("warning", "critical", "fatal"))
                and not any(p in m for p in BENIGN)]

    def __enter__(self) -> Self:
        self._hooks = sys.excepthook, threading.excepthook
        previous_hook, previous_thread_hook = self._hooks

        def hook(kind, exc, tb) -> None:
            self.errors.append(f"during {self.action}:\n" + "".join(traceback.format_exception(kind, exc, tb)))
            previous_hook(kind, exc, tb)  # pytest-qt's capture sees it too

        def thread_hook(args) -> None:
            text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            self.errors.append(f"in thread {getattr(args.thread, 'name', '?')} during {self.action}:\n{text}")
            previous_thread_hook(args)

        sys.excepthook, threading.excepthook = hook, thread_hook
        self._previous_handler = None

        def handler(mode, context, message) -> None:
            level = LEVELS.get(getattr(mode, "value", mode), str(mode))
            self.qt_messages.append(f"{level}: {message} (during {self.action})")
            if self._previous_handler is not None:
                self._previous_handler(mode, context, message)  # pytest-qt records it too

        self._previous_handler = qInstallMessageHandler(handler)
        return self

    def __exit__(self, *_exc) -> None:
        qInstallMessageHandler(self._previous_handler)
        sys.excepthook, threading.excepthook = self._hooks


# --- the monkey ----------------------------------------------------------------
CLICKABLE = (QAbstractButton, QComboBox, QAbstractItemView, QTabBar, QLineEdit, QAbstractSpinBox)
K, M = Qt.Key, Qt.KeyboardModifier
CTRL, SHIFT, NONE = M.ControlModifier, M.ShiftModifier, M.NoModifier
KEYS: tuple[tuple[Qt.Key, Qt.KeyboardModifier], ...] = (
    *((k, NONE) for k in (K.Key_Escape, K.Key_Return, K.Key_Enter, K.Key_Tab, K.Key_Delete,
                          K.Key_Backspace, K.Key_Up, K.Key_Down, K.Key_Left, K.Key_Right, K.Key_PageUp,
                          K.Key_PageDown, K.Key_Home, K.Key_End, K.Key_Space, K.Key_F5)),
    (K.Key_Tab, SHIFT), (K.Key_Z, CTRL), (K.Key_Z, CTRL | SHIFT), (K.Key_A, CTRL), (K.Key_C, CTRL),
    (K.Key_V, CTRL), (K.Key_X, CTRL),
    # The window's shortcuts (Quit, Ctrl+Q, is left out: the test closes the window itself).
    # Ctrl+T (the theme, half a second to restyle everything) is left to the menu commands.
    (K.Key_R, CTRL), (K.Key_D, CTRL), (K.Key_E, CTRL), (K.Key_B, CTRL), (K.Key_H, CTRL),
    (K.Key_O, CTRL), (K.Key_Period, CTRL), (K.Key_O, CTRL | SHIFT), (K.Key_S, CTRL | SHIFT),
    (K.Key_E, CTRL | SHIFT), (K.Key_P, CTRL | SHIFT),
)
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789-.:/ "
TYPED = ("digits", "iris", "synthetic", "7", "0", "-1", "1e9", "0.5", "torchvision:resnet18", "demo", "nonsense",
         "\x1b[2J", "../../etc/passwd", "per-channel", "label")


class Monkey:
    """Picks one weighted action at a time with its own generator and logs what it did."""

    def __init__(self, window: MainWindow, rng: random.Random, corpus: Corpus, trouble: Trouble) -> None:
        self.window, self.rng, self.corpus, self.trouble = window, rng, corpus, trouble
        self.log: list[str] = []
        self.counts: dict[str, int] = {}
        self.actions: list[tuple[float, Callable[[], str]]] = [
            (30, self.click), (22, self.key), (5, self.type_text), (8, self.drop), (6, self.run),
            (5, self.cancel), (7, self.menu_command), (6, self.choose_in_combo), (4, self.wait),
            (1.5, self.set_up_and_run), (1, self.chart_menu), (1, self.resize),
        ]
        self._weights = [w for w, _ in self.actions]

    # --- driving ----------------------------------------------------------
    def step(self, index: int) -> None:
        (act,) = self.rng.choices([a for _, a in self.actions], weights=self._weights)
        name = act.__name__
        self.trouble.action = f"action {index} ({name})"
        begun = time.perf_counter()
        what = act()
        self.trouble.action = f"action {index} ({what})"
        QApplication.processEvents()
        self.log.append(f"{index:5d} {(time.perf_counter() - begun) * 1000:6.1f} ms  {what}")
        self.counts[name] = self.counts.get(name, 0) + 1
        self._close_popups()

    def _close_popups(self) -> None:
        popup = QApplication.activePopupWidget()
        while popup is not None:
            popup.close()
            QApplication.processEvents()
            next_popup = QApplication.activePopupWidget()
            if next_popup is popup:
                break
            popup = next_popup

    def tail(self) -> str:
        return "\n".join(self.log[-SHOWN_ACTIONS:])

    # --- widgets ----------------------------------------------------------
    def _targets(self) -> list[QWidget]:
        found = []
        for w in self.window.findChildren(QWidget):
            if not isinstance(w, CLICKABLE) or not w.isVisible() or not w.isEnabled():
                continue
            if isinstance(w, QAbstractItemView) and isinstance(w.parentWidget(), QComboBox):
                continue
            found.append(w)
        return found

    def _bring_into_view(self, widget: QWidget) -> None:
        parent = widget.parentWidget()
        while parent is not None:
            if isinstance(parent, QScrollArea) and parent.widget() is not None and parent.widget().isAncestorOf(widget):
                parent.ensureWidgetVisible(widget)
            parent = parent.parentWidget()

    @staticmethod
    def _name(widget: QWidget) -> str:
        text = ""
        if isinstance(widget, QAbstractButton):
            text = widget.text()
        return f"{type(widget).__name__}({widget.objectName() or text!r})"

    def click(self) -> str:
        targets = self._targets()
        if not targets:
            return "click: nothing to click"
        widget = self.rng.choice(targets)
        self._bring_into_view(widget)
        name = self._name(widget)
        if widget.visibleRegion().isEmpty():
            return f"click {name}: out of sight (a collapsed splitter or a scrolled-away tab)"
        if isinstance(widget, QToolButton) and widget.menu() is not None:
            return self._choose_in_menu(widget)
        if isinstance(widget, QComboBox):
            return self._choose(widget)
        if isinstance(widget, QTabBar):
            if widget.count() == 0:
                return f"click {name}: no tabs"
            tab = self.rng.randrange(widget.count())
            QTest.mouseClick(widget, Qt.MouseButton.LeftButton, NONE, widget.tabRect(tab).center())
            return f"click tab {tab} of {name}"
        if isinstance(widget, QHeaderView):
            return self._click_header(widget)
        if isinstance(widget, QAbstractItemView):
            return self._click_item(widget)
        if isinstance(widget, (QCheckBox, QRadioButton)):
            pos = QPoint(min(8, widget.width() // 2), widget.height() // 2)
        else:
            pos = widget.rect().center()
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, NONE, pos)
        return f"click {name}"

    def _click_item(self, view: QAbstractItemView) -> str:
        model = view.model()
        name = self._name(view)
        if model is None or model.rowCount() == 0:
            QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, NONE, view.viewport().rect().center())
            return f"click empty {name}"
        row = self.rng.randrange(model.rowCount())
        col = self.rng.randrange(1 if isinstance(model, QAbstractListModel) else max(1, model.columnCount()))
        index = model.index(row, col)
        view.scrollTo(index)
        pos = view.visualRect(index).center()
        modifier = self.rng.choice((NONE, NONE, NONE, CTRL, SHIFT))
        if self.rng.random() < 0.15:
            QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, pos)
            return f"double-click {name} cell {row},{col}"
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, pos)
        return f"click {name} cell {row},{col}"

    def _click_header(self, header: QHeaderView) -> str:
        if header.count() == 0:
            return f"click empty {self._name(header)}"
        section = self.rng.randrange(header.count())
        pos = header.sectionViewportPosition(section) + header.sectionSize(section) // 2
        point = QPoint(pos, header.height() // 2) if header.orientation() == Qt.Orientation.Horizontal else \
            QPoint(header.width() // 2, pos)
        QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, NONE, point)
        return f"click header section {section}"

    def _choose(self, combo: QComboBox, index: int | None = None) -> str:
        """What picking from the open list does: the index changes and ``activated`` fires."""
        combo.setFocus(Qt.FocusReason.MouseFocusReason)
        if combo.count() == 0:
            return f"click empty {self._name(combo)}"
        if index is None:
            index = self.rng.randrange(combo.count())
        combo.setCurrentIndex(index)
        combo.activated.emit(index)
        combo.textActivated.emit(combo.itemText(index))
        return f"choose {combo.itemText(index)!r} in {self._name(combo)}"

    def _choose_in_menu(self, button: QToolButton) -> str:
        menu = button.menu()
        menu.aboutToShow.emit()  # what opening it does (the recent list fills itself)
        actions = [a for a in menu.actions() if a.isEnabled() and not a.isSeparator()]
        if not actions:
            return f"open menu of {self._name(button)}: nothing to choose"
        action = self.rng.choice(actions)
        action.trigger()
        return f"menu {self._name(button)} → {action.text()!r}"

    def choose_in_combo(self) -> str:
        combos = [w for w in self._targets() if isinstance(w, QComboBox)]
        if not combos:
            return "choose: no combo box"
        combo = self.rng.choice(combos)
        self._bring_into_view(combo)
        return self._choose(combo)

    # --- keys -------------------------------------------------------------
    def _focus(self) -> QWidget:
        focus = QApplication.focusWidget()
        if focus is None or not focus.isVisible() or (focus is not self.window and not self.window.isAncestorOf(focus)):
            return self.window
        return focus

    def key(self) -> str:
        target = self._focus()
        if self.rng.random() < 0.3:
            letter = self.rng.choice(LETTERS)
            QTest.keyClick(target, letter)
            return f"key {letter!r} into {self._name(target)}"
        key, modifiers = self.rng.choice(KEYS)
        QTest.keyClick(target, key, modifiers)
        return f"key {key.name}{'+' + str(modifiers) if modifiers != NONE else ''} into {self._name(target)}"

    def type_text(self) -> str:
        fields = [w for w in self._targets() if isinstance(w, (QLineEdit, QAbstractSpinBox))]
        combos = [w for w in self._targets() if isinstance(w, QComboBox) and w.isEditable()]
        if not fields and not combos:
            return "type: no field"
        widget = self.rng.choice(fields + combos)
        self._bring_into_view(widget)
        target = widget.lineEdit() if isinstance(widget, QComboBox) else widget
        target.setFocus(Qt.FocusReason.MouseFocusReason)
        QTest.keyClick(target, K.Key_A, CTRL)
        text = self.rng.choice((*TYPED, str(self.rng.choice(self.corpus.datasets + self.corpus.files))))
        if text.isascii() and text.isprintable():
            QTest.keyClicks(target, text)
        else:  # QTest types printable ASCII only (it aborts on "\n"): pasted, as a user would
            QApplication.clipboard().setText(text)
            QTest.keyClick(target, K.Key_V, CTRL)
        if self.rng.random() < 0.7:
            QTest.keyClick(target, self.rng.choice((K.Key_Return, K.Key_Tab)))
        return f"type {text!r} into {self._name(widget)}"

    # --- files, commands ----------------------------------------------------
    def drop(self) -> str:
        count = self.rng.choice((1, 1, 1, 2, 3))
        return self._drop([self.rng.choice(self.corpus.files) for _ in range(count)])

    def _drop(self, paths: list[Path]) -> str:
        """Drag ``paths`` over the window and let go, as the window system delivers it."""
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        pos = QPoint(self.rng.randrange(max(1, self.window.width())), self.rng.randrange(max(1, self.window.height())))
        enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NONE)
        QApplication.sendEvent(self.window, enter)
        if not enter.isAccepted():
            return f"drag {[p.name for p in paths]}: refused"
        drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NONE)
        QApplication.sendEvent(self.window, drop)
        return f"drop {[p.name for p in paths]}"

    def run(self) -> str:
        button = self.window.run_panel.run_button
        if button.isVisible() and button.isEnabled() and self.rng.random() < 0.7:
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)
            return "click Run"
        key = self.rng.choice(((K.Key_R, CTRL), (K.Key_F5, NONE)))
        QTest.keyClick(self.window, *key)
        return f"press {key[0].name} (Run)"

    def cancel(self) -> str:
        button = self.window.run_panel.cancel_button
        if button.isEnabled() and self.rng.random() < 0.6:
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)
            return "click Cancel"
        QTest.keyClick(self.window, K.Key_Escape)
        return "press Escape (Cancel)"

    def menu_command(self) -> str:
        actions = [a for a in self.window.actions() if a.isEnabled() and a.text() and a.text() != "&Quit"]
        action = self.rng.choice(actions)
        action.trigger()
        return f"menu command {action.text()!r}"

    def set_up_and_run(self) -> str:
        """A patient user: drops a model that fits the digits, picks them, waits for the loading,
        ticks a scheme if none is, and presses Run (the study then meets the other actions)."""
        window = self.window
        if window.splitter.sizes()[0] == 0:
            window.toggle_setup()
        model = self.rng.choice(self.corpus.good_models)
        self._drop([model])
        kind = window.dataset_panel.kind
        builtin = kind.findData("builtin")
        if kind.currentIndex() != builtin:
            self._choose(kind, builtin)
        names = window.dataset_panel.builtin
        if names.currentText() != "digits":
            self._choose(names, names.findText("digits"))
        task = window.dataset_panel.task
        if task.currentData() != "auto":
            self._choose(task, task.findData("auto"))
        deadline = time.monotonic() + 3.0
        while (window.model_panel.busy or window.dataset_panel.busy) and time.monotonic() < deadline:
            QTest.qWait(10)
        rows = [r for r in window.schemes_panel.rows.values() if not r.baseline and r.check.isEnabled()]
        if rows and not window.schemes_panel.selected():
            row = self.rng.choice(rows)
            self._bring_into_view(row.check)
            QTest.mouseClick(row.check, Qt.MouseButton.LeftButton, NONE, QPoint(8, row.check.height() // 2))
        run = window.run_panel.run_button
        if not run.isEnabled():
            reason = "a study is running" if window.controller.running else window.blocker()
            return f"set up {model.name!r}: Run stays off ({reason})"
        QTest.mouseClick(run, Qt.MouseButton.LeftButton)
        return f"set up {model.name!r} and click Run"

    def chart_menu(self) -> str:
        """Right-click a chart and pick from its menu (Save as PNG / SVG). The menu's own exec()
        would wait for a click, so the choice is made on the menu the chart builds."""
        views = [v for v in self.window.findChildren(QGraphicsView) if v.isVisible() and exporter_of(v)]
        if not views:
            return "chart menu: no chart in sight"
        view = self.rng.choice(views)
        menu = exporter_of(view).menu()
        action = self.rng.choice(menu.actions())
        action.trigger()
        menu.deleteLater()
        return f"chart menu of {type(view).__name__} → {action.text()!r}"

    def resize(self) -> str:
        size = (self.rng.randrange(500, 1700), self.rng.randrange(350, 1100))
        self.window.resize(*size)
        return f"resize the window to {size[0]}x{size[1]}"

    def wait(self) -> str:
        ms = self.rng.choice((1, 5, 20, 60))
        QTest.qWait(ms)
        return f"wait {ms} ms"


# --- the test -------------------------------------------------------------------
def _seeds() -> tuple[int, ...]:
    chosen = os.environ.get("QB_MONKEY_SEED")
    return (int(chosen),) if chosen else SEEDS


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("QUANTBENCH_HOME", str(folder))
    return folder


@pytest.fixture
def app_look(qapp):
    """The theme toggle restyles the whole application: put its look back for the next tests."""
    style, font, palette, sheet = qapp.style().name(), qapp.font(), qapp.palette(), qapp.styleSheet()
    yield
    qapp.setStyleSheet(sheet)
    qapp.setStyle(style)
    qapp.setFont(font)
    qapp.setPalette(palette)


def _settle(qtbot, window: MainWindow, timeout_ms: int = 30_000) -> None:
    """Cancel what runs and let the panels finish loading."""
    window.cancel_study()
    qtbot.waitUntil(lambda: not window.controller.running, timeout=timeout_ms)
    qtbot.waitUntil(lambda: not (window.model_panel.busy or window.dataset_panel.busy), timeout=timeout_ms)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=timeout_ms)  # a re-run may have started


def _answers_at_once(qtbot) -> float:
    """Seconds until a zero-delay timer fires (the event loop is free)."""
    fired: list[float] = []
    asked = time.perf_counter()
    QTimer.singleShot(0, lambda: fired.append(time.perf_counter()))
    qtbot.waitUntil(lambda: bool(fired), timeout=1_000)
    return fired[0] - asked


def _run_a_tiny_study(qtbot, window: MainWindow, engine: HostileEngine, corpus: Corpus) -> StudyFinished:
    """Set up a study through the panels as a user would, click Run, and wait for its end."""
    engine.forced = "quick"
    if window.splitter.sizes()[0] == 0:
        window.toggle_setup()  # the monkey may have hidden the setup column (Ctrl+B)
    window.dataset_panel.set_spec(DatasetSpec.parse("builtin:digits"))
    window.open_dropped([str(corpus.valid_onnx)])
    qtbot.waitUntil(lambda: window.model_panel.loaded is not None and not window.dataset_panel.busy, timeout=30_000)
    qtbot.waitUntil(lambda: bool(window.schemes_panel.rows), timeout=30_000)
    # The monkey's typing can leave what rightly keeps Run disabled: a scheme option the scheme cannot take
    # (said under it), more threads than this machine has cores. A user mends them; so does this.
    window.schemes_panel.set_selected([SchemeSpec("ort-int8-dynamic")])
    window.run_panel.threads.setValue(1)
    row = window.schemes_panel.rows["ort-int8-dynamic"]
    if not row.check.isChecked():
        row.check.click()
    try:
        qtbot.waitUntil(lambda: window.run_panel.run_button.isEnabled(), timeout=10_000)
    except qtbot.TimeoutError as exc:
        raise AssertionError(f"Run stays disabled: {window.blocker()}") from exc
    seen: list[Event] = []
    window.controller.event_received.connect(seen.append)
    QTest.mouseClick(window.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=10_000)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=10_000)
    return next(e for e in seen if isinstance(e, StudyFinished))


def _close_mid_run(qtbot, window: MainWindow, engine: HostileEngine) -> None:
    """Start a study and close the window as soon as it streams: the window cancels it, waits for
    its thread, then closes."""
    engine.forced = "endless"
    seen: list[Event] = []
    window.controller.event_received.connect(seen.append)
    assert window.run_panel.run_button.isEnabled()
    QTest.mouseClick(window.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(isinstance(e, StudyStarted) for e in seen), timeout=10_000)
    window.close()
    assert window.isVisible() and window.closing  # kept open until the study's thread has finished
    close_window(qtbot, window)
    assert any(isinstance(e, StudyFinished) and e.cancelled for e in seen)


@pytest.mark.qt_log_ignore(*(re.escape(m) for m in BENIGN))
@pytest.mark.parametrize("seed", _seeds())
def test_the_window_survives_a_random_user(qtbot, corpus, home, tmp_path, monkeypatch, app_look, seed):
    engine = HostileEngine(seed)
    window = MainWindow(LIGHT, run_study=engine)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    out = tmp_path / "out"
    out.mkdir()
    dialogs = Dialogs(random.Random(seed * 7919), corpus, out)
    dialogs.install(monkeypatch, window)
    log = tmp_path / "monkey-actions.log"
    started = time.perf_counter()
    with Trouble() as trouble:
        monkey = Monkey(window, random.Random(seed), corpus, trouble)

        def context() -> str:
            return (f"seed={seed} (rerun with QB_MONKEY_SEED={seed}; every action is in {log}); "
                    f"last actions:\n{monkey.tail()}")

        try:
            for index in range(ACTIONS):
                monkey.step(index)
            trouble.action = "settling after the monkey"
            _settle(qtbot, window)
            trouble.action = "checking that the window answers"
            delay = _answers_at_once(qtbot)
            trouble.action = "running a tiny study at the end"
            final = _run_a_tiny_study(qtbot, window, engine, corpus)
            trouble.action = "closing the window while a study runs"
            _close_mid_run(qtbot, window, engine)
        except Exception as exc:
            raise AssertionError(f"{context()}\n\nstopped {trouble.action}: {type(exc).__name__}: {exc}\n"
                                 + "\n".join(trouble.errors)) from exc
        finally:
            log.write_text("\n".join(monkey.log))
        left = live_threads() + [f"TaskRunner({r.active()} jobs)" for r in busy_runners()]
    print(f"seed {seed}: {ACTIONS} actions and the checks in {time.perf_counter() - started:.1f} s; "
          f"{monkey.counts}; dialogs {dialogs.asked}; {engine.started} studies started")
    assert not trouble.errors, f"{context()}\n\n" + "\n".join(trouble.errors)
    assert not trouble.misuse(), f"{context()}\n\nQt misuse:\n" + "\n".join(trouble.misuse())
    assert not trouble.warnings(), f"{context()}\n\nQt warnings:\n" + "\n".join(trouble.warnings())
    assert delay < 1.0, f"{context()}\n\nthe event loop took {delay:.2f} s to fire a timer"
    assert not final.cancelled and len(final.result.results) == 6, context()
    assert not left, f"{context()}\n\nthreads left running after the window closed: {left}"


# --- what the monkey found: each bug, pinned down on its own ---------------------------------
def test_a_study_without_variants_opens_from_the_history(qtbot, home):
    """A study that stopped before its first variant is stored with no results; opening it from
    the History drew size bars with no pens, which pyqtgraph cannot (UnboundLocalError)."""

    def stops_after_start(spec, cancel):
        for event in fake_run_study(spec, cancel):
            yield event
            if isinstance(event, StudyStarted):
                return

    window = MainWindow(LIGHT, run_study=stops_after_start)
    window.show()
    try:
        study_id = window.start_study(fake_spec())
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        window.history.dock.show()
        panel = window.history.panel
        qtbot.waitUntil(lambda: len(panel.rows) == 1 and not panel.busy, timeout=10_000)
        assert panel.rows[0].summary.variants_finished == 0
        panel.select_ids([study_id])
        panel.open_button.click()
        qtbot.waitUntil(lambda: window.results.state.labels == [], timeout=10_000)  # shown as stored
        window.results.run_pending()
        assert window.results.sizes.values() == {} and window.history.shown_ids == [study_id]
    finally:
        close_window(qtbot, window)


def test_a_superseded_background_job_is_skipped(qtbot):
    """Every field edit queued a load and every superseded one still ran: a user clicking about
    piled up a hundred loads, and the window said "still loading" for many seconds."""
    from qtapp.threads.tasks import TaskRunner

    tasks = TaskRunner(max_threads=1)
    gate = threading.Event()
    ran: list[str] = []
    done: list[object] = []
    tasks.submit(lambda: gate.wait(10), done.append, done.append)  # keeps the one thread busy
    for name in ("first", "second", "last"):
        tasks.submit(lambda name=name: ran.append(name) or name, done.append, done.append, replaces="model")
    other = tasks.submit(lambda: "other", done.append, done.append, replaces="dataset")
    assert other and tasks.pending() == 3  # the busy job, the last model load, the dataset load
    gate.set()
    assert tasks.wait(10_000)
    qtbot.waitUntil(lambda: tasks.pending() == 0, timeout=5_000)
    assert ran == ["last"] and done == [True, "last", "other"]


def test_confirming_a_field_again_does_not_restart_its_load(qtbot, corpus, monkeypatch):
    """The architecture field and the dataset fields reload on "editing finished", which also
    fires when they merely lose focus: the same load was started again while it ran."""
    from qtapp.models import loading
    from qtapp.panels import model_panel
    from qtapp.panels.dataset_panel import DatasetPanel
    from qtapp.panels.model_panel import ModelPanel
    from qtapp.threads.tasks import TaskRunner

    model_loads: list[str] = []
    dataset_loads: list[str] = []
    real_model, real_dataset = model_panel._inspect_and_load, loading.load_dataset
    monkeypatch.setattr(model_panel, "_inspect_and_load", lambda spec, *a: model_loads.append(spec.path)
                        or real_model(spec, *a))
    monkeypatch.setattr(loading, "load_dataset", lambda spec, *a: dataset_loads.append(spec.location)
                        or real_dataset(spec, *a))
    tasks = TaskRunner()
    models, datasets = ModelPanel(tasks), DatasetPanel(tasks)
    qtbot.addWidget(models)
    qtbot.addWidget(datasets)
    qtbot.waitUntil(lambda: not datasets.busy, timeout=30_000)
    dataset_loads.clear()

    models.open_path(str(corpus.valid_onnx))
    datasets.set_spec(DatasetSpec.parse("builtin:digits"))
    for _ in range(3):  # focus moves on while both load (their answers are queued, not yet delivered)
        models.arch.lineEdit().editingFinished.emit()
        datasets.limit.editingFinished.emit()
    qtbot.waitUntil(lambda: models.loaded is not None and datasets.loaded is not None, timeout=30_000)
    assert model_loads == [str(corpus.valid_onnx)] and dataset_loads == ["digits"]
    models.arch.setCurrentText("demo")  # a real change still reloads
    models.arch.lineEdit().editingFinished.emit()
    qtbot.waitUntil(lambda: not models.busy, timeout=30_000)
    assert len(model_loads) == 2
    tasks.wait(30_000)


@pytest.mark.parametrize("kind", ["png", "svg"])
def test_a_chart_saved_where_it_cannot_be_written_says_why_and_qt_stays_quiet(qtbot, tmp_path, monkeypatch, kind):
    """Saving a chart as SVG into a folder that does not exist made Qt warn "QPainter::begin():
    Returned false" (the SVG generator opened the file itself) before the window said anything."""
    from qtapp.charts.palette import VariantPalette
    from qtapp.charts.size_bars import SizeBars

    chart = SizeBars(VariantPalette(), LIGHT)
    qtbot.addWidget(chart)
    chart.resize(400, 300)
    chart.show()
    target = tmp_path / "no-such-folder" / f"chart.{kind}"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: said.append(text))
    with Trouble() as trouble:
        action = {"png": "Save as &PNG…", "svg": "Save as &SVG…"}[kind]
        menu = exporter_of(chart).menu()
        next(a for a in menu.actions() if a.text() == action).trigger()
        menu.deleteLater()
    assert len(said) == 1 and said[0].startswith("The chart was not saved:") and "chart." in said[0]
    assert not target.exists() and trouble.qt_messages == []
