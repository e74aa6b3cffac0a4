"""Before the window: a missing display or a platform plugin that cannot load is reported
with what to do (the Debian packages to install), and nothing is created."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from autotrader_desktop import cli
from autotrader_desktop.errors import UserError
from autotrader_desktop.ui import platform_check

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux plugins")

# What ldd prints for Qt's xcb plugin on a fresh Debian 12 (abridged).
XCB_ON_FRESH_DEBIAN = """\
\tlinux-vdso.so.1 (0x00007ffd1b5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f2a1c000000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f2a1bf00000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2a1bc00000)
"""


@pytest.fixture
def fake_ldd(tmp_path, monkeypatch):
    """An `ldd` first on PATH that prints `outputs[plugin file name]` (nothing otherwise)."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    outputs: dict[str, str] = {}

    def install() -> None:
        cases = "".join(f"  */{name}) cat '{folder / name}.out' ;;\n" for name in outputs)
        for name, text in outputs.items():
            (folder / f"{name}.out").write_text(text)
        script = folder / "ldd"
        script.write_text(f'#!/bin/sh\ncase "$1" in\n{cases}esac\n')
        script.chmod(0o755)

    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    yield outputs, install


@pytest.fixture
def x11(monkeypatch):
    """A user's X11 session: Qt would take its xcb plugin."""
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")


def test_missing_xcb_libraries_name_the_packages_and_create_no_data_dir(
    fake_ldd, x11, tmp_path, capsys
):
    outputs, install = fake_ldd
    outputs["libqxcb.so"] = XCB_ON_FRESH_DEBIAN
    install()
    data = tmp_path / "new-data"

    status = cli.main(["--data-dir", str(data)])

    err = capsys.readouterr().err
    assert status == 2
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1 are not installed" in err
    assert err.rstrip().endswith("sudo apt-get install libxcb-icccm4 libxcb-keysyms1")
    assert "libxcb-cursor" not in err  # installed: Qt's own message would name it
    assert "Traceback" not in err
    assert not data.exists()


def test_the_first_platform_that_loads_is_enough(fake_ldd, monkeypatch):
    outputs, install = fake_ldd
    outputs["libqwayland.so"] = "\tlibwayland-cursor.so.0 => not found\n"
    outputs["libqxcb.so"] = "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n"
    install()
    platform_check.check({"QT_QPA_PLATFORM": "wayland;xcb"})  # Qt falls back to xcb

    outputs["libqxcb.so"] = XCB_ON_FRESH_DEBIAN
    install()
    with pytest.raises(UserError) as raised:
        platform_check.check({"QT_QPA_PLATFORM": "wayland;xcb"})
    message = str(raised.value)
    assert "'wayland' or 'xcb' platform plugin" in message
    assert message.endswith("sudo apt-get install libwayland-cursor0 libxcb-icccm4 libxcb-keysyms1")


def test_without_ldd_qt_is_left_to_speak(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ldd anywhere
    platform_check.check({"DISPLAY": ":0"})


def test_the_plugins_of_this_installation_load():
    """The real check on this machine's offscreen plugin (the tests' own platform)."""
    plugin = platform_check.plugin_path("offscreen")
    assert plugin.is_file()
    if shutil.which("ldd"):
        assert platform_check.missing_libraries(plugin) == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DISPLAY": ":0"}, ["xcb"]),
        ({"QT_QPA_PLATFORM": "offscreen"}, ["offscreen"]),
        ({"QT_QPA_PLATFORM": "wayland;xcb:nograb"}, ["wayland", "xcb"]),
        ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, ["wayland", "xcb"]),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, ["xcb"]),
    ],
)
def test_the_platforms_qt_tries(environ, expected):
    assert platform_check.platforms(environ) == expected


@pytest.mark.parametrize(
    ("library", "package"),
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libEGL.so.1", "libegl1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
        ("libz.so.1", "zlib1g"),
        ("weird", "weird"),
    ],
)
def test_debian_package_names(library, package):
    assert platform_check.debian_package(library) == package


def test_without_a_display_nothing_is_created(monkeypatch, tmp_path, capsys):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "new-data"
    assert cli.main(["--data-dir", str(data)]) == 2
    assert "no display" in capsys.readouterr().err
    assert not data.exists()
