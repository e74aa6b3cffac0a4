"""Probes written the way the web AutoTrader's guide and files are written run unchanged.

Each probe is a file of the algorithm folder in the old style (string time, slicing, state
on self, float n, the old helper functions, a sibling import), run by the engine.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from autotrader_desktop.database import Instance, OutputLine, Run
from autotrader_desktop.feed import market_hours, price_path
from autotrader_desktop.feed.bars import store
from tests.helpers import T0, add_instance, cycle, give_position, write_algorithm

GUIDE_STYLE = """
    from database.db_manager import get_data_for_algorithm, get_latest_price
    from system_databse.system_db_manager import get_transactions, get_algorithm, get_all_algorithms
    from system_databse import card_calculations
    from datetime import datetime, timedelta
    import logging

    logging.basicConfig(level=logging.INFO)
    logger = logging.getLogger(__name__)


    class Algorithm:
        def __init__(self, ticker, initial_capital):
            self.ticker = ticker
            self.initial_capital = initial_capital
            self.lookback_period = 20

        def run(self, current_time, algo_id):
            now = datetime.strptime(current_time, '%Y-%m-%dT%H:%M:%SZ')
            print("clock", current_time[11:16], now.minute)
            bars = get_data_for_algorithm(
                ticker=self.ticker,
                requirement_type='last_n_bars',
                n=self.lookback_period + 1.0,
                before_timestamp=current_time,
            )
            also = get_data_for_algorithm(self.ticker, 'last_n_bars', n='11',
                                          before_timestamp=now)  # naive: UTC
            week = get_data_for_algorithm(
                self.ticker, 'time_range',
                start=(now - timedelta(days=7)).strftime('%Y-%m-%dT%H:%M:%SZ'),
                end=(now - timedelta(days=6)).strftime('%Y-%m-%dT%H:%M:%SZ'))
            print("bars", len(bars), len(also), type(bars[-1]['ohlcv']['v']).__name__,
                  also[-1] == bars[-1], len(week) > 0)
            latest = get_latest_price(self.ticker)
            print("latest", latest['timestamp'] == bars[-1]['timestamp'])
            me = get_algorithm(algo_id)
            print("me", me['ticker'], me['status'], me['initial_capital'], me['created_at'][-1])
            print("all", [a['id'] for a in get_all_algorithms(status='running')])
            transactions = get_transactions(algo_id)
            shares = sum(tx['shares'] if tx['type'] == 'buy' else -tx['shares']
                         for tx in transactions)
            print("tx", [tx['timestamp'] for tx in transactions])
            print("cards", card_calculations.calculate_position(algo_id),
                  card_calculations.calculate_trade_count(algo_id),
                  round(card_calculations.calculate_invested_amount(algo_id), 2),
                  round(card_calculations.calculate_current_value(
                      algo_id, bars[-1]['ohlcv']['c'], self.initial_capital), 2))
            card = card_calculations.get_algorithm_with_calculations(algo_id, 100.0)
            print("card", card['current_shares'], card['trade_count'], round(card['pnl'], 2))
            if shares == 0:
                return ('buy', 3)
            return ('hold', 0)
