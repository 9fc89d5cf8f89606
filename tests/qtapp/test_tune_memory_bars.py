"""The peak RAM of each variant on the size chart's right axis, facing its bar (issue 17)."""

from __future__ import annotations

from qtapp.charts.palette import VariantPalette
from qtapp.charts.size_bars import SizeBars, memory_tooltip
from qtapp.window.theme import LIGHT

LABELS = ["fp32", "int8", "fp16"]
METHOD = "VmHWM, reset per variant (/proc/self/clear_refs)"


def _memory(peak_mb: float, before_mb: float) -> dict:
    return {"peak_rss_bytes": int(peak_mb * 1_000_000), "rss_before_bytes": int(before_mb * 1_000_000),
            "method": METHOD}


def test_peak_ram_faces_each_bar_and_the_tooltip_says_how_it_was_measured(qtbot) -> None:
    bars = SizeBars(VariantPalette(), LIGHT)
    qtbot.addWidget(bars)
    bars.resize(700, 300)
    bars.show()
    bars.set_variants(LABELS)
    bars.redraw()
    assert bars.memory_ticks() == [] and not bars.getPlotItem().getAxis("right").isVisible()  # none measured
    bars.set_size("fp32", 400_000)
    bars.set_size("int8", 100_000)
    bars.set_size("fp16", None, failed=True)
    bars.set_memory("fp32", _memory(561, 548))
    bars.set_memory("int8", _memory(679, 675))
    bars.redraw()
    assert bars.memory_ticks() == ["561 MB", "679 MB", ""]  # in bar order; the failed one has none
    axis = bars.getPlotItem().getAxis("right")
    assert axis.isVisible() and axis.labelText == "process peak RAM"
    bars.resize(700, 110)  # too short for the title along the axis: the short one, never a clipped one
    qtbot.waitUntil(lambda: axis.labelText == "peak RAM", timeout=2000)
    bars.resize(700, 300)
    qtbot.waitUntil(lambda: axis.labelText == "process peak RAM", timeout=2000)
    assert bars.bar_text("int8") == "100 kB · −75 %"  # the bar's own words are unchanged
    tip = bars.toolTip()
    assert "int8: 100 kB · −75 %; process peak RAM 679 MB, 4.0 MB above the resident set" in tip and METHOD in tip
    assert memory_tooltip(None) == ""
    # A new study starts with no memory figures.
    bars.set_variants(LABELS)
    assert bars.memory_ticks() == []
