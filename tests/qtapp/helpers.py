"""Shared helpers for the Qt tests."""

from __future__ import annotations

from core.study.spec import DatasetKind, DatasetSpec, ModelSpec, StudySpec, TimingSpec

#: Short timing so a whole demo study takes seconds; the statistics are still real.
FAST_TIMING = TimingSpec(threads=1, warmup_runs=1, warmup_s=0.02, min_samples=20, max_samples=400, max_time_s=0.25)
#: Timing that runs its full time (the sample floor is never met), for tests that act mid-timing.
SLOW_TIMING = TimingSpec(threads=1, warmup_runs=1, warmup_s=0.02, min_samples=10**7, max_samples=10**7, max_time_s=1.0)


def fake_spec() -> StudySpec:
    """A spec for the fake engine (it reads only the study id and thresholds)."""
    return StudySpec(ModelSpec("demo.pt"), DatasetSpec(DatasetKind.BUILTIN, "digits"))


def close_window(qtbot, window) -> None:
    """Close like a user does, wait for the study threads and background jobs, then delete the window."""
    window.close()
    qtbot.waitUntil(lambda: not window.controller.threads_alive, timeout=30_000)
    window.close()
    window.tasks.wait(30_000)
    qtbot.waitUntil(lambda: window.tasks.pending() == 0, timeout=30_000)
    window.deleteLater()
    qtbot.wait(10)
