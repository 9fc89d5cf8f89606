"""Issue 14 in the window: nothing on screen misleads (stale variant files, progress after Cancel,
readable shapes, the wheel over the setup panel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import close_window

from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

LOAD_MS = 60_000


def onnx_relu(path: Path, width: int, batch: int | str = "batch") -> Path:
    """x[batch, width] -> Relu -> y[batch, width]."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path / "home"))
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _open(qtbot, window, path: Path) -> None:
    window.model_panel.open_path(str(path))
    qtbot.waitUntil(lambda: window.model_panel.loaded is not None, timeout=LOAD_MS)
    qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_MS)
    window.tasks.wait(30_000)
    qtbot.wait(20)


# --- item 1: stale variant files ----------------------------------------------------------
def test_a_variant_file_that_does_not_fit_the_model_is_refused_in_one_sentence(qtbot, window, tmp_path):
    panel = window.model_panel
    _open(qtbot, window, onnx_relu(tmp_path / "model.onnx", 4))
    panel.variant_files.add(str(onnx_relu(tmp_path / "stale.onnx", 3)))
    qtbot.waitUntil(lambda: panel.variant_files.error.isVisible(), timeout=LOAD_MS)
    assert panel.variant_specs() == []
    text = panel.variant_files.error.text()
    assert "stale.onnx does not fit the model" in text and "removed" in text
    panel.variant_files.add(str(onnx_relu(tmp_path / "fits.onnx", 4, batch=1)))
    window.tasks.wait(30_000)
    qtbot.wait(50)
    assert [Path(v.path or "").name for v in panel.variant_specs()] == ["fits.onnx"]


def test_opening_another_model_drops_variants_that_no_longer_fit_and_keeps_scheme_ticks(qtbot, window, tmp_path):
    panel = window.model_panel
    _open(qtbot, window, onnx_relu(tmp_path / "wide.onnx", 4))
    panel.variant_files.add(str(onnx_relu(tmp_path / "wide-int8.onnx", 4)))
    window.tasks.wait(30_000)
    qtbot.wait(50)
    assert len(panel.variant_specs()) == 1
    applicable = [sid for sid, row in window.schemes_panel.rows.items() if row.check.isEnabled() and not row.baseline]
    assert applicable
    window.schemes_panel.rows[applicable[0]].check.setChecked(True)

    _open(qtbot, window, onnx_relu(tmp_path / "narrow.onnx", 3))
    qtbot.waitUntil(lambda: panel.variant_files.error.isVisible(), timeout=LOAD_MS)
    assert panel.variant_specs() == []
    assert "wide-int8.onnx does not fit the model" in panel.variant_files.error.text()
    assert [s.id for s in window.schemes_panel.selected()] == [applicable[0]]


# --- item 18: progress after Cancel --------------------------------------------------------
def test_cancel_leaves_the_bar_where_it_stopped_and_counts_against_the_plan(qtbot):
    from fake_study import FakeVariant, fake_run_study
    from helpers import fake_spec

    from core.study.events import LatencySamples, StudyFinished, VariantFinished

    variants = [FakeVariant(f"v{i}", 0.2, 0.5, 0.0) for i in range(13)]

    def engine(spec, cancel):
        yield from fake_run_study(spec, cancel, variants=variants, batches=200, delay_s=0.005)

    window = MainWindow(LIGHT, run_study=engine)
    window.show()
    try:
        seen: list = []
        window.controller.event_received.connect(seen.append)
        window.start_study(fake_spec())
        qtbot.waitUntil(lambda: any(isinstance(e, VariantFinished) for e in seen)
                        and isinstance(seen[-1], LatencySamples) and seen[-1].label == "v1", timeout=20_000)
        window.cancel_study()
        qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=20_000)
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=10_000)
        window.buffer.flush()
        qtbot.wait(100)
        assert window.statusBar().currentMessage() == "Study cancelled: 1 of 13 measured."
        assert window.run_panel.bar.value() == round(1000 / 13)
        assert window.run_panel.step.text() == "cancelled: 1 of 13 measured"
    finally:
        close_window(qtbot, window)


