"""Runs and failures (docs/behaviour.md#runs-and-failures): runs, failures and their
isolation, return validation, time limit, journal, output."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby

import pytest

from autotrader_desktop.database import Instance, OutputLine, Run, Transaction
from tests.helpers import (
    add_instance,
    cycle,
    query,
    returning,
    run_cli_subprocess,
    subprocess_env,
    write_algorithm,
)

HOLDER = returning("'buy', 1")


def write_returning(algo_dir, name, value):
    write_algorithm(algo_dir, name, returning(value))


def status(instance):
    return Instance.get_by_id(instance.id)


FAULTS = {
    "raise_in_run": (
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital): pass\n"
        "    def run(self, current_time, algo_id):\n"
        "        raise RuntimeError('boom in run')\n",
        "RuntimeError: boom in run",
    ),
    "raise_in_init": (
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital):\n"
        "        raise ValueError('bad init')\n"
        "    def run(self, current_time, algo_id): return 'hold', 0\n",
        "ValueError: bad init",
    ),
    "raise_on_import": (
        "import nonexistent_module_xyz\nclass Algorithm: pass\n",
        "ModuleNotFoundError: No module named 'nonexistent_module_xyz'",
    ),
    "syntax_error": ("class Algorithm:\n    def run(self\n", "SyntaxError:"),
    "no_class": ("class Strategy:\n    pass\n", "no top-level class named Algorithm"),
    "sys_exit": (
        "import sys\n"
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital): pass\n"
        "    def run(self, current_time, algo_id): sys.exit(3)\n",
        "algorithm called sys.exit(3)",
    ),
    "garbage_return": (returning("object()"), "run() returned <object object"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_fails_only_its_instance(engine, algo_dir, fault):
    source, message = FAULTS[fault]
    (algo_dir / "faulty.py").write_text(source)
    write_algorithm(algo_dir, "good", HOLDER)
    bad = add_instance(engine, "NVDA", "faulty")
    good = add_instance(engine, "NVDA", "good")
    report = cycle(engine)
    assert report.outcomes == {"failed": 1, "executed": 1}
    failed = status(bad)
    assert failed.status == "failed"
    assert message in failed.error
    run = Run.get(Run.instance == bad.id)
    assert run.outcome == "failed" and message in run.reason
    assert run.traceback.startswith("Traceback (most recent call last):")
    assert "orchestrator.py" not in run.traceback
    assert status(good).status == "running"
    assert status(good).shares == 1


def test_traceback_points_into_the_users_file(engine, algo_dir):
    write_algorithm(
        algo_dir,
        "deep",
        """
        def helper(x):
            return 1 / x

        class Algorithm:
            def __init__(self, ticker, initial_capital):
                pass

            def run(self, current_time, algo_id):
                return helper(0)
    """,
    )
    instance = add_instance(engine, "NVDA", "deep")
    cycle(engine)
    trace = Run.get(Run.instance == instance.id).traceback
    assert "deep.py" in trace and "return 1 / x" in trace and "ZeroDivisionError" in trace


def test_failed_instance_is_not_rerun_until_restart(engine, algo_dir):
    path = write_algorithm(algo_dir, "flaky", FAULTS["raise_in_run"][0])
    instance = add_instance(engine, "NVDA", "flaky")
    cycle(engine)
    cycle(engine)
    assert Run.select().where(Run.instance == instance.id).count() == 1
    path.write_text(HOLDER)
    assert engine.restart() == 1
    assert status(instance).status == "running"
    cycle(engine)
    runs = list(Run.select().where(Run.instance == instance.id).order_by(Run.id))
    assert [r.outcome for r in runs] == ["failed", "executed"]  # the failure stays in history


@pytest.mark.parametrize(
    "value",
    [
        "None",
        "'buy'",
        "('buy',)",
        "('buy', 1, 2)",
        "('BUY', 1)",
        "('purchase', 1)",
        "('buy', 1.0)",
        "('buy', True)",
        "('buy', -1)",
        "('buy', '1')",
        "{'buy': 1}",
        "(1, 'buy')",
        "('buy', None)",
    ],
)
def test_invalid_return_fails_with_the_value_quoted(engine, algo_dir, value):
    write_returning(algo_dir, "weird", value)
    instance = add_instance(engine, "NVDA", "weird")
    cycle(engine)
    failed = status(instance)
    assert failed.status == "failed"
    assert f"run() returned {eval(value)!r}" in failed.error


@pytest.mark.parametrize(
    ("value", "outcome", "shares"),
    [
        ("('buy', 2)", "executed", 2),
        ("['buy', 3]", "executed", 3),
        ("('buy', np.int64(4))", "executed", 4),
        ("('hold', 0)", "hold", 0),
        ("('buy', 0)", "hold", 0),
        ("('sell', 0)", "hold", 0),
    ],
)
def test_valid_returns(engine, algo_dir, value, outcome, shares):
    write_returning(algo_dir, "fine", value)
    instance = add_instance(engine, "NVDA", "fine")
    cycle(engine)
    assert Run.get(Run.instance == instance.id).outcome == outcome
    assert status(instance).shares == shares


HANGS = """
import os, time
from pathlib import Path

