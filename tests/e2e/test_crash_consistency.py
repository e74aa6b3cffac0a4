"""Accounting under crashes (docs/behaviour.md#accounting): a trade and its effect are one
transaction; no run is ever executed twice.

A child process runs real engine cycles (fixed price, fake clock) and is killed between
the statements that record a trade: `os._exit` from an SQLite trace callback just before
a chosen statement runs, or SIGKILL at a random moment. Afterwards the database is intact,
the books balance, and re-running the same minutes in a new process completes them
exactly once: the result equals that of a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autotrader_desktop import database, instances
from autotrader_desktop.clock import FakeClock
from tests.helpers import (
    Scanned,
    check_accounts,
    connect,
    count,
    dump,
    kill,
    popen_python,
    returning,
    run_python,
    subprocess_env,
    wait_until,
    write_algorithm,
    write_script,
)

T0 = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)
KILLED = 9

# Buys 3 shares when flat, otherwise sells 1: every run of it is a trade, buys and sells.
TRADER = """
from autotrader_desktop.api import get_position


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        shares = get_position(algo_id)["shares"]
        print(f"{self.ticker} {current_time:%H:%M} holding {shares}")
        return ("buy", 3) if shares == 0 else ("sell", 1)
"""

# Always asks for more than it can pay: every run is a rejection.
GREEDY = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        print("greedy")
        return "buy", 1_000_000
"""

HOLDER = returning("'hold', 0")

ALGORITHMS = {"trader": TRADER, "greedy": GREEDY, "holder": HOLDER}

# Runs engine cycles for minutes FIRST .. FIRST+COUNT-1 after T0 at a fixed price of 100.
# With a statement prefix, exits with code 9 just before the OCCURRENCE-th statement that
# starts with it (the journal writes on the engine thread's connection).
CHILD = """
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autotrader_desktop import database
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.engine import Engine
from autotrader_desktop.settings import Settings

T0 = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)


class FixedPriceMarket:
    async def start(self):
        pass

    async def stop(self):
        pass

    def subscribe(self, symbol):
        pass

    def unsubscribe(self, symbol):
        pass

    source = "sim/42"

    def start_preparing(self, symbols):
        return {}

    def ensure_history(self, symbol, start, end, deadline):
        return False

    def latest_price(self, symbol):
        return 100.0

    def latest_prices(self, symbols):
        return dict.fromkeys(symbols, 100.0)


data_dir, algorithm_dir = Path(sys.argv[1]), Path(sys.argv[2])
first, count = int(sys.argv[3]), int(sys.argv[4])
prefix, occurrence = (sys.argv[5], int(sys.argv[6])) if len(sys.argv) > 5 else (None, 0)
# The engine lock's directory: the data directory, unless a test bypasses the lock.
lock_dir = Path(os.environ.get("TEST_ENGINE_LOCK_DIR") or data_dir)

database.open_database(data_dir)
clock = FakeClock(T0)
engine = Engine(
    Settings(run_time_limit=60), algorithm_dir, clock, FixedPriceMarket(), lock_dir
)
engine.open()
if prefix:
    seen = 0

    def trace(statement):
        global seen
        if statement.lstrip().upper().startswith(prefix):
            seen += 1
            if seen == occurrence:
                os._exit(9)

    database.db.connection().set_trace_callback(trace)
for minute in range(first, first + count):
    when = T0 + timedelta(minutes=minute)
    clock.set(when)
    engine.cycle(when)
    print(f"minute {minute} done", flush=True)
engine.close()
database.close_database()
"""


