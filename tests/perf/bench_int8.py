"""6. INT8 done right: ort-int8-static with its defaults against onnx-fp32, one thread.

For torchvision ResNet-18 and MobileNetV2 (untrained: speed does not depend on
the weights' values), the product's own schemes build both variants exactly
as a study would (``get_scheme("onnx-fp32")`` and ``get_scheme("ort-int8-static")``
with default options: QDQ, u8 activations, per-channel s8 weights, MinMax, after
``quant_pre_process``), calibrated on standard-normal inputs. Reported:

- speed-up = onnx-fp32 median ÷ int8 median at one intra-op thread, median of
  interleaved rounds (goal ≥ 2× on a CPU with VNNI);
- the fraction of convolutions running as integer kernels in the session's
  optimized graph (``core.schemes.coverage``; goal ≥ 95 %);
- size ratio = fp32 file ÷ int8 file (goal ≥ 3.5×);
- the achieved share of the CPU's int8 peak: (2 × multiply-accumulates of the
  Conv and Linear layers, counted with forward hooks) ÷ int8 median, over the
  one-core peak of every int8 instruction set the CPU has (``int8_peak_ops_per_s``).
  ``int8_peak_fraction_<model>`` uses the set the kernels evidently run on: a
  1024³ u8×s8 MatMulInteger probe faster than the VNNI peak can only be AMX.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.perf.common import cpu_mhz, interleaved, ratio_summary, save_state_dict, torchvision_model

THREADS = 1
MODELS = ("resnet18", "mobilenet_v2")
INPUT = (1, 3, 224, 224)

#: int8 operations (one multiply-accumulate = 2) per cycle per core.
#: AVX-512 VNNI: VPDPBUSD does 16 lanes × 4 u8·s8 products = 64 MACs; server cores with two
#: 512-bit FMA units (ports 0 and 5) issue two a cycle: 128 MACs = 256 ops.
#: AVX-VNNI (256-bit): half of that, 128 ops. AMX-INT8: TDPBUSD on the tile unit, 1024 MACs
#: a cycle = 2048 ops (Intel's figure for Sapphire/Emerald Rapids).
OPS_PER_CYCLE = {"avx512_vnni": 256, "avx_vnni": 128, "amx_int8": 2048}


def int8_peak_ops_per_s(flags: dict[str, bool], mhz: float | None, cores: int) -> dict[str, float]:
    """Peak int8 ops/s of ``cores`` cores at ``mhz`` for every int8 instruction set the CPU has."""
    if not mhz:
        return {}
    raw = {"avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni", "amx_int8": "amx_int8"}
    return {name: cores * mhz * 1e6 * OPS_PER_CYCLE[name] for name, flag in raw.items() if flags.get(flag)}


def count_macs(module: Any, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of every Conv2d and Linear layer for one forward pass on ``shape``."""
    import torch

    total = 0

    def conv_hook(m: Any, _inp: Any, out: Any) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: Any, inp: Any, _out: Any) -> None:
        nonlocal total
        total += inp[0].numel() // m.in_features * m.in_features * m.out_features

    handles = []
    for sub in module.modules():
        if isinstance(sub, torch.nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, torch.nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    with torch.inference_mode():
        module(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total


def gemm_probe_ops_per_s(n: int = 1024, repeats: int = 10) -> float:
    """int8 ops/s of ONNX Runtime's u8×s8 MatMulInteger on n×n×n at one thread (best of ``repeats``).

    A large square GEMM is the easiest work an int8 kernel gets; when it beats
    the AVX-512 VNNI peak, ONNX Runtime's MLAS is running AMX tile kernels.
    """
    import time

    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-100, 100, (n, n)).astype(np.int8), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])], [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rng.integers(0, 255, (n, n)).astype(np.uint8)
    for _ in range(3):
        session.run(None, {"a": x})
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {"a": x})
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def _build(name: str, root: Path, samples: int) -> dict[str, Any]:
    from core.models import load_model
    from core.schemes import get_scheme
    from core.schemes.base import BuildContext
    from core.study.cancel import CancelToken
    from core.study.spec import Device, ModelSpec, SchemeSpec

    module = torchvision_model(name)
    macs = count_macs(module, INPUT)
    weights = save_state_dict(module, root / f"{name}.pt")
    model = load_model(ModelSpec(path=str(weights), arch=f"torchvision:{name}"))
    rng = np.random.default_rng(0)
    shared: dict[str, Any] = {}

    def ctx(label: str) -> BuildContext:
        workdir = root / name / label
        workdir.mkdir(parents=True, exist_ok=True)
        return BuildContext(
            workdir=workdir, threads=THREADS, device=Device.CPU, cancel=CancelToken(),
            calibration=lambda n: rng.standard_normal((n, *INPUT[1:]), dtype=np.float32),
            progress=lambda *_: None, shared=shared,
        )

    fp32 = get_scheme("onnx-fp32").build(model, SchemeSpec("onnx-fp32"), ctx("onnx-fp32"))
    int8 = get_scheme("ort-int8-static").build(
        model, SchemeSpec("ort-int8-static", (("samples", str(samples)),)), ctx("ort-int8-static")
    )
    return {"fp32": fp32, "int8": int8, "macs": macs}


