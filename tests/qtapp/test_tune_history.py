"""A search is a study in the history: the window lists it, reopens it whole and sets up its candidates."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import close_window

from core.cli.main import main
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT

LOAD_MS = 60_000


def test_a_recorded_search_reopens_in_the_window_with_its_candidates(qtbot, tmp_path: Path) -> None:
    out = tmp_path / "tune.json"
    assert main(["tune", "--demo", "--max-drop", "0.5", "--quiet", "--json", str(out)]) == 0  # the window's home
    candidates = json.loads(out.read_text())["candidates"]
    window = MainWindow(LIGHT)
    window.resize(1280, 800)
    window.show()
    try:
        window.history.dock.show()
        window.history.refresh_soon()
        panel = window.history.panel
        qtbot.waitUntil(lambda: panel.table.rowCount() >= 1, timeout=LOAD_MS)  # listed in the History panel
        from core.history.store import StudyStore

        summary = StudyStore().list_studies()[0]
        assert summary.name == "search: at most 0.5 pt, by latency"
        study_id = summary.id
        window.history.open_study(study_id)
        qtbot.waitUntil(lambda: window.results.state.study_id == study_id, timeout=LOAD_MS)
        assert list(window.results.state.variants) == [c["label"] for c in candidates]
        for c in candidates:  # each candidate's own peak memory, the float baseline's too
            memory = window.results.state.variants[c["label"]].result.memory
            assert memory and memory["peak_rss_bytes"] >= memory["rss_before_bytes"] > 0
        assert len(window.results.sizes.memory_ticks()) == len(candidates)  # beside the size bars
        qtbot.waitUntil(lambda: not window.schemes_panel.loading, timeout=LOAD_MS)
        assert [s.label for s in window.schemes_panel.selected()] == [c["scheme"] for c in candidates[1:]]
        assert window.grab().save(str(tmp_path / "reopened_search.png"))
    finally:
        close_window(qtbot, window)
