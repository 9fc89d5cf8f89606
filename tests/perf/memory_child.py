"""Child process for benchmark 7; its resident-memory high-water mark is what is measured.

``study WORKDIR N``: a ResNet-50 (untrained, state dict) study of fp32 +
ort-int8-static with N calibration samples on ``synthetic:N``, run by
``core.engine.run.run_study`` in this process, keeping its files in WORKDIR (the
float export and its ``quant_pre_process`` output are reused by ``calibrate``).

``calibrate WORKDIR METHOD N1 N2``: loads the same model, then builds
ort-int8-static with ``calibration=METHOD`` twice, with N1 and then N2
samples, starting from the study's float files (so no export is repeated).
VmHWM is read before the first build and after each: if calibration kept
every sample's activations, the second peak grows with N2 − N1.

Both print one JSON line last on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.perf.common import peak_rss_self_mb, save_state_dict, torchvision_model

ARCH = "torchvision:resnet50"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _study(workdir: Path, n: int) -> dict[str, Any]:
    from core.engine.run import run_study
    from core.study.events import StudyFinished
    from core.study.spec import DatasetSpec, ModelSpec, SchemeSpec, StudySpec, TimingSpec, VariantSpec

    weights = save_state_dict(torchvision_model("resnet50"), workdir / "resnet50.pt")
    after_setup = peak_rss_self_mb()
    spec = StudySpec(
        model=ModelSpec(path=str(weights), arch=ARCH),
        dataset=DatasetSpec.parse(f"synthetic:{n}"),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-static", (("samples", str(n)),))),),
        timing=TimingSpec(max_time_s=1.0, min_samples=10),
        layer_samples=0,  # the study's own memory: the layer analysis is measured by bench_layers
    )
    result = None
    for event in run_study(spec, workdir=workdir / "study"):
        if isinstance(event, StudyFinished):
            result = event.result
    assert result is not None
    failed = [f"{r.label}: {r.error}" for r in result.results if not r.ok]
    if failed:
        raise RuntimeError("; ".join(failed))
    return {
        "peak_rss_mb": peak_rss_self_mb(),
        "rss_after_building_the_model_file_mb": after_setup,
        "calibration_samples": n,
        "variants": [r.label for r in result.results],
        "duration_s": result.duration_s,
    }


def _calibrate(workdir: Path, method: str, sizes: list[int]) -> dict[str, Any]:
    import numpy as np

    from core.models import load_model
    from core.schemes import get_scheme
    from core.schemes.base import BuildContext
    from core.study.cancel import CancelToken
    from core.study.spec import Device, ModelSpec, SchemeSpec, default_threads

    study = workdir / "study"
    model = load_model(ModelSpec(path=str(workdir / "resnet50.pt"), arch=ARCH))
    shared = {
        "onnx_fp32": str(study / "exported_fp32.onnx"),
        "onnx_preprocessed": str(study / "preprocessed_fp32.onnx"),
    }
    rng = np.random.default_rng(0)
    shape = tuple(model.input.shape[1:])
    scheme = get_scheme("ort-int8-static")
    out: dict[str, Any] = {
        "method": method,
        "rss_before_mb": _rss_mb(),
        "peak_before_mb": peak_rss_self_mb(),
        "input_mb_per_sample": float(np.prod(shape)) * 4 / 2**20,
        "runs": [],
    }
    for i, n in enumerate(sizes):
        vdir = workdir / f"calibrate-{method}-{i}"
        vdir.mkdir(parents=True, exist_ok=True)
        ctx = BuildContext(
            workdir=vdir, threads=default_threads(), device=Device.CPU, cancel=CancelToken(),
            calibration=lambda k: rng.standard_normal((k, *shape), dtype=np.float32),
            progress=lambda *_: None, shared=shared,
        )
        built = scheme.build(model, SchemeSpec("ort-int8-static", (("samples", str(n)), ("calibration", method))), ctx)
        built.runner.close()
        out["runs"].append({"samples": n, "peak_rss_mb": peak_rss_self_mb(), "rss_after_mb": _rss_mb()})
    return out


if __name__ == "__main__":
    mode, workdir = sys.argv[1], Path(sys.argv[2])
    if mode == "study":
        result = _study(workdir, int(sys.argv[3]))
    else:
        result = _calibrate(workdir, sys.argv[3], [int(v) for v in sys.argv[4:]])
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
