"""How one benchmark module runs as its own process and hands its numbers back.

Each benchmark runs in a fresh interpreter (``python -m tests.perf.bench_x
--quick``): imports, threads, Qt and memory of one cannot colour another, a crash
costs one benchmark only, and the suite's driver stays small. The child prints
its result as one JSON line last on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars become Python numbers, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def child_main(run: Callable[[bool], dict[str, Any]], argv: list[str] | None = None) -> None:
    """Parse ``--quick``, call ``run(quick)``, print its result (plus its wall time) as a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        result = run(args.quick)
    except Exception as exc:  # reported to the driver as data, with the traceback on stderr
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    sys.stdout.write("\n" + json.dumps(jsonable(result)) + "\n")
    sys.stdout.flush()
