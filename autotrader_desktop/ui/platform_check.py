"""Before the window opens: is there a display, and can Qt's platform plugin load?

Without the system libraries its xcb plugin links to (libxcb-icccm4, libxcb-keysyms1 on a
fresh Debian), Qt aborts with "Could not load the Qt platform plugin "xcb" even though it
was found" and names a library that is installed (libxcb-cursor0). So the plugin Qt will
use is checked first with `ldd`, and a missing library becomes an error that names the
Debian/Ubuntu package to install. This runs before the data directory is touched, so a
start that cannot show a window leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from autotrader_desktop.errors import UserError

# Libraries whose Debian package name does not follow the usual rule (see debian_package).
PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
    "libz.so.1": "zlib1g",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
_SONAME = re.compile(r"^lib(?P<name>.+)\.so\.(?P<major>\d+)")


def check(environ: Mapping[str, str] = os.environ) -> None:
    """Raise UserError saying what to do when the window cannot open here (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    if not environ.get("QT_QPA_PLATFORM") and not (
        environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    ):
        raise UserError(
            "there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are "
            "not set); run `autotrader-desktop headless` for the engine without a window"
        )
    missing: dict[str, list[str]] = {}
    for platform in platforms(environ):
        absent = missing_libraries(plugin_path(platform))
        if not absent:
            return  # Qt takes the first platform in its list that loads
        missing[platform] = absent
    libraries = sorted({lib for absent in missing.values() for lib in absent})
    packages = sorted({debian_package(lib) for lib in libraries})
    raise UserError(
        f"Qt cannot load its {' or '.join(repr(p) for p in missing)} platform plugin: "
        f"{', '.join(libraries)} {'is' if len(libraries) == 1 else 'are'} not installed. "
        f"On Debian or Ubuntu: sudo apt-get install {' '.join(packages)}"
    )


def platforms(environ: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order."""
    chosen = environ.get("QT_QPA_PLATFORM")
    if chosen:
        # "wayland;xcb", each name possibly followed by ":options"
        return [p.split(":", 1)[0] for p in chosen.split(";") if p.split(":", 1)[0]]
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return ["wayland", "xcb"]
    return ["xcb"]


def plugin_path(platform: str) -> Path:
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    return plugins / "platforms" / f"libq{platform}.so"


def missing_libraries(plugin: Path) -> list[str]:
    """The libraries `ldd` cannot find for `plugin`; none when it cannot tell (no ldd,
    no such plugin: Qt's own error is the best there is then)."""
    ldd = shutil.which("ldd")
    if ldd is None or not plugin.is_file():
        return []
    try:
        result = subprocess.run(
            [ldd, str(plugin)], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(result.stdout)))


def debian_package(library: str) -> str:
    """The Debian/Ubuntu package of a shared library: libxcb-icccm.so.4 -> libxcb-icccm4,
    libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (a hyphen when the name ends in a digit)."""
    if library in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[library]
    match = _SONAME.match(library)
    if match is None:
        return library
    name, major = match["name"].lower(), match["major"]
    return f"lib{name}{'-' if name[-1].isdigit() else ''}{major}"
