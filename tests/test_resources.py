"""The icon, the desktop entry and its installer script, from source and frozen."""

from __future__ import annotations

import configparser
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autotrader_desktop import resources
from tests.helpers import REPO


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_icon_svg_and_every_png_size():
    svg = resources.icon_path()
    assert svg.is_file() and svg.parent.parent == REPO / "resources"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 512 512"
    pngs = resources.icon_pngs()
    assert sorted(pngs) == list(resources.ICON_SIZES)
    for size, png in pngs.items():
        assert png_size(png) == (size, size), png


def test_icon_found_in_the_bundle_layout_when_frozen(frozen):
    icons = frozen / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    shutil.copy(REPO / "resources" / "icons" / "autotrader-desktop.svg", icons)
    assert resources.icon_path() == icons / "autotrader-desktop.svg"
    assert resources.icon_pngs() == {}  # only those present


def read_desktop_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def test_desktop_entry():
    entry = read_desktop_entry(resources.desktop_entry_path())
    assert entry["Type"] == "Application"
    assert entry["Name"] == "AutoTrader Desktop"
    assert entry["Icon"] == resources.ICON_NAME
    assert entry["Exec"] == entry["TryExec"] == "autotrader-desktop"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and entry["StartupWMClass"] == "autotrader-desktop"
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(resources.desktop_entry_path())], check=True)


@pytest.mark.skipif(os.name != "posix", reason="a POSIX shell script")
def test_install_script_installs_and_removes_the_menu_entry(tmp_path):
    app = tmp_path / "my apps" / "autotrader-desktop"
    script = REPO / "resources" / "install-desktop-entry.sh"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(script), *args], env=env, capture_output=True, text=True, timeout=30
        )

    missing = install(str(app))
    assert missing.returncode == 1 and "is not an executable" in missing.stderr
    app.parent.mkdir()
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    spaced = install(str(app))
    assert spaced.returncode == 1 and "spaces or quotes" in spaced.stderr

    good = tmp_path / "apps" / "autotrader-desktop"
    good.parent.mkdir()
    shutil.copy(app, good)
    done = install(str(good))
    assert done.returncode == 0, done.stderr
    share = tmp_path / "share"
    entry = read_desktop_entry(share / "applications" / "autotrader-desktop.desktop")
    assert entry["Exec"] == entry["TryExec"] == str(good)
    for size in resources.ICON_SIZES:
        png = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "autotrader-desktop.png"
        assert png_size(png) == (size, size)
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "autotrader-desktop.svg").is_file()

    removed = install("--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not list(share.rglob("autotrader-desktop*"))
