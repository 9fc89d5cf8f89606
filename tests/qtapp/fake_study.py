"""A stand-in for ``core.engine.run.run_study`` that yields the real event dataclasses.

Used where a test needs exact control over the event stream (stale events,
slow streams to cancel, a variant that fails on cue). Numbers are drawn from a
seeded generator so every run yields the same study.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.study.cancel import CancelToken
from core.study.events import (
    Event,
    LatencySamples,
    Progress,
    StudyFinished,
    StudyStarted,
    VariantBuilt,
    VariantFailed,
    VariantFinished,
    VariantStarted,
)
from core.study.result import Grade, LatencyStats, StudyResult, VariantResult, VariantStatus, Verdict
from core.study.spec import StudySpec, Thresholds

N_CLASSES = 10
N_SAMPLES = 120
BASE_BYTES = 410_000


@dataclass(frozen=True)
class FakeVariant:
    label: str
    median_ms: float
    size_fraction: float
    flip_rate: float  # fraction of samples whose prediction changes against the baseline
    fails_at: str | None = None  # stage name at which it fails


DEFAULT_VARIANTS = (
    FakeVariant("fp32", 0.30, 1.0, 0.0),
    FakeVariant("ort-fp32", 0.18, 0.98, 0.0),
    FakeVariant("ort-int8-dynamic", 0.24, 0.27, 0.01),
    FakeVariant("ort-int8-static", 0.12, 0.26, 0.03),
    FakeVariant("torch-int8-dynamic", 0.33, 0.30, 0.09),
    FakeVariant("litert-int8", 0.10, 0.25, 0.0, fails_at="building"),
)


def fake_run_study(
    spec: StudySpec,
    cancel: CancelToken | None = None,
    *,
    variants: Sequence[FakeVariant] = DEFAULT_VARIANTS,
    batches: int = 6,
    batch_size: int = 40,
    delay_s: float = 0.0,
    seed: int = 0,
) -> Iterator[Event]:
    """Yield a whole study: start, per variant build/eval/time/finish, then finish."""
    rng = np.random.default_rng(seed)
    sid = spec.study_id
    y = np.arange(N_SAMPLES) % N_CLASSES
    base_pred = _perturb(rng, y, 0.05)
    labels = [v.label for v in variants]
    yield StudyStarted(
        sid,
        model={"path": "demo.pt", "format": "pytorch-state-dict", "params": 27_000, "file_bytes": BASE_BYTES,
               "inputs": [{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"}],
               "outputs": [{"name": "logits", "shape": [1, 10], "dtype": "float32"}]},
        dataset={"spec": "builtin:digits", "samples": N_SAMPLES, "task": "classification", "classes": N_CLASSES,
                 "sample_shape": [1, 8, 8], "preprocessing": "none"},
        variants=labels,
        environment={"cpu": "fake", "threads": 1},
    )
    results: list[VariantResult] = []
    base: VariantResult | None = None
    cancelled = False
    for index, fv in enumerate(variants):
        if cancel is not None and cancel.cancelled:
            cancelled = True
            break
        yield VariantStarted(sid, index=index, label=fv.label, scheme=fv.label)
        for done in range(0, 101, 50):
            yield Progress(sid, fv.label, "calibrating", done, 100, f"calibrating {done}/100")
        if fv.fails_at:
            failed = VariantResult(label=fv.label, scheme=fv.label, status=VariantStatus.FAILED,
                                   error="the converter does not support this operator", error_stage=fv.fails_at)
            results.append(failed)
            yield VariantFailed(sid, fv.label, fv.fails_at, failed.error or "", failed)
            continue
        size = int(BASE_BYTES * fv.size_fraction)
        yield VariantBuilt(sid, fv.label, size, {"quantized_ops": 4}, 0.05, "onnxruntime")
        yield Progress(sid, fv.label, "evaluating", N_SAMPLES, N_SAMPLES, "evaluated")
        samples: list[float] = []
        for _ in range(batches):
            if cancel is not None and cancel.cancelled:
                break
            batch = list(rng.lognormal(np.log(fv.median_ms), 0.12, batch_size))
            samples.extend(batch)
            yield LatencySamples(sid, fv.label, batch, len(samples))
            if delay_s:
                time.sleep(delay_s)
        if cancel is not None and cancel.cancelled:
            cancelled = True
            break
        pred = base_pred if index == 0 else _perturb(rng, base_pred, fv.flip_rate)
        result = _result(fv, y, pred, base_pred, samples, size, base, spec.thresholds)
        if index == 0:
            base = result
        results.append(result)
        yield VariantFinished(sid, result)
    study = StudyResult(study_id=sid, created="2025-01-01T00:00:00Z", status="cancelled" if cancelled else "finished",
                        model={}, dataset={}, environment={}, timing={}, spec={}, results=results)
    yield StudyFinished(sid, study, cancelled=cancelled)


def _perturb(rng: np.random.Generator, pred: np.ndarray, rate: float) -> np.ndarray:
    out = pred.copy()
    flip = rng.random(out.size) < rate
    out[flip] = (out[flip] + rng.integers(1, N_CLASSES, flip.sum())) % N_CLASSES
    return out


def _confusion(y: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    m = np.zeros((N_CLASSES, N_CLASSES), dtype=int)
    np.add.at(m, (y, pred), 1)
    return m.tolist()


def _result(fv: FakeVariant, y: np.ndarray, pred: np.ndarray, base_pred: np.ndarray, samples: list[float],
            size: int, base: VariantResult | None, th: Thresholds) -> VariantResult:
    arr = np.asarray(samples)
    p50, p90, p99 = (float(np.percentile(arr, q)) for q in (50, 90, 99))
    lat = LatencyStats(p50=p50, p90=p90, p99=p99, mean=float(arr.mean()), std=float(arr.std()), min=float(arr.min()),
                       max=float(arr.max()), n=arr.size, ci95_p50=(p50 * 0.98, p50 * 1.02), iqr_rel=0.05, noisy=False)
    acc = float((pred == y).mean())
    flipped = np.flatnonzero(pred != base_pred).tolist()
    fidelity = {"mae": 0.01 + fv.flip_rate, "mse": 0.001, "max_abs": 0.2, "sqnr_db": 40.0 - 300 * fv.flip_rate,
                "cosine": 0.999, "agreement": 1.0 - len(flipped) / y.size, "flipped": flipped,
                "flipped_count": len(flipped)}
    metrics = {"accuracy": acc, "precision_macro": acc, "recall_macro": acc, "f1_macro": acc,
               "confusion_matrix": _confusion(y, pred)}
    verdict = None
    if base is None:
        verdict = Verdict(Grade.BASELINE, Grade.BASELINE, Grade.BASELINE, Grade.BASELINE, None, None, None, None, None,
                          thresholds=vars(th).copy())
    else:
        assert base.metrics is not None and base.latency is not None and base.size_bytes
        drop = base.metrics["accuracy"] - acc
        size_red = 1 - size / base.size_bytes
        lat_red = 1 - p50 / base.latency.p50
        g_acc = (Grade.GOOD if drop < th.accuracy_drop_good
                 else Grade.BAD if drop > th.accuracy_drop_bad else Grade.ACCEPTABLE)
        g_size = Grade.GOOD if size_red >= th.size_reduction_good else Grade.ACCEPTABLE
        g_speed = (Grade.GOOD if lat_red >= th.latency_reduction_good
                   else Grade.BAD if -lat_red > th.latency_increase_bad else Grade.ACCEPTABLE)
        grades = [g_acc, g_size, g_speed]
        overall = (Grade.BAD if Grade.BAD in grades
                   else Grade.GOOD if all(g is Grade.GOOD for g in grades) else Grade.ACCEPTABLE)
        verdict = Verdict(g_acc, g_size, g_speed, overall, drop, size_red, lat_red, base.latency.p50 / p50, None,
                          thresholds=vars(th).copy(), reasons=[f"accuracy drop {drop * 100:.1f} points"])
    return VariantResult(label=fv.label, scheme=fv.label, status=VariantStatus.OK, runtime="onnxruntime",
                         size_bytes=size, latency=lat, throughput_per_s=1000 / p50, metrics=metrics, fidelity=fidelity,
                         verdict=verdict, samples_ms=list(samples), is_float=fv.flip_rate == 0.0)


def with_paired_rounds(final: StudyFinished) -> tuple[StudyFinished, dict]:
    """The study as the engine ends it after a drift: a re-check that moved, and paired rounds
    whose medians tell another story than the first timings (every variant as fast as the baseline)."""
    results = [r for r in final.result.results if r.ok]
    base = results[0]
    p50 = {r.label: round(base.latency.p50 * (1.0 + 0.01 * i), 6) for i, r in enumerate(results)}
    speedup = {r.label: {"median": round(p50[base.label] / p50[r.label], 4), "min": 0.9, "max": 1.05}
               for r in results}
    paired = {"rounds": 7, "burst_s": 0.15, "speedup": speedup, "p50_ms": p50}
    first = base.latency.p50
    timing = {**final.result.timing, "paired": paired,
              "baseline_recheck": {"first_p50_ms": first, "p50_ms": first * 1.6, "drifted": True}}
    marked = [
        r if r.is_baseline or r.verdict is None else replace(r, verdict=replace(
            r.verdict, speedup=speedup[r.label]["median"]))
        for r in final.result.results
    ]
    return replace(final, result=replace(final.result, timing=timing, results=marked)), paired
