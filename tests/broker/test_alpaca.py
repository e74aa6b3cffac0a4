"""Trading through Alpaca: every fault of the Trading API, and the books still agree.

Each test drives a real engine (orchestrator, journal, Alpaca broker with its order desk and
trade_updates stream) against the stand-in, and compares the stand-in's orders, executions,
positions and cash with the database.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal

import pytest

from autotrader_desktop import database, instances
from autotrader_desktop.broker import orders
from autotrader_desktop.database import Instance, Order, Run
from tests.alpaca_trading_standin import (
    SECRET,
    Fault,
    Plan,
    drop_after_accept,
    drop_before_accept,
    rate_limited,
    server_error,
    slow_answer,
)
from tests.helpers import (
    Scanned,
    alpaca_books_differences,
    alpaca_broker,
    count,
    cycle,
    scripted,
    wait_until,
)


def trader(algo_dir, *decisions) -> str:
    scripted(algo_dir, "trader", *decisions)
    return "trader"


def add(engine, symbol="NVDA", capital=50_000.0) -> Instance:
    return instances.create(
        symbol,
        "trader",
        capital,
        algorithms=[Scanned("trader")],
        starting_balance=engine.settings.starting_balance,
        clock=engine.clock,
        broker_cash=engine.broker.account_cash(),
        check_symbol=engine.broker.check_symbol,
    )


def settle(standin, timeout: float = 60.0) -> None:
    """Wait until neither side has an order that is still open."""
    wait_until(
        lambda: not orders.unfinished() and standin.open_orders() == 0,
        timeout=timeout,
        message="every order final at the broker and in the database",
    )


def runs(instance: Instance) -> list[Run]:
    return list(Run.select().where(Run.instance == instance.id).order_by(Run.scheduled_at))


def fresh(instance: Instance) -> Instance:
    return Instance.get_by_id(instance.id)


FAULTS = {
    "none": [],
    "accepted, then the connection dropped": [drop_after_accept()],
    "connection dropped before the order arrived": [drop_before_accept()],
    "429 with Retry-After": [rate_limited(0.5)],
    "500, order not created": [server_error()],
    "500 after the order was accepted": [server_error(accept=True)],
    "accepted, answer after the client's timeout": [slow_answer(2.5)],
    "dropped after accept, and the lookups fail (500, 429)": [
        drop_after_accept(),
        server_error(method="GET", path="/v2/orders:by_client_order_id"),
        rate_limited(0.3, method="GET", path="/v2/orders:by_client_order_id"),
    ],
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_decision_becomes_exactly_one_order_whatever_the_api_does(
    fault, alpaca_engine, algo_dir, standin
):
    # No stream: an event arriving before the retry would hide a blind re-send.
    engine = alpaca_engine(timeout=1.0, stream=False)
    trader(algo_dir, ("buy", 10), ("sell", 4), ("hold", 0))
    instance = add(engine)
    for step in range(2):
        standin.fault(*FAULTS[fault])
        cycle(engine)
        settle(standin)
        assert len(standin.all_orders()) == step + 1
    assert alpaca_books_differences(standin, database.data_dir()) == []
    bought, sold = runs(instance)
    assert (bought.outcome, bought.fill_price) == ("executed", 100.0)
    assert bought.reason.startswith("filled 10 at 100.0000")
    assert sold.outcome == "executed"
    assert (fresh(instance).shares, fresh(instance).cash) == (6, 50_000.0 - 600.0)


def test_429_is_honoured_before_trying_again(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 1))
    add(engine)
    standin.fault(rate_limited(1.5))
    cycle(engine)
    settle(standin)
    posts = [t for t, method, path in standin.requests if (method, path) == ("POST", "/v2/orders")]
    assert len(posts) == 2
    assert posts[1] - posts[0] >= 1.5 - 0.05
    assert standin.duplicate_posts == 0


def test_partial_fills_are_booked_as_they_come_at_alpacas_prices(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine(reconcile_every=3600)  # the stream alone
    trader(algo_dir, ("buy", 10), ("hold", 0))
    instance = add(engine)
    parts = [(3, 0.2, Decimal("100.10")), (4, 0.3, Decimal("100.35")), (3, 0.2, Decimal("99.95"))]
    standin.plan(Plan(parts=parts))
    cycle(engine)
    wait_until(lambda: fresh(instance).shares == 3, message="the first partial fill booked")
    assert runs(instance)[0].outcome == "ordered"
    assert runs(instance)[0].reason.startswith("partially filled: 3 of 10")
    settle(standin)
    trades = list(instance.transactions.order_by("id"))
    assert [(t.shares, round(t.price, 4)) for t in trades] == [(3, 100.1), (4, 100.35), (3, 99.95)]
    order = Order.get()
    assert all(t.order_id == order.id for t in trades)
    run = runs(instance)[0]
    assert run.outcome == "executed" and run.fill_price == pytest.approx(100.155)
    assert fresh(instance).cash == pytest.approx(50_000 - 1001.55)
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_an_order_reported_only_by_rest_is_still_booked(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine(reconcile_every=0.3)
    trader(algo_dir, ("buy", 5), ("hold", 0))
    instance = add(engine)
    standin.plan(Plan(parts=[(2, 0.3, None), (3, 0.3, None)], silent=True))
    cycle(engine)
    settle(standin)
    assert fresh(instance).shares == 5
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_fills_missed_while_the_stream_was_down_are_reconciled_on_reconnect(
    alpaca_engine, algo_dir, standin
):
    engine = alpaca_engine(reconcile_every=3600)  # no periodic polling: only the reconnect
    trader(algo_dir, ("buy", 10), ("hold", 0))
    instance = add(engine)
    wait_until(lambda: standin.listening() == 1, message="the stream listening")
    standin.plan(Plan(parts=[(4, 0.4, None), (6, 0.4, None)]))
    standin.pause_stream()
    cycle(engine)
    wait_until(lambda: standin.open_orders() == 0, message="the stand-in filled the order")
    assert fresh(instance).shares == 0  # nothing told the app yet
    standin.resume_stream()
    settle(standin)
    assert fresh(instance).shares == 10
    assert standin.stream_sessions == 2
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_rejection_for_buying_power_is_journaled_and_the_instance_keeps_running(
    alpaca_engine, algo_dir, standin
):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 10), ("buy", 1), ("hold", 0))
    instance = add(engine)
    standin.cash = standin.starting_cash = Decimal("500")  # someone spent it meanwhile
    cycle(engine)
    settle(standin)
    rejected = runs(instance)[0]
    assert (rejected.outcome, rejected.reason) == ("rejected", "Alpaca: insufficient buying power")
    assert fresh(instance).status == "running"
    cycle(engine)
    settle(standin)
    assert runs(instance)[1].outcome == "executed"
    assert fresh(instance).shares == 1
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_an_order_rejected_after_acceptance_is_journaled(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 3), ("hold", 0))
    instance = add(engine)
    standin.plan(Plan(reject_after=0.2))
    cycle(engine)
    settle(standin)
    assert (runs(instance)[0].outcome, runs(instance)[0].reason) == (
        "rejected",
        "Alpaca rejected the order",
    )
    assert fresh(instance).status == "running" and fresh(instance).shares == 0
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_orders_are_checked_against_cash_held_back_by_open_orders(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 6), ("buy", 6), ("hold", 0))
    instance = add(engine, capital=1_000.0)
    standin.plan(Plan(hold=True))  # the first order stays open
    cycle(engine)
    wait_until(lambda: Order.get().status == "new", message="the first order open")
    cycle(engine)
    second = runs(instance)[1]
    assert second.outcome == "rejected"
    assert "600.00 held for open orders" in second.reason
    assert len(standin.all_orders()) == 1


def test_the_client_order_id_is_a_function_of_instance_and_scheduled_time(db, clock):
    first = orders.client_order_id(7, clock.now())
    assert first == orders.client_order_id(7, clock.now())
    assert first != orders.client_order_id(8, clock.now())
    assert first != orders.client_order_id(7, clock.now(), purpose="stop")
    assert first.startswith("at-") and len(first) <= 128


def test_unknown_untradable_and_otc_symbols_are_refused_and_nothing_is_created(
    alpaca_engine, algo_dir, standin
):
    engine = alpaca_engine(stream=False)
    trader(algo_dir, ("hold", 0))
    standin.add_asset("HALTD", tradable=False)
    standin.add_asset("PINKY", exchange="OTC")
    standin.add_asset("GONE", status="inactive")
    for symbol, message in (
        ("ZZZZ", "Alpaca does not know the symbol ZZZZ"),
        ("HALTD", "HALTD is not tradable at Alpaca"),
        ("PINKY", "over the counter (OTC)"),
        ("GONE", "GONE is not active at Alpaca"),
    ):
        with pytest.raises(instances.InstanceError, match=re.escape(message)):
            add(engine, symbol)
    assert Instance.select().count() == 0


def test_available_cash_is_the_accounts_cash_less_what_instances_hold(
    alpaca_engine, algo_dir, standin
):
    engine = alpaca_engine(stream=False)
    trader(algo_dir, ("hold", 0))
    add(engine, capital=60_000)
    with pytest.raises(instances.InstanceError, match=re.escape("available cash 40,000.00")):
        add(engine, capital=40_000.01)
    add(engine, capital=40_000)


def test_stop_sells_through_alpaca_and_stops_only_once_filled(
    alpaca_engine, algo_dir, standin, market
):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 10), ("hold", 0))
    instance = add(engine)
    cycle(engine)
    settle(standin)
    standin.prices["NVDA"] = Decimal("110")
    standin.plan(Plan(parts=[(5, 0.2, None), (5, 0.3, None)]))
    stopped = engine.stop_instance(instance.id)
    assert (stopped.status, stopped.shares) == ("stopped", 0)
    assert stopped.cash == pytest.approx(50_000 + 100.0)
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_stop_with_a_rejected_sell_leaves_the_instance_as_it_was(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 10), ("hold", 0))
    instance = add(engine)
    cycle(engine)
    settle(standin)
    before = fresh(instance)
    standin.positions["NVDA"] = 0  # sold by hand in Alpaca's dashboard
    with pytest.raises(instances.InstanceError) as failure:
        engine.stop_instance(instance.id)
    message = str(failure.value)
    assert message.startswith("stop failed: Alpaca: insufficient qty available")
    assert message.endswith("; close the position in Alpaca")
    after = fresh(instance)
    assert (after.status, after.shares, after.cash, after.trade_count) == (
        before.status,
        before.shares,
        before.cash,
        before.trade_count,
    )
    assert after.warning == message


def test_positions_that_differ_from_the_instances_are_flagged_not_fixed(
    alpaca_engine, algo_dir, standin, clock
):
    first = alpaca_engine()
    trader(algo_dir, ("buy", 10), ("hold", 0))
    instance = add(first)
    cycle(first)
    settle(standin)
    standin.positions["NVDA"] = 7  # someone sold 3 by hand
    restarted = alpaca_broker(standin, clock)
    restarted.open()
    try:
        wait_until(restarted.ready.is_set, message="the broker's start-up checks")
    finally:
        restarted.close()
    warned = fresh(instance)
    assert warned.warning.startswith("position differs: Alpaca holds 7 NVDA")
    assert warned.shares == 10


def test_halt_cancels_open_orders_and_pauses_every_instance(alpaca_engine, algo_dir, standin):
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 2), ("buy", 2), ("hold", 0))
    instance = add(engine)
    standin.plan(Plan(hold=True))
    cycle(engine)
    wait_until(lambda: Order.get().status == "new", message="the order open at Alpaca")
    assert engine.broker.halt() == 1
    assert Order.get().status == "canceled" and standin.open_orders() == 0
    report = cycle(engine)
    assert report.runs == 0 and len(runs(instance)) == 1
    assert runs(instance)[0].outcome == "rejected"
    assert alpaca_books_differences(standin, database.data_dir()) == []


def test_the_secret_never_reaches_a_log(alpaca_engine, algo_dir, standin, caplog):
    caplog.set_level(logging.DEBUG)
    engine = alpaca_engine()
    trader(algo_dir, ("buy", 1), ("hold", 0))
    add(engine)
    standin.fault(drop_after_accept(), Fault("GET", "/v2/orders:by_client_order_id", status=401))
    cycle(engine)
    settle(standin)
    standin.pause_stream()
    standin.resume_stream()
    wait_until(lambda: standin.stream_sessions >= 2, message="a reconnection")
    assert caplog.records
    assert SECRET not in caplog.text


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def alpaca_cli(monkeypatch, standin, algo_dir, capsys):
    """cli.main against the stand-in: returns (exit status, stdout, stderr)."""
    from autotrader_desktop import cli
    from tests.alpaca_trading_standin import KEY_ID

    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("AUTOTRADER_TRADING_URL", standin.rest_url)
    monkeypatch.setenv("AUTOTRADER_TRADING_STREAM_URL", standin.stream_url)
    monkeypatch.setenv("AUTOTRADER_ALGORITHM_DIR", str(algo_dir))
    scripted(algo_dir, "trader", ("hold", 0))

    def run(*argv: str, broker: str = "alpaca-paper"):
        status = cli.main(["--broker", broker, *argv])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def test_add_refuses_a_symbol_alpaca_does_not_trade_and_creates_nothing(alpaca_cli, data_dir):
    status, _, err = alpaca_cli("add", "ZZZZ", "trader", "1000")
    assert status == 2
    assert "Alpaca does not know the symbol ZZZZ" in err
    assert (
        not (data_dir / database.DB_FILENAME).exists()
        or count(data_dir, "algorithm_instances") == 0
    )
    status, out, _ = alpaca_cli("add", "NVDA", "trader", "1000")
    assert status == 0 and "NVDA_trader" in out


def test_live_trading_needs_confirm_live(alpaca_cli):
    status, _, err = alpaca_cli("cycle", broker="alpaca-live")
    assert status == 2
    assert "real money" in err and "--confirm-live" in err
    status, _, err = alpaca_cli("cycle", "--confirm-live", broker="alpaca-live")
    assert status == 0, err


def test_halt_and_resume_from_the_command_line(alpaca_cli, algo_dir, standin):
    scripted(algo_dir, "trader", ("buy", 1))
    assert alpaca_cli("add", "NVDA", "trader", "1000")[0] == 0
    status, out, _ = alpaca_cli("halt")
    assert status == 0 and "trading halted: 0 open order(s) canceled" in out
    status, out, _ = alpaca_cli("cycle")
    assert status == 0 and "trading is halted" in out
    assert standin.all_orders() == []
    assert alpaca_cli("resume")[0] == 0
    status, out, err = alpaca_cli("cycle")
    assert status == 0 and "1 ordered" in out, err
    assert len(standin.all_orders()) == 1


def test_an_alpaca_broker_gates_cycles_to_market_hours_by_default():
    from autotrader_desktop.enums import Broker
    from autotrader_desktop.settings import Settings

    assert Settings(broker=Broker.ALPACA_PAPER).gating_enabled
    assert not Settings(broker=Broker.ALPACA_PAPER, market_hours_gating=False).gating_enabled
    assert not Settings().gating_enabled  # the simulator with the paper broker
