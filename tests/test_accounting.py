"""Instances and accounting (docs/behaviour.md#instances, #accounting): sub-accounts,
rejections, stop liquidation, the account's cash."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from autotrader_desktop import accounting, instances
from autotrader_desktop.broker import MAX_SHARES, Fill, OrderRequest, Rejection
from autotrader_desktop.broker.paper import PaperBroker
from autotrader_desktop.database import Instance, Run, Transaction
from autotrader_desktop.decision import Decision
from autotrader_desktop.instances import InstanceError
from tests.helpers import Scanned, add_instance, cycle, scripted, write_algorithm


def fresh(instance):
    return Instance.get_by_id(instance.id)


def test_buy_and_sell_move_cash_and_shares(engine, algo_dir, market):
    scripted(algo_dir, "trader", ("buy", 10), ("sell", 4), ("hold", 0))
    instance = add_instance(engine, "NVDA", "trader", 5_000)
    market.prices["NVDA"] = 100.0
    cycle(engine)
    assert (fresh(instance).cash, fresh(instance).shares) == (4_000.0, 10)
    market.prices["NVDA"] = 110.0
    cycle(engine)
    now = fresh(instance)
    assert (now.cash, now.shares, now.trade_count) == (4_440.0, 6, 2)
    assert accounting.instance_value(now) == pytest.approx(4_440 + 6 * 110)
    market.prices["NVDA"] = 120.0
    cycle(engine)  # a hold still refreshes the last price
    assert accounting.instance_value(fresh(instance)) - 5_000 == pytest.approx(160.0)


def test_commission_and_slippage(make_engine, algo_dir, market):
    engine = make_engine(commission=1.5, slippage_bps=10)
    scripted(algo_dir, "trader", ("buy", 10), ("sell", 10))
    instance = add_instance(engine, "NVDA", "trader", 5_000)
    market.prices["NVDA"] = 100.0
    cycle(engine)
    buy = Transaction.get(Transaction.instance == instance.id)
    assert (buy.price, buy.commission) == (100.1, 1.5)
    assert fresh(instance).cash == pytest.approx(5_000 - 1_001 - 1.5)
    cycle(engine)
    assert fresh(instance).cash == pytest.approx(5_000 - 1_001 - 1.5 + 999 - 1.5)


def test_insufficient_cash_is_rejected_and_the_instance_keeps_running(engine, algo_dir, market):
    scripted(algo_dir, "greedy", ("buy", 1_000), ("buy", 1))
    instance = add_instance(engine, "NVDA", "greedy", 500)
    market.prices["NVDA"] = 100.0
    cycle(engine)
    run = Run.get(Run.instance == instance.id)
    assert run.outcome == "rejected"
    assert "insufficient cash" in run.reason and "100,000.00" in run.reason
    assert (fresh(instance).status, fresh(instance).cash, fresh(instance).shares) == (
        "running",
        500.0,
        0,
    )
    cycle(engine)
    assert fresh(instance).shares == 1


def test_selling_more_than_held_is_rejected_no_shorting(engine, algo_dir):
    scripted(algo_dir, "shorter", ("sell", 5))
    instance = add_instance(engine, "NVDA", "shorter", 500)
    cycle(engine)
    run = Run.get(Run.instance == instance.id)
    assert (run.outcome, run.reason) == ("rejected", "insufficient shares: selling 5, holding 0")
    assert fresh(instance).shares == 0 and Transaction.select().count() == 0


def test_no_price_yet_is_a_rejection(engine, algo_dir, market):
    scripted(algo_dir, "trader", ("buy", 1))
    market.prices["NVDA"] = None
    instance = add_instance(engine, "NVDA", "trader", 500)
    cycle(engine)
    assert Run.get(Run.instance == instance.id).reason == "no price for NVDA yet"


def test_stop_sells_the_open_position_at_the_last_price(engine, algo_dir, market):
    scripted(algo_dir, "trader", ("buy", 10), ("hold", 0))
    instance = add_instance(engine, "NVDA", "trader", 5_000)
    market.prices["NVDA"] = 100.0
    cycle(engine)
    market.prices["NVDA"] = 90.0
    stopped = engine.stop_instance(instance.id)
    assert (stopped.status, stopped.shares, stopped.cash) == ("stopped", 0, 4_900.0)
    assert stopped.stopped_at == engine.clock.now()
    sell = Transaction.select().where(Transaction.type == "sell").get()
    assert (sell.shares, sell.price) == (10, 90.0)
    assert market.subscriptions["NVDA"] == 0
    cycle(engine)
    assert Run.select().count() == 1  # stopped instances are not run
    with pytest.raises(InstanceError, match="already stopped"):
        engine.stop_instance(instance.id)


def test_available_cash_and_account_value(engine, algo_dir, market):
    scripted(algo_dir, "trader", ("buy", 10), ("hold", 0))
    write_algorithm(algo_dir, "broken", "raise RuntimeError('x')\n")
    market.prices["NVDA"] = 100.0
    a = add_instance(engine, "NVDA", "trader", 20_000)
    b = add_instance(engine, "NVDA", "trader", 30_000)
    c = add_instance(engine, "NVDA", "broken", 5_000)
    assert accounting.available_cash(100_000) == 45_000
    cycle(engine)
    assert fresh(c).status == "failed"
    market.prices["NVDA"] = 120.0
    engine.stop_instance(a.id)  # realizes +200
    account = engine.account()
    assert account.available_cash == pytest.approx(100_000 + 200 - 30_000 - 5_000)
    assert account.value == pytest.approx(account.available_cash + 30_000 + 200 + 5_000)
    # Deleting history does not change the account's cash.
    engine.delete_instance(a.id)
    assert engine.account().available_cash == pytest.approx(account.available_cash)
    engine.delete_instance(c.id)  # failed, flat: its capital comes back
    assert engine.account().available_cash == pytest.approx(account.available_cash + 5_000)
    assert Instance.get_or_none(Instance.id == b.id) is not None


def test_delete_removes_the_instance_and_its_history(engine, algo_dir):
    scripted(algo_dir, "trader", ("buy", 1), ("hold", 0))
    instance = add_instance(engine, "NVDA", "trader")
    cycle(engine)
    with pytest.raises(InstanceError, match="running; stop it first"):
        engine.delete_instance(instance.id)
    engine.stop_instance(instance.id)
    engine.delete_instance(instance.id)
    assert Instance.select().count() == Transaction.select().count() == Run.select().count() == 0


@pytest.mark.parametrize(
    ("symbol", "capital", "message"),
    [
        ("", 100, "enter a symbol"),
        ("TOOLONGSYMBOL", 100, "1 to 10 letters"),
        ("NV1DA", 100, "1 to 10 letters"),
        ("NV DA", 100, "1 to 10 letters"),
        ("NVDA", 0, "greater than 0"),
        ("NVDA", -5, "greater than 0"),
        ("NVDA", math.nan, "finite"),
        ("NVDA", math.inf, "finite"),
        ("NVDA", "abc", "not a number"),
        ("NVDA", 100_000.01, "more than the available cash"),
    ],
)
def test_bad_input_creates_nothing(engine, symbol, capital, message):
    with pytest.raises(InstanceError, match=message):
        instances.create(
            symbol,
            "x",
            capital,
            algorithms=[Scanned("x")],
            starting_balance=100_000,
            clock=engine.clock,
        )
    assert Instance.select().count() == 0


def test_unavailable_or_unknown_algorithm_creates_nothing(engine):
    scan = [Scanned("good"), Scanned("bad", False, "SyntaxError: invalid syntax (line 3)")]
    with pytest.raises(InstanceError, match=r"not available: SyntaxError.*line 3"):
        instances.create(
            "NVDA", "bad", 100, algorithms=scan, starting_balance=1e5, clock=engine.clock
        )
    with pytest.raises(InstanceError, match="no algorithm named 'nope'; available: good"):
        instances.create(
            "NVDA", "nope", 100, algorithms=scan, starting_balance=1e5, clock=engine.clock
        )
    assert Instance.select().count() == 0


def test_creation_writes_one_running_row(engine):
    instance = instances.create(
        " nvda ",
        "sma",
        "2,500",
        algorithms=[Scanned("sma")],
        starting_balance=1e5,
        clock=engine.clock,
    )
    local = engine.clock.now().astimezone()
    assert instance.display_name == f"NVDA_sma_{local:%Y%m%d_%H%M%S}"
    assert (instance.symbol, instance.status, instance.initial_capital, instance.cash) == (
        "NVDA",
        "running",
        2_500.0,
        2_500.0,
    )
    twin = instances.create(
        "NVDA", "sma", 100, algorithms=[Scanned("sma")], starting_balance=1e5, clock=engine.clock
    )
    assert twin.display_name == instance.display_name + "_2"  # duplicates allowed, names unique


def _request(action: str, shares: int, cash: float, held: int, price: float) -> OrderRequest:
    return OrderRequest(1, "X", Decision(action, shares), cash, held, price, datetime.now(UTC))


def test_broker_is_pure():
    broker = PaperBroker()
    assert broker.execute(_request("buy", 2, 100.0, 0, 50.0)) == Fill("buy", 2, 50.0, 0.0, 0.0, 2)
    assert isinstance(broker.execute(_request("buy", 3, 100.0, 0, 50.0)), Rejection)
    selling = _request("sell", 1, 0.0, 1, 1.0)
    assert isinstance(PaperBroker(commission=5).execute(selling), Rejection)


def test_order_value_cap_rejects_before_anything_is_bought():
    capped = PaperBroker(max_order_value=1_000).execute(_request("buy", 11, 5_000.0, 0, 100.0))
    assert isinstance(capped, Rejection)
    assert "1,100.00" in capped.reason and "cap 1,000.00" in capped.reason
    within = _request("buy", 10, 5_000.0, 0, 100.0)
    assert isinstance(PaperBroker(max_order_value=1_000).execute(within), Fill)


@pytest.mark.parametrize("last", [0.0, -1.0, float("nan"), float("inf")])
def test_no_fill_at_a_price_that_is_not_finite_and_positive(last):
    broker = PaperBroker()
    for action in ("buy", "sell"):
        result = broker.execute(_request(action, 1, 1e6, 5, last))
        assert isinstance(result, Rejection), (action, last)
        assert "no usable price for X" in result.reason


def test_slippage_never_makes_a_price_zero_or_negative():
    """9,999 bps is the highest slippage the settings accept: a sell gets 0.01 % of the
    price, and where that rounds to 0 (1e-6 does too) there is no fill at all."""
    broker = PaperBroker(slippage_bps=9_999)
    fill = broker.execute(_request("sell", 1, 0.0, 1, 100.0))
    assert isinstance(fill, Fill) and fill.price == 0.01
    assert isinstance(broker.execute(_request("sell", 1, 0.0, 1, 0.1)), Rejection)
    assert isinstance(PaperBroker().execute(_request("buy", 1, 1e6, 0, 1e-6)), Rejection)


def test_positions_are_bounded_so_they_fit_in_sqlite():
    broker = PaperBroker()
    huge = broker.execute(_request("buy", 2**63, 1e30, 0, 1.0))
    assert isinstance(huge, Rejection) and "order too large" in huge.reason
    assert isinstance(broker.execute(_request("buy", 2, 1e30, MAX_SHARES - 1, 1.0)), Rejection)
    assert isinstance(broker.execute(_request("buy", 1, 1e30, MAX_SHARES - 1, 1.0)), Fill)
