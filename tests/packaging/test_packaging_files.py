"""The packaging's source files, without a build: frozen paths, icon, desktop entry, lists."""

from __future__ import annotations

import configparser
import logging
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autotrader_desktop import paths, resources
from tests.packaging import REPO, load_tool, stdlib_modules

EXAMPLES = sorted(p.name for p in (REPO / "algorithm").glob("*.py"))


# --- frozen paths -----------------------------------------------------------------------


@pytest.fixture
def frozen(monkeypatch, tmp_path) -> Path:
    """Pretend to be the packaged app installed in tmp_path/app; returns that folder."""
    app = tmp_path / "app"
    internal = app / "_internal"
    (internal / paths.EXAMPLES_DIR_NAME).mkdir(parents=True)
    for name in EXAMPLES:
        shutil.copy(REPO / "algorithm" / name, internal / paths.EXAMPLES_DIR_NAME / name)
    (app / "autotrader-desktop").write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "autotrader-desktop"))
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    return app


def test_from_source_everything_is_in_the_repository():
    assert not paths.is_frozen()
    assert paths.install_dir() == paths.bundle_dir() == REPO
    assert paths.default_algorithm_dir() == REPO / "algorithm"


def test_frozen_algorithm_folder_is_beside_the_executable_and_seeded(frozen):
    folder = paths.default_algorithm_dir()
    assert folder == frozen / "algorithm"
    assert sorted(p.name for p in folder.iterdir()) == EXAMPLES
    for name in EXAMPLES:
        assert (folder / name).read_bytes() == (REPO / "algorithm" / name).read_bytes()
    assert folder.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in frozen.iterdir()) == [
        "_internal",
        "algorithm",
        "autotrader-desktop",
    ]


def test_frozen_existing_algorithm_folder_is_left_alone(frozen):
    folder = frozen / "algorithm"
    folder.mkdir()
    (folder / "mine.py").write_text("class Algorithm: ...\n")
    assert paths.default_algorithm_dir() == folder
    assert [p.name for p in folder.iterdir()] == ["mine.py"]
    (folder / "mine.py").unlink()
    assert paths.default_algorithm_dir() == folder
    assert list(folder.iterdir()) == []  # emptied by the user: stays empty


def test_frozen_algorithm_setting_wins_and_seeds_nothing(frozen, tmp_path):
    chosen = tmp_path / "elsewhere"
    assert paths.algorithm_dir(str(chosen)) == chosen
    assert not (frozen / "algorithm").exists() and not chosen.exists()


def test_frozen_read_only_install_folder_is_reported_not_fatal(frozen, caplog, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkdtemp", read_only)  # root ignores chmod
    with caplog.at_level(logging.WARNING, logger="autotrader_desktop.paths"):
        folder = paths.default_algorithm_dir()
    assert folder == frozen / "algorithm" and not folder.exists()
    assert "cannot create the algorithm folder" in caplog.text


def test_seeding_failure_leaves_no_half_made_folder(tmp_path, caplog, monkeypatch):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a.py").write_text("x = 1\n")

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    with caplog.at_level(logging.WARNING, logger="autotrader_desktop.paths"):
        assert not paths.seed_algorithm_dir(tmp_path / "algorithm", examples)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples"]
    assert "Permission denied" in caplog.text


def test_seeding_when_another_start_got_there_first(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a.py").write_text("x = 1\n")
    target = tmp_path / "algorithm"
    target.mkdir()
    (target / "theirs.py").write_text("y = 2\n")
    assert paths.seed_algorithm_dir(target, examples)
    assert [p.name for p in target.iterdir()] == ["theirs.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["algorithm", "examples"]


# --- icon, desktop entry, installer -----------------------------------------------------


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


# --- what the bundle must let algorithms import -----------------------------------------


def test_bundled_module_lists():
    std = set(stdlib_modules.stdlib_modules(include_tk=False))
    for name in [
        "json",
        "sqlite3",
        "zoneinfo",
        "xml.etree.ElementTree",
        "email.mime.text",
        "concurrent.futures",
        "asyncio",
        "multiprocessing.pool",
        "unittest.mock",
        "importlib.metadata",
        "encodings.idna",
        "sys",
        "decimal",
        "statistics",
    ]:
        assert name in std, name
    assert not {"test", "idlelib", "tkinter", "turtle"} & {n.partition(".")[0] for n in std}
    assert not [n for n in std if {"test", "tests", "idle_test"} & set(n.split("."))]
    numpy = set(stdlib_modules.numpy_modules())
    assert {"numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.polynomial"} <= numpy
    assert not [n for n in numpy if "tests" in n.split(".") or n.startswith("numpy.distutils")]
    checked = stdlib_modules.import_check_modules(sorted(std))
    assert "antigravity" not in checked and "json.__main__" not in checked
    assert "json.tool" in checked


# --- the launcher -----------------------------------------------------------------------


def test_launcher_points_openssl_at_the_system_ca_bundle_only_when_needed(monkeypatch, tmp_path):
    import ssl

    launcher = load_tool("launcher")
    bundle = tmp_path / "ca-bundle.crt"
    bundle.write_text("")
    candidates = (str(tmp_path / "absent.pem"), str(bundle))
    none = ssl.DefaultVerifyPaths(None, None, "SSL_CERT_FILE", "/x/cert.pem", "SSL_CERT_DIR", "/x")
    some = ssl.DefaultVerifyPaths("/etc/ca.pem", None, "SSL_CERT_FILE", "", "SSL_CERT_DIR", "")

    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: none)
    environ: dict[str, str] = {}
    launcher.use_system_ca_certificates(environ, candidates)
    assert environ == {"SSL_CERT_FILE": str(bundle)}
    chosen = {"SSL_CERT_DIR": "/mine"}
    launcher.use_system_ca_certificates(chosen, candidates)
    assert chosen == {"SSL_CERT_DIR": "/mine"}
    nowhere: dict[str, str] = {}
    launcher.use_system_ca_certificates(nowhere, (str(tmp_path / "absent.pem"),))
    assert nowhere == {}

    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: some)
    found: dict[str, str] = {}
    launcher.use_system_ca_certificates(found, candidates)
    assert found == {}
