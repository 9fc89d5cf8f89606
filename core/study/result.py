"""The outcome of a study as plain data, and its JSON contract (schema_version 1)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1

#: The scheme id of the float baseline every study measures first (see ``VariantResult.is_baseline``).
BASELINE_SCHEME = "fp32"


class VariantStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Grade(str, Enum):
    GOOD = "good"
    ACCEPTABLE = "acceptable"
    BAD = "bad"
    BASELINE = "baseline"
    UNKNOWN = "unknown"


@dataclass
class LatencyStats:
    """Latency of one call (one batch), in milliseconds, from every kept sample."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    n: int
    ci95_p50: tuple[float, float]
    iqr_rel: float  # interquartile range / median
    noisy: bool  # iqr_rel above 10 %
    block_size: int = 1  # calls per timed block (sub-millisecond models)
    first_ms: float | None = None  # the very first inference, reported apart
    batch_size: int = 1
    warmup_runs: int | None = None  # calls made to warm up before the samples
    warmup_ms: float | None = None  # time those calls took
    stop_reason: str | None = None  # converged | max_samples | max_time


@dataclass
class Verdict:
    accuracy: Grade
    size: Grade
    speed: Grade
    overall: Grade
    accuracy_drop: float | None  # fraction (0.012 = 1.2 points)
    size_reduction: float | None  # fraction of the baseline's bytes saved
    latency_reduction: float | None  # fraction of the baseline's p50 saved
    speedup: float | None  # baseline p50 / this p50
    speedup_vs_fastest_float: float | None
    thresholds: dict[str, float]
    reasons: list[str] = field(default_factory=list)


@dataclass
class VariantResult:
    label: str
    scheme: str  # scheme id, or "file" for a --variant file
    status: VariantStatus
    runtime: str = ""
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_stage: str | None = None
    size_bytes: int | None = None
    latency: LatencyStats | None = None
    throughput_per_s: float | None = None
    metrics: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    coverage: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    #: Why the variant came out slower than the baseline, read from its coverage.
    explanation: list[str] = field(default_factory=list)
    build_s: float | None = None
    source_path: str | None = None
    is_float: bool = False
    samples_ms: list[float] = field(default_factory=list)
    #: The float model the other variants are compared with; the engine sets it on exactly one row.
    #: Left out (None), it is read from the scheme: the row built by BASELINE_SCHEME, the only rule
    #: studies stored before this flag can be read by.
    is_baseline: bool | None = None
    #: Per-layer error against the float model, in model order (``core.layers``; None: not analysed).
    layers: list[dict[str, Any]] | None = None
    #: Where the time goes by op type and node, from the runtime's profiler (None: not profiled).
    profile: dict[str, Any] | None = None
    #: Set when the variant was evaluated on the first samples only (``--slow-variant-samples``):
    #: {"samples", "of", "slowdown", "baseline_metrics"} (the baseline's metrics on those same samples).
    evaluated: dict[str, Any] | None = None
    #: Peak resident memory of the study process while this variant was loaded, built and run:
    #: ``{"peak_rss_bytes", "rss_before_bytes", "method"}`` (core.measures.peak_memory; None: not measured).
    memory: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.is_baseline is None:
            self.is_baseline = self.scheme == BASELINE_SCHEME

    @property
    def ok(self) -> bool:
        return self.status is VariantStatus.OK


def find_baseline(results: list[VariantResult]) -> VariantResult | None:
    """The baseline among ``results``, wherever it sits in the list (None when it is not there)."""
    return next((r for r in results if r.is_baseline), None)


@dataclass
class StudyResult:
    study_id: str
    created: str  # ISO 8601, UTC
    status: str  # finished | cancelled | interrupted | failed
    model: dict[str, Any]
    dataset: dict[str, Any]
    environment: dict[str, Any]
    timing: dict[str, Any]
    spec: dict[str, Any]
    results: list[VariantResult] = field(default_factory=list)
    duration_s: float | None = None

    def baseline(self) -> VariantResult | None:
        """The variant every other one was measured against (``VariantResult.is_baseline``)."""
        return find_baseline(self.results)

    def baseline_failure(self, where: str = "here") -> str | None:
        """One sentence when the model itself could not run (so nothing was compared), else None.

        The command line exits 2 with it and the window shows it: a model that cannot run is a
        problem with the file, not a finished study. ``where``: where it ran ("on node-3", for a sweep's study)."""
        base = self.baseline()
        if self.status == "cancelled" or base is None or base.status is not VariantStatus.FAILED:
            return None
        path = self.model.get("path") or self.spec.get("model", {}).get("path", "the model")
        reason = (base.error or "it failed").strip().rstrip(".")
        return f"{path}: the model does not run {where}, so no variant could be compared with it ({reason})."

    def to_json_dict(self, include_samples: bool = True) -> dict[str, Any]:
        """The result contract of DESIGN.md; extend it, never rename keys."""
        return {
            "schema_version": SCHEMA_VERSION,
            "study_id": self.study_id,
            "created": self.created,
            "status": self.status,
            "duration_s": self.duration_s,
            "model": self.model,
            "dataset": self.dataset,
            "environment": self.environment,
            "timing": self.timing,
            "spec": self.spec,
            "results": [variant_to_json(v, include_samples) for v in self.results],
        }


