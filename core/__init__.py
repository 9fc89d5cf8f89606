"""QuantBench's GUI-free engine.

Importing this package is cheap: torch, onnxruntime, scikit-learn and the
other heavy libraries are imported only where they are used.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

DISTRIBUTION = "quantbench"


@cache
def quantbench_version() -> str:
    """QuantBench's version: the installed package's metadata, whose one source is pyproject.toml.

    A source tree that is not installed has no metadata; its pyproject.toml is read instead
    ("unknown" when even that is missing, e.g. in a bundle built without metadata)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _source_tree_version(Path(__file__).resolve().parents[1] / "pyproject.toml")


def _source_tree_version(pyproject: Path) -> str:
    import tomllib

    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(project.get("version", "unknown"))
