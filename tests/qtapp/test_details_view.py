"""The window shows what is known of a variant: the details tab, and flipped samples that say which way."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
from fake_study import fake_run_study
from helpers import fake_spec

from core.study.events import StudyFinished, VariantFinished, VariantStarted
from qtapp.charts.palette import VariantPalette
from qtapp.models.stored_study import replay_events
from qtapp.panels.details_panel import TEXT_MIN_PX
from qtapp.panels.flipped_panel import FlippedPanel
from qtapp.panels.results_panel import ResultsPanel
from qtapp.window.theme import LIGHT

DATASET = {"spec": "builtin:digits", "samples": 120, "task": "classification", "classes": 10}


def _panel(qtbot) -> ResultsPanel:
    panel = ResultsPanel(VariantPalette(), LIGHT)
    qtbot.addWidget(panel)
    panel.resize(1000, 800)
    panel.show()
    return panel


def _stored_study():
    """The fake study as the history keeps it: its dataset named, each flip with both predictions."""
    final = list(fake_run_study(fake_spec()))[-1]
    assert isinstance(final, StudyFinished)
    results = []
    for r in final.result.results:
        fid = r.fidelity
        if fid and fid.get("flipped"):
            fid = {**fid, "flipped_from": [1] * len(fid["flipped"]), "flipped_to": [7] * len(fid["flipped"])}
        results.append(replace(r, fidelity=fid))
    return replace(final.result, dataset=dict(DATASET), results=results)


# --- item 11: flipped samples say which way --------------------------------
def test_flipped_captions_say_baseline_then_variant(qtbot):
    panel = FlippedPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.clear()
    panel.set_flips("int8", {"flipped": [3], "flipped_count": 1, "flipped_from": [9], "flipped_to": [4]})
    assert panel.list.item(0).text().splitlines()[-1] == "9 → 4"
    assert "baseline → int8" in panel.direction.text()


def test_a_past_study_says_why_its_flipped_samples_have_no_pictures(qtbot):
    panel = _panel(qtbot)
    # The dataset open in the window is another one: its pictures must not stand for this study's samples.
    other = SimpleNamespace(x=np.random.default_rng(0).random((200, 8, 8)), y=np.arange(200) % 10,
                            class_names=None, image_shape=(8, 8))
    panel.set_dataset("npz:other.npz", other)
    panel.apply_events(replay_events(_stored_study()))
    panel.tabs.setCurrentWidget(panel.flipped)
    assert panel.flipped.shown_indices()  # the flipped samples are listed...
    assert not panel.flipped.has_images()  # ...without another dataset's pictures...
    text = panel.flipped.direction.text()
    assert "past study" in text and "builtin:digits" in text  # ...and it says why
    assert "baseline →" in text


# --- item 10: the details of the selected variant ---------------------------
SLOW = "torch-int8-dynamic"


def _with_details(result):
    """A fake result with what the real engine adds: coverage, advice, "why slower", per-class figures."""
    if not result.ok:
        return result
    m = np.asarray(result.metrics["confusion_matrix"], dtype=float)
    hits, support, predicted = np.diag(m), m.sum(axis=1), m.sum(axis=0)
    per_class = [{"label": i, "precision": hits[i] / max(predicted[i], 1), "recall": hits[i] / max(support[i], 1),
                  "f1": 2 * hits[i] / max(predicted[i] + support[i], 1), "support": int(support[i])}
                 for i in range(len(m))]
    extra = {}
    if result.label == SLOW:
        extra = {"coverage": {"summary": "3 of 3 layers quantized (3 Linear)"},
                 "advice": ["dynamic quantization helps large Linear layers most"],
                 "explanation": ["every call quantizes its activations at run time"], "build_s": 0.42}
    return replace(result, metrics={**result.metrics, "per_class": per_class}, **extra)


def _events():
    out = []
    for event in fake_run_study(fake_spec()):
        if isinstance(event, VariantFinished):
            event = replace(event, result=_with_details(event.result))
        elif isinstance(event, StudyFinished):
            event = replace(event, result=replace(event.result, dataset=dict(DATASET),
                                                  results=[_with_details(r) for r in event.result.results]))
        out.append(event)
    return out


def _select(panel: ResultsPanel, label: str) -> None:
    from PySide6.QtCore import QItemSelectionModel

    # As a plain click does (selectRow would follow whatever modifier keys an earlier test left down).
    view = panel.table.view
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    view.selectionModel().setCurrentIndex(view.model().index(panel.state.labels.index(label), 0), flags)


def _check_details(panel: ResultsPanel) -> None:
    details = panel.details
    assert details.title.text().startswith(f"{SLOW}: ")
    text = details.text.text()
    for expected in ("3 of 3 layers quantized", "dynamic quantization helps", "every call quantizes", "Why slower"):
        assert expected in text
    figures = details.figure_texts()
    for name in ("Output MAE", "Output MSE", "Cosine similarity", "SQNR (dB)", "Agreement with the baseline"):
        assert figures[name] not in ("", "-")
    assert figures["Build time"] == "0.42 s"
    rows = details.class_rows()
    assert len(rows) == 10 and rows[0][:1] != [""]
    drops = [float(row[4].replace("−", "-").replace("±", "").split()[0]) for row in rows]
    assert drops == sorted(drops) and drops[0] < 0  # the largest recall drop first


def test_selecting_a_variant_shows_its_details_and_they_fill_in_when_it_finishes(qtbot):
    panel = _panel(qtbot)
    events = _events()
    assert panel.tabs.tabText(panel.tabs.indexOf(panel.details)) == "Details"
    started = next(i for i, e in enumerate(events) if isinstance(e, VariantStarted) and e.label == SLOW)
    panel.apply_events(events[: started + 1])
    _select(panel, SLOW)
    assert "appear when it finishes" in panel.details.title.text()
    panel.apply_events(events[started + 1 :])
    panel.tabs.setCurrentWidget(panel.details)
    _check_details(panel)
    _select(panel, "fp32")
    assert panel.details.title.text().startswith("fp32: the baseline"), panel.details.title.text()


def test_a_stored_study_shows_the_same_details(qtbot):
    panel = _panel(qtbot)
    final = _events()[-1]
    panel.apply_events(replay_events(final.result))
    assert "Select a variant" in panel.details.title.text()
    _select(panel, SLOW)
    _check_details(panel)
    panel.apply_events(replay_events(final.result))  # another study: the selection and its details go
    assert "Select a variant" in panel.details.title.text()


# --- item 10: the table's columns can be chosen; MAE by default for regression ---
def test_the_table_columns_can_be_chosen_and_the_choice_holds_for_the_next_study(qtbot):
    panel = _panel(qtbot)
    events = _events()
    panel.apply_events(events)
    chooser, view = panel.columns, panel.table.view
    titles = chooser.titles()
    assert "SQNR" in titles and "Verdict" not in titles  # the verdict always shows
    menu = chooser.menu()
    sqnr = next(a for a in menu.actions() if a.text() == "SQNR")
    assert sqnr.isChecked()
    sqnr.setChecked(False)
    column = panel.table.model.columnCount() - len(titles) + titles.index("SQNR")
    assert view.isColumnHidden(column) and not chooser.is_shown("SQNR")
    panel.apply_events(events)  # the next study keeps the choice
    assert view.isColumnHidden(column)
    assert not next(a for a in chooser.menu().actions() if a.text() == "SQNR").isChecked()
    chooser.set_shown("SQNR", True)
    assert not view.isColumnHidden(column)


def test_a_regression_table_shows_mae_by_default(qtbot):
    from core.study.events import StudyStarted

    panel = _panel(qtbot)
    panel.apply_events([StudyStarted("r", model={}, dataset={"spec": "csv:x.csv", "task": "regression"},
                                     variants=["fp32", "int8"], environment={})])
    assert panel.columns.is_shown("MAE") and panel.columns.is_shown("MSE")


def test_every_figure_shows_whole_on_a_narrow_panel(qtbot):
    """At 1280x800 the details page is about 780 px wide and the value column was cut: every
    column now shows whole, beside the explanation while both fit, else under it."""
    panel = _panel(qtbot)
    panel.apply_events(_events())
    _select(panel, SLOW)
    panel.tabs.setCurrentWidget(panel.details)
    figures = panel.details.figures
    for width in (520, 780, 1600):
        panel.resize(width, 800)
        qtbot.wait(50)
        whole = sum(figures.columnWidth(c) for c in range(figures.columnCount()))
        assert figures.viewport().width() >= whole, width
        text, table = panel.details.text.geometry(), figures.geometry()
        beside = table.left() >= text.right()
        assert beside or table.top() >= text.bottom()
        assert beside == (width == 1600) or (beside and text.width() >= TEXT_MIN_PX), width  # text never squeezed


def test_in_the_window_at_1280x800_the_figures_are_whole_and_inside_the_page(qtbot):
    """Seen on screen: the value column was cut at 1280x800 (the table's rows grew once styled, and a scroll bar
    of its own took the width of its last column)."""
    from helpers import close_window
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QScrollArea

    from qtapp.window.main_window import MainWindow

    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    try:
        panel = window.results
        panel.apply_events(_events())
        _select(panel, SLOW)
        panel.tabs.setCurrentWidget(panel.details)
        qtbot.wait(100)
        figures = panel.details.figures
        whole = sum(figures.columnWidth(c) for c in range(figures.columnCount()))
        assert figures.viewport().width() >= whole
        # Every row shown by the page, none behind a scroll bar of the table's own (it took the value's width).
        rows = sum(figures.rowHeight(r) for r in range(figures.rowCount()))
        assert figures.viewport().height() >= rows and not figures.verticalScrollBar().isVisible()
        area = panel.details.findChild(QScrollArea)
        right = figures.mapTo(area.viewport(), QPoint(figures.width(), 0)).x()
        assert right <= area.viewport().width(), (right, area.viewport().width())  # not cut by the page either
    finally:
        close_window(qtbot, window)