class World:
    """A data directory with instances of the three algorithms, and a child to run cycles."""

    def __init__(self, root: Path, script: Path, instances_per_algorithm: int = 2) -> None:
        self.data = root / "data"
        self.algorithms = root / "algorithm"
        self.algorithms.mkdir(parents=True)
        self.script = script
        self.env = subprocess_env(self.data, self.algorithms)
        for name, source in ALGORITHMS.items():
            write_algorithm(self.algorithms, name, source)
        database.open_database(self.data)
        try:
            clock = FakeClock(T0)
            symbols = ["NVDA", "AMD", "INTC", "MSFT", "AAPL", "TSLA", "META", "GOOG"]
            for n in range(instances_per_algorithm):
                for name in ALGORITHMS:
                    instances.create(
                        symbols[n % len(symbols)],
                        name,
                        1_000,
                        algorithms=[Scanned(name)],
                        starting_balance=1_000_000,
                        clock=clock,
                    )
        finally:
            database.close_database()

    def args(self, first: int, count: int) -> list[str]:
        return [str(self.script), str(self.data), str(self.algorithms), str(first), str(count)]

    def cycles(self, first: int, count: int, kill_at: tuple[str, int] | None = None):
        extra = [kill_at[0], str(kill_at[1])] if kill_at else []
        return run_python([*self.args(first, count), *extra], self.env, timeout=120)

    def start_cycles(
        self, first: int, count: int, log: Path, lock_dir: Path | None = None
    ) -> subprocess.Popen:
        env = {**self.env, "TEST_ENGINE_LOCK_DIR": str(lock_dir)} if lock_dir else self.env
        return popen_python(self.args(first, count), env, log)


def state(data_dir: Path) -> dict[str, list[tuple]]:
    """What must come out the same whether or not a process was killed on the way
    (row ids and wall-clock times aside)."""
    with closing(connect(data_dir)) as conn:

        def rows(sql: str) -> list[tuple]:
            return [tuple(row) for row in conn.execute(sql)]

        return {
            "instances": rows(
                "SELECT id, status, ROUND(cash, 6), shares, trade_count, code_version, error,"
                " last_decision FROM algorithm_instances ORDER BY id"
            ),
            "transactions": rows(
                "SELECT algorithm_id, timestamp, type, shares, price, commission"
                " FROM transactions ORDER BY algorithm_id, timestamp, type"
            ),
            "runs": rows(
                "SELECT instance_id, scheduled_at, code_version, decision, outcome, reason,"
                " fill_price, transaction_id IS NOT NULL FROM runs"
                " ORDER BY instance_id, scheduled_at"
            ),
            "output": rows(
                "SELECT instance_id, stream, text FROM output_lines ORDER BY instance_id, id"
            ),
        }


@pytest.fixture(scope="module")
def child_script(tmp_path_factory) -> Path:
    return write_script(tmp_path_factory.mktemp("child") / "run_cycles.py", CHILD)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, child_script):
    """Minutes 0-3 run without interruption."""
    world = World(tmp_path_factory.mktemp("reference"), child_script)
    result = world.cycles(0, 4)
    assert result.returncode == 0, result.stderr
    return state(world.data)


KILL_POINTS = [
    ("BEGIN IMMEDIATE", 1),
    ("INSERT INTO TRANSACTIONS", 1),
    ("INSERT INTO TRANSACTIONS", 2),
    ("INSERT INTO RUNS", 1),
    ("INSERT INTO RUNS", 2),
    ("UPDATE ALGORITHM_INSTANCES", 1),
    ("UPDATE ALGORITHM_INSTANCES", 2),
    ("INSERT INTO OUTPUT_LINES", 1),
    ("COMMIT", 1),
    # Some of the records of minute 2 are committed, the rest are not.
    ("COMMIT", 2),
]


# Statements every recorded batch runs. Each algorithm's results come from its own host, so
# a cycle may be recorded in several batches: a trade or printed output is in the trader's,
# and other hosts' batches of the same minute may be committed before it.
EVERY_BATCH = ("BEGIN IMMEDIATE", "INSERT INTO RUNS", "UPDATE ALGORITHM_INSTANCES", "COMMIT")


