"""One argument parser for every face, and the version read from one place (issue 13, symptom 4).

``quantbench --help`` lists the window's options because the window is given what the one parser
(``core.cli.parser``) parsed; the headless commands parse with the same parser; ``--version`` and the
HTML report's generator line read the package metadata. No test here imports Qt: the launcher's
code path up to the window is Qt-free, and the window itself is replaced by a recorder.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
import types
from dataclasses import fields
from importlib import metadata
from pathlib import Path

import pytest

import core
from core.cli.parser import SUBCOMMANDS, build_parser
from core.engine.isolation import DEFAULT_HANG_TIMEOUT_S
from core.study.result import StudyResult
from qtapp.models.window_options import WindowOptions

REPO = Path(__file__).resolve().parents[2]
WINDOW_OPTIONS = ("--theme", "--size", "--arch", "--max-time", "--screenshot", "--max-memory", "--hang-timeout")
#: Top-level packages whose import would make `--help` wait (Qt, the runtimes) or stop the launcher from forking.
SLOW = ("PySide6", "pyqtgraph", "numpy", "torch", "onnxruntime", "onnx", "sklearn")


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def _through(entry: str, *args: str) -> tuple[int, str, str, list[str]]:
    """Call ``entry`` (``module:function``) with ``args`` in a fresh interpreter, as the console script does.

    Returns the exit code, stdout, stderr and the slow packages that ended up imported."""
    module, function = entry.split(":")
    code = (
        "import json, sys\n"
        f"from {module} import {function} as entry\n"
        "try:\n"
        "    rc = entry(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code or 0\n"
        f"slow = sorted({{m.split('.')[0] for m in sys.modules}} & set({SLOW!r}))\n"
        "sys.stderr.write('\\nLOADED ' + json.dumps([rc, slow]) + '\\n')\n"
    )
    done = _python(code, *args)
    assert "LOADED " in done.stderr, done.stderr
    err, _, loaded = done.stderr.rpartition("LOADED ")
    rc, slow = json.loads(loaded)
    return rc, done.stdout, err.rstrip("\n"), slow


# --- quantbench --help: the window's options too, at once --------------------------------------


def test_quantbench_help_lists_the_window_options_without_importing_qt() -> None:
    rc, out, err, slow = _through("qtapp.launcher:main", "--help")
    assert rc == 0, err
    assert out.startswith("usage: quantbench")
    for option in WINDOW_OPTIONS:
        assert option in out, f"{option} missing from quantbench --help"
    assert all(command in out for command in SUBCOMMANDS)
    assert slow == []


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_the_headless_help_still_answers_without_qt_or_runtimes(args: list[str]) -> None:
    rc, out, err, slow = _through("core.cli.main:main", *args)
    assert rc == 0, err
    assert out.startswith("usage: quantbench")
    assert slow == []
    if args[0] == "run":
        assert "--scheme" in out and "--max-memory" in out and "--hang-timeout" in out and "--theme" not in out


def test_every_window_option_is_a_field_of_the_window_options_and_back() -> None:
    # The window is handed exactly what the parser defines: no option it drops, no field the parser lacks.
    parser = build_parser(window=True)
    dests = {a.dest for a in parser._actions if a.dest not in ("help", "version", "command")}
    assert dests == {f.name for f in fields(WindowOptions)}


# --- the window receives the same parse -------------------------------------------------------


@pytest.fixture
def window_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[WindowOptions]:
    """Stand-ins for the window (``qtapp.app``, which would import Qt) and the study process it prewarms."""
    calls: list[WindowOptions] = []
    fake_app = types.ModuleType("qtapp.app")
    fake_app.main = lambda options: calls.append(options) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qtapp.app", fake_app)
    import core.engine.isolation as isolation

    monkeypatch.setattr(isolation, "prewarm", lambda *args, **kwargs: None)
    monkeypatch.setenv("QUANTBENCH_HOME", str(tmp_path))
    return calls


def test_the_window_receives_the_options_of_the_one_parse(window_calls: list[WindowOptions]) -> None:
    from qtapp.launcher import main

    argv = ["m.onnx", "--arch", "torchvision:resnet18", "--theme", "dark", "--size", "1400x900", "--max-time", "0.5",
            "--screenshot", "out.png", "--max-memory", "4G", "--hang-timeout", "7"]
    assert main(argv) == 0
    assert window_calls == [
        WindowOptions(model="m.onnx", arch="torchvision:resnet18", demo=False, screenshot="out.png", size=(1400, 900),
                      theme="dark", max_time=0.5, max_memory="4G", hang_timeout=7.0)
    ]


def test_the_window_gets_the_parser_defaults(window_calls: list[WindowOptions]) -> None:
    from qtapp.launcher import main

    assert main(["--demo"]) == 0
    (options,) = window_calls
    assert options.demo and options.model is None
    assert (options.size, options.theme, options.max_time) == ((1600, 1000), None, None)  # None: the remembered one
    assert options.hang_timeout == DEFAULT_HANG_TIMEOUT_S and options.max_memory is None


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--size", "big"], "--size"), (["--size", "0x800"], "--size"), (["--hang-timeout", "0"], "--hang-timeout"),
     (["--theme", "pink"], "--theme"), (["run", "--demo", "--hang-timeout", "nan"], "--hang-timeout")],
)
def test_a_bad_option_is_one_sentence_and_exit_2_before_qt(args: list[str], option: str) -> None:
    rc, out, err, slow = _through("qtapp.launcher:main", *args)
    assert rc == 2
    assert len(err.splitlines()) == 1 and option in err and "Traceback" not in err, err
    assert slow == []


# --- the version, read once -------------------------------------------------------------------


def _pyproject_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@pytest.mark.parametrize("entry", ["qtapp.launcher:main", "core.cli.main:main"])
def test_version_is_the_package_metadata(entry: str) -> None:
    rc, out, err, slow = _through(entry, "--version")
    assert rc == 0, err
    assert out == f"quantbench {metadata.version('quantbench')}\n"
    assert slow == []


def test_a_source_tree_that_is_not_installed_reads_its_pyproject(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    core.quantbench_version.cache_clear()
    try:
        assert core.quantbench_version() == _pyproject_version()
    finally:
        core.quantbench_version.cache_clear()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "quantbench"\nversion = "9.8.7"\n', encoding="utf-8")
    assert core._source_tree_version(tmp_path / "pyproject.toml") == "9.8.7"
    assert core._source_tree_version(tmp_path / "missing.toml") == "unknown"


def test_no_other_copy_of_the_version_number() -> None:
    literal = _pyproject_version()
    copies = [
        str(path.relative_to(REPO))
        for folder in ("core", "qtapp")
        for path in (REPO / folder).rglob("*.py")
        if f'"{literal}"' in (text := path.read_text(encoding="utf-8")) or f" {literal}\"" in text
    ]
    assert copies == []


def test_the_html_report_names_the_version_that_wrote_it() -> None:
    from core.reports.html import render_html

    study = StudyResult(
        study_id="abc123", created="2024-01-01T00:00:00+00:00", status="finished",
        model={"path": "m.onnx", "format": "onnx", "params": 10, "file_bytes": 100},
        dataset={"spec": "synthetic:4", "samples": 4, "task": "classification"},
        environment={"versions": {"quantbench": "0.0.1"}}, timing={}, spec={},
    )
    page = render_html([study])
    version = metadata.version("quantbench")
    assert f"Generated by QuantBench {version} on " in page
    assert f'<meta name="generator" content="QuantBench {version}">' in page


# --- the layers: one parser below main and history, and qtapp apart from core.cli --------------


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_cli_modules_import_the_parser_and_nothing_imports_back() -> None:
    cli = REPO / "core" / "cli"
    assert not _imported(cli / "parser.py") & {"core.cli.main", "core.cli.history"}
    assert "core.cli.main" not in _imported(cli / "history.py")
    assert "core.cli.parser" in _imported(cli / "main.py") and "core.cli.parser" in _imported(cli / "history.py")


def test_only_the_launcher_imports_core_cli_in_qtapp() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "qtapp").rglob("*.py"))
        if path.name != "launcher.py" and any(n == "core.cli" or n.startswith("core.cli.") for n in _imported(path))
    ]
    assert offenders == []


def test_the_parser_offers_the_themes_the_window_has() -> None:
    pytest.importorskip("PySide6")
    from core.cli.parser import THEMES
    from qtapp.window.theme import THEMES as WINDOW_THEMES

    assert set(THEMES) == set(WINDOW_THEMES)
