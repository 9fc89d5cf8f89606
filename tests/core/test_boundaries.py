"""core/ stays GUI-free and cheap to import (DESIGN.md: "core/ never imports PySide6, pyqtgraph or qtapp")."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
GUI = ("PySide6", "pyqtgraph", "qtapp", "shiboken6")
HEAVY = ("torch", "torchvision", "onnxruntime", "onnx", "sklearn", "PIL", "ai_edge_litert")
#: What a driver (the window, the CLI, a test) imports to describe and start a study.
ENTRY_MODULES = (
    "core", "core.engine.run", "core.cli.main", "core.study.spec", "core.study.events", "core.schemes", "core.models",
    "core.datasets", "core.study.result", "core.reports.text", "core.study.cancel",
)


def _loaded_after_import(modules: tuple[str, ...]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_core_loads_no_gui_and_no_heavy_library() -> None:
    loaded = set(_loaded_after_import(ENTRY_MODULES))
    assert loaded.isdisjoint(GUI), sorted(loaded & set(GUI))
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def _core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20
    return files


def _gui_imports(path: Path, module_level_only: bool, root: Path = REPO) -> list[str]:
    """``file:line module`` for each import of a GUI package in ``path`` (``import``, ``from``, importlib)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names if n.split(".")[0] in GUI]
    return found


def test_no_core_module_imports_the_gui_at_import_time() -> None:
    offenders = [hit for path in _core_files() for hit in _gui_imports(path, module_level_only=True)]
    assert offenders == []


def test_no_core_file_imports_the_gui_anywhere() -> None:
    offenders = [hit for path in _core_files() for hit in _gui_imports(path, module_level_only=False)]
    assert offenders == []


def test_the_import_checker_sees_every_form(tmp_path: Path) -> None:
    # The checker itself, on a file with each way of importing.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport PySide6.QtCore\nfrom pyqtgraph import PlotItem\n"
        "def f():\n    from qtapp.app import main\n    import importlib\n    importlib.import_module('PySide6')\n",
        encoding="utf-8",
    )
    everywhere = _gui_imports(sample, module_level_only=False, root=tmp_path)
    top = _gui_imports(sample, module_level_only=True, root=tmp_path)
    assert sorted(h.split(" ")[1] for h in everywhere) == ["PySide6", "PySide6.QtCore", "pyqtgraph", "qtapp.app"]
    assert sorted(h.split(" ")[1] for h in top) == ["PySide6.QtCore", "pyqtgraph"]
