"""5. Time to first result: from ``quantbench --demo`` start to the first histogram on screen.

Each run is a fresh process (``tests.perf.first_result_child window``, which
calls the console script's entry point with marks hooked in; offscreen), timed
from the moment this process starts it; in thorough mode runs alternate with
the same window set to run the study in its worker thread instead of a child
process. The window-side split comes from when
the engine's events reach the window; the engine-side split (imports, model
and dataset load, session init, evaluation, first inference, warm-up) from the
same demo study run headless in a fresh process. Medians over the runs.
Goal: first histogram ≤ 3 s.
"""

from __future__ import annotations

import statistics
from typing import Any

from tests.perf.common import last_json_line, run_child

CHILD = "tests.perf.first_result_child"


def _window_run(mode: str = "window") -> dict[str, float]:
    got = run_child(["-m", CHILD, mode], timeout_s=120.0, env={"QT_QPA_PLATFORM": "offscreen"})
    try:
        printed = last_json_line(got["stdout"])
    except ValueError:
        raise RuntimeError(f"the window run printed no marks (rc {got['rc']}): {got['stderr'][-800:]}") from None
    marks = printed["marks"]
    t0 = got["started_monotonic"]
    if "first_histogram" not in marks:
        raise RuntimeError(f"no histogram was painted: {printed.get('error') or 'the window closed first'}")

    def since_start(key: str) -> float | None:
        return marks[key] - t0 if key in marks else None

    split = {
        "first_histogram_s": since_start("first_histogram"),
        "interpreter_start_s": since_start("python"),
        "study_process_forked_s": since_start("prewarmed"),
        "window_on_screen_s": since_start("event_loop"),
        "study_handed_to_controller_s": since_start("study_start"),
        "study_started_event_s": since_start("StudyStarted"),
        "baseline_built_event_s": since_start("VariantBuilt"),
        "first_samples_event_s": since_start("LatencySamples"),
        "baseline_build_s": marks.get("baseline_build_s"),
    }
    return {k: v for k, v in split.items() if v is not None}


def _engine_run() -> dict[str, float]:
    got = run_child(["-m", CHILD, "engine"], timeout_s=180.0)
    try:
        steps = last_json_line(got["stdout"])["steps"]
    except ValueError:
        raise RuntimeError(f"the engine run printed no result (rc {got['rc']}): {got['stderr'][-800:]}") from None
    steps["process_wall_s"] = got["wall_s"]
    return steps


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in runs for k in r})
    return {k: float(statistics.median(r[k] for r in runs if r.get(k) is not None)) for k in keys}


def run(quick: bool) -> dict[str, Any]:
    repeats = 5 if quick else 9  # the machine changes speed from second to second: a median of several
    window_runs: list[dict[str, float]] = []
    thread_runs: list[dict[str, float]] = []
    for _ in range(repeats):  # alternating, so a busy minute on the machine hits both kinds
        window_runs.append(_window_run("window"))
        if not quick:
            thread_runs.append(_window_run("window-in-thread"))
    engine_runs = [_engine_run() for _ in range(1 if quick else 3)]
    window = _medians(window_runs)
    out: dict[str, Any] = {"first_histogram_s": window["first_histogram_s"]}
    if thread_runs:
        out["first_histogram_in_thread_s"] = _medians(thread_runs)["first_histogram_s"]
    return {
        **out,
        "first_result": {
            "window": window,
            "window_in_thread_engine": _medians(thread_runs) if thread_runs else None,
            "engine": _medians(engine_runs),
            "window_runs": window_runs,
            "what": "quantbench --demo (qtapp.launcher.main), offscreen, default settings: the study runs in a "
            "spawned child; times from process creation",
        },
    }


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
