"""tools/system-deps.sh: which Debian packages are missing, and what it does about them.

The script runs with a PATH holding only fakes of the commands it asks (dpkg-query, id,
apt-get, python3) and a real awk: the fakes answer from files the test writes, and apt-get
records how it was called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "system-deps.sh"
SH = shutil.which("sh")

pytestmark = pytest.mark.skipif(SH is None or shutil.which("awk") is None, reason="POSIX sh")

TEST_GROUP = [
    "make",
    "libgl1",
    "libegl1",
    "libfontconfig1",
    "libfreetype6",
    "libxkbcommon0",
    "libglib2.0-0",
    "libdbus-1-3",
    "fonts-dejavu-core",
]
RUN_ONLY = [
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-glx0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libwayland-client0",
    "libwayland-cursor0",
    "libwayland-egl1",
]


@dataclass
class Result:
    code: int
    out: str
    err: str
    apt_calls: list[str]


class FakeSystem:
    """A Debian system as the script sees it."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.state = root / "state"
        self.state.mkdir()
        self.uid = 1000
        self.has_ensurepip = True
        self.shared_python = True
        self.dpkg_lines: list[str] = []
        for tool in ("awk", "cat"):  # the script uses awk; the fakes use cat
            (self.bin / tool).symlink_to(shutil.which(tool))
        self._fake("id", 'echo "$(cat "$STATE/uid")"')
        self._fake("apt-get", 'echo "$*" >> "$STATE/apt-get"')
        self._fake("dpkg-query", 'cat "$STATE/dpkg"')
        self._fake(
            "python3",
            'case "$2" in\n'
            '  *ensurepip*) exit "$(cat "$STATE/ensurepip")" ;;\n'
            '  *Py_ENABLE_SHARED*) cat "$STATE/shared" ;;\n'
            "  *version_info*) echo libpython3.11 ;;\n"
            "esac",
        )

    def _fake(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{SH}\n{body}\n")
        path.chmod(0o755)

    def install(self, *packages: str, provides: str = "") -> None:
        self.dpkg_lines += [f"install ok installed\t{p}\t{provides}" for p in packages]

    def remove(self, fake: str) -> None:
        (self.bin / fake).unlink()

    def run(self, group: str) -> Result:
        (self.state / "uid").write_text(str(self.uid))
        (self.state / "ensurepip").write_text("0" if self.has_ensurepip else "1")
        (self.state / "shared").write_text("1" if self.shared_python else "0")
        (self.state / "dpkg").write_text("".join(line + "\n" for line in self.dpkg_lines))
        env = {"PATH": str(self.bin), "STATE": str(self.state), "HOME": str(self.state)}
        done = subprocess.run(
            [SH, str(SCRIPT), group], env=env, capture_output=True, text=True, timeout=30
        )
        log = self.state / "apt-get"
        calls = log.read_text().splitlines() if log.exists() else []
        return Result(done.returncode, done.stdout, done.stderr, calls)


@pytest.fixture
def system(tmp_path) -> FakeSystem:
    return FakeSystem(tmp_path)


def everything_but(system: FakeSystem, *missing: str) -> None:
    system.install(*(p for p in TEST_GROUP + RUN_ONLY + ["binutils"] if p not in missing))


def test_a_user_is_told_the_exact_install_line_and_nothing_is_installed(system):
    everything_but(system, "libxcb-icccm4", "libxcb-keysyms1")
    result = system.run("run")
    assert result.code == 1
    assert "    sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in result.err
    assert result.apt_calls == []


def test_root_installs_exactly_what_is_missing(system):
    everything_but(system, "libxcb-icccm4", "libxcb-keysyms1")
    system.uid = 0
    result = system.run("run")
    assert result.code == 0, result.err
    assert result.apt_calls == [
        "update -qq",
        "install -y -qq --no-install-recommends libxcb-icccm4 libxcb-keysyms1",
    ]
    assert "installing system packages: libxcb-icccm4 libxcb-keysyms1" in result.out


def test_nothing_missing_is_silent_and_installs_nothing(system):
    everything_but(system)
    system.uid = 0
    assert system.run("package") == Result(0, "", "", [])


def test_the_test_group_does_not_need_the_window_libraries(system):
    system.install(*TEST_GROUP)
    assert system.run("test").code == 0
    result = system.run("run")
    assert result.code == 1
    assert f"sudo apt-get install {' '.join(RUN_ONLY)}\n" in result.err


def test_a_removed_package_with_config_files_left_counts_as_missing(system):
    everything_but(system, "libxcb-icccm4")
    system.dpkg_lines.append("deinstall ok config-files\tlibxcb-icccm4\t")
    assert "sudo apt-get install libxcb-icccm4\n" in system.run("run").err


def test_a_package_provided_under_another_name_counts_as_installed(system):
    """Ubuntu 24.04's libglib2.0-0t64 provides libglib2.0-0."""
    everything_but(system, "libglib2.0-0")
    system.install("libglib2.0-0t64", provides="libglib2.0-0 (= 2.80.0-6ubuntu3)")
    assert system.run("run").code == 0


def test_python_venv_is_added_when_ensurepip_is_missing(system):
    everything_but(system)
    system.has_ensurepip = False
    assert "sudo apt-get install python3-venv\n" in system.run("test").err


def test_packaging_needs_binutils_and_a_shared_libpython(system):
    everything_but(system, "binutils")
    system.shared_python = False
    assert "sudo apt-get install binutils libpython3.11\n" in system.run("package").err
    assert system.run("run").code == 0


def test_without_dpkg_nothing_is_checked(system):
    system.remove("dpkg-query")
    assert system.run("run") == Result(0, "", "", [])


def test_an_unknown_group_is_a_usage_error(system):
    result = system.run("everything")
    assert result.code == 2 and "usage:" in result.err


@pytest.mark.parametrize("target", ["run", "test", "package"])
def test_make_targets_check_the_system_packages_first(target):
    """`make -n` prints what each target would run: the venv comes after a check (it needs
    python3-venv; `make run` checks the window's packages then, before the long set-up),
    and each target checks its own group."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    commands = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", "-C", str(REPO), target],
        env={**os.environ, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    first = "run" if target == "run" else "test"
    assert commands[0] == f"PYTHON=python3 sh tools/system-deps.sh {first}"
    assert f"PYTHON=python3 sh tools/system-deps.sh {target}" in commands


def test_ci_uses_the_same_script_and_keeps_its_logs_in_the_checkout():
    ci = (REPO / ".ci" / "run").read_text()
    assert "sh tools/system-deps.sh package" in ci
    assert "make test" in ci
    assert "/tmp" not in ci
