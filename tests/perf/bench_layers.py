"""11. Layer analysis (issue #16): what it costs in time and in memory.

- ``layer_analysis_overhead_ratio_resnet18``: torchvision ResNet-18 (untrained), built by the product's own
  schemes as a study builds it (``onnx-fp32`` and ``ort-int8-static`` with its defaults), one intra-op thread,
  64 standard-normal 224×224 samples. One side is ``core.layers.analyse_layers`` on them, whole: its comparison
  sessions, every intermediate tensor compared and histogrammed batch by batch, and both profiles (variant and
  float, 16 calls each). The other side evaluates the float model and the variant on the same samples with the
  study's runners (already open, as in a study), in batches of 8. Interleaved rounds, median of the per-round
  ratios (goal ≤ 3×).
- ``layer_analysis_peak_rss_ratio_resnet50``: peak resident memory (VmHWM, read from /proc by this process) of a
  ResNet-50 study of fp32 + ort-int8-static on ``synthetic:N`` with ``layer_samples=N``, over the same study
  without layer analysis; each study in a fresh child process (goal ≤ 1.5×). N is 64 (quick mode: 32).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.perf.common import (
    interleaved,
    last_json_line,
    mem_available_mb,
    peak_rss_self_mb,
    ratio_summary,
    run_child,
    save_state_dict,
    torchvision_model,
)

THREADS = 1
SAMPLES = 64
EVAL_BATCH = 8
INPUT = (3, 224, 224)
RSS_LIMIT_SHARE = 0.6


def _build(root: Path, name: str, calibration_samples: int) -> dict[str, Any]:
    """The float ONNX export and the static int8 variant of torchvision ``name``, as a study builds them."""
    from core.models import load_model
    from core.schemes import get_scheme
    from core.schemes.base import BuildContext
    from core.study.cancel import CancelToken
    from core.study.spec import Device, ModelSpec, SchemeSpec

    weights = save_state_dict(torchvision_model(name), root / f"{name}.pt")
    model = load_model(ModelSpec(path=str(weights), arch=f"torchvision:{name}"))
    rng = np.random.default_rng(0)
    shared: dict[str, Any] = {}

    def ctx(label: str) -> BuildContext:
        workdir = root / label
        workdir.mkdir(parents=True, exist_ok=True)
        return BuildContext(
            workdir=workdir, threads=THREADS, device=Device.CPU, cancel=CancelToken(),
            calibration=lambda n: rng.standard_normal((n, *INPUT), dtype=np.float32),
            progress=lambda *_: None, shared=shared,
        )

    fp32 = get_scheme("onnx-fp32").build(model, SchemeSpec("onnx-fp32"), ctx("onnx-fp32"))
    int8 = get_scheme("ort-int8-static").build(
        model, SchemeSpec("ort-int8-static", (("samples", str(calibration_samples)),)), ctx("ort-int8-static"))
    return {"fp32": fp32, "int8": int8}


def _overhead(quick: bool) -> dict[str, Any]:
    from core.layers import analyse_layers

    rounds = 3 if quick else 5
    x = np.random.default_rng(1).standard_normal((SAMPLES, *INPUT), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="qb-perf-layers-") as tmp:
        built = _build(Path(tmp), "resnet18", 16 if quick else 64)
        fp32, int8 = built["fp32"], built["int8"]
        details: dict[str, Any] = {}

        def evaluate() -> float:
            t0 = time.perf_counter()
            for runner in (fp32.runner, int8.runner):
                for start in range(0, SAMPLES, EVAL_BATCH):
                    runner.predict(x[start:start + EVAL_BATCH])
            return time.perf_counter() - t0

        def analyse() -> float:
            t0 = time.perf_counter()
            out = analyse_layers(fp32.artifact, int8.artifact, "onnxruntime", x, threads=THREADS)
            elapsed = time.perf_counter() - t0
            details.setdefault("layers", len(out["layers"]))
            details.setdefault("unmatched", len(out["unmatched"]))
            return elapsed

        evaluate()  # warm: the first calls of a session allocate its arenas
        analysis_s, evaluation_s = interleaved(analyse, evaluate, rounds)
        for built_variant in (fp32, int8):
            built_variant.runner.close()
    summary = ratio_summary(analysis_s, evaluation_s)
    return {
        "layer_analysis_overhead_ratio_resnet18": summary["ratio"],
        "layer_analysis_overhead_resnet18": {
            **summary, "analysis_s": analysis_s, "evaluation_s": evaluation_s, "samples": SAMPLES,
            "eval_batch": EVAL_BATCH, "threads": THREADS, **details,
        },
    }


def _study_child(workdir: Path, samples: int, layer_samples: int) -> dict[str, Any]:
    """In a child: the ResNet-50 study, with or without its layer step; its own VmHWM and what the step found."""
    from core.engine.run import run_study
    from core.study.events import StudyFinished
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec

    weights = save_state_dict(torchvision_model("resnet50"), workdir / "resnet50.pt")
    spec = StudySpec(
        model=ModelSpec(path=str(weights), arch="torchvision:resnet50"),
        dataset=DatasetSpec.parse(f"synthetic:{samples}"),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static", (("samples", "16"),))),),
        timing=TimingSpec(threads=THREADS, max_time_s=1.0, min_samples=10),
        layer_samples=layer_samples,
    )
    result = None
    for event in run_study(spec, workdir=workdir / "study"):
        if isinstance(event, StudyFinished):
            result = event.result
    assert result is not None
    failed = [f"{r.label}: {r.error}" for r in result.results if not r.ok]
    if failed:
        raise RuntimeError("; ".join(failed))
    variant = next(r for r in result.results if not r.is_baseline)
    return {"peak_rss_mb": peak_rss_self_mb(), "layers": len(variant.layers or []),
            "profiled": variant.profile is not None, "duration_s": result.duration_s}


def _memory(quick: bool) -> dict[str, Any]:
    samples = 32 if quick else SAMPLES
    limit = RSS_LIMIT_SHARE * (mem_available_mb() or 4096.0)
    runs: dict[str, Any] = {}
    for name, layer_samples in (("without", 0), ("with", samples)):
        with tempfile.TemporaryDirectory(prefix="qb-perf-layers-mem-") as tmp:
            got = run_child(["-m", "tests.perf.bench_layers", "child", tmp, str(samples), str(layer_samples)],
                            timeout_s=1200.0, rss_limit_mb=limit)
        if got["killed_for"] or got["rc"] != 0:
            raise RuntimeError(f"the study {name} layer analysis failed: {got['killed_for'] or got['stderr'][-800:]}")
        runs[name] = {**last_json_line(got["stdout"]), "peak_rss_mb_from_parent": got["peak_rss_mb"],
                      "wall_s": round(got["wall_s"], 1)}
    if not runs["with"]["layers"]:
        raise RuntimeError("the study with layer analysis analysed no layer")
    with_mb = runs["with"]["peak_rss_mb_from_parent"] or runs["with"]["peak_rss_mb"]
    without_mb = runs["without"]["peak_rss_mb_from_parent"] or runs["without"]["peak_rss_mb"]
    return {
        "layer_analysis_peak_rss_ratio_resnet50": with_mb / without_mb,
        "layer_analysis_memory_resnet50": {"samples": samples, "peak_rss_mb_with": with_mb,
                                           "peak_rss_mb_without": without_mb, "runs": runs},
    }


def run(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": THREADS}
    out.update(_overhead(quick))
    out.update(_memory(quick))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        import json

        result = _study_child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        sys.stdout.write("\n" + json.dumps(result) + "\n")
    else:
        from tests.perf.runner import child_main

        child_main(run)
