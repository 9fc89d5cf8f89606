"""What every benchmark shares: model builders, interleaved rounds, robust ratios, child processes.

The machine the suite runs on is usually busy with other work, so no single
measurement is trusted: each comparison runs as rounds in which both sides are
measured back to back, in alternating order (A B, B A, ...), and the reported
figure is the median of the per-round ratios. Slow drift of the machine's load
then cancels out of each ratio, and one disturbed round cannot move the median.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]

#: (batch, width, layers) of the MatMul+Relu chains used as "a ~1 ms model" and "a ~50 µs model"
#: at one ONNX Runtime thread on the 2-core reference machine; the measured medians are reported.
MLP_1MS = (64, 512, 5)
MLP_50US = (16, 256, 4)


# --------------------------------------------------------------------------- models


def make_onnx_mlp(path: Path, batch: int, width: int, layers: int, seed: int = 0) -> Path:
    """Write a fixed-batch chain of ``layers`` × (MatMul width×width, Relu) to ``path``.

    x (batch, width) ─▶ MatMul ─▶ Relu ─▶ … ─▶ y (batch, width)
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    previous = "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"]))
        out = "y" if i == layers - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [out]))
        previous = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def torchvision_model(name: str) -> Any:
    """An untrained torchvision classifier in eval mode (weights=None: nothing is downloaded)."""
    import torchvision

    return torchvision.models.get_model(name, weights=None).eval()


def save_state_dict(module: Any, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), str(path))
    return path


# --------------------------------------------------------------------------- robust comparisons


def alternating(rounds: int) -> list[bool]:
    """For each round, whether side A goes first: A B, B A, A B, ..."""
    return [i % 2 == 0 for i in range(rounds)]


def interleaved(
    measure_a: Callable[[], float], measure_b: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    """Measure both sides ``rounds`` times, back to back, alternating which goes first."""
    a_values: list[float] = []
    b_values: list[float] = []
    for a_first in alternating(rounds):
        if a_first:
            a_values.append(measure_a())
            b_values.append(measure_b())
        else:
            b_values.append(measure_b())
            a_values.append(measure_a())
    return a_values, b_values


def ratio_summary(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """Median of per-round ratios, with their spread; rounds whose denominator is 0 are skipped.

    ``ratio_of_best`` is min(numerators) ÷ min(denominators): on a shared machine
    other work only ever adds time, so each side's quietest round is its least
    disturbed one. It is a cross-check, not the reported figure.
    """
    pairs = [(n, d) for n, d in zip(numerators, denominators, strict=True) if d > 0]
    if not pairs:
        raise ValueError("no round gave a usable ratio")
    ratios = [n / d for n, d in pairs]
    return {
        "ratio": float(statistics.median(ratios)),
        "ratios": [round(r, 4) for r in ratios],
        "min": float(min(ratios)),
        "max": float(max(ratios)),
        "rounds": len(ratios),
        "ratio_of_best": float(min(n for n, _ in pairs) / min(d for _, d in pairs)),
    }


def bare_loop_median_ms(call: Callable[[], object], calls: int) -> float:
    """Median of ``calls`` calls, each timed by two perf_counter_ns reads and nothing else (gc off)."""
    import gc

    clock = time.perf_counter_ns
    times = [0] * calls
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(calls):
            t0 = clock()
            call()
            times[i] = clock() - t0
    finally:
        if was_enabled:
            gc.enable()
    return float(np.median(times)) / 1e6


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# --------------------------------------------------------------------------- machine


def cpu_mhz() -> tuple[float | None, str]:
    """The CPU clock in MHz and where it came from (cpufreq maximum, else /proc/cpuinfo "cpu MHz")."""
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
                 "/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq"):
        try:
            return int(Path(path).read_text().strip()) / 1000.0, path
        except (OSError, ValueError):
            continue
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return float(line.split(":", 1)[1]), "/proc/cpuinfo 'cpu MHz'"
    except (OSError, ValueError):
        pass
    return None, "unknown"


def load_average() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def mem_available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def machine_block(threads: int) -> dict[str, Any]:
    """CPU model, flags, versions (core.runtimes.environment) plus the clock and the load at this moment."""
    from core.runtimes.environment import environment_info

    env = environment_info(threads)
    mhz, source = cpu_mhz()
    env["cpu_mhz"] = mhz
    env["cpu_mhz_source"] = source
    env["load_average"] = load_average()
    return env


# --------------------------------------------------------------------------- child processes


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_child(
    args: Sequence[str],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    rss_limit_mb: float | None = None,
) -> dict[str, Any]:
    """Run ``python args...`` from the repository root; return rc, stdout, stderr, wall time and peak RSS.

    ``started_monotonic`` is ``time.monotonic()`` just before the process was
    created (the clock is system-wide on Linux, so a child's own readings of it
    can be set against this moment).

    The peak is the child's VmHWM, read from /proc while it runs (its own high-water
    mark, so memory of earlier children does not count). ``rss_limit_mb`` kills the
    child when its resident memory passes the limit, so a benchmark that finds
    unbounded memory growth says so instead of pushing the shared machine into swap.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONPATH", str(REPO_ROOT))
    started_monotonic = time.monotonic()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak_kb = 0
    killed_for: str | None = None
    out_parts: list[str] = []
    err_parts: list[str] = []
    readers = [
        threading.Thread(target=lambda: out_parts.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err_parts.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for r in readers:
        r.start()
    while proc.poll() is None:
        hwm = _status_kb(proc.pid, "VmHWM")
        if hwm is not None:
            peak_kb = max(peak_kb, hwm)
        if rss_limit_mb is not None and (_status_kb(proc.pid, "VmRSS") or 0) / 1024.0 > rss_limit_mb:
            killed_for = f"resident memory passed {rss_limit_mb:.0f} MB"
            proc.kill()
            break
        if time.perf_counter() - t0 > timeout_s:
            killed_for = f"it ran past {timeout_s:.0f} s"
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    for r in readers:
        r.join(5.0)
    return {
        "rc": proc.returncode,
        "stdout": "".join(out_parts),
        "stderr": "".join(err_parts),
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mb": peak_kb / 1024.0 if peak_kb else None,
        "killed_for": killed_for,
        "started_monotonic": started_monotonic,
    }


def last_json_line(text: str) -> dict[str, Any]:
    """The last stdout line that parses as a JSON object (children print their result last)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("the child printed no JSON result")


def peak_rss_self_mb() -> float:
    """This process's own resident-memory high-water mark (VmHWM)."""
    kb = _status_kb(os.getpid(), "VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0
