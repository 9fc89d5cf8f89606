"""7. Memory: peak resident memory of a ResNet-50 study and of calibration with each method.

Every figure is the high-water mark (VmHWM) of a fresh child process
(``tests.perf.memory_child``), read from /proc by this process while the child
runs, so nothing this process holds is counted.

- The study: ResNet-50 (untrained) fp32 baseline + ort-int8-static, N
  calibration samples on ``synthetic:N`` (200 in thorough mode; quick mode uses
  16 and adds ``peak_rss_mb_resnet50_projected_200`` from the minmax growth),
  run by the engine in the child.
- Calibration: for minmax, entropy and percentile (quick mode: minmax and
  entropy, which shares ORT's histogram collection with percentile), one child builds
  ort-int8-static twice, with N1 and then N2 samples, from the study's float
  files. ``growth_mb_per_sample`` = (peak after N2 − peak after N1) ÷ (N2 − N1):
  a small multiple of one input sample (the calibration inputs themselves are
  held, and copied once) when calibration streams its activations, about one
  sample's activations of every calibrated tensor when it keeps them all.
  ``projected_peak_mb_at_200`` extends that line to 200 samples.
  A child whose resident memory passes ``RSS_LIMIT_SHARE`` of the memory that
  was available when the benchmark started is stopped, and reported as such.
"""

from __future__ import annotations

import tempfile
from typing import Any

from tests.perf.common import last_json_line, mem_available_mb, run_child

CHILD = "tests.perf.memory_child"
METHODS = ("minmax", "entropy", "percentile")
RSS_LIMIT_SHARE = 0.6
TARGET_SAMPLES = 200
#: Growth per sample above this many input samples' worth means activations are being kept:
#: the calibration inputs (and one float32 copy of them) account for about 2, allocator noise
#: for a few more; one ResNet-50 sample's activations are about 200.
ACTIVATIONS_KEPT_FACTOR = 10.0


def _child(args: list[str], limit_mb: float, timeout_s: float) -> dict[str, Any]:
    got = run_child(["-m", CHILD, *args], timeout_s=timeout_s, rss_limit_mb=limit_mb)
    if got["killed_for"]:
        return {"stopped": f"the child was stopped: {got['killed_for']}", "peak_rss_mb": got["peak_rss_mb"]}
    if got["rc"] != 0:
        raise RuntimeError(f"memory child {args[:1]} failed (rc {got['rc']}): {got['stderr'][-800:]}")
    result = last_json_line(got["stdout"])
    result["peak_rss_mb_from_parent"] = got["peak_rss_mb"]
    result["wall_s"] = round(got["wall_s"], 1)
    return result


def _growth(runs: list[dict[str, Any]], input_mb: float) -> dict[str, Any]:
    (n1, p1), (n2, p2) = ((r["samples"], r["peak_rss_mb"]) for r in runs[:2])
    slope = max(0.0, (p2 - p1) / (n2 - n1))
    return {
        "growth_mb_per_sample": slope,
        "growth_in_input_samples": slope / input_mb if input_mb else None,
        "projected_peak_mb_at_200": p2 + slope * (TARGET_SAMPLES - n2),
        "holds_all_activations": slope > ACTIVATIONS_KEPT_FACTOR * input_mb,
    }


def run(quick: bool) -> dict[str, Any]:
    study_samples = 16 if quick else TARGET_SAMPLES
    # Both sizes are several calibration chunks (core.schemes.ort_static.CALIBRATION_CHUNK), so
    # the slope shows whether memory grows with the sample count or stays at one chunk's worth.
    sizes = ["8", "24"] if quick else ["16", "64"]
    # Entropy and percentile share ORT's histogram collection; quick mode measures one of them.
    methods = ("minmax", "entropy") if quick else METHODS
    available = mem_available_mb() or 4096.0
    limit = RSS_LIMIT_SHARE * available
    out: dict[str, Any] = {"mem_available_mb_at_start": available, "rss_limit_mb": limit}
    with tempfile.TemporaryDirectory(prefix="qb-perf-mem-") as tmp:
        study = _child(["study", tmp, str(study_samples)], limit, timeout_s=900.0)
        out["peak_rss_mb_resnet50"] = study.get("peak_rss_mb_from_parent") or study.get("peak_rss_mb")
        out["memory_study"] = study
        calibration: dict[str, Any] = {}
        for method in methods:
            got = _child(["calibrate", tmp, method, *sizes], limit, timeout_s=900.0)
            if "runs" in got and len(got["runs"]) == 2:
                got.update(_growth(got["runs"], got["input_mb_per_sample"]))
            calibration[method] = got
            if "stopped" not in got:
                out[f"calibration_peak_rss_mb_{method}"] = got["runs"][-1]["peak_rss_mb"]
                out[f"calibration_growth_mb_per_sample_{method}"] = got["growth_mb_per_sample"]
                out[f"calibration_holds_all_activations_{method}"] = got["holds_all_activations"]
        out["memory_calibration"] = calibration
    minmax = calibration.get("minmax", {})
    if study_samples < TARGET_SAMPLES and "growth_mb_per_sample" in minmax:
        # Each extra sample adds its calibration copies (the minmax growth) and itself to the dataset.
        per_sample = minmax["growth_mb_per_sample"] + minmax["input_mb_per_sample"]
        out["peak_rss_mb_resnet50_projected_200"] = out["peak_rss_mb_resnet50"] + per_sample * (
            TARGET_SAMPLES - study_samples
        )
    return out


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
