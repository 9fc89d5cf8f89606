"""Run and Cancel, timing and verdict settings, and the progress of the running study."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from core.printable import printable
from core.runtimes.devices import cuda_may_be_present
from core.study.events import Event, StudyStarted
from core.study.spec import Device, Thresholds, TimingMode, TimingSpec, default_threads, threads_problem
from qtapp.models.progress import StudyProgress
from qtapp.models.window_words import in_window_words
from qtapp.panels.elided_label import ElidedLabel

#: How long after the charts the progress line is redrawn (see RunPanel.apply_events).
PROGRESS_DELAY_MS = 40


def _exact(box: QDoubleSpinBox, value: float, scale: float = 1.0) -> float:
    """What ``box`` holds, divided by ``scale``; ``value`` itself while the box still shows it.

    A box rounds to its decimals (0.1 pt for thresholds): a value set from a spec and left alone
    is read back exactly, not as its rounded display.
    """
    if box.textFromValue(value * scale) == box.textFromValue(box.value()):  # the box shows ``value``
        return value
    return box.value() / scale


def _percent_box(value: float, maximum: float, suffix: str, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, maximum)
    box.setDecimals(1)
    box.setSingleStep(0.5)
    box.setSuffix(suffix)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _ratio_box(value: float, tip: str) -> QDoubleSpinBox:
    """A threshold that is a ratio to the baseline's figure (a language model's perplexity), shown as ×."""
    box = QDoubleSpinBox()
    box.setRange(1.0, 10.0)
    box.setDecimals(2)
    box.setSingleStep(0.01)
    box.setSuffix("×")
    box.setValue(value)
    box.setToolTip(tip)
    return box


class RunPanel(QGroupBox):
    """Run, Cancel and the progress; ``settings`` (timing, device, seed, verdict thresholds) is a
    separate box the window puts with the other setup panels, so these controls can stay in sight.

    Its part of the StudySpec is read with ``timing_spec``, ``thresholds``, ``device`` and ``seed``
    and written with ``set_spec``. Timing and threshold fields without a control here (warm-up,
    sample floor and cap, report interval, the "slower is bad" threshold) are kept from the last
    spec shown, so a project opened and run again keeps them.
    """

    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Run", parent)
        self._progress = StudyProgress()
        #: The fields without a control come from here (see the class docstring).
        self._timing = TimingSpec()
        self._thresholds = Thresholds()
        self.settings = QGroupBox("Timing and verdict")
        self.mode = QComboBox(self.settings)
        self.mode.addItem("Quick (median ±3 %)", TimingMode.QUICK.value)
        self.mode.addItem("Thorough (median ±1 %)", TimingMode.THOROUGH.value)
        self.threads = QSpinBox(self.settings)
        self.threads.setRange(1, 256)
        self.threads.setValue(default_threads())
        self.threads.setToolTip("Intra-op threads for every runtime (one core is left to the window).")
        self.max_time = QDoubleSpinBox(self.settings)
        self.max_time.setRange(0.1, 600.0)
        self.max_time.setValue(TimingSpec().max_time_s)
        self.max_time.setSuffix(" s")
        self.max_time.setToolTip("Stop timing a variant after this long even if the median is not yet stable.")
        self.batch_size = QSpinBox(self.settings)
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(TimingSpec().batch_size)
        self.batch_size.setToolTip("Inputs per timed call (the latency is of the whole batch).")
        self.eval_batch = QSpinBox(self.settings)
        self.eval_batch.setRange(0, 4096)
        self.eval_batch.setSpecialValueText("auto")  # 0: chosen from the sample's size and the free memory
        self.eval_batch.setToolTip(
            "Samples per call while evaluating; auto: at most 32, and no more than keep a call's working memory\n"
            "to about 256 MB (8 images of 224x224) within a quarter of the free memory.\n"
            "Timing keeps Batch size."
        )
        self.slow_samples = QSpinBox(self.settings)
        self.slow_samples.setRange(0, 1_000_000)
        self.slow_samples.setSpecialValueText("all")  # 0: every variant on every sample
        self.slow_samples.setSuffix(" samples")
        self.slow_samples.setToolTip(
            "Evaluate at most this many samples of a variant that evaluates 3x slower than the baseline or more\n"
            "(float16 emulated on a CPU without it, dynamic int8 convolutions). Its accuracy is then compared\n"
            "with the baseline's on the same samples. All: every variant on every sample."
        )
        self.layers = LayerSamplesBox(self.settings)
        self.layers.setToolTip(
            "Compare every quantized variant with the float model layer by layer on this many samples\n"
            "(error per tensor and channel, time per op type): the Layers tab. Auto (the default): on 64\n"
            "samples when the model has at most 300 layers, else not at all; off: never."
        )
        self.device_box = QComboBox(self.settings)
        self.device_box.addItem("CPU", Device.CPU.value)
        if cuda_may_be_present():  # offered only where an NVIDIA driver is; the engine checks it is usable
            self.device_box.addItem("CUDA GPU", Device.CUDA.value)
        self.device_box.setToolTip("Where the variants run. CUDA needs an NVIDIA GPU and CUDA builds of the runtimes.")
        self.seed_box = QSpinBox(self.settings)
        self.seed_box.setRange(0, 2**31 - 1)  # numpy's generators take no negative seed
        self.seed_box.setToolTip("Seeds synthetic data and calibration sampling, so a re-run draws the same samples.")
        d = Thresholds()
        self.drop_good = _percent_box(d.accuracy_drop_good * 100, 100, " pt", "Accuracy drop under this is good.")
        self.drop_bad = _percent_box(d.accuracy_drop_bad * 100, 100, " pt", "Accuracy drop over this is bad.")
        self.size_good = _percent_box(d.size_reduction_good * 100, 100, " %", "A file this much smaller is good.")
        self.speed_good = _percent_box(d.latency_reduction_good * 100, 100, " %", "Latency this much lower is good.")
        self.class_recall_bad = _percent_box(
            d.class_recall_drop_bad * 100, 100, " pt", "Any one class's recall falling by more than this is bad."
        )
        self.perplexity_good = _ratio_box(
            d.perplexity_ratio_good, "A language model whose perplexity is at most this times the baseline's is good."
        )
        self.perplexity_bad = _ratio_box(
            d.perplexity_ratio_bad, "A language model whose perplexity is over this times the baseline's is bad."
        )

        self.isolated = QCheckBox("Run in a separate process", self.settings)
        self.isolated.setChecked(True)
        self.isolated.setToolTip(
            "Safer and steadier: a crash in a runtime cannot close the window, and the window's redraws do not\n"
            "disturb the timing. Starting the process takes a few seconds."
        )

        form = QFormLayout(self.settings)
        form.addRow("Timing", self.mode)
        form.addRow("Threads", self.threads)
        form.addRow("Max time / variant", self.max_time)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Eval batch", self.eval_batch)
        form.addRow("Slow variants", self.slow_samples)
        form.addRow("Layer analysis", self.layers)
        form.addRow("Device", self.device_box)
        # A target device of the Ray cluster the Sweep view listed (core.sweep.target); hidden until there is one.
        self.target_box = QComboBox(self.settings)
        self.target_box.setToolTip("Run the study on a target device of the cluster: its latency and memory\n"
                                   "are that device's (Study ▸ Run a sweep… ▸ List targets finds them).")
        self._cluster = None  # core.sweep.Where of the cluster the targets belong to
        form.addRow("Measure on", self.target_box)
        form.setRowVisible(self.target_box, False)
        self._target_form = form
        form.addRow("Seed", self.seed_box)
        form.addRow("Good: acc. drop <", self.drop_good)
        form.addRow("Bad: acc. drop >", self.drop_bad)
        form.addRow("Good: size −", self.size_good)
        form.addRow("Good: latency −", self.speed_good)
        form.addRow("Bad: class recall −", self.class_recall_bad)
        form.addRow("Good: perplexity ≤", self.perplexity_good)
        form.addRow("Bad: perplexity >", self.perplexity_bad)
        form.addRow(self.isolated)

        self.run_button = QPushButton("Run study", self)
        self.run_button.setObjectName("runButton")
        self.run_button.setToolTip("Build, evaluate and time every variant (Ctrl+R).")
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the study; finished variants stay on screen (Esc).")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.cancel_button, 1)

        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setFormat("%p %")
        # One line, '…' in the middle: a long variant label ("prune-channels:ratio=0.35") wrapped to
        # three lines would make this box taller and move Run and Cancel mid-run. Whole in its tooltip.
        self.step = ElidedLabel("", self, Qt.TextElideMode.ElideMiddle)
        self.step.setObjectName("stepLabel")
        self.eta = QLabel("", self)
        self.eta.setObjectName("mutedLabel")
        self.eta.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.blocker = QLabel("", self)
        self.blocker.setObjectName("errorLabel")
        self.blocker.setWordWrap(True)
        step_row = QHBoxLayout()
        step_row.addWidget(self.step, 1)
        step_row.addWidget(self.eta)

        # Time left keeps counting down between events (a long build sends none).
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self.refresh)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(PROGRESS_DELAY_MS)
        self._later.timeout.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addLayout(step_row)
        layout.addWidget(self.blocker)

    # --- settings ------------------------------------------------------
    def timing_spec(self) -> TimingSpec:
        """The timing the controls describe; fields without a control as in the last ``set_spec``."""
        return replace(
            self._timing,
            threads=self.threads.value(),
            mode=TimingMode(self.mode.currentData()),
            batch_size=self.batch_size.value(),
            eval_batch_size=self.eval_batch.value() or None,
            slow_variant_samples=self.slow_samples.value() or None,
            max_time_s=_exact(self.max_time, self._timing.max_time_s),
        )

    def thresholds(self) -> Thresholds:
        """The verdict thresholds (fractions); a "bad" drop below the "good" one counts as the good one."""
        shown = self._thresholds
        good = _exact(self.drop_good, shown.accuracy_drop_good, 100)
        return replace(
            shown,
            accuracy_drop_good=good,
            accuracy_drop_bad=max(_exact(self.drop_bad, shown.accuracy_drop_bad, 100), good),
            size_reduction_good=_exact(self.size_good, shown.size_reduction_good, 100),
            latency_reduction_good=_exact(self.speed_good, shown.latency_reduction_good, 100),
            class_recall_drop_bad=_exact(self.class_recall_bad, shown.class_recall_drop_bad, 100),
            perplexity_ratio_good=_exact(self.perplexity_good, shown.perplexity_ratio_good),
            perplexity_ratio_bad=max(_exact(self.perplexity_bad, shown.perplexity_ratio_bad),
                                     _exact(self.perplexity_good, shown.perplexity_ratio_good)),
        )

    def device(self) -> Device:
        """The device the variants run on."""
        return Device(self.device_box.currentData())

    def set_targets(self, cluster: Any, targets: list[str]) -> None:
        """Offer ``targets`` (device names) of ``cluster`` (a core.sweep.Where); none: the row is hidden."""
        self._cluster = cluster if targets else None
        self.target_box.clear()
        self.target_box.addItem("this machine", None)
        for name in targets:
            self.target_box.addItem(f"target {name}", name)
        self._target_form.setRowVisible(self.target_box, bool(targets))

    def target_where(self) -> Any:
        """Where the study is measured when the user chose a target device (a core.sweep.Where), else None."""
        name = self.target_box.currentData()
        return None if self._cluster is None or not name else replace(self._cluster, target=name)

    def problem(self) -> str | None:
        """Why the settings cannot run here (more threads than this machine has cores), or None; a study
        measured on a cluster's target is checked there."""
        return None if self.target_where() is not None else threads_problem(self.threads.value())

    def seed(self) -> int:
        """The study's random seed."""
        return self.seed_box.value()

    def layer_samples(self) -> int | None:
        """Samples of the per-layer analysis (0: off; None: automatic, by the model's size)."""
        return self.layers.samples()

    def set_spec(
        self, timing: TimingSpec, thresholds: Thresholds, device: Device, seed: int, layer_samples: int | None = None
    ) -> None:
        """Show a study's timing, verdict thresholds, device, seed and layer analysis (this panel's part of a
        StudySpec)."""
        self._timing, self._thresholds = timing, thresholds
        self.layers.set_samples(layer_samples)
        self.threads.setValue(timing.resolved_threads)
        self.mode.setCurrentIndex(self.mode.findData(timing.mode.value))
        self.batch_size.setValue(timing.batch_size)
        self.eval_batch.setValue(timing.eval_batch_size or 0)
        self.slow_samples.setValue(timing.slow_variant_samples or 0)
        self.max_time.setValue(timing.max_time_s)
        self.drop_good.setValue(thresholds.accuracy_drop_good * 100)
        self.drop_bad.setValue(thresholds.accuracy_drop_bad * 100)
        self.size_good.setValue(thresholds.size_reduction_good * 100)
        self.speed_good.setValue(thresholds.latency_reduction_good * 100)
        self.class_recall_bad.setValue(thresholds.class_recall_drop_bad * 100)
        self.perplexity_good.setValue(thresholds.perplexity_ratio_good)
        self.perplexity_bad.setValue(thresholds.perplexity_ratio_bad)
        if self.device_box.findData(device.value) < 0:  # a study made on a GPU machine: shown as it is, and Run
            self.device_box.addItem("CUDA GPU", device.value)  # says in a sentence that CUDA is missing here
        self.device_box.setCurrentIndex(self.device_box.findData(device.value))
        self.seed_box.setValue(seed)

    # --- state ---------------------------------------------------------
    def set_blocker(self, reason: str | None, running: bool) -> None:
        """Enable Run only when nothing blocks it; say why otherwise."""
        self.run_button.setEnabled(reason is None and not running)
        reason = None if reason is None else in_window_words(reason)
        self.run_button.setToolTip(reason or "Build, evaluate and time every variant (Ctrl+R).")
        self.blocker.setText("" if running or reason is None else f"Cannot run yet: {printable(reason)}")
        self.blocker.setVisible(bool(self.blocker.text()))

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.cancel_button.setText("Cancel")
        if not running:
            self._clock.stop()
        if running:
            self._clock.start()
            self.run_button.setEnabled(False)
            self.bar.setValue(0)
            self._show_step("starting")
            self.eta.setText("")

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self._show_step("cancelling: finishing the current step")

    def show_failure(self, message: str) -> None:
        # A refresh still scheduled would put the progress's "finished" over the reason.
        self._later.stop()
        self._clock.stop()
        self._show_step(f"Stopped: {printable(in_window_words(message))}")
        self.eta.setText("")

    def start_progress(self, timing_max_s: float) -> None:
        self._progress = StudyProgress(timing_max_s)

    def apply_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, StudyStarted):
                self._progress = StudyProgress(self._progress.timing_max_s)
            self._progress.apply(event)
        if self._progress.finished or any(isinstance(e, StudyStarted) for e in events):
            self.refresh()
        elif not self._later.isActive():
            # Shown a moment after the charts drawn from the same events: the window's work per
            # update comes in two short stretches, so the GUI thread answers input in between.
            self._later.start()

    def refresh(self) -> None:
        p = self._progress
        value = int(round(p.fraction * 1000))
        if value != self.bar.value():
            # QProgressBar.setValue repaints at once (about 4 ms with the window's style, every
            # redraw while a study streams). With updates off it only records the value; turning
            # them back on schedules an ordinary update, painted with the charts in one pass.
            self.bar.setUpdatesEnabled(False)
            self.bar.setValue(value)
            self.bar.setUpdatesEnabled(True)
        self._show_step(p.step_text)
        self.eta.setText(p.eta_text if not p.finished else f"in {p.elapsed_s:.0f} s")

    def _show_step(self, text: str) -> None:
        if text != self.step.text():
            self.step.setText(text)
            self.step.setToolTip(text)

    @property
    def progress(self) -> StudyProgress:
        return self._progress


