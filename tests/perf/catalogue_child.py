"""Child process for benchmark 8: a whole study of the scheme catalogue, and the floor it is held to.

``study N SCHEME...``: the study of ``torchvision:resnet18`` (untrained, weights=None: nothing is
downloaded) on ``synthetic:N`` with every SCHEME, run by ``core.engine.run.run_study`` in this
process with the default timing; prints where its time went, variant by variant and stage by stage
(build, evaluation, timing; loading before and the end-of-study re-check after), from the moments
its events arrive. Its resident-memory high-water mark is read by the parent.

``floor N SCHEME...``: each variant built again, then its evaluation of N samples at the fastest
batch size it supports: batch sizes 1, 4, 16 and 64 (up to N) are each timed on a few samples (as
many as fit in about EVAL_PROBE_S, at least one batch, after one warm-up call) and the fastest
per-sample time is scaled to N. Builds are not timed here: the floor takes the study's own.

``paired N SCHEME...``: the study, with the end-of-study paired rounds run as when the machine's speed changed.

All print one JSON line last on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MODEL = "torchvision:resnet18"
#: Batch sizes the floor tries for each variant.
FLOOR_BATCHES = (1, 4, 16, 64)
#: About this long is spent timing each batch size of each variant (at least one batch).
EVAL_PROBE_S = 2.0


def _spec(n: int, schemes: list[str]) -> Any:
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec

    return StudySpec(
        model=ModelSpec(path=MODEL),
        dataset=DatasetSpec.parse(f"synthetic:{n}"),
        variants=tuple(VariantSpec(scheme=SchemeSpec.parse(s)) for s in schemes if s != "fp32"),
        timing=TimingSpec(),
        # The floor is build + evaluation + timing: the optional layer analysis is left out.
        layer_samples=0,
    )


def _study(n: int, schemes: list[str]) -> dict[str, Any]:
    from core.engine.run import run_study
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

    spec = _spec(n, schemes)
    marks: dict[str, dict[str, float]] = {}
    rss_at_start, hwm_started = _status_mb("VmRSS"), None
    t0 = time.perf_counter()
    started = finished_last = None
    result = None
    for event in run_study(spec):
        now = time.perf_counter() - t0
        if isinstance(event, StudyStarted):
            started, hwm_started = now, _status_mb("VmHWM")
        elif isinstance(event, VariantStarted):
            marks[event.label] = {"start": now}
        elif isinstance(event, VariantBuilt):
            marks[event.label]["built"] = now
        elif (isinstance(event, Progress) and event.stage == "timing") or isinstance(event, LatencySamples):
            marks[event.label].setdefault("timing", now)
        elif isinstance(event, (VariantFinished, VariantFailed)):
            marks[event.result.label]["end"] = now
            # Where memory stood when each variant was done, and its high-water mark so far.
            marks[event.result.label]["rss_mb"] = _status_mb("VmRSS")
            marks[event.result.label]["hwm_mb"] = _status_mb("VmHWM")
            finished_last = now
        elif isinstance(event, StudyFinished):
            result = event.result
    wall = time.perf_counter() - t0
    assert result is not None
    variants = {}
    for r in result.results:
        m = marks.get(r.label, {})
        end = m.get("end", m.get("start", 0.0))
        built, timing = m.get("built", end), m.get("timing", end)
        variants[r.label] = {
            "status": r.status.value, "error": r.error, "build_s": r.build_s or 0.0,
            "phase_build_s": built - m.get("start", built), "phase_eval_s": timing - built,
            "phase_timing_s": end - timing, "timing_samples": r.latency.n if r.latency else 0,
            "rss_mb_at_end": m.get("rss_mb"), "hwm_mb_at_end": m.get("hwm_mb"),
            "notes": list(r.notes),
        }
    return {
        "wall_s": wall,
        "load_s": started,
        "recheck_s": wall - (finished_last or wall),
        "eval_batch_size": result.timing.get("eval_batch_size"),
        "timing_budget_s": spec.timing.max_time_s,
        "expected_slowdown": result.timing.get("expected_slowdown"),
        "drifted": bool((result.timing.get("baseline_recheck") or {}).get("drifted")),
        "paired_rounds": "paired" in result.timing,
        "variants": variants,
        "samples": n,
        "rss_mb_at_start": rss_at_start,
        "hwm_mb_at_study_started": hwm_started,
        "peak_rss_mb": _vm_hwm_mb(),
    }


def _floor(n: int, schemes: list[str]) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from core.datasets import load_dataset
    from core.models import load_model
    from core.schemes import get_scheme
    from core.schemes.base import BuildContext
    from core.study.cancel import CancelToken
    from core.study.spec import SchemeSpec

    spec = _spec(n, schemes)
    model = load_model(spec.model)
    data = load_dataset(spec.dataset, model.input, seed=spec.seed)
    x = data.x
    out: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qb-perf-floor-") as tmp:
        for scheme_id in ["fp32", *[s for s in schemes if s != "fp32"]]:
            ctx = BuildContext(
                workdir=Path(tmp) / scheme_id, threads=spec.timing.resolved_threads, device=spec.device,
                cancel=CancelToken(), calibration=lambda k: data.calibration_samples(k, seed=spec.seed),
                progress=lambda *a: None, shared=shared, seed=spec.seed,
            )
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            try:
                built = get_scheme(scheme_id).build(model, SchemeSpec.parse(scheme_id), ctx)
            except Exception as exc:  # noqa: BLE001 - reported as data
                out[scheme_id] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            out[scheme_id] = _fastest_eval(built.runner, x)
            built.runner.close()
    return {"variants": out, "samples": n}


def _fastest_eval(runner: Any, x: Any) -> dict[str, Any]:
    """Seconds per sample at each batch size that runs, and the fastest, scaled to all of ``x``."""
    runner.predict(x[:1])  # warm-up
    per_sample: dict[int, float] = {}
    for batch in FLOOR_BATCHES:
        if batch > len(x):
            break
        try:
            t0 = time.perf_counter()
            runner.predict(x[:batch])
            first = time.perf_counter() - t0
            calls = max(0, int(EVAL_PROBE_S / max(first, 1e-6)) - 1)
            times = [first]
            for i in range(min(calls, 8)):
                start = (batch * (i + 1)) % max(1, len(x) - batch + 1)
                t0 = time.perf_counter()
                runner.predict(x[start : start + batch])
                times.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - a batch the model refuses is not a candidate
            continue
        per_sample[batch] = min(times) / batch
        if first > EVAL_PROBE_S:
            break  # a larger batch of a model this slow would take long to try (and gains little: it is compute-bound)
    best = min(per_sample, key=per_sample.__getitem__)
    return {"per_sample_s": per_sample, "best_batch": best, "eval_s": per_sample[best] * len(x)}


def _vm_hwm_mb() -> float:
    return _status_mb("VmHWM")


def _status_mb(key: str) -> float:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv: list[str]) -> None:
    mode, n, schemes = argv[0], int(argv[1]), argv[2:]
    if mode == "paired":
        # A machine cannot be made to change speed on demand: the re-check is told it did, so the paired rounds
        # run whatever it measured, and their time and memory are measured here.
        from core.engine import drift

        drift.recheck_note = lambda block, rounds=None: "paired rounds forced by the benchmark"
    result = _study(n, schemes) if mode in ("study", "paired") else _floor(n, schemes)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
