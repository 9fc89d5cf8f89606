"""The architecture's rules, checked rather than hoped for (issue 13).

- ``lint-imports`` keeps the contracts in ``pyproject.toml``: core's layers point down, core never imports the
  GUI, qtapp.models stays Qt-free, and only the launcher (the composition root) imports ``core.cli``.
- An import graph built from every import statement in ``core/`` and ``qtapp/`` (module level, inside functions,
  under ``TYPE_CHECKING``, relative or absolute) has no cycle. A cycle hidden behind an import made inside a
  function still couples the two ends, and the layers contract alone would not name it when both ends sit in one
  layer.
- ``ruff check`` with the repository's configuration finds nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "qtapp")
RUFF_PATHS = ("core", "qtapp", "tests", "resources")


def _tool(name: str) -> Path:
    """The console script ``name`` installed beside this interpreter (the venv's bin)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}: pip install -e '.[test]'"
    return path


def _write(root: Path, files: dict[str, str]) -> None:
    """Write a small tree of text files under ``root`` (name -> contents)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# --- import-linter ------------------------------------------------------------------------------------------------


def test_import_contracts_are_kept() -> None:
    # --no-cache: the run leaves no cache folder in the repository.
    done = subprocess.run(
        [str(_tool("lint-imports")), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"lint-imports found broken contracts:\n{done.stdout}\n{done.stderr}"


def test_lint_imports_fails_on_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    # The check above can fail: the same tool, on a two-layer package whose lower layer imports the upper one late.
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/high/__init__.py": "thing = 1\n",
            "app/low/__init__.py": "",
            "app/low/mod.py": "def late():\n    from app.high import thing\n    return thing\n",
            "contracts.toml": '[tool.importlinter]\nroot_packages = ["app"]\n\n[[tool.importlinter.contracts]]\n'
            'name = "app is layered"\ntype = "layers"\nlayers = ["app.high", "app.low"]\n',
        },
    )
    done = subprocess.run(
        [str(_tool("lint-imports")), "--no-cache", "contracts.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "app.low.mod -> app.high (l.2)" in done.stdout


def _contracts() -> list[dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_every_core_package_and_module_has_a_layer() -> None:
    # A new subpackage or top-level module outside the layers contract would escape it unnoticed.
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    children = {
        f"core.{path.stem if path.is_file() else path.name}"
        for path in (REPO / "core").iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }
    assert children - named == set(), "add these to the layers contract in pyproject.toml"
    assert named - children == set(), "the layers contract names modules that do not exist"


# --- the import graph ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file for every ``.py`` under ``packages``; a package's ``__init__`` is the package."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _deepest_known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``core.x.func`` -> ``core.x``), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """The dotted names one AST node imports; ``from a import b`` gives ``a.b`` (module or attribute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            # Relative: level 1 is this module's package, each further dot goes one package up.
            parts = package.split(".")
            anchor = ".".join(parts[: len(parts) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def import_edges(modules: dict[str, Path], root: Path) -> list[Edge]:
    """Every import between ``modules``, wherever it is written in the file.

    ``from pkg import name`` points at the submodule ``pkg.name`` when there is one, else at ``pkg`` (its
    ``__init__``); ``import a.b.c`` points at the deepest of ``a.b.c``, ``a.b``, ``a`` that is a module here.
    Imports of anything outside ``modules`` (the standard library, torch, Qt) are left out.
    """
    edges: list[Edge] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for imported in _imported_names(node, package):
                target = _deepest_known(imported, modules)
                if target is not None and target != name:
                    edges.append(Edge(name, target, str(path.relative_to(root)), node.lineno))
    return edges


def strongly_connected(nodes: Iterable[str], edges: list[Edge]) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative, so deep graphs need no recursion limit)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        successors[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def shortest_cycle(component: list[str], edges: list[Edge]) -> list[Edge]:
    """One shortest cycle through the component's first module, as the imports that make it."""
    members = set(component)
    first: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        if edge.source in members and edge.target in members:
            first.setdefault((edge.source, edge.target), edge)
    start = component[0]
    came_by: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for (source, target), edge in first.items():
            if source != node:
                continue
            if target == start:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, came_by[path[0].source])
                return path
            if target not in came_by:
                came_by[target] = edge
                queue.append(target)
    raise AssertionError(f"{component} is not strongly connected")


def describe_cycles(root: Path, packages: Iterable[str]) -> list[str]:
    """One paragraph per import cycle: its modules, then one shortest cycle with each import's file and line."""
    modules = module_files(root, packages)
    edges = import_edges(modules, root)
    report = []
    for component in strongly_connected(modules, edges):
        cycle = shortest_cycle(component, edges)
        steps = "\n".join(f"    {e.source} -> {e.target}  ({e.path}:{e.line})" for e in cycle)
        report.append(f"{len(component)} modules in a cycle: {', '.join(component)}\n  for example:\n{steps}")
    return report


def test_no_import_cycle_in_core_or_qtapp() -> None:
    cycles = describe_cycles(REPO, PACKAGES)
    assert cycles == [], "import cycles (imports inside functions included):\n" + "\n".join(cycles)


def test_the_graph_sees_every_form_of_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.api import run\n",
            "pkg/api.py": "import os\n\ndef run():\n    from . import engine\n    return engine\n",
            "pkg/engine/__init__.py": "",
            "pkg/engine/step.py": "from ..api import run\nfrom pkg import util\nimport pkg.engine.deep.leaf\n",
            "pkg/engine/deep/__init__.py": "",
            "pkg/engine/deep/leaf.py": "import importlib\nimportlib.import_module('pkg.util')\n",
            "pkg/util.py": "from pkg.engine.step import *\n",
        },
    )
    modules = module_files(tmp_path, ["pkg"])
    assert set(modules) == {
        "pkg", "pkg.api", "pkg.engine", "pkg.engine.step", "pkg.engine.deep", "pkg.engine.deep.leaf", "pkg.util"
    }
    edges = {(e.source, e.target) for e in import_edges(modules, tmp_path)}
    assert edges == {
        ("pkg", "pkg.api"),  # `from pkg.api import run`: an attribute of a module resolves to the module
        ("pkg.api", "pkg.engine"),  # inside a function, relative, `from . import submodule`
        ("pkg.engine.step", "pkg.api"),  # two dots
        ("pkg.engine.step", "pkg.util"),  # `from pkg import util` is the submodule, not pkg/__init__
        ("pkg.engine.step", "pkg.engine.deep.leaf"),
        ("pkg.engine.deep.leaf", "pkg.util"),  # importlib with a constant name
        ("pkg.util", "pkg.engine.step"),  # star import
    }


def test_a_cycle_behind_a_function_level_import_is_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app import b\n",
            "app/b.py": "def late():\n    from app.c import thing\n    return thing\n",
            "app/c.py": "from .a import something\n",
            "app/d.py": "from app import a\n",
        },
    )
    (cycle,) = describe_cycles(tmp_path, ["app"])
    assert cycle.startswith("3 modules in a cycle: app.a, app.b, app.c")
    assert "app.a -> app.b  (app/a.py:1)" in cycle
    assert "app.b -> app.c  (app/b.py:2)" in cycle
    assert "app.c -> app.a  (app/c.py:1)" in cycle
    assert "app.d" not in cycle


# --- ruff ---------------------------------------------------------------------------------------------------------


def test_ruff_finds_nothing() -> None:
    done = subprocess.run(
        [str(_tool("ruff")), "check", "--no-cache", "--output-format", "concise", *RUFF_PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"ruff check {' '.join(RUFF_PATHS)}:\n{done.stdout}\n{done.stderr}"
