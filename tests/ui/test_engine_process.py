"""The window is a client of an engine process: it starts one or attaches to the running
one, says which, sends its actions there, stops only what it started, and stays usable
when the engine dies. The real app._main on a real qasync loop, with real engine
processes (`headless`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from autotrader_desktop import cli
from autotrader_desktop.engine_lock import running_engine
from autotrader_desktop.engine_process import ENGINE_LOG, EngineLink
from autotrader_desktop.ui import app
from autotrader_desktop.ui.errors import ErrorReporter
from autotrader_desktop.ui.main_window import MainWindow
from tests.helpers import (
    kill,
    popen_python,
    returning,
    scalar,
    subprocess_env,
    wait_until,
    write_algorithm,
    write_script,
)

TIMEOUT_S = 90.0  # an engine's start imports the whole stack: seconds on a loaded machine


@pytest.fixture(autouse=True)
def _qt_application(qapp):
    return qapp


@pytest.fixture
def folders(tmp_path):
    data_dir, algorithm_dir = tmp_path / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir()
    write_algorithm(algorithm_dir, "buyer", returning("'buy', 1"))
    assert cli.main([*options(data_dir, algorithm_dir), "add", "NVDA", "buyer", "10000"]) == 0
    return data_dir, algorithm_dir


def options(data_dir, algorithm_dir) -> list[str]:
    return ["--data-dir", str(data_dir), "--algorithm-dir", str(algorithm_dir)]


async def until(condition: Callable[[], Any], what: str) -> Any:
    """Wait on the app's own loop (the window keeps working) until `condition()` is truthy."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


def run_window(
    folders, store, monkeypatch, scenario: Callable[[MainWindow], Awaitable[None]]
) -> None:
    """Run the app as `autotrader-desktop` does, with `scenario` driving its window; the
    scenario ends by closing the window (as the user does) unless it fails first."""
    monkeypatch.setattr(app, "default_store", lambda: store)
    ctx = cli.Context(cli.build_parser().parse_args(options(*folders)))
    qt_app = QApplication.instance()
    reporter = ErrorReporter()

    async def drive() -> None:
        window = await until(
            lambda: next(
                (
                    w
                    for w in qt_app.topLevelWidgets()
                    if isinstance(w, MainWindow) and w.isVisible()
                ),
                None,
            ),
            "the window",
        )
        try:
            await scenario(window)
        finally:
            window.close()

    async def main() -> int:
        driver = asyncio.ensure_future(drive())
        status = await app._main(ctx, qt_app, reporter, smoke=False)
        await driver
        return status

    assert app.run_on_qt_loop(main()) == 0
    assert not reporter.dialog.isVisible()  # no unexpected error on the way
    assert not any(t.name.startswith("ui-background") for t in threading.enumerate())


def engine_line(window: MainWindow) -> str:
    return window.engine_status.label.text()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_window_alone_starts_an_engine_and_stops_it_when_it_closes(folders, store, monkeypatch):
    data_dir = folders[0]
    seen: dict[str, Any] = {}

    async def scenario(window: MainWindow) -> None:
        await until(lambda: "started by this window" in engine_line(window), "an engine")
        info = window.link.info
        seen["pid"] = info.pid
        assert info.pid != os.getpid()  # never the window's own process
        assert engine_line(window) == f"engine: process {info.pid}, started by this window"
        # Its cycles run there and reach the window: a trade shows in the table.
        await until(
            lambda: window.table.model.rowCount() and window.table.model.rows()[0].trades,
            "a trade of the engine, shown",
        )

    run_window(folders, store, monkeypatch, scenario)
    assert running_engine(data_dir) is None  # stopped with the window (the default)
    assert not alive(seen["pid"])
    # The engine wrote its own log (rotated, tests/test_logging_config.py) in the data dir.
    text = (data_dir / ENGINE_LOG).read_text()
    assert f"headless engine running in process {seen['pid']}" in text, text


def test_sigterm_to_the_window_quits_it_and_stops_the_engine_it_started(
    folders, store, monkeypatch
):
    # A session logging out sends SIGTERM: the window quits as a close does (without the
    # handler this test's own process would die here), and its engine stops with it.
    seen: dict[str, Any] = {}

    async def scenario(window: MainWindow) -> None:
        await until(lambda: "started by this window" in engine_line(window), "an engine")
        seen["pid"] = window.link.info.pid
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: not window.isVisible(), "the window to close")

    run_window(folders, store, monkeypatch, scenario)
    assert running_engine(folders[0]) is None
    assert not alive(seen["pid"])
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # given back as it was


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_the_engine_a_window_starts_gets_its_options_and_its_log_file(folders, verbose):
    data_dir = folders[0]
    window_args = [*(["-v"] if verbose else []), *options(*folders)]
    ctx = cli.Context(cli.build_parser().parse_args(window_args))
    link = EngineLink(ctx.data_dir, ctx.engine_options(), ctx.settings, ctx.algorithm_dir)
    command = link.command()
    assert command[:3] == [sys.executable, "-m", "autotrader_desktop"]
    engine = cli.build_parser().parse_args(command[3:])
    assert engine.command == "headless"
    assert engine.verbose is (True if verbose else None)
    assert engine.data_dir == str(data_dir.resolve())
    assert engine.log_file == ctx.data_dir / ENGINE_LOG
    assert engine.for_window == os.getpid()


CRASHING_WINDOW = """
import sys
import threading
from autotrader_desktop import cli
from autotrader_desktop.engine_process import EngineLink

ctx = cli.Context(cli.build_parser().parse_args(sys.argv[1:]))
link = EngineLink(ctx.data_dir, ctx.engine_options(), ctx.settings, ctx.algorithm_dir)
print("engine", link.attach_or_start().pid, flush=True)
threading.Event().wait()  # until killed
"""