@pytest.mark.parametrize(
    "kill_at", KILL_POINTS, ids=[f"{prefix.split()[-1].lower()}-{n}" for prefix, n in KILL_POINTS]
)
def test_killed_while_recording_a_trade(tmp_path, child_script, reference, kill_at):
    world = World(tmp_path, child_script)
    warmup = world.cycles(0, 2)  # positions are open: minute 2 sells, minute 3 sells
    assert warmup.returncode == 0, warmup.stderr
    before = state(world.data)

    killed = world.cycles(2, 2, kill_at)
    assert killed.returncode == KILLED, f"not killed at {kill_at}: {killed.stderr}"
    check_accounts(world.data)
    after_kill = state(world.data)
    if kill_at[1] == 1 and kill_at[0] in EVERY_BATCH:
        assert after_kill == before  # nothing of the first batch half-written
    else:  # the kill may come after a batch of minute 2 was committed (never in minute 3)
        new_runs = [r for r in after_kill["runs"] if r not in before["runs"]]
        assert {r[1] for r in new_runs} <= {"2024-03-13T15:33:02.000000Z"}

    rerun = world.cycles(2, 2)
    assert rerun.returncode == 0, rerun.stderr
    check_accounts(world.data)
    assert state(world.data) == reference

    everything = dump(world.data)
    third = world.cycles(2, 2)
    assert third.returncode == 0, third.stderr
    assert dump(world.data) == everything  # a recorded run is never run again


def test_concurrent_processes_record_each_run_once(tmp_path, child_script, reference):
    """Beneath the engine lock (which keeps a second engine from starting at all), the
    journal itself records each run once whichever process gets there: three engines,
    each with a lock directory of its own, cycle the same minutes of one database."""
    world = World(tmp_path, child_script)
    logs = [tmp_path / f"child{n}.log" for n in range(3)]
    children = [
        world.start_cycles(0, 4, log, lock_dir=tmp_path / f"lock{n}") for n, log in enumerate(logs)
    ]
    try:
        for child, log in zip(children, logs, strict=True):
            assert child.wait(timeout=120) == 0, log.read_text()
    finally:
        for child in children:
            kill(child)
    check_accounts(world.data)
    assert count(world.data, "runs") == count(world.data, "algorithm_instances") * 4
    assert state(world.data) == reference


STRESS_MINUTES = 120
STRESS_INSTANCES = 6  # per algorithm


@pytest.fixture(scope="module")
def stress_reference(tmp_path_factory, child_script):
    world = World(tmp_path_factory.mktemp("stress-reference"), child_script, STRESS_INSTANCES)
    result = world.cycles(0, STRESS_MINUTES)
    assert result.returncode == 0, result.stderr
    return state(world.data)


def test_sigkill_at_random_moments(tmp_path, child_script, stress_reference):
    # A failure names its seed; CRASH_TEST_SEED=<seed> replays the same kill moments (not
    # AUTOTRADER_*: the test environment clears those).
    seed = int(os.environ.get("CRASH_TEST_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"test_sigkill_at_random_moments: seed {seed} (CRASH_TEST_SEED to replay)")
    rng = random.Random(seed)
    world = World(tmp_path, child_script, STRESS_INSTANCES)
    per_minute = 3 * STRESS_INSTANCES
    total = per_minute * STRESS_MINUTES
    for round_number in range(3):
        # Each round starts over from minute 0 (recorded minutes are skipped) and is
        # killed once a random number of further runs have been recorded.
        recorded = count(world.data, "runs")
        target = recorded + rng.randrange(1, total // 4)
        log = tmp_path / f"round{round_number}.log"
        child = world.start_cycles(0, STRESS_MINUTES, log)
        try:
            wait_until(
                lambda child=child, target=target: (
                    child.poll() is not None or count(world.data, "runs") >= target
                ),
                timeout=120,
                interval=0.005,
                message=f"{target} runs (seed {seed})",
            )
            assert child.poll() is None, f"finished before the kill (seed {seed})"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            kill(child)
        check_accounts(world.data)
        assert count(world.data, "runs") < total

    final = world.cycles(0, STRESS_MINUTES)
    assert final.returncode == 0, final.stderr
    check_accounts(world.data)
    assert count(world.data, "runs") == total
    assert state(world.data) == stress_reference, f"seed {seed}"


def test_reference_run_trades_as_designed(reference):
    """The scenario above really contains buys, sells, rejections, holds and output."""
    outcomes = json.dumps(reference["runs"])
    assert all(word in outcomes for word in ('"executed"', '"rejected"', '"hold"'))
    for trader in (1, 4):
        trades = [t[2:4] for t in reference["transactions"] if t[0] == trader]
        assert trades == [("buy", 3), ("sell", 1), ("sell", 1), ("sell", 1)]
    assert len(reference["output"]) == 16  # traders and greedies print every minute
