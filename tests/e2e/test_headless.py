"""`headless` and hung algorithms as real processes (docs/behaviour.md#command-line,
#runs-and-failures).

`headless --every 1` runs cycles until SIGTERM or SIGINT and then exits cleanly; an
algorithm that never returns (on import or in `run`) fails alone after its time limit and
never keeps `cycle` or `headless` from exiting.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from autotrader_desktop import cli
from autotrader_desktop.database import DB_FILENAME
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

HANGS_IN_RUN = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        while True:
            pass
"""

HANGS_ON_IMPORT = """
while True:
    pass


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return "hold", 0
"""

EXIT_TIMEOUT_S = 30


def add(data_dir, algorithm_dir, *argv: str) -> None:
    options = ["--data-dir", str(data_dir), "--algorithm-dir", str(algorithm_dir)]
    assert cli.main([*options, "add", *argv]) == 0


def runs_recorded(data_dir, instance_id: int) -> int:
    return scalar(data_dir, "SELECT COUNT(*) FROM runs WHERE instance_id = ?", (instance_id,))


def wait_for_runs(process, data_dir, instance_id: int, n: int, log) -> None:
    """Until `n` runs of the instance are recorded; fails at once if the process ends."""
    wait_until(
        lambda: process.poll() is not None or runs_recorded(data_dir, instance_id) >= n,
        message=f"{n} recorded runs of instance {instance_id}",
    )
    assert process.poll() is None, log.read_text()


def assert_clean_log(text: str) -> None:
    assert "Traceback" not in text, text
    assert " ERROR " not in text and " CRITICAL " not in text, text
    assert "headless engine running" in text, text
    assert "engine stopped" in text, text


@pytest.fixture
def folders(tmp_path):
    data_dir, algorithm_dir = tmp_path / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir()
    write_algorithm(algorithm_dir, "buyer", BUYER)
    return data_dir, algorithm_dir


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_headless_runs_cycles_until_signalled(folders, tmp_path, signum):
    data_dir, algorithm_dir = folders
    add(data_dir, algorithm_dir, "NVDA", "buyer", "10000")
    log = tmp_path / "headless.log"
    process = popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )
    try:
        # Several cycles: the interval schedule keeps going.
        wait_for_runs(process, data_dir, 1, 3, log)
        process.send_signal(signum)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(process)
    assert_clean_log(log.read_text())
    [row] = instance_rows(data_dir)
    assert row["status"] == "running"
    assert row["trade_count"] == row["shares"] >= 3
    check_accounts(data_dir)


def test_headless_exits_on_sigterm_while_an_algorithm_hangs(folders, tmp_path):
    data_dir, algorithm_dir = folders
    write_algorithm(algorithm_dir, "hanger", HANGS_IN_RUN)
    add(data_dir, algorithm_dir, "NVDA", "buyer", "10000")
    add(data_dir, algorithm_dir, "AMD", "hanger", "10000")
    log = tmp_path / "headless.log"
    process = popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        # The hung run is still inside its time limit when the signal comes.
        subprocess_env(data_dir, algorithm_dir, AUTOTRADER_RUN_TIME_LIMIT="600"),
        log,
    )
    try:
        wait_for_runs(process, data_dir, 1, 1, log)
        assert runs_recorded(data_dir, 2) == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(process)
    assert_clean_log(log.read_text())
    buyer, hanger = instance_rows(data_dir)
    assert buyer["trade_count"] >= 1
    assert (hanger["status"], hanger["trade_count"]) == ("running", 0)
    check_accounts(data_dir)


@pytest.mark.parametrize(("where", "source"), [("run", HANGS_IN_RUN), ("import", HANGS_ON_IMPORT)])
def test_hung_algorithm_fails_alone_and_cycle_exits(folders, where, source):
    data_dir, algorithm_dir = folders
    # A clean file to add (discovery would exclude a file that hangs on import); what the
    # cycle loads is the hanging version, as after an edit.
    write_algorithm(algorithm_dir, "hanger", BUYER)
    add(data_dir, algorithm_dir, "AMD", "hanger", "10000")
    add(data_dir, algorithm_dir, "NVDA", "buyer", "10000")
    write_algorithm(algorithm_dir, "hanger", source)

    env = subprocess_env(data_dir, algorithm_dir, AUTOTRADER_RUN_TIME_LIMIT="1")
    try:
        result = run_cli_subprocess(["cycle"], env, timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # run() has killed it
        pytest.fail(f"`cycle` with an algorithm hung in {where} did not exit")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 executed" in result.stdout and "1 failed" in result.stdout, result.stdout
    hanger, buyer = instance_rows(data_dir)
    assert hanger["status"] == "failed"
    assert "time limit" in hanger["error"] and "1 s" in hanger["error"]
    assert hanger["trade_count"] == 0
    assert (buyer["status"], buyer["trade_count"], buyer["shares"]) == ("running", 1, 1)
    outcome, reason = (
        scalar(data_dir, f"SELECT {column} FROM runs WHERE instance_id = 1")
        for column in ("outcome", "reason")
    )
    assert outcome == "failed" and "time limit" in reason
    check_accounts(data_dir)


ROUTINE_LINES = (
    "Running job",
    "executed successfully",
    "HTTP response sent",
    "connection open",
    "engine restarted: module cache cleared, 0 failed instance(s) retried",
)


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_routine_library_lines_only_with_verbose(folders, tmp_path, verbose):
    data_dir, algorithm_dir = folders
    add(data_dir, algorithm_dir, "NVDA", "buyer", "10000")
    log = tmp_path / "headless.log"
    process = popen_python(
        ["-m", "autotrader_desktop", *(["-v"] if verbose else []), "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )
    try:
        wait_for_runs(process, data_dir, 1, 2, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(process)
    text = log.read_text()
    assert_clean_log(text)
    assert "cycle " in text  # the engine's own line per cycle stays
    for line in ROUTINE_LINES:
        assert (line in text) == verbose, (line, text)


def test_headless_starts_a_new_data_directory(tmp_path):
    data_dir, algorithm_dir = tmp_path / "new" / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir()
    log = tmp_path / "headless.log"
    process = popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or "headless engine running" in log.read_text(),
            message="the headless engine to start",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0, log.read_text()
    finally:
        kill(process)
    assert_clean_log(log.read_text())
    assert (data_dir / DB_FILENAME).is_file()
