"""9. A sweep's scheduling overhead on Ray: what running a study as a Ray task costs beyond the study itself.

A local Ray instance runs the bundled demo study N times (quick: 3, else 5; one thread, 0.5 s timing budget per
variant; quick 0.25 s), each as a sweep of one study through ``core.sweep.run_sweep`` into a private history,
one after another: nothing overlaps the measurement (within one sweep Ray starts the next task while one waits
in ``ray.get``, so their bodies overlap and a sum of bodies would exceed the wall time). Each task records when its body
started and ended on the node (``placement.started``/``ended``: unpacking the shipped files and the whole study).

- ``sweep_overhead_s_per_study`` = the mean, over the studies after the first, of (the sweep's wall time, Ray
  already started − its task body): submitting, shipping the model and dataset through the object store, placing
  the task, returning the events and recording them in the local history.
- ``sweep_overhead_ratio`` = that ÷ the mean task body of those studies (the demo study's own time, warm): goal
  ≤ 0.10. The first study also pays what a sweep pays once (its node's timing gate is made, Ray's worker process
  starts): ``sweep_first_study_overhead_s``, and ``sweep_overhead_ratio_with_first`` averages it in.
- ``sweep_study_here_s``: the same demo study run here in this process (``run_study``), for comparison with the
  body measured on the node.
Ray's own start (``ray.init``) is reported apart (``sweep_ray_start_s``): it is paid once per sweep, not per study.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from tests.perf.runner import child_main


def run(quick: bool) -> dict[str, Any]:
    import ray

    from core.engine.run import demo_study_spec, run_study
    from core.study.events import StudyFinished
    from core.study.spec import TimingSpec
    from core.sweep import StudyState, SweepFinished, Where, run_sweep
    from core.sweep.gate import TIMING_RESOURCE

    n = 3 if quick else 5
    timing = TimingSpec(threads=1, max_time_s=0.25 if quick else 0.5)
    t0 = time.perf_counter()
    here = next(e for e in run_study(demo_study_spec(timing)) if isinstance(e, StudyFinished))
    here_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(num_cpus=1, resources={TIMING_RESOURCE: 1}, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    ray_start_s = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="quantbench-bench-sweep-") as home:
            outcomes, walls = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                events = list(run_sweep([demo_study_spec(timing)], Where(ray=True), home=home, resume=False))
                walls.append(time.perf_counter() - t0)
                outcomes += next(e for e in events if isinstance(e, SweepFinished)).outcomes
    finally:
        ray.shutdown()
    states = [o.state for o in outcomes]
    if states != [StudyState.DONE] * n:
        raise RuntimeError(f"the sweep did not finish every study: {[s.value for s in states]}")
    bodies = [o.placement["ended"] - o.placement["started"] for o in outcomes]
    overheads = [w - b for w, b in zip(walls, bodies, strict=True)]
    # The first sweep also pays what a sweep pays once: its node's timing gate is made, Ray's worker process
    # starts and imports the engine. The per-study figures are those of the studies after it.
    overhead = statistics.mean(overheads[1:])
    own = statistics.mean(bodies[1:])
    return {
        "sweep_overhead_ratio": round(overhead / own, 4),
        "sweep_overhead_s_per_study": round(overhead, 3),
        "sweep_study_own_s": round(own, 2),
        "sweep_first_study_overhead_s": round(overheads[0], 3),
        "sweep_overhead_ratio_with_first": round(statistics.mean(overheads) / statistics.mean(bodies), 4),
        "sweep_study_on_node_s": [round(b, 2) for b in bodies],
        "sweep_study_here_s": round(here_s, 2),
        "sweep_study_here_duration_s": here.result.duration_s,
        "sweep_wall_s": [round(w, 2) for w in walls],
        "sweep_ray_start_s": round(ray_start_s, 2),
        "sweep_studies": n,
        "sweep_timing_max_time_s": timing.max_time_s,
    }


if __name__ == "__main__":
    child_main(run)
