"""The figures table of tests/perf/RESULTS.md, rendered from the suite's JSON."""

from __future__ import annotations

from typing import Any

from tests.perf.goals import GOALS


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if unit == " MB":
            return f"{value:,.0f} MB"
        if abs(value) >= 100:
            return f"{value:.0f}{unit}"
        if abs(value) >= 10:
            return f"{value:.1f}{unit}"
        return f"{value:.3g}{unit}"
    return str(value)


def performance_table(result: dict[str, Any]) -> str:
    """A Markdown table: what was measured, the value, the goal, met or not."""
    rows = ["| measure | value | goal | met |", "| --- | --- | --- | --- |"]
    for goal in GOALS:
        value = result.get(goal.key)
        met = goal.met(value)
        mark = "—" if met is None else ("yes" if met else "**no**")
        rows.append(f"| {goal.title} (`{goal.key}`) | {_fmt(value, goal.unit)} | {goal.describe()} | {mark} |")
    return "\n".join(rows)


def machine_line(result: dict[str, Any]) -> str:
    env = result.get("environment", {})
    flags = [k for k in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if env.get("flags", {}).get(k)]
    versions = env.get("versions", {})
    libs = ", ".join(f"{k} {versions[k]}" for k in ("onnxruntime", "torch", "PySide6", "pyqtgraph") if versions.get(k))
    load = result.get("load_average_before") or []
    return (
        f"{result.get('cpu', '?')} ({env.get('cpu_count', '?')} cores, {env.get('cpu_mhz', '?')} MHz from "
        f"{env.get('cpu_mhz_source', '?')}; {' '.join(flags)}), {result.get('threads')} intra-op thread for the "
        f"timings; {libs}; mode {result.get('mode')}; load average {', '.join(f'{v:g}' for v in load)} at the start; "
        f"suite wall time {result.get('wall_s', 0):.0f} s"
    )