def variant_to_json(v: VariantResult, include_samples: bool = True) -> dict[str, Any]:
    latency = None
    if v.latency is not None:
        latency = _plain(asdict(v.latency))
        latency["ci95_p50"] = list(v.latency.ci95_p50)
        if include_samples:
            latency["samples"] = list(v.samples_ms)
    return {
        "label": v.label,
        "scheme": v.scheme,
        "params": dict(v.params),
        "runtime": v.runtime,
        "status": v.status.value,
        "error": v.error,
        "error_stage": v.error_stage,
        "size_bytes": v.size_bytes,
        "latency_ms": latency,
        "throughput_per_s": v.throughput_per_s,
        "metrics": _plain(v.metrics),
        "fidelity": _plain(v.fidelity),
        "coverage": _plain(v.coverage),
        "verdict": _plain(asdict(v.verdict)) if v.verdict else None,
        "notes": list(v.notes),
        "advice": list(v.advice),
        "explanation": list(v.explanation),
        "build_s": v.build_s,
        "source_path": v.source_path,
        "is_float": v.is_float,
        "is_baseline": v.is_baseline,
        # A model whose tensors hold NaN or infinity has no figure for them: null, and the file stays JSON.
        **({"layers": _finite(_plain(v.layers))} if v.layers is not None else {}),
        **({"profile": _finite(_plain(v.profile))} if v.profile is not None else {}),
        **({"evaluated": _plain(v.evaluated)} if v.evaluated is not None else {}),
        **({"memory": _plain(v.memory)} if v.memory is not None else {}),
    }


def variant_from_json(d: dict[str, Any]) -> VariantResult:
    """Inverse of ``variant_to_json`` (used by the store and by comparisons)."""
    lat = d.get("latency_ms")
    latency = None
    samples: list[float] = []
    if lat:
        lat = dict(lat)
        samples = list(lat.pop("samples", []) or [])
        lat["ci95_p50"] = tuple(lat["ci95_p50"])
        latency = LatencyStats(**lat)
    verdict = None
    if d.get("verdict"):
        vd = dict(d["verdict"])
        for key in ("accuracy", "size", "speed", "overall"):
            vd[key] = Grade(vd[key])
        verdict = Verdict(**vd)
    return VariantResult(
        label=d["label"],
        scheme=d["scheme"],
        status=VariantStatus(d["status"]),
        runtime=d.get("runtime", ""),
        params=dict(d.get("params") or {}),
        error=d.get("error"),
        error_stage=d.get("error_stage"),
        size_bytes=d.get("size_bytes"),
        latency=latency,
        throughput_per_s=d.get("throughput_per_s"),
        metrics=d.get("metrics"),
        fidelity=d.get("fidelity"),
        coverage=d.get("coverage") or {},
        verdict=verdict,
        notes=list(d.get("notes") or []),
        advice=list(d.get("advice") or []),
        explanation=list(d.get("explanation") or []),
        build_s=d.get("build_s"),
        source_path=d.get("source_path"),
        is_float=bool(d.get("is_float", False)),
        samples_ms=samples,
        is_baseline=d.get("is_baseline"),
        layers=d["layers"] if isinstance(d.get("layers"), list) else None,
        profile=d["profile"] if isinstance(d.get("profile"), dict) else None,
        evaluated=d["evaluated"] if isinstance(d.get("evaluated"), dict) else None,
        memory=d["memory"] if isinstance(d.get("memory"), dict) else None,
    )


def study_from_json(d: dict[str, Any]) -> StudyResult:
    return StudyResult(
        study_id=d["study_id"],
        created=d["created"],
        status=d["status"],
        model=d["model"],
        dataset=d["dataset"],
        environment=d["environment"],
        timing=d.get("timing", {}),
        spec=d.get("spec", {}),
        results=[variant_from_json(v) for v in d.get("results", [])],
        duration_s=d.get("duration_s"),
    )


def _finite(value: Any) -> Any:
    """``value`` (plain, from ``_plain``) with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """numpy scalars/arrays and enums to JSON-ready Python values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return _plain(tolist())
    return str(value)
