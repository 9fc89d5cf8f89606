"""Make the CPU-only variant of a built bundle: a copy without the CUDA libraries that only a GPU ever loads.

``python packaging/cpu_variant.py dist/QuantBench dist/QuantBench-cpu``

The torch wheel QuantBench pins is built with CUDA: its libraries name CUDA libraries as link-time
dependencies (DT_NEEDED), so those must stay, even on a machine with no GPU, or ``import torch``
fails. What torch (and cuDNN) load only when a GPU computation asks for them (dlopen: cuDNN's
engines, cuSOLVER, torch's CUDA linear algebra) can go. This script keeps every library reachable
through DT_NEEDED from the bundle's own code and removes the rest of the CUDA set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Libraries loaded only on a GPU, never named as DT_NEEDED: candidates for removal.
GPU_ONLY_GLOBS = ("nvidia/**/*.so*", "torch/lib/libtorch_cuda_linalg.so")


def is_elf(path: Path) -> bool:
    """True for an ELF file (a shared library or executable)."""
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path: Path) -> list[str]:
    """The DT_NEEDED names of an ELF file (``readelf -d``)."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def reachable(bundle: Path, candidates: set[Path]) -> set[Path]:
    """The candidates that some library outside the candidate set needs, directly or through other candidates."""
    by_name: dict[str, list[Path]] = {}
    for path in candidates:
        by_name.setdefault(path.name, []).append(path)
    roots = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and p not in candidates and is_elf(p)]
    kept: set[Path] = set()
    todo = [name for root in roots for name in needed(root)]
    while todo:
        for path in by_name.get(todo.pop(), []):
            if path not in kept:
                kept.add(path)
                todo.extend(needed(path))
    return kept


def make_cpu_variant(bundle: Path, target: Path) -> list[Path]:
    """Copy ``bundle`` to ``target`` (hard links) and remove the GPU-only libraries; returns what was removed."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle, target, symlinks=True, copy_function=os.link)
    internal = target / "_internal"
    candidates = {p for pattern in GPU_ONLY_GLOBS for p in internal.glob(pattern) if p.is_file() and not p.is_symlink()}
    removed = sorted(candidates - reachable(internal, candidates))
    for path in removed:
        path.unlink()
    for link in internal.rglob("*"):  # links the build made to a removed library
        if link.is_symlink() and not link.exists():
            link.unlink()
    return removed


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: cpu_variant.py BUNDLE TARGET")
    source = Path(sys.argv[1])
    sizes = {path.name: path.stat().st_size for path in source.rglob("*") if path.is_file() and not path.is_symlink()}
    gone = make_cpu_variant(source, Path(sys.argv[2]))
    for path in gone:
        print(f"left out {path.relative_to(sys.argv[2])} ({sizes[path.name] / 1e6:.0f} MB)")
    print(f"left out {len(gone)} files, {sum(sizes[path.name] for path in gone) / 1e9:.2f} GB")
