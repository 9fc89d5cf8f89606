"""Issue 14, item 7, in the window: the Dataset panel reads and writes the calibration choice
(spec() / set_spec() round trip) and says where static schemes calibrate."""

from __future__ import annotations

import numpy as np

from core.study.spec import CALIBRATE_ON_SAME, DatasetKind, DatasetSpec
from qtapp.panels.dataset_panel import DatasetPanel
from qtapp.threads.tasks import TaskRunner


def test_the_dataset_panel_carries_the_calibration_choice(qtbot, tmp_path):
    data, calib = tmp_path / "d.npz", tmp_path / "c.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.normal(size=(50, 4)).astype(np.float32), y=rng.integers(0, 3, size=50))
    np.savez(calib, x=rng.normal(size=(20, 4)).astype(np.float32))
    tasks = TaskRunner(max_threads=1)
    panel = DatasetPanel(tasks)
    qtbot.addWidget(panel)

    for calibration in (f"npz:{calib}", CALIBRATE_ON_SAME, None):
        spec = DatasetSpec(DatasetKind.NPZ, str(data), calibration=calibration)
        panel.set_spec(spec)
        assert panel.dataset_spec() == spec
        qtbot.waitUntil(lambda: not panel.busy and panel.loaded is not None, timeout=30_000)
    assert "Calibration" in panel.info.text() and "holdout" in panel.info.text()  # the default: a held-out split

    # Typed into the field, the choice becomes part of the spec.
    field = panel.calibration
    field.setText(f"npz:{calib}")
    field.editingFinished.emit()
    assert panel.dataset_spec().calibration == f"npz:{calib}"
    qtbot.waitUntil(lambda: not panel.busy and panel.loaded is not None, timeout=30_000)
    assert "20 samples" in panel.info.text()
    tasks.wait()
