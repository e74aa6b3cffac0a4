"""Helpers for the end-to-end tests: waiting on conditions, subprocesses, database reads.

The tests that use these talk to the app the way a user or another process does: through
the command line (in-process or as a real subprocess) and the database file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from autotrader_desktop.database import DB_FILENAME

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The tables that hold what a user did and what the engine did; a rejected command must
# leave all of them exactly as they were (discovery's verdict cache may change).
USER_TABLES = ("algorithm_instances", "transactions", "runs", "output_lines", "settings")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def subprocess_env(data_dir: Path, algorithm_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a child process using these directories."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTOTRADER_", "APCA_", "PYTEST_"))
    }
    env.update(
        AUTOTRADER_DATA_DIR=str(data_dir),
        AUTOTRADER_ALGORITHM_DIR=str(algorithm_dir),
        QT_QPA_PLATFORM="offscreen",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_python(
    args: Sequence[str], env: dict[str, str], timeout: float = 60.0, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`python args...` with this interpreter; killed if it outlives `timeout`."""
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


def run_cli_subprocess(
    args: Sequence[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "autotrader_desktop", *args], env, timeout)


def popen_python(
    args: Sequence[str], env: dict[str, str], log: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start `python args...` with stdout and stderr going to the file `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            **kwargs,
        )


def kill(process: subprocess.Popen) -> None:
    """Make sure a child is gone (for `finally` blocks)."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def write_script(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# --- reading the database from outside the app -----------------------------------------


def connect(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / DB_FILENAME, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def query(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    with closing(connect(data_dir)) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    with closing(connect(data_dir)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def count(data_dir: Path, table: str) -> int:
    return scalar(data_dir, f"SELECT COUNT(*) FROM {table}")


def dump(data_dir: Path, tables: Sequence[str] = USER_TABLES) -> dict[str, list[tuple]]:
    """Every row of `tables`, for before/after comparisons."""
    with closing(connect(data_dir)) as conn:
        return {
            table: [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in tables
        }


def instance_rows(data_dir: Path) -> list[sqlite3.Row]:
    return query(data_dir, "SELECT * FROM algorithm_instances ORDER BY id")


def check_accounts(data_dir: Path, *, trades_need_runs: bool = True) -> None:
    """The books balance: every instance's cash, shares and trade count follow from its
    transactions, and trades and executed runs point at each other one to one."""
    with closing(connect(data_dir)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for inst in conn.execute("SELECT * FROM algorithm_instances"):
            trades = conn.execute(
                "SELECT type, shares, price, commission FROM transactions WHERE algorithm_id = ?",
                (inst["id"],),
            ).fetchall()
            cash = inst["initial_capital"]
            shares = 0
            for t in trades:
                if t["type"] == "buy":
                    cash -= t["shares"] * t["price"] + t["commission"]
                    shares += t["shares"]
                else:
                    cash += t["shares"] * t["price"] - t["commission"]
                    shares -= t["shares"]
            name = inst["display_name"]
            assert abs(inst["cash"] - cash) < 1e-6, f"{name}: cash {inst['cash']} != {cash}"
            assert inst["shares"] == shares, f"{name}: shares {inst['shares']} != {shares}"
            assert inst["trade_count"] == len(trades), f"{name}: trade count"
        executed_without_trade = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE outcome = 'executed' AND transaction_id IS NULL"
        ).fetchone()[0]
        assert executed_without_trade == 0
        trade_on_non_executed = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE outcome != 'executed' AND transaction_id IS NOT NULL"
        ).fetchone()[0]
        assert trade_on_non_executed == 0
        if trades_need_runs:
            orphans = conn.execute(
                "SELECT COUNT(*) FROM transactions t"
                " WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.transaction_id = t.id)"
            ).fetchone()[0]
            assert orphans == 0, f"{orphans} transactions without a journal row"
        shared = conn.execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM runs"
            " WHERE transaction_id IS NOT NULL GROUP BY transaction_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert shared == 0, "a transaction is claimed by two runs"
        twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs GROUP BY instance_id, scheduled_at"
            " HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert twice == 0, "a run was recorded twice"


_RETURNING = """
import numpy as np

class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return {value}
"""


def returning(value: str) -> str:
    """Source of an algorithm whose run() returns `value` (a Python expression) every time."""
    return _RETURNING.format(value=value)
