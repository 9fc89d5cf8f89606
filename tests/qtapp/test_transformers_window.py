"""The window with a transformer (issue 18): the Prediction output box for a model with several outputs, and the
dataset panel listing each input array with its shape and dtype."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import close_window

from core.study.spec import DatasetSpec
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


@pytest.fixture
def window(qtbot):
    win = MainWindow(LIGHT)
    win.resize(1280, 800)
    win.show()
    yield win
    close_window(qtbot, win)


def _idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not (window.model_panel.busy or window.dataset_panel.busy), timeout=60_000)


def test_several_outputs_ask_for_the_prediction_output_and_the_arrays_are_listed(qtbot, window, tmp_path) -> None:
    from tests.core import transformers_kit as kit

    model = kit.save_torchscript(kit.make_decoder(), tmp_path / "decoder.pt")  # untrained: only its signature counts
    data = tmp_path / "tokens.npz"
    np.savez(data, **kit.decoder_data(40, seed=3))
    panel = window.model_panel
    panel.ask_trust = lambda parent, request, answer: answer(True)
    panel.open_path(str(model))
    _idle(qtbot, window)
    assert not panel.output.isHidden()
    assert [panel.output.itemText(i) for i in range(panel.output.count())] == [
        "choose the prediction output…", "output0", "output1"
    ]
    assert panel.problem() is not None and "Prediction output box" in panel.problem()

    panel.output.activated.emit(1)  # the user picks output0
    _idle(qtbot, window)
    assert panel.problem() is None and panel.model_spec().output == "output0"
    assert panel.output.currentText() == "output0"

    window.dataset_panel.set_spec(DatasetSpec.parse(f"npz:{data}"))
    _idle(qtbot, window)
    info = window.dataset_panel.info.text()
    assert f"input_ids {kit.SEQ} int64 · attention_mask {kit.SEQ} int64" in info
    assert "causal-lm" in info and "next tokens" in info
    assert window.dataset_panel.problem() is None


def test_perplexity_thresholds_are_edited_in_the_run_panel(qtbot, window) -> None:
    from core.study.spec import Device, Thresholds, TimingSpec

    panel = window.run_panel
    asked = Thresholds(perplexity_ratio_good=1.05, perplexity_ratio_bad=1.25)
    panel.set_spec(TimingSpec(), asked, Device.CPU, 0)
    assert panel.thresholds() == asked  # shown and read back exactly
    panel.perplexity_bad.setValue(1.03)  # under the good limit: counts as the good one
    assert panel.thresholds().perplexity_ratio_bad == 1.05
    assert panel.perplexity_good.text().endswith("×")


def test_a_hugging_face_folder_is_opened_from_the_folder_picker(qtbot, window, tmp_path, monkeypatch) -> None:
    """File ▸ Open Hugging Face folder… and the panel's button pick a folder; without the transformers extra the
    panel says, in one sentence naming the folder, what to install (with it, the folder loads: test_transformers_hf)."""
    import importlib.util

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    asked: list[str] = []

    def pick(parent, caption, start="") -> str:
        asked.append(caption)
        return str(folder)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(pick))
    menu = next(a for a in window.menuBar().actions() if a.text() == "&File").menu()
    next(a for a in menu.actions() if a.text() == "Open Hugging Face &folder…").trigger()
    assert asked == ["Open a Hugging Face model folder"]
    _idle(qtbot, window)
    problem = window.model_panel.problem() or ""
    assert str(folder) in problem
    if importlib.util.find_spec("transformers") is None:
        assert "pip install 'quantbench[transformers]'" in problem
    else:
        assert "no .safetensors weights" in problem
    assert "Traceback" not in problem and problem.count("\n") == 0
    qtbot.mouseClick(window.model_panel.folder_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 2


def _word_tokenizer(folder, words: list[str]):
    """A real tokenizer.json (word level) written by the tokenizers package: id i is words[i]."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["[PAD]"])
    tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer


def test_flipped_token_samples_are_shown_as_text_when_the_model_has_a_tokenizer(qtbot, tmp_path) -> None:
    """A classifier over tokens whose folder holds a tokenizer.json: each flipped sample is captioned with its
    text (its real tokens, the padding left out); without one, its ids."""
    pytest.importorskip("tokenizers")
    from core.models.io_spec import pack_inputs
    from qtapp.panels.flipped_panel import FlippedPanel

    words = ["[PAD]", "[UNK]", "the", "film", "was", "good", "bad", "very", "plot"]
    ids = np.array([[2, 3, 4, 5, 0, 0], [2, 8, 4, 7, 6, 0], [2, 3, 4, 7, 7, 5]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    x = pack_inputs({"input_ids": ids, "attention_mask": mask})
    panel = FlippedPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_dataset(x, np.array([1, 0, 1]), ["negative", "positive"])
    fidelity = {"flipped": [1, 2], "flipped_count": 2, "flipped_from": [0, 1], "flipped_to": [1, 0]}
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(b"")  # only its folder matters here
    panel.set_sources("ort-int8-dynamic", {"path": str(model_file), "format": "onnx"}, None, "onnxruntime")
    panel.set_flips("ort-int8-dynamic", fidelity)
    captions = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert [c.splitlines()[-1] for c in captions] == ["ids 2 8 4 7 6", "ids 2 3 4 7 7 5"]

    _word_tokenizer(tmp_path, words)
    other = tmp_path / "again"
    other.mkdir()
    (other / "tokenizer.json").write_bytes((tmp_path / "tokenizer.json").read_bytes())
    panel.set_sources("ort-int8-dynamic", {"path": str(other / "model.onnx"), "format": "onnx"}, None, "onnxruntime")
    captions = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert [c.splitlines()[-1] for c in captions] == ["“the plot was very bad”", "“the film was very very good”"]
    assert captions[0].splitlines()[:3] == ["#1", "true negative", "negative → positive"]
    assert panel.tokenizer_problem is None

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    panel.set_sources("ort-int8-dynamic", {"path": str(tmp_path / "broken" / "m.onnx")}, None, "onnxruntime")
    assert panel.tokenizer_problem and "could not be read as a tokenizer" in panel.tokenizer_problem
    assert panel.list.item(0).text().splitlines()[-1] == "ids 2 8 4 7 6"
    assert "token ids are shown as numbers" in panel.direction.text()