RELEASE = Path(__file__).with_name("release")

class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        while not RELEASE.exists():  # stands in for an algorithm stuck forever
            time.sleep(0.01)
        return "buy", 1
"""


def test_time_limit_fails_a_hung_run_without_delaying_others(make_engine, algo_dir):
    engine = make_engine(run_time_limit=0.5)
    write_algorithm(algo_dir, "hang", HANGS)
    write_algorithm(algo_dir, "good", HOLDER)
    hung = add_instance(engine, "NVDA", "hang")
    goods = [add_instance(engine, "NVDA", "good") for _ in range(3)]
    batches = []
    engine.events.runs_recorded.connect(lambda recorded: batches.append(recorded))
    try:
        report = cycle(engine)
        assert report.outcomes == {"executed": 3, "failed": 1}
        assert "time limit" in status(hung).error
        # The good instances' orders were recorded before the hung one was given up on.
        first_ids = {r.instance_id for r in batches[0]}
        assert first_ids <= {g.id for g in goods}
        assert batches[-1][-1].instance_id == hung.id
        # The pool replaced the stuck worker: the next cycle still runs everyone else.
        assert cycle(engine).outcomes == {"executed": 3}
    finally:
        (algo_dir / "release").touch()


def test_output_is_captured_per_instance(engine, algo_dir):
    write_algorithm(
        algo_dir,
        "talker",
        """
        import logging, sys

        class Algorithm:
            def __init__(self, ticker, initial_capital):
                self.ticker = ticker
                print("created for", ticker)

            def run(self, current_time, algo_id):
                print(f"run {self.ticker}")
                print("oops", file=sys.stderr)
                logging.getLogger(__name__).warning("careful %s", self.ticker)
                return "hold", 0
    """,
    )
    a = add_instance(engine, "NVDA", "talker")
    b = add_instance(engine, "AAPL", "talker")
    cycle(engine)

    def lines(instance):
        return [
            (o.stream, o.text)
            for o in OutputLine.select()
            .where(OutputLine.instance == instance.id)
            .order_by(OutputLine.id)
        ]

    assert lines(a)[:3] == [
        ("stdout", "created for NVDA"),
        ("stdout", "run NVDA"),
        ("stderr", "oops"),
    ]
    assert lines(a)[3][0] == "log" and "careful NVDA" in lines(a)[3][1]
    assert ("stdout", "run AAPL") in lines(b) and ("stdout", "run NVDA") not in lines(b)


def test_every_run_is_journaled(engine, algo_dir, market):
    write_algorithm(algo_dir, "buyer", HOLDER)
    market.prices["NVDA"] = 123.45
    instance = add_instance(engine, "NVDA", "buyer")
    report = cycle(engine)
    run = Run.get(Run.instance == instance.id)
    assert run.scheduled_at == report.scheduled_at
    assert run.duration_ms >= 0
    assert len(run.code_version) == 64
    assert (run.decision, run.outcome, run.fill_price) == ("buy 1", "executed", 123.45)
    trade = Transaction.get_by_id(run.transaction_id)
    assert (trade.type, trade.shares, trade.price) == ("buy", 1, 123.45)


def test_run_receives_scheduled_time_and_its_id(engine, algo_dir):
    write_algorithm(
        algo_dir,
        "echo",
        """
        class Algorithm:
            def __init__(self, ticker, initial_capital):
                pass

            def run(self, current_time, algo_id):
                print(repr(current_time), algo_id)
                return "hold", 0
    """,
    )
    instance = add_instance(engine, "NVDA", "echo")
    scheduled = datetime(2024, 3, 13, 15, 32, 2, tzinfo=UTC)
    engine.clock.set(scheduled)
    engine.cycle(scheduled)
    text = OutputLine.get(OutputLine.instance == instance.id).text
    assert text == f"{scheduled!r} {instance.id}"


def test_a_run_is_never_executed_twice(engine, algo_dir):
    write_algorithm(algo_dir, "buyer", HOLDER)
    instance = add_instance(engine, "NVDA", "buyer")
    when = engine.clock.now()
    engine.cycle(when)
    assert engine.cycle(when).outcomes == {}
    assert status(instance).shares == 1
    assert Run.select().count() == 1


def test_instances_added_or_stopped_elsewhere_are_picked_up_next_cycle(engine, algo_dir):
    write_algorithm(algo_dir, "buyer", HOLDER)
    first = add_instance(engine, "NVDA", "buyer")
    # Another process's writes: straight to the database, bypassing this engine.
    other = Instance.create(
        display_name="other",
        algorithm="buyer",
        symbol="TSLA",
        initial_capital=1000,
        status="running",
        created_at=engine.clock.now(),
        cash=1000,
    )
    cycle(engine)
    assert {r.instance_id for r in Run.select()} == {first.id, other.id}
    assert engine.market_data.subscriptions["TSLA"] == 1
    Instance.update(status="stopped").where(Instance.id == other.id).execute()
    report = cycle(engine)
    assert report.outcomes == {"executed": 1}
    assert engine.market_data.subscriptions["TSLA"] == 0


CHATTY = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        for i in range({lines}):
            print(f"{{current_time:%H:%M}} line {{i}}")
        return "hold", 0
"""


