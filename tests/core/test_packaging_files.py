"""The desktop files under packaging/ and resources/icons/: valid, consistent with each other and with the app."""

from __future__ import annotations

import configparser
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
HICOLOR = REPO / "resources" / "icons" / "hicolor"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def app_id() -> str:
    """The application id, read from its one definition in qtapp/app.py (without starting Qt)."""
    match = re.search(r'^APP_ID = "([^"]+)"$', (REPO / "qtapp" / "app.py").read_text(), re.MULTILINE)
    assert match, "qtapp/app.py defines APP_ID"
    return match.group(1)


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / f"{app_id()}.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_desktop_entry_launches_quantbench_with_its_icon():
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "QuantBench"
    assert entry["Exec"].split()[0] == "quantbench"
    assert entry["Icon"] == app_id()
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "Development" in entry["Categories"].split(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
def test_desktop_file_validate_accepts_the_entry():
    out = subprocess.run(["desktop-file-validate", str(PACKAGING / f"{app_id()}.desktop")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "error" not in out.stdout


def test_the_metainfo_names_the_same_application():
    root = ET.parse(PACKAGING / f"{app_id()}.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == app_id()
    assert root.findtext("launchable") == f"{app_id()}.desktop"
    assert root.findtext("name") == "QuantBench"
    assert root.findtext("provides/binary") == "quantbench"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert root.find("releases/release").get("version") == version
    assert root.findtext("project_license") == "Apache-2.0"


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream is not installed")
def test_appstreamcli_validates_the_metainfo():
    out = subprocess.run(["appstreamcli", "validate", "--no-net", str(PACKAGING / f"{app_id()}.metainfo.xml")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_scalable_icon_is_a_square_svg():
    root = ET.parse(HICOLOR / "scalable" / "apps" / f"{app_id()}.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 256 256"
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) >= 6  # the background and the bars


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_every_png_size_is_rendered_at_its_size():
    for size in SIZES:
        assert _png_size(HICOLOR / f"{size}x{size}" / "apps" / f"{app_id()}.png") == (size, size)


def test_the_pngs_are_what_render_icons_makes_of_the_svg():
    """The committed PNGs come from the SVG through packaging/render_icons.py (same paths, same sizes)."""
    sys.path.insert(0, str(PACKAGING))
    try:
        import render_icons
    finally:
        sys.path.remove(str(PACKAGING))
    assert app_id() == render_icons.APP_ID
    assert render_icons.SIZES == SIZES
    assert HICOLOR / "scalable" / "apps" / f"{app_id()}.svg" == render_icons.SVG
    assert [render_icons.png_path(size) for size in SIZES] == [
        HICOLOR / f"{n}x{n}" / "apps" / f"{app_id()}.png" for n in SIZES
    ]


def test_pyproject_installs_the_desktop_files_and_admits_three_pythons():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11,<3.14"
    assert project["project"]["optional-dependencies"]["packaging"] == ["pyinstaller>=6.11"]
    data_files = project["tool"]["setuptools"]["data-files"]
    for folder, files in data_files.items():
        for name in files:
            assert (REPO / name).is_file(), name
            assert folder.startswith("share/")
    assert "share/icons/hicolor/scalable/apps" in data_files
    assert len([folder for folder in data_files if folder.startswith("share/icons/")]) == len(SIZES) + 1


def test_the_bundle_spec_ships_the_demo_and_every_resource():
    spec = (PACKAGING / "quantbench.spec").read_text()
    for folder in ("resources/demo", "resources/style", "resources/icons"):
        assert f'"{folder}"' in spec
    assert 'name="quantbench"' in spec and 'name="QuantBench"' in spec
    entry = (PACKAGING / "quantbench_entry.py").read_text()
    # A spawned study process re-enters the frozen executable: freeze_support() must run before the launcher.
    assert entry.index("multiprocessing.freeze_support()") < entry.index("from qtapp.launcher import main")
