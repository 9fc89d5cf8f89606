"""What machine and software a study ran on, recorded next to its numbers.

Nothing here imports the libraries it reports on: versions come from the
installed package metadata and CPU features from ``/proc/cpuinfo``, so this
stays cheap enough to call when a study starts.
"""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

CPUINFO_PATH = "/proc/cpuinfo"

#: Reported name -> the /proc/cpuinfo flag that shows it (x86 "flags", Arm "Features").
CPU_FLAGS: dict[str, str] = {
    "sse4_2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx512_fp16": "avx512_fp16",
    "avx_vnni": "avx_vnni",
    "amx": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
    "neon": "asimd",
    "dotprod": "asimddp",
    "i8mm": "i8mm",
    "sve": "sve",
}

#: Reported name -> distributions that provide it, first installed one wins.
PACKAGES: dict[str, tuple[str, ...]] = {
    "quantbench": ("quantbench",),
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "onnx": ("onnx",),
    "scikit-learn": ("scikit-learn",),
    "ai-edge-litert": ("ai-edge-litert", "ai-edge-litert-nightly"),
    "PySide6": ("PySide6", "PySide6-Essentials"),
    "pyqtgraph": ("pyqtgraph",),
}


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """The CPU model name and the feature flags of the first processor in ``text``."""
    model: str | None = None
    flags: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        # x86 says "model name"; Arm kernels say "Hardware" or "Model" (some neither).
        if model is None and key in ("model name", "hardware", "model") and value and not value.isdigit():
            model = value
        elif flags is None and key in ("flags", "features"):
            flags = set(value.split())
    return model, flags or set()


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str | None, frozenset[str]]:
    try:
        with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            model, flags = parse_cpuinfo(f.read())
    except OSError:
        # Not Linux (or no procfs): features are unknown, reported as False.
        return None, frozenset()
    return model, frozenset(flags)


def flags_from(raw: set[str] | frozenset[str]) -> dict[str, bool]:
    """Map raw cpuinfo flags to the reported names (False when absent)."""
    return {name: flag in raw for name, flag in CPU_FLAGS.items()}


def cpu_flags() -> dict[str, bool]:
    """Instruction-set features of this CPU that matter for quantized kernels (cached)."""
    return flags_from(_cpuinfo()[1])


def cpu_model() -> str:
    """A human name for the CPU: /proc/cpuinfo's model name, else what ``platform`` knows."""
    model = _cpuinfo()[0]
    return model or platform.processor() or platform.machine() or "unknown"


def has_vnni(flags: dict[str, bool] | None = None) -> bool:
    """True when the CPU has x86 int8 dot-product instructions (AVX512-VNNI or AVX-VNNI)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags.get("avx512_vnni") or flags.get("avx_vnni"))


def cpu_flags_of(env: dict[str, Any]) -> dict[str, bool]:
    """The CPU feature flags in an ``environment_info`` dict (``flags``; ``cpu_flags`` is accepted too)."""
    return dict(env.get("flags") or env.get("cpu_flags") or {})


def has_int8_dot(flags: dict[str, bool]) -> bool:
    """True when int8 kernels have dedicated dot-product hardware (VNNI, AMX, or Arm dotprod)."""
    return has_vnni(flags) or bool(flags.get("amx_int8") or flags.get("dotprod"))


NO_INT8_DOT_ADVICE = "this CPU has no VNNI/AMX int8 instructions: integer kernels gain less over float here"


def package_versions() -> dict[str, str | None]:
    """Installed versions of the libraries whose behaviour shapes the results (None: absent)."""
    return {name: _version(dists) for name, dists in PACKAGES.items()}


def _version(dists: tuple[str, ...]) -> str | None:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _usable_cpus() -> int | None:
    # The affinity mask is what this process may actually run on (containers, taskset).
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def environment_info(threads: int) -> dict[str, Any]:
    """The ``environment`` block of the result JSON: CPU, threads, OS and versions."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "machine": platform.machine(),
        "flags": flags,
        "has_vnni": has_vnni(flags),
        "threads": int(threads),
        "os": f"{platform.system()} {platform.release()}".strip(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "versions": package_versions(),
    }
