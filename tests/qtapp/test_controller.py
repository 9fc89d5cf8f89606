"""The worker and the controller: signal order, stale events, cancel, shutdown, failures."""

from __future__ import annotations

import functools
import time
from dataclasses import replace

import pytest
from fake_study import fake_run_study
from helpers import fake_spec

from core.errors import BadInput
from core.study.cancel import CancelToken
from core.study.events import (
    LatencySamples,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from qtapp.threads.controller import StudyController, live_threads
from qtapp.threads.worker import StudyWorker


def _record(controller: StudyController) -> list:
    seen: list = []
    controller.event_received.connect(seen.append)
    controller.study_failed.connect(lambda message: seen.append(("failed", message)))
    controller.running_changed.connect(lambda running: seen.append(("running", running)))
    return seen


def test_worker_emits_every_event_in_order_then_finished():
    spec = fake_spec()
    expected = [type(e) for e in fake_run_study(spec)]
    worker = StudyWorker(spec, CancelToken(), fake_run_study)
    seen: list = []
    worker.event_emitted.connect(lambda e: seen.append(type(e)))
    worker.finished.connect(lambda: seen.append("finished"))
    worker.run()  # in this thread: the order of signals is what is checked here
    assert seen == expected + ["finished"]


def test_signal_order_through_the_thread(qtbot):
    controller = StudyController(functools.partial(fake_run_study, delay_s=0.002))
    seen = _record(controller)
    with qtbot.waitSignal(controller.running_changed, timeout=10_000, check_params_cb=lambda r: r is False):
        controller.start(fake_spec())
    kinds = [type(e) if not isinstance(e, tuple) else e for e in seen]
    assert kinds[0] == ("running", True) and kinds[-1] == ("running", False)
    events = kinds[1:-1]
    assert events[0] is StudyStarted and events[-1] is StudyFinished
    # Per variant: started, then its progress/build/samples, then exactly one finished or failed.
    current = None
    for kind, event in zip(events, seen[1:-1], strict=True):
        if kind is VariantStarted:
            assert current is None
            current = event.label
        elif kind in (Progress, VariantBuilt, LatencySamples):
            assert event.label == current
        elif kind in (VariantFinished, VariantFailed):
            assert event.result.label == current
            current = None
    assert events.count(VariantStarted) == 6 and events.count(VariantFailed) == 1
    qtbot.waitUntil(lambda: not controller.threads_alive, timeout=5_000)
    assert not controller.running and not live_threads()


def test_events_of_another_study_are_dropped(qtbot):
    def stale_then_real(spec, cancel):
        yield StudyStarted("someone-else", {}, {}, ["x"], {})
        yield from fake_run_study(spec, cancel)

    controller = StudyController(stale_then_real)
    seen = _record(controller)
    with qtbot.waitSignal(controller.running_changed, timeout=10_000, check_params_cb=lambda r: r is False):
        study_id = controller.start(fake_spec())
    events = [e for e in seen if not isinstance(e, tuple)]
    assert controller.dropped_events == 1
    assert all(e.study_id == study_id for e in events)


def test_each_start_gets_a_new_study_id(qtbot):
    controller = StudyController(fake_run_study)
    spec = fake_spec()
    ids = []
    for _ in range(2):
        with qtbot.waitSignal(controller.running_changed, timeout=10_000, check_params_cb=lambda r: r is False):
            ids.append(controller.start(spec))
    assert ids[0] != ids[1] and spec.study_id not in ids
    qtbot.waitUntil(lambda: not controller.threads_alive, timeout=5_000)


def test_cancel_mid_run_stops_within_a_second_and_keeps_finished_variants(qtbot):
    controller = StudyController(functools.partial(fake_run_study, batches=400, delay_s=0.01))
    seen = _record(controller)
    controller.start(fake_spec())
    qtbot.waitUntil(lambda: any(isinstance(e, VariantFinished) for e in seen), timeout=20_000)
    qtbot.waitUntil(lambda: isinstance(seen[-1], LatencySamples), timeout=10_000)  # mid-timing
    asked = time.monotonic()
    controller.cancel()
    qtbot.waitUntil(lambda: not controller.running, timeout=1_000)
    assert time.monotonic() - asked < 1.0
    final = [e for e in seen if isinstance(e, StudyFinished)]
    assert len(final) == 1 and final[0].cancelled
    assert [r.label for r in final[0].result.results] == ["fp32"]
    qtbot.waitUntil(lambda: not controller.threads_alive, timeout=5_000)


def test_shutdown_blocks_until_the_thread_is_gone(qtbot):
    controller = StudyController(functools.partial(fake_run_study, batches=400, delay_s=0.01))
    controller.start(fake_spec())
    qtbot.wait(50)
    assert controller.running
    assert controller.shutdown(timeout_ms=5_000)
    assert not controller.threads_alive and not live_threads()


def test_engine_error_becomes_study_failed(qtbot):
    def broken(spec, cancel):
        raise BadInput("model.onnx: the file is empty.")
        yield  # pragma: no cover - makes this a generator

    controller = StudyController(broken)
    seen = _record(controller)
    with qtbot.waitSignal(controller.running_changed, timeout=5_000, check_params_cb=lambda r: r is False):
        controller.start(fake_spec())
    assert ("failed", "model.onnx: the file is empty.") in seen


def test_unexpected_exception_is_reported_not_lost(qtbot):
    def crashing(spec, cancel):
        yield from list(fake_run_study(spec))[:2]
        raise ZeroDivisionError("boom")

    controller = StudyController(crashing)
    seen = _record(controller)
    with qtbot.waitSignal(controller.running_changed, timeout=5_000, check_params_cb=lambda r: r is False):
        controller.start(fake_spec())
    failures = [e for e in seen if isinstance(e, tuple) and e[0] == "failed"]
    assert failures == [("failed", "internal error: ZeroDivisionError: boom")]


def test_start_twice_is_refused(qtbot):
    controller = StudyController(functools.partial(fake_run_study, batches=200, delay_s=0.01))
    controller.start(fake_spec())
    with pytest.raises(RuntimeError):
        controller.start(replace(fake_spec()))
    assert controller.shutdown()


def test_a_new_study_may_start_while_the_last_thread_winds_down(qtbot):
    def slow_to_close(spec, cancel):
        try:
            yield from fake_run_study(spec, cancel)
        finally:
            time.sleep(0.3)  # like the engine's child process exiting after its last event

    controller = StudyController(slow_to_close)
    seen = _record(controller)
    first = controller.start(fake_spec())
    qtbot.waitUntil(lambda: not controller.running, timeout=10_000)
    assert controller.threads_alive  # ended, but its thread is still closing
    assert any(isinstance(e, StudyFinished) and e.study_id == first for e in seen)
    second = controller.start(fake_spec())
    with qtbot.waitSignal(controller.threads_finished, timeout=10_000):
        pass
    assert not controller.running and not controller.threads_alive and not live_threads()
    finished = [e.study_id for e in seen if isinstance(e, StudyFinished)]
    assert finished == [first, second]
