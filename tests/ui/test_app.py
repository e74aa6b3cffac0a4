"""ui/app.py's real bootstrap: the qasync loop, the window, and the engine process the
window starts or attaches to; quits cleanly."""

from __future__ import annotations

import sys

import pytest

from autotrader_desktop.database import DB_FILENAME
from tests.helpers import EXAMPLES, run_cli_subprocess, subprocess_env


@pytest.mark.slow
def test_the_app_starts_shows_the_window_and_quits_cleanly(tmp_path):
    data, algorithms = tmp_path / "data", tmp_path / "algorithm"
    algorithms.mkdir()
    (algorithms / "test_algo.py").write_text((EXAMPLES / "test_algo.py").read_text())
    env = subprocess_env(data, algorithms)
    added = run_cli_subprocess(["add", "NVDA", "test_algo", "1000"], env)
    assert added.returncode == 0, added.stderr

    env["AUTOTRADER_SMOKE"] = "1"
    result = run_cli_subprocess([], env, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "smoke: window shown (True), engine started" in result.stdout
    assert "engine stopped, window closed" in result.stderr
    for problem in ("Traceback", "Event loop stopped before Future completed", "Fatal Python"):
        assert problem not in result.stderr


@pytest.mark.slow
def test_the_window_starts_a_new_data_directory_but_a_failed_start_leaves_none(tmp_path):
    data, algorithms = tmp_path / "new" / "data", tmp_path / "algorithm"
    env = subprocess_env(data, algorithms, AUTOTRADER_SMOKE="1")

    failed = run_cli_subprocess([], env, timeout=120)  # the algorithm folder is missing
    assert failed.returncode == 2, failed.stderr
    assert "the algorithm folder" in failed.stderr and "Traceback" not in failed.stderr
    assert not (tmp_path / "new").exists()

    algorithms.mkdir()
    started = run_cli_subprocess([], env, timeout=120)
    assert started.returncode == 0, started.stderr
    assert "smoke: window shown (True), engine started" in started.stdout
    assert (data / DB_FILENAME).is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays")
def test_without_a_display_the_app_says_what_to_do(tmp_path):
    env = subprocess_env(tmp_path / "data", tmp_path / "algorithm")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    (tmp_path / "algorithm").mkdir()
    result = run_cli_subprocess([], env)
    assert result.returncode == 2
    assert "no display" in result.stderr and "headless" in result.stderr
    assert "Traceback" not in result.stderr
