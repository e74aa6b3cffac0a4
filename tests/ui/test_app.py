"""ui/app.py's real bootstrap: the qasync loop, the engine on it, the window; quits cleanly."""

from __future__ import annotations

import sys
import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from autotrader_desktop.database import DB_FILENAME
from autotrader_desktop.ui import app
from autotrader_desktop.ui.errors import ErrorReporter
from autotrader_desktop.ui.main_window import MainWindow
from tests.helpers import EXAMPLES, run_cli_subprocess, subprocess_env


class Context:
    """What app._main needs of cli.Context."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.settings = engine.settings
        self.confirm_live = False

    def engine(self):
        return self._engine


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


def test_closing_the_window_ends_the_main_coroutine_on_the_qasync_loop(
    qtbot, engine, store, monkeypatch
):
    """In-process, with the test engine: the real _main on a real qasync loop."""
    monkeypatch.setattr(app, "default_store", lambda: store)
    qt_app = QApplication.instance()
    reporter = ErrorReporter()
    closed = []

    def close_when_started() -> None:
        windows = [w for w in qt_app.topLevelWidgets() if isinstance(w, MainWindow)]
        if windows and windows[0].isVisible() and engine.scheduler is not None:
            poller.stop()
            windows[0].close()  # as the user does: the app shuts down, then the window
            closed.append(windows[0])

    poller = QTimer()
    poller.timeout.connect(close_when_started)
    poller.start(20)

    status = app.run_on_qt_loop(app._main(Context(engine), qt_app, reporter, smoke=False))

    assert status == 0
    window = closed[0]
    assert not window.isVisible()
    assert engine.scheduler is None  # the schedule is gone
    assert len(engine.events.cycle_finished) == 0  # the window no longer listens
    assert not any(t.name.startswith("ui-background") for t in threading.enumerate())
    assert not reporter.dialog.isVisible()  # no unexpected error on the way


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
