"""``python -m tests.perf --json FILE [--quick] [--only NAME,...] [--markdown FILE]``

Runs every benchmark, each in a fresh process, on this machine in this run, and
writes one JSON object to FILE: the figures issue #6 names (top-level numbers),
the detail behind each, the machine (CPU model and flags, clock, versions, load)
and which goals were met. FILE is rewritten after every benchmark, so an
interrupted run keeps what it measured. ``--quick`` finishes in under five
minutes on a 2-core machine; without it every comparison gets more rounds and
longer runs. ``--markdown`` also writes the figures table of ``tests/perf/RESULTS.md``.
Exit code 0 when every benchmark ran (goals met or not), 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.perf.common import last_json_line, load_average, machine_block, run_child
from tests.perf.goals import REQUIRED_KEYS, verdicts
from tests.perf.runner import jsonable

#: Benchmark modules in the order they run, with a time limit each (thorough mode).
BENCHMARKS: dict[str, float] = {
    "bench_overhead": 600.0,
    "bench_torch_timer": 600.0,
    "bench_gui": 1200.0,
    "bench_first_result": 900.0,
    "bench_int8": 1200.0,
    "bench_memory": 2400.0,
    "bench_study": 2400.0,
    "bench_layers": 2400.0,
    "bench_sweep": 600.0,
    "bench_tune": 1800.0,
    "bench_transformer": 1800.0,
    "bench_large_onnx": 1800.0,
}


def _write(path: Path, result: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(result), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, metavar="FILE", help="where to write the results")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: under 5 minutes on 2 cores")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated benchmarks, e.g. overhead,int8")
    parser.add_argument("--markdown", metavar="FILE", help="also write the figures table of tests/perf/RESULTS.md here")
    args = parser.parse_args(argv)

    names = list(BENCHMARKS)
    if args.only:
        wanted = {f"bench_{n.strip().removeprefix('bench_')}" for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(BENCHMARKS)
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
        names = [n for n in names if n in wanted]

    out_path = Path(args.json)
    env = machine_block(threads=1)
    result: dict[str, Any] = {
        "schema": "quantbench-perf/1",
        "mode": "quick" if args.quick else "thorough",
        "cpu": env["cpu"],
        "cpu_flags": {k: v for k, v in env["flags"].items() if v},
        "threads": 1,
        "threads_by_benchmark": {},
        "environment": env,
        "load_average_before": env["load_average"],
        "benchmarks": {},
        "errors": {},
    }
    t_start = time.perf_counter()
    failed = False
    for name in names:
        print(f"[perf] {name} ...", file=sys.stderr, flush=True)
        limit = BENCHMARKS[name] / (2 if args.quick else 1)
        got = run_child(["-m", f"tests.perf.{name}", *(["--quick"] if args.quick else [])], timeout_s=limit)
        try:
            part = last_json_line(got["stdout"])
        except ValueError:
            part = {"error": got["killed_for"] or f"exited with code {got['rc']}: {got['stderr'][-1500:]}"}
        if "error" in part:
            failed = True
            result["errors"][name] = part["error"]
            print(f"[perf] {name} failed: {part['error']}\n{got['stderr'][-1500:]}", file=sys.stderr, flush=True)
        result["benchmarks"][name] = {"wall_s": round(got["wall_s"], 1), "peak_rss_mb": got["peak_rss_mb"]}
        if "threads" in part:
            result["threads_by_benchmark"][name] = part.pop("threads")
        for key, value in part.items():
            if key not in ("error", "wall_s"):
                result[key] = value
        result["wall_s"] = round(time.perf_counter() - t_start, 1)
        result["load_average_after"] = load_average()
        result["goals_met"] = verdicts(result)
        result["missing_keys"] = [k for k in REQUIRED_KEYS if k not in result]
        _write(out_path, result)
        print(f"[perf] {name} done in {got['wall_s']:.0f} s", file=sys.stderr, flush=True)

    if args.markdown:
        from tests.perf.report import machine_line, performance_table

        Path(args.markdown).write_text(
            f"Measured on {machine_line(jsonable(result))}.\n\n{performance_table(jsonable(result))}\n",
            encoding="utf-8",
        )
    print(f"[perf] wrote {out_path} in {result['wall_s']:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