"""


def output_of(instance) -> list[str]:
    return [
        line.text
        for line in OutputLine.select()
        .where((OutputLine.instance == instance.id) & (OutputLine.stream == "stdout"))
        .order_by(OutputLine.id)
    ]


@pytest.fixture
def history(db, clock):
    """Minute bars around the clock for ten days before T0 (pre-market included)."""
    market_hours.is_open(T0)  # the NYSE calendar loads once, outside the runs' time limit
    start, end = int((T0 - timedelta(days=10)).timestamp()), int(T0.timestamp())
    store([("NVDA", *row) for row in price_path.minute_bars("NVDA", start, end)])


def test_a_guide_style_file_runs_with_the_old_functions_and_shapes(engine, algo_dir, history):
    write_algorithm(algo_dir, "guide_style", GUIDE_STYLE)
    instance = add_instance(engine, "NVDA", "guide_style")
    engine.market_data.prices["NVDA"] = 100.0
    cycle(engine)
    cycle(engine)
    assert Instance.get_by_id(instance.id).status == "running", Instance.get_by_id(
        instance.id
    ).error
    runs = [r.outcome for r in Run.select().order_by(Run.scheduled_at)]
    assert runs == ["executed", "hold"]
    out = output_of(instance)
    first, second = out[:8], out[8:]
    assert first[0] == "clock 15:32 32"
    assert first[1] == "bars 21 11 int True True"
    assert first[2] == "latest True"
    assert first[3] == "me NVDA running 10000.0 Z"
    assert first[4] == f"all [{instance.id}]"
    assert first[5] == "tx []"
    assert second[0] == "clock 15:33 33"
    # Transactions to the second, as the old system wrote them.
    fill_time = (T0 + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert second[5] == f"tx ['{fill_time}']"
    # position, trade count, invested (3 x 100), value at the last close.
    assert second[6].startswith("cards 3 1 300.0 ")
    assert second[7] == "card 3 1 0.0"


def test_writers_fail_the_run_naming_the_function(engine, algo_dir, history):
    write_algorithm(
        algo_dir,
        "writer",
        """
        from system_databse.system_db_manager import record_buy

        class Algorithm:
            def __init__(self, ticker, initial_capital):
                self.ticker = ticker

            def run(self, current_time, algo_id):
                record_buy(algo_id, 5, 100.0)
                return ('hold', 0)
        """,
    )
    instance = add_instance(engine, "NVDA", "writer")
    cycle(engine)
    failed = Instance.get_by_id(instance.id)
    assert failed.status == "failed"
    assert "system_databse.system_db_manager.record_buy() is not available" in failed.error


STATEFUL = """
    from system_databse.system_db_manager import get_transactions

    class Algorithm:
        def __init__(self, ticker, initial_capital):
            self.ticker = ticker
            self.runs = 0

        def run(self, current_time, algo_id):
            self.runs += 1
            return ('buy', self.runs)
"""


def test_legacy_files_get_a_fresh_object_every_run_modern_ones_keep_theirs(engine, algo_dir):
    write_algorithm(algo_dir, "stateful_legacy", STATEFUL)
    declared = 'AUTOTRADER_CONVENTIONS = "modern"\n' + textwrap.dedent(STATEFUL)
    write_algorithm(algo_dir, "stateful_modern", declared)
    legacy = add_instance(engine, "NVDA", "stateful_legacy")
    modern = add_instance(engine, "NVDA", "stateful_modern")
    for _ in range(3):
        cycle(engine)
    # Legacy: self.runs is 1 every run (1+1+1); modern: it counts up (1+2+3).
    assert Instance.get_by_id(legacy.id).shares == 3
    assert Instance.get_by_id(modern.id).shares == 6
    assert Instance.get_by_id(legacy.id).conventions == "legacy"
    assert Instance.get_by_id(modern.id).conventions == "modern"


def test_a_file_without_imports_runs_with_modern_conventions(engine, algo_dir):
    write_algorithm(
        algo_dir,
        "bare",
        """
        class Algorithm:
            def __init__(self, ticker, initial_capital):
                self.seen = []

            def run(self, current_time, algo_id):
                self.seen.append(current_time.minute)  # a datetime, on a kept object
                return ('buy', len(self.seen))
        """,
    )
    instance = add_instance(engine, "NVDA", "bare")
    cycle(engine)
    cycle(engine)
    row = Instance.get_by_id(instance.id)
    assert (row.status, row.shares, row.conventions) == ("running", 3, "modern")


def test_an_old_file_that_held_a_position_sees_it_in_its_transactions(engine, algo_dir):
    write_algorithm(
        algo_dir,
        "seller",
        """
        from system_databse.system_db_manager import get_transactions

        class Algorithm:
            def __init__(self, ticker, initial_capital):
                self.ticker = ticker

            def run(self, current_time, algo_id):
                held = sum(t['shares'] if t['type'] == 'buy' else -t['shares']
                           for t in get_transactions(algo_id))
                return ('sell', held) if held else ('hold', 0)
        """,
    )
    instance = add_instance(engine, "NVDA", "seller")
    give_position(instance, 7, 90.0)
    cycle(engine)
    assert Instance.get_by_id(instance.id).shares == 0
