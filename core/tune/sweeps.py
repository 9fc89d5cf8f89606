"""Calibration and batch-size sweeps: how a static scheme's accuracy follows its calibration, and how each
variant's latency and throughput follow the batch size.

Not to be confused with ``core.sweep`` (many whole studies, e.g. on a cluster): these sweep one knob of one
model's variants, measured the way the search measures candidates (``core.tune.search``: built by their
scheme exactly as ``quantbench run --scheme S`` builds them, evaluated on the evaluation samples, never on
the calibration ones, and timed with the study's harness).

- ``calibration_sweep``: ``ort-int8-static:calibration=M,samples=N`` for every method M and count N;
  accuracy, accuracy lost and output SQNR against the float model per point, one line per method.
- ``batch_sweep``: every variant timed at each batch size in turn (1, 8, 32 ...), latency per call and
  throughput (samples per second), until a call takes longer than ``max_call_ms`` or the next batch would
  not fit in the memory left; per variant, the batch with the best throughput whose latency per call stays
  within ``latency_limit_ms`` is marked.

Both return plain ``kind: "calibration_sweep"`` / ``kind: "batch_sweep"`` dicts (the JSON the CLI writes, the
window draws and ``core.tune.sweep_report`` renders), and stop promptly on ``cancel``, keeping what was
measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BadInput, Cancelled
from core.files.scratch import Scratch
from core.study.cancel import CancelToken

METHODS = ("minmax", "entropy", "percentile")
SAMPLE_COUNTS = (16, 64, 256)
BATCH_SIZES = (1, 8, 32)
STATIC = "ort-int8-static"
#: The batch sweep's variants when none is named: the float model and static int8.
DEFAULT_BATCH_SCHEMES = ("ort-int8-static",)
#: A batch whose call takes longer than this ends the variant's sweep (the larger ones would take longer).
MAX_CALL_MS = 2000.0
#: A larger batch is tried only while the memory the last one added, scaled up, fits in this share of the free.
MEMORY_SHARE = 0.5

Calibration = np.ndarray | Callable[[int], np.ndarray]


def parse_sizes(text: str, option: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32); BadInput naming ``option`` for anything else."""
    try:
        sizes = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise BadInput(f"{option} {text!r} must be positive whole numbers separated by commas, e.g. 1,8,32.")
    return tuple(sorted(set(sizes)))


def _search(
    model_path: Path, eval_x: np.ndarray, eval_y: np.ndarray | None, calib: Calibration, cancel: CancelToken | None,
    threads: int | None, timing_s: float, folder: Path,
) -> Any:
    from core.study.spec import default_threads
    from core.tune.measure import StopToken
    from core.tune.search import _Search

    return _Search(
        Path(model_path), np.asarray(eval_x), eval_y, calib, 0.0, "latency", StopToken(cancel),
        threads or default_threads(), timing_s, folder, None, ("leave_one_out",),
    )


def calibration_sweep(
    model_path: Path | str,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None,
    calib_x: Calibration,
    *,
    methods: Sequence[str] = METHODS,
    counts: Sequence[int] = SAMPLE_COUNTS,
    cancel: CancelToken | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    threads: int | None = None,
    model: Any = None,
    timing_s: float = 0.1,
) -> dict[str, Any]:
    """Accuracy and SQNR of ``ort-int8-static`` for every calibration method × sample count."""
    from core.tune.sensitivity import CALIBRATIONS

    unknown = [m for m in methods if m not in CALIBRATIONS]
    if unknown:
        raise BadInput(f"calibration method {unknown[0]!r} is not one of {', '.join(CALIBRATIONS)}.")
    start = time.monotonic()
    points: list[dict[str, Any]] = []
    status = "finished"
    with Scratch("sweep") as tmp:
        search = _search(Path(model_path), eval_x, eval_y, calib_x, cancel, threads, timing_s, Path(tmp))
        notes: list[str] = []
        base = None
        try:
            search._load(model)
            base = search._measure_float()
            have = len(search.calib(max(counts)))
            for count in counts:
                if count > have:
                    notes.append(f"{count} calibration samples asked, the dataset's calibration split has {have}")
            for method in methods:
                for count in counts:
                    if count > have:
                        continue
                    scheme = f"{STATIC}:calibration={method},samples={count}"
                    row = search._measure(f"{method}, {count} samples", scheme)
                    point = {
                        "method": method, "samples": count, "scheme": scheme, "status": row["status"],
                        "accuracy": row["accuracy"], "accuracy_drop_pt": row["accuracy_drop_pt"],
                        "sqnr_db": row["sqnr_db"], "latency_ms": row["latency_ms"], "size_bytes": row["size_bytes"],
                        **({"error": row["error"]} if row["status"] == "failed" else {}),
                    }
                    points.append(point)
                    if on_point is not None:
                        on_point(dict(point))
        except Cancelled:
            status = "cancelled"
    return {
        "schema_version": 1, "kind": "calibration_sweep", "model": str(model_path), "scheme": STATIC,
        "status": status, "methods": list(methods), "counts": list(counts),
        "float_accuracy": base["accuracy"] if base is not None else None, "baseline": base,
        "points": points, "notes": notes, "elapsed_s": round(time.monotonic() - start, 3),
    }


