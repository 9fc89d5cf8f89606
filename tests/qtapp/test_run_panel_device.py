"""The Run panel's Device box offers CUDA only where an NVIDIA driver is (issue 14, item 9), and still shows a
study that asks for CUDA as it is (the engine then refuses it in one sentence before anything runs)."""

from __future__ import annotations

import pytest

from core.study.spec import Device, Thresholds, TimingSpec
from qtapp.panels.run_panel import RunPanel


def _choices(panel: RunPanel) -> list[str]:
    return [panel.device_box.itemData(i) for i in range(panel.device_box.count())]


@pytest.mark.parametrize("present", [False, True])
def test_cuda_is_offered_only_where_a_driver_is(qtbot, monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr("qtapp.panels.run_panel.cuda_may_be_present", lambda: present)
    panel = RunPanel()
    qtbot.addWidget(panel)
    assert _choices(panel) == (["cpu", "cuda"] if present else ["cpu"])
    assert panel.device() is Device.CPU


def test_a_study_that_asks_for_cuda_is_shown_as_it_is(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qtapp.panels.run_panel.cuda_may_be_present", lambda: False)
    panel = RunPanel()
    qtbot.addWidget(panel)
    panel.set_spec(TimingSpec(), Thresholds(), Device.CUDA, 0)
    assert panel.device() is Device.CUDA  # never silently turned into the CPU
