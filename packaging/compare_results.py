"""Compare two ``quantbench run --json`` results variant by variant: the bundle's against the installed package's.

``python packaging/compare_results.py INSTALLED.json BUNDLE.json`` prints one line per variant and
exits 1 when a figure differs by more than noise. The same code on the same data gives the same
accuracy and the same file sizes; latency on a shared machine does not, so it only has to agree
within a factor (``LATENCY_FACTOR``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Accuracy and other task metrics: the same computation, so equal up to float summation order.
METRIC_TOLERANCE = 1e-6
#: Sizes: the same files, save for what an exporter stamps into them (producer version, names).
SIZE_TOLERANCE = 0.01
#: Median latency: timing noise on a busy machine; a different runtime build would be far outside this.
LATENCY_FACTOR = 3.0


def _by_label(path: Path) -> dict[str, dict]:
    return {result["label"]: result for result in json.loads(path.read_text())["results"]}


def differences(installed: dict, bundled: dict) -> list[str]:
    """What differs beyond noise between two results of the same variant (an empty list when nothing does)."""
    found = []
    if installed["status"] != bundled["status"]:
        found.append(f"status {installed['status']} vs {bundled['status']}")
    if installed["runtime"] != bundled["runtime"]:
        found.append(f"runtime {installed['runtime']} vs {bundled['runtime']}")
    for name, value in (installed.get("metrics") or {}).items():
        other = (bundled.get("metrics") or {}).get(name)
        if isinstance(value, float) and (other is None or abs(value - other) > METRIC_TOLERANCE):
            found.append(f"{name} {value:.6g} vs {other}")
    a, b = installed.get("size_bytes"), bundled.get("size_bytes")
    if a and (not b or abs(a - b) > SIZE_TOLERANCE * a):
        found.append(f"size {a} vs {b} bytes")
    la, lb = (installed.get("latency_ms") or {}).get("p50"), (bundled.get("latency_ms") or {}).get("p50")
    if la and (not lb or max(la, lb) / min(la, lb) > LATENCY_FACTOR):
        found.append(f"median latency {la:.4g} vs {lb} ms")
    return found


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def compare(installed_path: Path, bundle_path: Path) -> bool:
    """Print the comparison; True when every variant agrees within noise."""
    installed, bundled = _by_label(installed_path), _by_label(bundle_path)
    same = set(installed) == set(bundled)
    if not same:
        print(f"variants differ: {sorted(installed)} vs {sorted(bundled)}")
    for label in sorted(set(installed) & set(bundled)):
        a, b = installed[label], bundled[label]
        found = differences(a, b)
        same = same and not found
        metrics = a.get("metrics") or {}
        score = metrics.get("accuracy", metrics.get("mse"))
        p50 = [(r.get("latency_ms") or {}).get("p50") for r in (a, b)]
        print(f"{'DIFF' if found else 'same'}  {label:28} {a['runtime']:12} size {a['size_bytes'] or '-':>9} "
              f"accuracy/mse {_num(score)}  p50 {_num(p50[0])} vs {_num(p50[1])} ms  {'; '.join(found)}")
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: compare_results.py INSTALLED.json BUNDLE.json")
    raise SystemExit(0 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