def test_captured_output_is_capped_and_rotated_per_instance(tmp_path):
    """AUTOTRADER_OUTPUT_LINES_KEPT=150: a chatty instance keeps its newest 150 lines
    (within the 10 % it may run over between rotations), a quiet one keeps all of its."""
    data, folder = tmp_path / "data", tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "chatty", CHATTY.format(lines=100))
    write_algorithm(folder, "quiet", CHATTY.format(lines=2))
    env = subprocess_env(data, folder, AUTOTRADER_OUTPUT_LINES_KEPT="150")
    for algorithm in ("chatty", "quiet"):
        assert run_cli_subprocess(["add", "NVDA", algorithm, "100"], env).returncode == 0
    result = run_cli_subprocess(["cycle", "--count", "4"], env)
    assert result.returncode == 0, result.stderr
    kept = {
        instance: [row["text"] for row in rows]
        for instance, rows in groupby(
            query(data, "SELECT instance_id, text FROM output_lines ORDER BY instance_id, id"),
            key=lambda row: row["instance_id"],
        )
    }
    runs = [row[0] for row in query(data, "SELECT scheduled_at FROM runs WHERE instance_id = 1")]
    assert len(runs) == 4
    assert len(kept[1]) == 150
    # The newest: all 100 lines of the last run, the last 50 of the run before.
    assert kept[1][-1].endswith("line 99") and kept[1][-100].endswith("line 0")
    assert kept[1][0].endswith("line 50")
    assert len(kept[2]) == 8


def test_output_lines_kept_is_bounded(tmp_path):
    env = subprocess_env(tmp_path / "data", tmp_path, AUTOTRADER_OUTPUT_LINES_KEPT="10")
    result = run_cli_subprocess(["cycle"], env)
    assert result.returncode == 2
    assert "output_lines_kept must be between 100 and 1,000,000" in result.stderr
