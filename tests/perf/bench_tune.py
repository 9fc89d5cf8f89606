"""13. The search (issue 17): what per-layer sensitivity costs, and how long the demo search takes.

- ``sensitivity_cost_ratio_resnet18``: ONNX Runtime static int8 sensitivity of an untrained torchvision
  ResNet-18 (L = 21 Conv/Gemm layers) by leave-one-out, one evaluation per layer, divided by one
  calibration (with the pre-processing ``ort-int8-static`` does first) plus (L + 1) evaluations of the same
  samples: ``SensitivityRun.cost_ratio`` (goal ≤ 1.5). The ranges are calibrated once and replayed from the
  calibration cache for every layer, so what it adds over the bound is each variant's quantization pass
  and its session. In thorough mode the three parts (weights, activation, leave-one-out: about 3L
  evaluations) are measured too and reported per part, ``sensitivity_cost_ratio_resnet18_per_part``.
- ``tune_demo_search_s``: ``quantbench tune --demo --max-drop 0.5`` end to end in a fresh process, wall
  seconds (goal ≤ 120), with its status and candidate count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.perf.common import torchvision_model

THREADS = 2
INPUT = (3, 224, 224)


def _resnet18_onnx(folder: Path) -> Path:
    import warnings

    import torch

    path = folder / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torchvision_model("resnet18"), (torch.zeros((1, *INPUT)),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def _sensitivity(path: Path, folder: Path, samples: int, parts: tuple[str, ...]) -> dict[str, Any]:
    from core.tune.sensitivity import layer_sensitivity

    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, *INPUT)).astype(np.float32)
    calib = rng.standard_normal((samples, *INPUT)).astype(np.float32)
    run = layer_sensitivity(path, x, None, calib, parts=parts, threads=THREADS, workdir=folder / "_".join(parts))
    return {
        "parts": list(parts), "layers": run.layers, "rows": len(run.rows), "evaluations": run.evaluations,
        "total_s": round(run.total_s, 2), "preprocess_s": round(run.preprocess_s, 2),
        "calibration_s": round(run.calibration_s, 2), "evaluation_s": round(run.evaluation_s, 3),
        "cost_ratio": round(run.cost_ratio, 3),
        "cost_ratio_without_preprocess": round(run.cost_ratio_without_preprocess, 3),
        "bound_s": round(run.preprocess_s + run.calibration_s + (run.layers + 1) * run.evaluation_s, 2),
    }


def _demo_search(folder: Path) -> dict[str, Any]:
    out = folder / "tune.json"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "tune", "--demo", "--max-drop", "0.5", "--no-history", "--quiet",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    wall = time.perf_counter() - started
    result = json.loads(out.read_text()) if out.exists() else {}
    return {
        "wall_s": round(wall, 2), "exit_code": done.returncode, "status": result.get("status"),
        "candidates": len(result.get("candidates", [])), "search_s": result.get("elapsed_s"),
        "best": (result.get("best") or {}).get("scheme"),
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        folder = Path(tmp)
        path = _resnet18_onnx(folder)
        samples = 32 if quick else 64
        loo = _sensitivity(path, folder, samples, ("leave_one_out",))
        result: dict[str, Any] = {
            "sensitivity_cost_ratio_resnet18": loo["cost_ratio"],
            "detail_sensitivity_resnet18": {"leave_one_out": loo, "samples": samples, "threads": THREADS},
        }
        if not quick:
            every = _sensitivity(path, folder, samples, ("weights", "activation", "leave_one_out"))
            result["detail_sensitivity_resnet18"]["all_parts"] = every
            # About three evaluations per layer: the bound is one per layer, so per part is the comparable figure.
            result["sensitivity_cost_ratio_resnet18_per_part"] = round(every["total_s"] / (3 * every["bound_s"]), 3)
        search = _demo_search(folder)
        result["tune_demo_search_s"] = search["wall_s"]
        result["detail_tune_demo"] = search
    return result


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
