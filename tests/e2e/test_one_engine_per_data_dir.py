"""One engine per data directory, with real processes: two `headless` engines never both
trade, a SIGKILLed engine's lock is taken over, and the command line works beside a running
engine."""

from __future__ import annotations

import signal

import pytest

from autotrader_desktop import cli
from autotrader_desktop.engine_lock import running_engine
from tests.helpers import (
    check_accounts,
    instance_rows,
    kill,
    popen_python,
    returning,
    run_cli_subprocess,
    scalar,
    subprocess_env,
    wait_until,
    write_algorithm,
)

BUYER = returning("'buy', 1")
EXIT_TIMEOUT_S = 30


@pytest.fixture
def folders(tmp_path):
    data_dir, algorithm_dir = tmp_path / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir()
    write_algorithm(algorithm_dir, "buyer", BUYER)
    options = ["--data-dir", str(data_dir), "--algorithm-dir", str(algorithm_dir)]
    assert cli.main([*options, "add", "NVDA", "buyer", "10000"]) == 0
    return data_dir, algorithm_dir


def headless(data_dir, algorithm_dir, log):
    return popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )


def runs(data_dir) -> int:
    return scalar(data_dir, "SELECT COUNT(*) FROM runs")


def test_two_headless_engines_never_both_trade(folders, tmp_path):
    data_dir, algorithm_dir = folders
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    # Started together: whichever locks first trades, the other refuses.
    processes = [headless(data_dir, algorithm_dir, log) for log in logs]
    try:
        refused = wait_until(
            lambda: [p for p in processes if p.poll() is not None], message="one engine to end"
        )
        assert len(refused) == 1, [log.read_text() for log in logs]
        [loser] = refused
        [winner] = [p for p in processes if p is not loser]
        loser_log = logs[processes.index(loser)].read_text()
        assert loser.returncode == 2, loser_log
        assert f"an engine is already running on {data_dir} (process {winner.pid}" in loser_log
        assert "Traceback" not in loser_log
        wait_until(lambda: runs(data_dir) >= 3, message="three cycles of the running engine")
        # Every cycle was one engine's: one run per scheduled time, one trade per run.
        assert scalar(data_dir, "SELECT COUNT(DISTINCT scheduled_at) FROM runs") == runs(data_dir)
        winner.send_signal(signal.SIGTERM)
        assert winner.wait(timeout=EXIT_TIMEOUT_S) == 0
    finally:
        for process in processes:
            kill(process)
    [row] = instance_rows(data_dir)
    assert row["trade_count"] == row["shares"] == runs(data_dir)
    check_accounts(data_dir)
    assert running_engine(data_dir) is None


def test_lock_of_a_killed_engine_is_taken_over(folders, tmp_path):
    data_dir, algorithm_dir = folders
    first = headless(data_dir, algorithm_dir, tmp_path / "first.log")
    try:
        wait_until(lambda: runs(data_dir) >= 1, message="a cycle of the first engine")
        assert running_engine(data_dir).pid == first.pid
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        kill(first)
    assert running_engine(data_dir) is None  # the kernel released it
    log = tmp_path / "second.log"
    second = headless(data_dir, algorithm_dir, log)
    try:
        before = runs(data_dir)
        wait_until(lambda: runs(data_dir) >= before + 2, message="cycles of the second engine")
        assert running_engine(data_dir).pid == second.pid
        text = log.read_text()
        assert f"left by process {first.pid}" in text and "taking it over" in text, text
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=EXIT_TIMEOUT_S) == 0
    finally:
        kill(second)
    check_accounts(data_dir)


def test_command_line_works_beside_a_running_engine(folders, tmp_path):
    data_dir, algorithm_dir = folders
    log = tmp_path / "engine.log"
    engine = headless(data_dir, algorithm_dir, log)
    env = subprocess_env(data_dir, algorithm_dir)
    try:
        wait_until(lambda: runs(data_dir) >= 1, message="a cycle")
        added = run_cli_subprocess(["add", "AMD", "buyer", "5000"], env)
        assert added.returncode == 0, added.stderr
        listed = run_cli_subprocess(["list", "--json"], env)
        assert listed.returncode == 0 and '"AMD"' in listed.stdout, listed.stderr
        # The engine picks up the new instance at its next cycle.
        wait_until(
            lambda: scalar(data_dir, "SELECT COUNT(*) FROM runs WHERE instance_id = 2") >= 1,
            message="a run of the instance added beside the engine",
        )
        stopped = run_cli_subprocess(["stop", "2"], env)
        assert stopped.returncode == 0, stopped.stderr
        assert run_cli_subprocess(["trades", "1"], env).returncode == 0
        cycle = run_cli_subprocess(["cycle"], env)
        assert cycle.returncode == 2
        assert f"(process {engine.pid}, running since" in cycle.stderr
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=EXIT_TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(engine)
    assert [row["status"] for row in instance_rows(data_dir)] == ["running", "stopped"]
    check_accounts(data_dir, trades_need_runs=False)  # stop's sale has no run