def best_within(rows: list[dict[str, Any]], latency_limit_ms: float | None) -> dict[str, Any] | None:
    """The batch with the highest throughput whose median latency per call is within the limit (any, without)."""
    fits = [r for r in rows if r.get("throughput_per_s") and (
        latency_limit_ms is None or r["latency_ms"]["p50"] <= latency_limit_ms)]
    return max(fits, key=lambda r: r["throughput_per_s"]) if fits else None


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def batch_sweep(
    model_path: Path | str,
    eval_x: np.ndarray,
    calib_x: Calibration,
    *,
    schemes: Sequence[str] = DEFAULT_BATCH_SCHEMES,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    latency_limit_ms: float | None = None,
    max_call_ms: float = MAX_CALL_MS,
    cancel: CancelToken | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    threads: int | None = None,
    model: Any = None,
    timing_s: float = 0.3,
) -> dict[str, Any]:
    """Latency per call and throughput of the float model and each of ``schemes`` at every batch size."""
    from core.measures.peak_memory import PeakMemory
    from core.schemes.registry import get_scheme
    from core.study.spec import SchemeSpec
    from core.tune.measure import open_runner, timed

    start = time.monotonic()
    sizes = sorted(set(int(b) for b in batch_sizes))
    variants: list[dict[str, Any]] = []
    status = "finished"
    with Scratch("sweep") as tmp:
        search = _search(Path(model_path), eval_x, None, calib_x, cancel, threads, timing_s, Path(tmp))
        x = np.asarray(eval_x)
        try:
            search._load(model)
            for scheme in ("fp32", *schemes):
                entry: dict[str, Any] = {"label": scheme, "scheme": scheme, "status": "ok", "points": [],
                                         "stopped": None}
                variants.append(entry)
                try:
                    if scheme == "fp32":
                        assert search.onnx_path is not None
                        runner = open_runner(search.onnx_path, search.threads)
                    else:
                        spec = SchemeSpec.parse(scheme)
                        runner = get_scheme(spec.id).build(search.loaded, spec, search._context(scheme)).runner
                except Cancelled:
                    raise
                except Exception as exc:  # noqa: BLE001 - one variant that cannot be built is a row, not the end
                    entry.update(status="failed", error=str(exc).strip().splitlines()[0] if str(exc).strip()
                                 else type(exc).__name__)
                    continue
                try:
                    grown = 0
                    for batch in sizes:
                        if batch > len(x):
                            entry["stopped"] = f"batch {batch} is larger than the {len(x)} evaluation samples"
                            break
                        free = _available_bytes()
                        if grown and free is not None and grown * 2 > MEMORY_SHARE * free:
                            entry["stopped"] = f"batch {batch} would not fit in the free memory"
                            break
                        memory = PeakMemory()
                        memory.start()
                        stats, _ = timed(runner, x, search.threads, search.timing_s, search.stop, batch_size=batch)
                        peak = memory.result() or {}
                        grown = max(0, int(peak.get("peak_rss_bytes") or 0) - int(peak.get("rss_before_bytes") or 0))
                        point = {
                            "batch_size": batch, "latency_ms": {"p50": round(stats.p50, 6), "p99": round(stats.p99, 6)},
                            "throughput_per_s": round(batch * 1000.0 / stats.p50, 2) if stats.p50 > 0 else None,
                            "peak_rss_bytes": peak.get("peak_rss_bytes"),
                        }
                        entry["points"].append(point)
                        if on_point is not None:
                            on_point({"label": scheme, **point})
                        if stats.p50 > max_call_ms:
                            entry["stopped"] = f"a call of batch {batch} took over {max_call_ms:g} ms"
                            break
                finally:
                    runner.close()
                best = best_within(entry["points"], latency_limit_ms)
                entry["best_batch_size"] = None if best is None else best["batch_size"]
        except Cancelled:
            status = "cancelled"
    for entry in variants:  # a cancelled variant keeps its best among what it measured
        if "best_batch_size" not in entry:
            best = best_within(entry["points"], latency_limit_ms)
            entry["best_batch_size"] = None if best is None else best["batch_size"]
    return {
        "schema_version": 1, "kind": "batch_sweep", "model": str(model_path), "status": status,
        "batch_sizes": sizes, "latency_limit_ms": latency_limit_ms, "max_call_ms": max_call_ms,
        "variants": variants, "elapsed_s": round(time.monotonic() - start, 3),
    }