@pytest.mark.parametrize("keep_trading", [False, True], ids=["default", "keep-trading"])
def test_a_window_that_crashes_takes_its_engine_with_it_unless_it_keeps_trading(
    folders, tmp_path, keep_trading
):
    # The window's own code starts the engine, then its process is SIGKILLed (a crash):
    # nobody is left to stop the engine, so the engine notices that its window is gone.
    data_dir, algorithm_dir = folders
    script = write_script(tmp_path / "window.py", CRASHING_WINDOW)
    env = subprocess_env(data_dir, algorithm_dir)
    if keep_trading:
        env["AUTOTRADER_KEEP_TRADING_IN_BACKGROUND"] = "true"
    log = tmp_path / "window.log"
    window = popen_python([str(script), *options(*folders)], env, log)
    try:
        line = wait_until(lambda: log.read_text(), timeout=TIMEOUT_S, message="the engine")
        engine_pid = int(line.split()[1])
        window.kill()
        window.wait()
        engine_log = data_dir / ENGINE_LOG
        if keep_trading:
            wait_until(
                lambda: "keeping on trading as set" in engine_log.read_text(), timeout=TIMEOUT_S
            )
            assert running_engine(data_dir).pid == engine_pid
        else:
            wait_until(lambda: running_engine(data_dir) is None, timeout=TIMEOUT_S)
            wait_until(lambda: not alive(engine_pid), timeout=TIMEOUT_S)
            assert f"the window that started this engine (process {window.pid}) ended" in (
                engine_log.read_text()
            )
    finally:
        kill(window)
        with contextlib.suppress(ProcessLookupError, NameError):
            os.kill(engine_pid, signal.SIGTERM)
        wait_until(lambda: running_engine(data_dir) is None, timeout=TIMEOUT_S)


def test_keep_trading_in_the_background_leaves_the_engine_running(folders, store, monkeypatch):
    data_dir = folders[0]
    seen: dict[str, Any] = {}

    async def scenario(window: MainWindow) -> None:
        await until(lambda: "started by this window" in engine_line(window), "an engine")
        seen["pid"] = window.link.info.pid
        window.engine_status.keep_trading.click()
        await until(lambda: window.engine.settings.keep_trading_in_background, "the setting saved")

    run_window(folders, store, monkeypatch, scenario)
    try:
        assert running_engine(data_dir).pid == seen["pid"]
        assert (
            scalar(
                data_dir,
                "SELECT value FROM settings WHERE key = ?",
                ("keep_trading_in_background",),
            )
            == "true"
        )
    finally:
        os.kill(seen["pid"], signal.SIGTERM)
        wait_until(lambda: running_engine(data_dir) is None, timeout=TIMEOUT_S)


def test_a_window_beside_a_running_engine_attaches_and_its_actions_reach_it(
    folders, store, monkeypatch, tmp_path
):
    data_dir, algorithm_dir = folders
    log = tmp_path / "headless.log"
    headless = popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )
    try:
        wait_until(lambda: (found := running_engine(data_dir)) and found.channel, TIMEOUT_S)

        async def scenario(window: MainWindow) -> None:
            await until(lambda: "attached" in engine_line(window), "attached")
            assert engine_line(window) == f"attached to the engine in process {headless.pid}"
            await until(lambda: window.table.model.rowCount(), "the instance listed")
            window.table.select(window.table.model.rows()[0].id)
            monkeypatch.setattr(window, "confirm", lambda title, text: True)
            window.restart_engine()  # done by the engine process, as its log says
            await until(
                lambda: "a window asks to restart" in log.read_text(),
                "the headless engine restarted",
            )
            await until(lambda: window.restart_action.isEnabled(), "the restart done")
            window.stop_selected()
            await until(
                lambda: scalar(data_dir, "SELECT status FROM algorithm_instances") == "stopped",
                "the instance stopped",
            )

        run_window(folders, store, monkeypatch, scenario)
        # A window never stops an engine it did not start.
        assert headless.poll() is None
        assert running_engine(data_dir).pid == headless.pid
        headless.send_signal(signal.SIGTERM)
        assert headless.wait(timeout=TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(headless)


def test_when_the_engine_dies_the_window_says_so_and_can_start_it_again(
    folders, store, monkeypatch
):
    data_dir = folders[0]

    async def scenario(window: MainWindow) -> None:
        await until(lambda: "started by this window" in engine_line(window), "an engine")
        first = window.link.info
        await until(lambda: window.table.model.rowCount(), "the instance listed")
        os.kill(first.pid, signal.SIGKILL)
        await until(lambda: not window.engine.connected, "the loss noticed")
        assert engine_line(window) == f"engine stopped (process {first.pid} ended)"
        assert window.engine_status.start_button.isVisible()
        assert "has stopped" in window.status.currentMessage()
        # Still a working window showing what it showed.
        assert window.table.model.rowCount() == 1
        window.refresh()
        await until(window.background.idle, "a refresh without an engine")
        assert window.table.model.rowCount() == 1
        window.engine_status.start_button.click()
        await until(lambda: "started by this window" in engine_line(window), "a new engine")
        second = window.link.info
        assert second.pid != first.pid
        assert engine_line(window) == f"engine: process {second.pid}, started by this window"
        assert not window.engine_status.start_button.isVisible()

    run_window(folders, store, monkeypatch, scenario)
    assert running_engine(data_dir) is None
