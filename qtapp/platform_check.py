"""Before Qt starts: can it load its platform plugin? If not, say which libraries are missing and where to get them.

When Qt cannot load its platform plugin it aborts the process with a message that names a guess
("xcb-cursor0 or libxcb-cursor0 is needed"), not the libraries that are actually missing. This
module asks the dynamic linker instead (``ldd`` on the plugin), before anything else has started,
and names each missing library with the Debian/Ubuntu and Fedora packages that provide it.

No Qt is imported here: the check must run, and answer, where Qt's GUI libraries cannot load.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: A missing library -> (Debian/Ubuntu package, Fedora package) that provides it.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

#: Platforms that draw into memory and need neither a display nor the libraries of one.
HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal"})


def plugin_path(platform: str) -> Path | None:
    """The file of Qt's ``platform`` plugin (``xcb`` -> ``.../PySide6/Qt/plugins/platforms/libqxcb.so``), if found."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
        if path.is_file():
            return path
    return None


def missing_libraries(plugin: Path, ldd: str = "ldd") -> list[str]:
    """The shared libraries ``plugin`` needs, directly or through another library, that the linker cannot find."""
    try:
        listing = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []  # no ldd (or it hung): nothing to tell, Qt will speak for itself
    return parse_ldd(listing)


def parse_ldd(listing: str) -> list[str]:
    """The ``NAME => not found`` names of an ``ldd`` listing, each once, in order."""
    missing: list[str] = []
    for line in listing.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def explain_missing(platform: str, plugin: Path, missing: list[str]) -> str:
    """What to tell the user: the missing libraries and the commands that install them."""
    known = [name for name in missing if name in PACKAGES]
    unknown = [name for name in missing if name not in PACKAGES]
    lines = [
        f'quantbench: Qt cannot load its "{platform}" platform plugin: these libraries are missing:',
        f"  {', '.join(missing)}",
    ]
    if known:
        debian = sorted({PACKAGES[name][0] for name in known})
        fedora = sorted({PACKAGES[name][1] for name in known})
        lines += [
            "Install them:",
            f"  Debian/Ubuntu: sudo apt install {' '.join(debian)}",
            f"  Fedora:        sudo dnf install {' '.join(fedora)}",
        ]
    if unknown:
        lines.append(
            f"Find the package of {', '.join(unknown)} with 'apt-file search NAME' or \"dnf provides '*/NAME'\"."
        )
    lines.append(f"(checked with ldd on {plugin})")
    return "\n".join(lines)


def requested_platforms(environ: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order: ``QT_QPA_PLATFORM`` ("wayland;xcb", options after ':'
    dropped), else Wayland then X11 in a Wayland session, else X11 (Qt's default on Linux)."""
    asked = environ.get("QT_QPA_PLATFORM", "")
    if asked:
        return [name.split(":", 1)[0].strip() for name in asked.split(";") if name.strip()]
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return ["wayland", "xcb"]
    return ["xcb"]


def platform_problem(environ: Mapping[str, str] | None = None, find_plugin=plugin_path, ldd: str = "ldd") -> str | None:
    """Why Qt would not start its window here (a message for the user), or None when nothing stands in the way.

    Qt tries the platforms in order and takes the first one that loads; the answer is about the
    first that was asked for, once none of them can load."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    for platform in requested_platforms(environ):
        if platform in HEADLESS_PLATFORMS:
            return None
        if platform == "xcb" and not environ.get("DISPLAY"):
            problems.append(
                "quantbench: there is no X display (DISPLAY is not set). Start QuantBench from a desktop session, "
                "or make a picture without one: quantbench --demo --screenshot out.png"
            )
            continue
        plugin = find_plugin(platform)
        if plugin is None or not (shutil.which(ldd) or Path(ldd).is_file()):
            return None  # nothing to check with: Qt will say what it finds
        missing = missing_libraries(plugin, ldd)
        if not missing:
            return None
        problems.append(explain_missing(platform, plugin, missing))
    return problems[0] if problems else None


def use_offscreen_without_display(environ: dict[str, str] | os._Environ) -> None:
    """A screenshot needs no screen: where none is set up and no platform is asked for, draw offscreen."""
    if not environ.get("QT_QPA_PLATFORM") and not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        environ["QT_QPA_PLATFORM"] = "offscreen"