# --- item 13: names, not counters; the window's words -------------------------------------
def test_generated_symbolic_dimensions_read_as_names(qtbot, window, tmp_path):
    from core.models.dims import readable_shape

    assert readable_shape(("s77", 1, "unk__3", "N", None)) == ("batch", 1, "dim2", "N", None)
    _open(qtbot, window, onnx_relu(tmp_path / "exported.onnx", 4, batch="s77"))
    text = window.model_panel.info.text()
    assert "batch×4" in text and "s77" not in text


def _visible_texts(widget) -> list[str]:
    from PySide6.QtWidgets import QLabel

    return [label.text() for label in widget.findChildren(QLabel) if label.isVisible()]


def test_mid_run_the_setup_panels_do_not_ask_for_a_model(qtbot):
    from fake_study import fake_run_study

    def engine(spec, cancel):
        yield from fake_run_study(spec, cancel, batches=400, delay_s=0.005)

    window = MainWindow(LIGHT, run_study=engine)
    window.show()
    try:
        qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_MS)
        window.open_demo(start=True)
        qtbot.waitUntil(lambda: window.controller.running, timeout=10_000)
        qtbot.wait(300)
        texts = _visible_texts(window.model_panel) + _visible_texts(window.schemes_panel)
        assert not any("open a model" in t.lower() for t in texts), texts
        assert "Opens when the study has ended" in window.model_panel.info.text()
        window.cancel_study()
        qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=20_000)
    finally:
        close_window(qtbot, window)


def test_torchvision_networks_open_by_name(qtbot, window):
    panel = window.model_panel
    panel.arch.setCurrentText("torchvision:mobilenet_v3_small")
    panel.arch.lineEdit().editingFinished.emit()
    qtbot.waitUntil(lambda: panel.loaded is not None or panel.error.isVisible(), timeout=LOAD_MS)
    assert panel.loaded is not None, panel.error.text()
    assert panel.model_spec().path == "torchvision:mobilenet_v3_small"
    panel.open_torchvision("resnet18")
    qtbot.waitUntil(lambda: panel.loaded is not None and "resnet18" in panel.model_spec().path, timeout=LOAD_MS)
    window.tasks.wait(30_000)


def test_errors_name_window_controls_not_command_line_options(qtbot, window, tmp_path):
    import torch

    from qtapp.models.window_words import in_window_words

    weights = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), str(weights))
    panel = window.model_panel
    panel.open_path(str(weights))
    qtbot.waitUntil(lambda: panel.error.isVisible(), timeout=LOAD_MS)
    assert "Architecture box" in panel.error.text() and "--" not in panel.error.text()
    window.tasks.wait(30_000)
    assert "--" not in window.run_panel.blocker.text()
    for said in ("open it only if you trust it (--trust /a/b.pt).", "pass --limit N to evaluate only its first N rows.",
                 "needed more than 2 GB of memory (the study's ceiling; --max-memory raises it)"):
        assert "--" not in in_window_words(said), in_window_words(said)


# --- item 15: the wheel over the setup column -----------------------------------------------
def _wheel(widget, steps: int = -3) -> bool:
    """Send a wheel turn to ``widget``; whether it took it (not taken: Qt passes a real one to the parents)."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_the_wheel_changes_spin_and_combo_boxes_only_when_focused(qtbot, window):
    from PySide6.QtCore import Qt

    limit, mode = window.dataset_panel.limit, window.run_panel.mode
    qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_MS)
    window.setFocus()
    limit.setValue(0)  # "all"
    assert not _wheel(limit, steps=3) and not _wheel(mode, steps=-1)  # left for the scrolling column
    assert limit.value() == 0 and mode.currentIndex() == 0
    limit.setFocus()
    qtbot.waitUntil(limit.hasFocus)
    assert _wheel(limit, steps=3)
    assert limit.value() > 0
    for box in window.schemes_panel.findChildren(type(mode)):
        assert box.focusPolicy() == Qt.FocusPolicy.StrongFocus
    window.tasks.wait(30_000)
