"""Overall progress, step text and time left (fake clock)."""

from __future__ import annotations

from fake_study import fake_run_study
from helpers import fake_spec

from core.study.events import LatencySamples, Progress, StudyFinished, StudyStarted, VariantStarted
from qtapp.models.progress import StudyProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fraction_only_grows_and_reaches_one():
    clock = FakeClock()
    progress = StudyProgress(timing_max_s=1.0, clock=clock)
    seen = []
    for event in fake_run_study(fake_spec()):
        clock.now += 0.05
        progress.apply(event)
        seen.append(progress.fraction)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0 and progress.step_text == "finished"


def test_step_text_names_stage_variant_and_count():
    progress = StudyProgress(clock=FakeClock())
    sid = "s"
    progress.apply(StudyStarted(sid, {}, {}, ["fp32", "ort-int8-static"], {}))
    progress.apply(VariantStarted(sid, 1, "ort-int8-static", "ort-int8-static"))
    progress.apply(Progress(sid, "ort-int8-static", "calibrating", 40, 100, ""))
    assert progress.step_text == "calibrating ort-int8-static 40/100"
    progress.apply(LatencySamples(sid, "ort-int8-static", [0.1] * 30, 30))
    assert progress.step_text == "timing ort-int8-static 30 samples"


def test_time_left_extrapolates_elapsed_time():
    clock = FakeClock()
    progress = StudyProgress(clock=clock)
    sid = "s"
    progress.apply(StudyStarted(sid, {}, {}, ["a", "b"], {}))
    assert progress.eta_s is None  # nothing to extrapolate from yet
    clock.now += 10.0
    # Variant a half evaluated: slot 1 of 3 plus half of it -> a is 0.5 done -> study 0.25 done.
    progress.apply(Progress(sid, "a", "evaluating", 50, 100, ""))
    assert abs(progress.fraction - 0.25) < 1e-9
    assert abs(progress.eta_s - 30.0) < 1e-9
    assert progress.eta_text == "about 30 s left"
    progress.apply(StudyFinished(sid, result=None, cancelled=True))  # type: ignore[arg-type]
    assert progress.eta_s is None and progress.step_text == "cancelled: 0 of 2 measured"
