"""Everything the window writes out: charts as PNG/SVG, the table as text, reports, variants, project files."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from helpers import FAST_TIMING, close_window
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage

from core.engine.run import demo_study_spec
from core.study.events import StudyFinished
from core.study.project import load_spec, save_spec
from core.study.spec import SchemeSpec, VariantSpec
from qtapp.charts.export import PNG_SCALE, exporter_of, save_png, save_svg
from qtapp.window.main_window import MainWindow
from qtapp.window.theme import LIGHT


@pytest.fixture(scope="module")
def finished(qapp, tmp_path_factory):
    """One real demo study run through the window; the window stays open for the module's tests."""
    from pytestqt.qtbot import QtBot

    home = tmp_path_factory.mktemp("exports-home")
    previous = os.environ.get("QUANTBENCH_HOME")
    os.environ["QUANTBENCH_HOME"] = str(home)
    window = MainWindow(LIGHT)
    window.resize(1280, 900)
    window.show()
    qtbot = QtBot(None)
    seen: list = []
    window.controller.event_received.connect(seen.append)
    spec = replace(demo_study_spec(FAST_TIMING),
                   variants=(VariantSpec(scheme=SchemeSpec("onnx-fp32")),
                             VariantSpec(scheme=SchemeSpec("ort-int8-dynamic"))))
    window.open_demo(start=True, spec=spec)
    qtbot.waitUntil(lambda: any(isinstance(e, StudyFinished) for e in seen), timeout=120_000)
    qtbot.waitUntil(lambda: not window.controller.threads_alive and window.tasks.pending() == 0, timeout=60_000)
    result = next(e for e in seen if isinstance(e, StudyFinished)).result
    yield window, result, home
    close_window(qtbot, window)
    if previous is None:
        os.environ.pop("QUANTBENCH_HOME", None)
    else:
        os.environ["QUANTBENCH_HOME"] = previous


def _wait_file(qtbot, window, path) -> None:
    qtbot.waitUntil(lambda: path.exists() and window.tasks.pending() == 0, timeout=20_000)


@pytest.mark.parametrize("chart", ["histogram", "sizes", "scatter", "matrices"])
def test_every_chart_saves_as_png_and_svg(qtbot, finished, tmp_path, chart):
    window, _result, _home = finished
    if chart == "matrices":
        window.results.tabs.setCurrentIndex(1)
        qtbot.wait(50)
    view = getattr(window.results, chart)
    menu = exporter_of(view).menu()
    assert [a.text() for a in menu.actions()] == ["Save as &PNG…", "Save as &SVG…"]
    assert view.contextMenuPolicy() is Qt.ContextMenuPolicy.CustomContextMenu
    menu.deleteLater()

    png = tmp_path / f"{chart}.png"
    save_png(view, png)
    image = QImage(str(png))
    assert not image.isNull()
    assert (image.width(), image.height()) == (view.width() * PNG_SCALE, view.height() * PNG_SCALE)
    # Non-trivial: the chart's own colours are there, not just a blank background.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20

    svg = tmp_path / f"{chart}.svg"
    save_svg(view, svg, chart)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    drawn = [e for e in root.iter() if e.tag.split("}")[-1] in ("path", "polyline", "polygon", "rect")]
    assert len([e for e in root.iter() if e.tag.split("}")[-1] == "path"]) >= 1
    assert len(drawn) > 10
    window.results.tabs.setCurrentIndex(0)


def test_table_copies_as_tab_separated_text(qtbot, finished):
    window, result, _home = finished
    table = window.results.table
    QGuiApplication.clipboard().clear()
    table.view.setFocus()
    qtbot.keyClick(table.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    text = QGuiApplication.clipboard().text()
    lines = text.rstrip("\n").split("\n")
    assert lines[0].split("\t")[:3] == ["Variant", "Verdict", "Acc."]
    assert len(lines) == 1 + len(result.results)  # a header, then one line per variant
    for line, r in zip(lines[1:], result.results, strict=True):
        cells = line.split("\t")
        assert cells[0] == r.label and len(cells) == len(lines[0].split("\t"))
        assert cells[2] == f"{r.metrics['accuracy'] * 100:.1f} %"
    assert table.copy_action in table.view.actions()


def test_reports_export_as_html_json_and_csv(qtbot, finished, tmp_path):
    window, result, _home = finished
    history = window.history
    assert history.shown_ids == [result.study_id]
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("html", "json", "csv")}
    for path in paths.values():
        history.export_report(str(path))
        _wait_file(qtbot, window, path)
    data = json.loads(paths["json"].read_text())
    assert data["schema_version"] == 1 and data["study_id"] == result.study_id
    assert [r["label"] for r in data["results"]] == [r.label for r in result.results]
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [row["label"] for row in rows] == [r.label for r in result.results]
    html = paths["html"].read_text()

    class Tags(HTMLParser):
        seen: set = set()

        def handle_starttag(self, tag, attrs):
            self.seen.add(tag)

    parser = Tags()
    parser.feed(html)
    parser.close()
    assert {"html", "table", "svg"} <= parser.seen
    assert all(r.label in html for r in result.results)


def test_quantized_variants_save_with_sidecars(qtbot, finished, tmp_path):
    window, result, _home = finished
    dest = tmp_path / "variants"
    window.history.save_variants(str(dest))
    built = [r for r in result.results[1:] if r.ok]
    qtbot.waitUntil(lambda: len(list(dest.glob("*.quantbench.json"))) == len(built), timeout=20_000)
    qtbot.waitUntil(lambda: window.tasks.pending() == 0, timeout=20_000)
    for r in built:
        sidecar = json.loads((dest / f"{r.label}.quantbench.json").read_text())
        assert sidecar["scheme"] == r.scheme and sidecar["study_id"] == result.study_id
        model = dest / sidecar["file"]
        assert model.suffix == ".onnx" and model.stat().st_size == r.size_bytes
        assert hashlib.sha256(model.read_bytes()).hexdigest() == sidecar["sha256"]
    assert not (dest / "fp32.pt").exists()  # the baseline is the user's own file


def test_study_spec_saves_and_opens_into_the_panels(qtbot, finished, tmp_path):
    window, _result, _home = finished
    path = tmp_path / "study.quantbench.json"
    window.history.save_spec(str(path))
    _wait_file(qtbot, window, path)
    saved = load_spec(path)
    assert saved.model.path.endswith("digits_cnn.pt") and saved.dataset.describe() == "builtin:digits"
    assert [v.scheme.id for v in saved.variants] == [s.id for s in window.schemes_panel.selected()]
    # A project with other schemes and timing opens into the panels.
    other = replace(saved, variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static")),),
                    timing=replace(saved.timing, max_time_s=0.7))
    other_path = tmp_path / "other.quantbench.json"
    save_spec(other, other_path)
    window.history.open_spec(str(other_path))
    qtbot.waitUntil(lambda: window.run_panel.max_time.value() == pytest.approx(0.7), timeout=20_000)
    qtbot.waitUntil(lambda: not window.model_panel.busy and not window.dataset_panel.busy, timeout=60_000)
    qtbot.waitUntil(lambda: [s.id for s in window.schemes_panel.selected()] == ["ort-int8-static"], timeout=20_000)
    assert window.blocker() is None
    assert [v.scheme.id for v in window.study_spec().variants] == ["ort-int8-static"]