class LayerSamplesBox(QSpinBox):
    """The layer analysis's samples (StudySpec.layer_samples): "auto" (the default: by the model's size),
    "off", or a sample count."""

    AUTO, OFF = -1, 0

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setRange(self.AUTO, 4096)
        self.setSpecialValueText("auto")  # the minimum, AUTO
        self.setValue(self.AUTO)

    def samples(self) -> int | None:
        """None for auto, 0 for off, else the sample count."""
        return None if self.value() == self.AUTO else self.value()

    def set_samples(self, samples: int | None) -> None:
        self.setValue(self.AUTO if samples is None else max(self.OFF, samples))

    def textFromValue(self, value: int) -> str:  # noqa: N802 (Qt's name)
        return "off" if value == self.OFF else f"{value} sample{'' if value == 1 else 's'}"

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt's name)
        words = text.strip().lower()
        if words.startswith("auto"):
            return self.AUTO
        digits = "".join(c for c in words if c.isdigit())
        return int(digits) if digits else self.OFF

    def validate(self, text: str, pos: int) -> object:
        words = text.strip().lower()
        if words in ("auto", "off") or re.fullmatch(r"\d+( samples?)?", words):
            digits = "".join(c for c in words if c.isdigit())
            if not digits or int(digits) <= self.maximum():
                return QValidator.State.Acceptable, text, pos
        if any(word.startswith(words) for word in ("auto", "off")) or re.fullmatch(r"\d+( s[a-z]*)?", words):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos
