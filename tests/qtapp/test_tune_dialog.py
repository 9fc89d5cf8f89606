"""Study ▸ Find the best variant…: the search dialog on real searches (a few seconds each).

The bundled demo CNN loses nothing to plain static int8, so a half-point budget is met by the second
candidate: fp32 first, then ``ort-int8-static``, the best. The outlier CNN built here defeats plain static
int8, so a zero-point budget by size walks the whole plan and draws a frontier of several candidates:

    x [1,8,8] ─ conv 1→8 (channel 3 ×1000) ─ relu ─ conv 8→16 (input channel 3 ÷1000) ─ relu ─ flatten
      ─ linear 1024→32 ─ relu ─ linear 32→10

Each test checks what the dialog shows against what the search returned, and that no search thread is
left running.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.engine.run import demo_study_spec
from core.errors import BadInput
from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingSpec
from core.tune.frontier import objective_value
from qtapp.window.tune_dialog import COLUMNS

SEARCH_TIMEOUT_MS = 120_000
THREAD_TIMEOUT_MS = 30_000


def _demo() -> StudySpec:
    return demo_study_spec(TimingSpec(threads=1))


@pytest.fixture(scope="module")
def outlier_spec(tmp_path_factory: pytest.TempPathFactory) -> StudySpec:
    """The outlier CNN as ONNX and an npz of 200 samples labelled by the float model."""
    import warnings

    import torch
    from torch import nn

    torch.manual_seed(0)
    conv1, conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
    model = nn.Sequential(
        conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 32), nn.ReLU(), nn.Linear(32, 10)
    ).eval()
    with torch.no_grad():
        conv1.weight[3] *= 1000.0
        conv1.bias[3] *= 1000.0
        conv2.weight[:, 3] /= 1000.0
    folder = tmp_path_factory.mktemp("tune_dialog")
    onnx_path, npz_path = folder / "outlier_cnn.onnx", folder / "outlier.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros((1, 1, 8, 8)),), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    x = np.random.default_rng(0).standard_normal((200, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy().argmax(axis=1).astype(np.int64)
    np.savez(npz_path, x=x, y=y)
    return StudySpec(ModelSpec(path=str(onnx_path)), DatasetSpec.parse(f"npz:{npz_path}"),
                     timing=TimingSpec(threads=1))


@pytest.fixture
def make_dialog(qtbot):
    from qtapp.charts.palette import VariantPalette
    from qtapp.window.theme import LIGHT
    from qtapp.window.tune_dialog import TuneDialog

    made = []

    def make(spec_provider):
        dialog = TuneDialog(spec_provider, VariantPalette(), LIGHT)
        qtbot.addWidget(dialog)
        dialog.show()
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:  # whatever a test did, its search thread is gone at the end
        dialog.shutdown()
        assert not dialog.thread_alive


def _run_to_end(qtbot, dialog) -> str:
    with qtbot.waitSignal(dialog.search_ended, timeout=SEARCH_TIMEOUT_MS) as ended:
        assert dialog.start()
        assert dialog.searching
    qtbot.waitUntil(lambda: not dialog.thread_alive, timeout=THREAD_TIMEOUT_MS)
    return ended.args[0]


def _x(candidate: dict, objective: str) -> float:
    value = objective_value(candidate, objective)
    return value if objective == "latency" else value / 1000


@pytest.mark.parametrize("objective", ["latency", "size"])
def test_a_finished_search_shows_every_candidate_and_the_best(
    qtbot, qapp, make_dialog, objective: str, tmp_path: Path
) -> None:
    dialog = make_dialog(_demo)
    dialog.objective.setCurrentText(objective)
    arrived = []
    dialog.candidate_added.connect(lambda c: arrived.append(c["scheme"]))
    recorded: list[str] = []
    dialog.study_recorded.connect(recorded.append)

    assert _run_to_end(qtbot, dialog) == "met"
    qtbot.waitUntil(lambda: len(recorded) >= len(dialog.result["candidates"]) + 1, timeout=5_000)

    result = dialog.result
    candidates = result["candidates"]
    assert result["status"] == "met"
    assert result["budget"] == {"max_drop": 0.5, "objective": objective}
    # The live candidates were the search's, in its order, the float baseline first.
    assert arrived == [c["scheme"] for c in candidates]
    assert candidates[0]["label"] == candidates[0]["scheme"] == "fp32"
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in dialog.table_rows()]
    assert [(r["label"], r["scheme"]) for r in rows] == [(c["label"], c["scheme"]) for c in candidates]
    assert rows[0]["drop (pt)"] == "0.00"
    assert [r["drop (pt)"] for r in rows] == [f"{c['accuracy_drop_pt']:.2f}" for c in candidates]
    assert [r["accuracy"] for r in rows] == [f"{100 * c['accuracy']:.2f} %" for c in candidates]
    assert [r["size (kB)"] for r in rows] == [f"{c['size_bytes'] / 1000:,.0f}" for c in candidates]
    assert [r["on frontier"] == "yes" for r in rows] == [c["on_frontier"] for c in candidates]

    best = result["best"]
    assert best is not None and best["scheme"] == "ort-int8-static"
    assert best["accuracy_drop_pt"] <= 0.5
    assert _x(best, objective) < _x(candidates[0], objective)  # it beats float on the objective
    best_row = [c["scheme"] for c in candidates].index(best["scheme"])
    assert dialog.highlighted_rows() == [best_row]
    assert dialog.best_ring() == pytest.approx((_x(best, objective), best["accuracy_drop_pt"]))
    assert dialog.status.text() == "budget met: best is ort-int8-static"

    # The chart: one point per candidate at (objective, points lost), the frontier joined, the budget dashed.
    points = sorted((_x(c, objective), c["accuracy_drop_pt"]) for c in candidates)
    assert _flat(sorted(dialog.chart_points())) == pytest.approx(_flat(points))
    frontier = sorted((_x(c, objective), c["accuracy_drop_pt"]) for c in candidates if c["on_frontier"])
    assert frontier and _flat(dialog.frontier_line()) == pytest.approx(_flat(frontier))
    assert dialog.budget_line() == (0.5, True, "budget 0.50 points")
    axis = dialog.chart.getPlotItem().getAxis("bottom").labelText
    assert axis == ("median latency (ms)" if objective == "latency" else "file size (kB)")

    assert dialog.copy_button.isEnabled() and dialog.start_button.isEnabled()
    assert not dialog.cancel_button.isEnabled()
    qapp.clipboard().clear()
    dialog.copy_button.click()
    assert qapp.clipboard().text() == "ort-int8-static"

    if objective == "latency":
        _save_pngs(qapp, dialog, tmp_path / "demo")
        _check_recorded_and_saved(dialog, recorded, candidates, best, tmp_path)


def _check_recorded_and_saved(dialog, recorded: list[str], candidates: list, best: dict, tmp_path: Path) -> None:
    """The search is a study in the history (the window refreshes its History panel on study_recorded), and
    Save the best variant… writes the measured file with its sidecar."""
    import json

    from core.history.store import StudyStore

    assert recorded and len(set(recorded)) == 1
    study = StudyStore().load_study(recorded[0])
    assert study.status == "finished" and [v.label for v in study.results] == [c["label"] for c in candidates]
    assert StudyStore().summary(recorded[0]).name == "search: at most 0.5 pt, by latency"
    assert dialog.save_button.isEnabled()
    saved = dialog.save_best_to(tmp_path / "winner.onnx")
    sidecar = json.loads((tmp_path / "winner.quantbench.json").read_text())
    assert saved == tmp_path / "winner.onnx" and saved.stat().st_size == best["size_bytes"]
    assert sidecar["scheme"] == best["scheme"] and sidecar["study_id"] == recorded[0]


def test_a_search_that_walks_the_plan_draws_its_frontier(
    qtbot, qapp, make_dialog, outlier_spec, tmp_path: Path
) -> None:
    dialog = make_dialog(lambda: outlier_spec)
    dialog.objective.setCurrentText("size")
    dialog.max_drop.setValue(0.0)

    assert _run_to_end(qtbot, dialog) == "met"

    result = dialog.result
    candidates, best = result["candidates"], result["best"]
    assert [r[-1] for r in dialog.table_rows()] == [c["scheme"] for c in candidates]
    assert len(candidates) > 3 and candidates[0]["scheme"] == "fp32"
    # Plain static int8 collapses on the outlier channel: points lost, and visibly above the budget line.
    assert candidates[1]["scheme"].startswith("ort-int8-static") and candidates[1]["accuracy_drop_pt"] > 1.0
    assert best is not None and best["accuracy_drop_pt"] <= 0.0 and best["size_bytes"] < candidates[0]["size_bytes"]
    assert dialog.status.text() == f"budget met: best is {best['scheme']}"
    assert dialog.highlighted_rows() == [[c["scheme"] for c in candidates].index(best["scheme"])]
    assert dialog.best_ring() == pytest.approx((best["size_bytes"] / 1000, best["accuracy_drop_pt"]))
    frontier = sorted((c["size_bytes"] / 1000, c["accuracy_drop_pt"]) for c in candidates if c["on_frontier"])
    assert len(frontier) >= 2 and _flat(dialog.frontier_line()) == pytest.approx(_flat(frontier))
    assert dialog.budget_line() == (0.0, True, "budget 0.00 points")
    dialog.copy_button.click()
    assert qapp.clipboard().text() == best["scheme"]
    _save_pngs(qapp, dialog, tmp_path / "frontier")


def _flat(points: list[tuple[float, float]]) -> list[float]:
    return [v for point in points for v in point]


def _save_pngs(qapp, dialog, stem: Path) -> None:
    """The dialog after a finished search, light and dark, for a person to look at; the application's look
    is put back afterwards for the next tests."""
    from qtapp.window.theme import DARK, LIGHT, apply_theme

    style, font, palette, sheet = qapp.style().name(), qapp.font(), qapp.palette(), qapp.styleSheet()
    try:
        for theme in (LIGHT, DARK):
            apply_theme(qapp, theme)
            dialog.apply_theme(theme)
            qapp.processEvents()
            image = dialog.grab().toImage()
            path = stem.with_name(f"tune_dialog_{stem.name}_{theme.name}.png")
            assert image.save(str(path)) and path.stat().st_size > 10_000
            background = image.pixelColor(5, image.height() - 5)
            assert (background.lightness() > 128) == (theme.name == "light")
    finally:
        qapp.setStyleSheet(sheet)
        qapp.setStyle(style)
        qapp.setFont(font)
        qapp.setPalette(palette)
        dialog.apply_theme(LIGHT)


def test_cancel_after_the_first_candidate_keeps_it(qtbot, make_dialog) -> None:
    dialog = make_dialog(_demo)
    dialog.candidate_added.connect(lambda _c: dialog.cancel())

    assert _run_to_end(qtbot, dialog) == "cancelled"

    candidates = dialog.result["candidates"]
    assert dialog.result["status"] == "cancelled"
    assert [c["scheme"] for c in candidates] == ["fp32"]  # the one finished before Cancel is kept
    assert [r[-1] for r in dialog.table_rows()] == ["fp32"]
    assert dialog.status.text() == "cancelled: 1 candidate kept"
    assert len(dialog.chart_points()) == 1
    assert dialog.best() is None and not dialog.copy_button.isEnabled()  # fp32 is never the best
    assert not dialog.thread_alive and dialog.start_button.isEnabled()


def test_closing_mid_search_cancels_and_waits_for_the_thread(qtbot, make_dialog) -> None:
    dialog = make_dialog(_demo)
    with qtbot.waitSignal(dialog.candidate_added, timeout=SEARCH_TIMEOUT_MS):
        dialog.start()
    assert dialog.searching and dialog.thread_alive
    dialog.close()
    assert not dialog.thread_alive  # close() returned only after the thread had finished
    assert not dialog.isVisible()


def test_no_model_is_one_sentence_and_starts_nothing(qtbot, make_dialog) -> None:
    def no_model() -> StudySpec:
        raise BadInput("Cannot run: open a model first.")

    dialog = make_dialog(no_model)
    assert not dialog.start()
    assert dialog.status.text() == "Cannot run: open a model first."
    assert not dialog.searching and not dialog.thread_alive
    assert dialog.start_button.isEnabled() and not dialog.copy_button.isEnabled()
    assert dialog.table_rows() == [] and dialog.chart_points() == []


def test_a_model_that_cannot_load_is_one_sentence(qtbot, make_dialog, tmp_path: Path) -> None:
    missing = tmp_path / "gone.onnx"
    dialog = make_dialog(lambda: StudySpec(model=ModelSpec(path=str(missing)), dataset=_demo().dataset))

    assert _run_to_end(qtbot, dialog) == "failed"

    text = dialog.status.text()
    assert "gone.onnx" in text and "\n" not in text and "Traceback" not in text
    assert dialog.result is None and dialog.table_rows() == []
    assert dialog.start_button.isEnabled()


def test_start_returns_at_once_and_a_second_search_replaces_the_first(qtbot, make_dialog) -> None:
    import time

    dialog = make_dialog(_demo)
    with qtbot.waitSignal(dialog.search_ended, timeout=SEARCH_TIMEOUT_MS):
        started = time.monotonic()
        assert dialog.start()
        assert time.monotonic() - started < 0.5  # loading and searching happen on the search's thread
        assert not dialog.start()  # one search at a time
        assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    first = dialog.result["candidates"]

    dialog.objective.setCurrentText("size")
    assert _run_to_end(qtbot, dialog) == "met"

    second = dialog.result["candidates"]
    assert dialog.result["budget"]["objective"] == "size"
    assert [r[-1] for r in dialog.table_rows()] == [c["scheme"] for c in second]  # nothing left of the first
    assert len(dialog.chart_points()) == len(second) and second[0]["scheme"] == first[0]["scheme"] == "fp32"
    assert sorted(x for x, _ in dialog.chart_points()) == pytest.approx(sorted(c["size_bytes"] / 1000 for c in second))


def test_the_window_opens_the_search_on_its_own_model_without_needing_a_scheme(qtbot) -> None:
    """Study ▸ Find the best variant: with no model it says so in the dialog; the search needs no ticked scheme."""
    from helpers import close_window

    from qtapp.window.main_window import MainWindow
    from qtapp.window.theme import LIGHT

    window = MainWindow(LIGHT)
    try:
        window.tune_action.trigger()
        dialog = window.tune_dialog
        window.tune_action.trigger()  # asked again while it is open: the same dialog comes to the front
        assert window.tune_dialog is dialog and len(window.findChildren(type(dialog))) == 1
        assert dialog.isVisible() and not dialog.start()
        assert dialog.status.text().startswith("Cannot search: ") and "model" in dialog.status.text()
        dialog.close()
        window.open_demo(start=False)
        qtbot.waitUntil(lambda: not window.model_panel.problem() and not window.dataset_panel.problem(),
                        timeout=60_000)
        window.schemes_panel.set_spec([])  # nothing ticked: a study could not run, a search can
        spec = window.search_spec()
        assert spec.model.path.endswith("digits_cnn.pt") and spec.dataset.location == "digits"
    finally:
        close_window(qtbot, window)


def test_closing_the_window_mid_search_stops_it_and_removes_its_candidates(qtbot) -> None:
    """The search dialog does not outlive the window: closing the window cancels the search, waits for its
    thread and deletes the folder its candidates were built in."""
    import shiboken6
    from helpers import close_window

    from qtapp.window.main_window import MainWindow
    from qtapp.window.theme import LIGHT

    window = MainWindow(LIGHT)
    window.show()
    window.open_demo(start=False)
    qtbot.waitUntil(lambda: not window.model_panel.problem() and not window.dataset_panel.problem(), timeout=60_000)
    window.tune_action.trigger()
    dialog = window.tune_dialog
    with qtbot.waitSignal(dialog.candidate_added, timeout=SEARCH_TIMEOUT_MS):
        assert dialog.start()
    folder = dialog._workdir
    assert folder is not None and folder.is_dir() and dialog.thread_alive
    window.close()
    assert not shiboken6.isValid(dialog) or not (dialog.isVisible() or dialog.thread_alive)
    assert not folder.exists()
    close_window(qtbot, window)
