"""The window's model of a study, fed with event streams (no widgets)."""

from __future__ import annotations

import numpy as np
from fake_study import DEFAULT_VARIANTS, fake_run_study
from helpers import fake_spec

from core.study.cancel import CancelToken
from core.study.events import LatencySamples, StudyFinished, VariantFinished
from qtapp.models.study_state import Phase, SampleBuffer, StudyState


def test_sample_buffer_grows_and_keeps_order():
    buf = SampleBuffer(capacity=2)
    for chunk in ([1.0, 2.0], [3.0], np.arange(4.0, 10.0)):
        buf.extend(chunk)
    assert len(buf) == 9
    np.testing.assert_array_equal(buf.values, np.arange(1.0, 10.0))
    buf.replace([5.0])
    np.testing.assert_array_equal(buf.values, [5.0])


def test_a_whole_study_ends_with_every_variant_finished_or_failed():
    state = StudyState()
    events = list(fake_run_study(fake_spec()))
    for event in events:
        state.apply(event)
    assert state.labels == [v.label for v in DEFAULT_VARIANTS]
    assert state.finished and not state.cancelled
    phases = {label: v.phase for label, v in state.variants.items()}
    assert phases.pop("litert-int8") is Phase.FAILED
    assert set(phases.values()) == {Phase.OK}
    failed = state.variants["litert-int8"]
    assert failed.error_stage == "building" and "operator" in (failed.error or "")
    # Streamed samples match what the engine reports as all samples kept.
    for event in events:
        if isinstance(event, VariantFinished):
            v = state.variants[event.result.label]
            np.testing.assert_allclose(v.samples.values, event.result.samples_ms)


def test_changes_name_only_what_moved():
    state = StudyState()
    events = iter(fake_run_study(fake_spec()))
    state.apply(next(events))  # StudyStarted
    assert state.take_changes().started
    for event in events:
        state.apply(event)
        if isinstance(event, LatencySamples):
            break
    changes = state.take_changes()
    # VariantBuilt (the size) and the first latency batch of the baseline, nothing else.
    assert changes.samples == {"fp32"} and changes.results == {"fp32"} and not changes.started
    assert not state.take_changes()


def test_cancelled_study_keeps_finished_variants_and_marks_the_rest():
    token = CancelToken()
    state = StudyState()
    for event in fake_run_study(fake_spec(), token):
        state.apply(event)
        if isinstance(event, VariantFinished) and event.result.label == "ort-fp32":
            token.cancel()
    assert state.cancelled
    assert state.variants["fp32"].phase is Phase.OK
    assert state.variants["ort-fp32"].phase is Phase.OK
    assert all(state.variants[v.label].phase is Phase.CANCELLED for v in DEFAULT_VARIANTS[2:])


def test_engine_failure_marks_unfinished_variants():
    state = StudyState()
    events = list(fake_run_study(fake_spec()))
    for event in events[:3]:
        state.apply(event)
    state.fail("the model file vanished")
    assert state.finished and state.error == "the model file vanished"
    assert all(v.phase is Phase.FAILED for v in state.variants.values())


def test_final_results_replace_streamed_ones():
    state = StudyState()
    events = list(fake_run_study(fake_spec()))
    final = events[-1]
    assert isinstance(final, StudyFinished)
    for event in events:
        state.apply(event)
    for result in final.result.results:
        assert state.variants[result.label].result is result