def _speedup(fp32: Any, int8: Any, rounds: int, max_time_s: float) -> dict[str, Any]:
    from core.engine.timing import LatencyHarness
    from core.study.spec import TimingMode, TimingSpec

    x = np.random.default_rng(1).standard_normal(INPUT, dtype=np.float32)
    calls = {"fp32": fp32.runner.prepare_call(x), "int8": int8.runner.prepare_call(x)}
    spec = TimingSpec(threads=THREADS, mode=TimingMode.QUICK, max_time_s=max_time_s, warmup_runs=3)

    def side(key: str) -> Any:
        def measure() -> float:
            return float(np.median(LatencyHarness(calls[key], spec).measure().samples_ms))

        return measure

    fp32_ms, int8_ms = interleaved(side("fp32"), side("int8"), rounds)
    return {**ratio_summary(fp32_ms, int8_ms), "fp32_median_ms": float(np.median(fp32_ms)),
            "int8_median_ms": float(np.median(int8_ms))}


def run(quick: bool) -> dict[str, Any]:
    from core.runtimes.environment import cpu_flags

    samples = 16 if quick else 200
    # Many short rounds rather than a few long ones: this VM flips between two speeds ~1.5x apart
    # about every second, and the two sides of a short round mostly see the same one.
    rounds = 31 if quick else 81
    max_time_s = 0.12 if quick else 0.25
    mhz, mhz_source = cpu_mhz()
    peaks = int8_peak_ops_per_s(cpu_flags(), mhz, THREADS)
    probe = gemm_probe_ops_per_s()
    # The instruction set whose peak the models are held to: the one the kernels evidently use.
    vnni_peak = peaks.get("avx512_vnni") or peaks.get("avx_vnni")
    in_use = "amx_int8" if "amx_int8" in peaks and (vnni_peak is None or probe > vnni_peak) else (
        "avx512_vnni" if "avx512_vnni" in peaks else ("avx_vnni" if "avx_vnni" in peaks else None)
    )
    out: dict[str, Any] = {
        "threads": THREADS,
        "int8_peak": {
            "cpu_mhz": mhz, "cpu_mhz_source": mhz_source, "cores": THREADS,
            "ops_per_cycle_per_core": {k: OPS_PER_CYCLE[k] for k in peaks},
            "peak_ops_per_s": peaks,
            "formula": "peak = cores x clock x int8 ops per cycle per core (1 MAC = 2 ops)",
            "gemm_1024_u8s8_ops_per_s": probe,
            "kernels_in_use": in_use,
        },
    }
    with tempfile.TemporaryDirectory(prefix="qb-perf-int8-") as tmp:
        for name in MODELS:
            built = _build(name, Path(tmp), samples)
            fp32, int8 = built["fp32"], built["int8"]
            speed = _speedup(fp32, int8, rounds, max_time_s)
            cov = int8.coverage
            convs = cov.get("conv_integer", 0) + cov.get("conv_float", 0)
            conv_fraction = cov.get("conv_integer", 0) / convs if convs else None
            ops_per_s = 2 * built["macs"] / (speed["int8_median_ms"] / 1e3)
            out[f"int8_speedup_{name}"] = speed["ratio"]
            out[f"int8_conv_fraction_{name}"] = conv_fraction
            out[f"size_ratio_{name}"] = fp32.size_bytes / int8.size_bytes
            if in_use is not None:
                out[f"int8_peak_fraction_{name}"] = ops_per_s / peaks[in_use]
            out[f"int8_{name}"] = {
                **speed,
                "fp32_bytes": fp32.size_bytes,
                "int8_bytes": int8.size_bytes,
                "int8_coverage": cov.get("summary"),
                "fp32_coverage": fp32.coverage.get("summary"),
                "macs": built["macs"],
                "int8_ops_per_s": ops_per_s,
                "peak_fraction": {k: ops_per_s / v for k, v in peaks.items()},
                "calibration_samples": samples,
            }
            for b in (fp32, int8):
                b.runner.close()
    return out


if __name__ == "__main__":
    from tests.perf.runner import child_main

    child_main(run)
