"""Start-up time of the bundled window to its first histogram: ``quantbench --demo`` started N times.

``python packaging/time_first_histogram.py [dist/QuantBench/quantbench] [--runs N] [--installed]`` prints
each time and the median, in seconds from starting the process to the first paint of the latency
histogram with counts (see ``first_histogram_probe.py``). Offscreen, from a clean environment as
smoke.sh runs the bundle. ``--installed`` times this Python's installed package the same way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The installed package's ``quantbench --demo``, with the probe the bundle's entry point installs.
INSTALLED = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import first_histogram_probe, os; "
             "first_histogram_probe.install(os.environ['QUANTBENCH_FIRST_HISTOGRAM_FILE']); "
             "from qtapp.launcher import main; sys.exit(main(['--demo']))")


def first_histogram_s(command: list[str], timeout_s: float = 180.0) -> float:
    """One start of ``command`` (a ``quantbench --demo``): seconds to the first histogram."""
    with tempfile.TemporaryDirectory() as folder:
        mark = Path(folder) / "first_histogram"
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], "QT_QPA_PLATFORM": "offscreen",
               "QUANTBENCH_FIRST_HISTOGRAM_FILE": str(mark)}
        start = time.monotonic()
        subprocess.run(command, env=env, timeout=timeout_s, capture_output=True, check=False)
        if not mark.exists():
            raise RuntimeError(f"{' '.join(command)} painted no histogram")
        return float(mark.read_text()) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executable", nargs="?", default="dist/QuantBench/quantbench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--installed", action="store_true", help="time this Python's installed package instead")
    args = parser.parse_args()
    command = [sys.executable, "-c", INSTALLED] if args.installed else [args.executable, "--demo"]
    times = []
    for run in range(args.runs):
        times.append(first_histogram_s(command))
        print(f"run {run + 1}: {times[-1]:.2f} s")
    print(f"median first histogram: {statistics.median(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
