"""History on demand, sessions and legacy bar shapes in the data API; a cycle's history.

The market data is the real one on the simulator feed without a stream: its history
client answers in-process, exactly as the simulator's REST endpoint does.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from autotrader_desktop import api
from autotrader_desktop.feed import market_hours, price_path
from autotrader_desktop.feed.bars import store
from autotrader_desktop.feed.history import HistoryClient, HistoryError
from autotrader_desktop.feed.market_data import MarketData
from autotrader_desktop.legacy import db_manager
from autotrader_desktop.settings import Settings
from tests.helpers import (
    T0,
    add_instance,
    check_accounts,
    query,
    returning,
    wait_until,
    write_algorithm,
)

NEWEST = int(T0.timestamp()) // 60 * 60 - 60  # the last completed minute at T0


class CountingTransport:
    """The simulator's REST answers, counted (or nothing at all, for `empty`)."""

    def __init__(self, market: MarketData, empty: bool = False) -> None:
        self.calls: list[str] = []
        self._rest = market._simulator.rest
        self._empty = empty

    def __call__(self, target: str):
        self.calls.append(target)
        return (200, {"bars": [], "next_page_token": None}) if self._empty else self._rest(target)


@pytest.fixture
def market(db, clock):
    market_hours.is_open(T0)  # load the calendar up front
    market = MarketData(clock, Settings(feed="sim"))
    api.set_history(market.ensure_history, 20.0)
    yield market
    api.set_history(None)


def counted(market: MarketData, empty: bool = False) -> CountingTransport:
    transport = CountingTransport(market, empty)
    market._history = HistoryClient("sim:", transport=transport)
    return transport


def simulated(symbol: str, start: int, end: int) -> list[tuple]:
    return [tuple(row) for row in price_path.minute_bars(symbol, start, end + 60)]


def rows(bars: list[dict]) -> list[tuple]:
    return [
        (
            int(api.to_epoch_seconds(b["timestamp"], "t")),
            *(b["ohlcv"][k] for k in "ohlcv"),
        )
        for b in bars
    ]


def test_more_bars_than_prepared_are_fetched_in_the_same_call(market):
    transport = counted(market)
    store([("NVDA", *row) for row in simulated("NVDA", NEWEST - 200 * 60, NEWEST)])
    bars = api.get_data_for_algorithm("NVDA", "last_n_bars", n=1000)
    assert len(bars) == 1000
    assert rows(bars) == simulated("NVDA", NEWEST - 999 * 60, NEWEST)
    assert transport.calls
    # Asked once: the same request again is answered from the store.
    calls = len(transport.calls)
    assert api.get_data_for_algorithm("NVDA", "last_n_bars", n=1000) == bars
    assert len(transport.calls) == calls


def test_an_old_time_range_is_fetched(market):
    counted(market)
    start = T0 - timedelta(days=8)
    bars = api.get_data_for_algorithm(
        "AAPL", "time_range", start=start, end=start + timedelta(minutes=29)
    )
    first = int(start.timestamp()) // 60 * 60 + 60
    assert rows(bars) == simulated("AAPL", first, first + 28 * 60)


def test_a_symbol_without_data_gives_no_bars_and_is_asked_once(market):
    transport = counted(market, empty=True)
    assert api.get_data_for_algorithm("ZZZZ", "last_n_bars", n=50) == []
    assert db_manager.get_data_for_algorithm("ZZZZ", "last_n_bars", n=50) == []
    calls = len(transport.calls)
    assert calls
    assert api.get_data_for_algorithm("ZZZZ", "last_n_bars", n=50) == []
    assert len(transport.calls) == calls


def test_a_request_past_its_deadline_fetches_nothing(market):
    transport = counted(market)
    market.ensure_history("NVDA", NEWEST - 3600, NEWEST, time.monotonic() - 1)
    assert transport.calls == []


def test_sessions_regular_and_all(market):
    counted(market)
    # Wednesday 15:31 UTC is 11:31 New York: the session opened at 13:30 UTC, 120 minutes ago.
    everything = api.get_data_for_algorithm("NVDA", "last_n_bars", n=200)
    regular = api.get_data_for_algorithm("NVDA", "last_n_bars", n=200, session="regular")
    assert rows(everything) == simulated("NVDA", NEWEST - 199 * 60, NEWEST)
    stamps = [b["timestamp"] for b in regular]
    assert len(stamps) == 200
    # 121 minutes of today's session, and before them the end of yesterday's.
    assert stamps[-121] == "2024-03-13T13:30:00Z"
    assert stamps[-122] == "2024-03-12T19:59:00Z"
    assert stamps[0] == "2024-03-12T18:41:00Z"
    with pytest.raises(ValueError, match="session must be 'regular' or 'all'"):
        api.get_data_for_algorithm("NVDA", "last_n_bars", n=2, session="pre")


def test_legacy_bars_are_regular_with_integer_volume_and_lenient_arguments(market):
    counted(market)
    modern = api.get_data_for_algorithm("NVDA", "last_n_bars", n=11, session="regular")
    for n in (11, 11.0, "11", " 11 "):
        legacy = db_manager.get_data_for_algorithm("NVDA", "last_n_bars", n=n)
        assert [b["timestamp"] for b in legacy] == [b["timestamp"] for b in modern]
        assert all(type(b["ohlcv"]["v"]) is int for b in legacy)
        assert [b["ohlcv"]["v"] for b in legacy] == [round(b["ohlcv"]["v"]) for b in modern]
    # A naive before_timestamp is UTC.
    naive = db_manager.get_data_for_algorithm(
        "NVDA", "last_n_bars", n=1, before_timestamp="2024-03-13T14:00:00"
    )
    assert naive[0]["timestamp"] == "2024-03-13T14:00:00Z"
    for bad in (0, 2.5, "eleven", None, True):
        with pytest.raises(ValueError, match="positive whole number"):
            db_manager.get_data_for_algorithm("NVDA", "last_n_bars", n=bad)


def test_legacy_latest_price_is_the_newest_regular_bar(market, clock):
    counted(market)
    latest = db_manager.get_latest_price("NVDA")
    assert latest["timestamp"] == api.iso(NEWEST)
    # After the close, the latest is the session's last minute, not the evening's.
    clock.set(T0.replace(hour=23))
    assert db_manager.get_latest_price("NVDA")["timestamp"] == "2024-03-13T19:59:00Z"


def test_a_history_api_that_refuses_gives_no_bars_not_an_error(market):
    """Alpaca answers 422 for a symbol it does not know: the algorithm gets [] and runs on."""
    calls = []

    def refusing(target: str):
        calls.append(target)
        return 422, {"message": "invalid symbol: ZZZZ"}

    market._history = HistoryClient("sim:", transport=refusing)
    assert api.get_data_for_algorithm("ZZZZ", "last_n_bars", n=10) == []
    assert db_manager.get_latest_price("ZZZZ") is None
    assert calls


class HeldHistory:
    """The simulator's REST answers, but one symbol's bars wait until `release` is set, or,
    with `timeout`, fail as the client does when the endpoint does not answer in time."""

    def __init__(self, market: MarketData, symbol: str, timeout: float | None = None) -> None:
        self._rest = market._simulator.rest
        self._held = f"/v2/stocks/{symbol}/bars"
        self._timeout = timeout
        self.held: list[str] = []
        self.release = threading.Event()

    def __call__(self, target: str):
        if target.startswith(self._held):
            self.held.append(target)
            if not self.release.wait(self._timeout or 30):
                raise HistoryError(f"cannot reach {self._held}: timed out")
        return self._rest(target)


def runs_of(data_dir, instance) -> list:
    return query(data_dir, "SELECT * FROM runs WHERE instance_id = ?", (instance.id,))


def held(market: MarketData, symbol: str, timeout: float | None = None) -> HeldHistory:
    transport = HeldHistory(market, symbol, timeout)
    market._history = HistoryClient("sim:", transport=transport)
    return transport


def test_a_symbol_being_fetched_is_asked_for_once_and_holds_back_only_itself(market):
    market.prepare(["AAPL"])
    transport = held(market, "NVDA")
    try:
        first = market.start_preparing(["NVDA"])  # as a new subscription does
        wait_until(lambda: transport.held, message="NVDA's history asked for")
        again = market.start_preparing(["AAPL", "NVDA"])  # as the cycle does meanwhile
        assert again["AAPL"].done() and again["AAPL"].result()
        assert again["NVDA"] is first["NVDA"] and not first["NVDA"].done()
    finally:
        transport.release.set()
    assert first["NVDA"].result(timeout=30)
    assert len(transport.held) == 1
    assert market.prepare(["NVDA"]) == []  # stored: nothing more to ask for
    assert len(transport.held) == 1


@pytest.mark.parametrize("ending", ["released", "timed out"])
def test_a_hanging_history_request_delays_only_its_symbols_instances(
    market, make_engine, algo_dir, data_dir, ending
):
    """AAPL's history is stored; NVDA's instance is new and its history request hangs. The
    AAPL instance of the same algorithm trades at once; NVDA's runs in the same cycle once
    its request ends, with whatever history is stored then."""
    write_algorithm(algo_dir, "buyer", returning("'buy', 1"))
    engine = make_engine()
    ready = add_instance(engine, "AAPL", "buyer")
    market.prepare(["AAPL"])
    late = add_instance(engine, "NVDA", "buyer")
    transport = held(market, "NVDA", timeout=0.5 if ending == "timed out" else None)
    recorded: list[int] = []
    engine.events.runs_recorded.connect(lambda runs: recorded.extend(r.instance_id for r in runs))
    at_finish: list[list[int]] = []
    engine.events.cycle_finished.connect(lambda report: at_finish.append(list(recorded)))

    with ThreadPoolExecutor(1) as pool:
        cycle = pool.submit(engine.cycle)
        if ending == "released":
            try:
                wait_until(lambda: transport.held, message="NVDA's history asked for")
                [run] = wait_until(lambda: runs_of(data_dir, ready), message="AAPL's run recorded")
                assert run["outcome"] == "executed" and run["transaction_id"] is not None
                assert runs_of(data_dir, late) == [] and not cycle.done()
            finally:
                transport.release.set()
        report = cycle.result(timeout=60)
    assert report.outcomes == {"executed": 2}
    assert recorded == [ready.id, late.id] and at_finish == [recorded]
    assert [len(runs_of(data_dir, ready)), len(runs_of(data_dir, late))] == [1, 1]
    nvda_bars = query(data_dir, "SELECT COUNT(*) AS n FROM bars WHERE symbol = 'NVDA'")[0]["n"]
    assert bool(nvda_bars) == (ending == "released")
    check_accounts(data_dir)


def test_a_held_back_batch_of_an_algorithm_that_cannot_load_fails_like_the_first(
    market, make_engine, algo_dir, data_dir
):
    write_algorithm(algo_dir, "broken", "import nonexistent_module_xyz\n")
    engine = make_engine()
    first = add_instance(engine, "AAPL", "broken")
    market.prepare(["AAPL"])
    late = add_instance(engine, "NVDA", "broken")
    transport = held(market, "NVDA")
    with ThreadPoolExecutor(1) as pool:
        cycle = pool.submit(engine.cycle)
        try:
            wait_until(lambda: runs_of(data_dir, first), message="the first batch recorded")
        finally:
            transport.release.set()
        report = cycle.result(timeout=60)
    assert report.outcomes == {"failed": 2}
    for instance in (first, late):
        [run] = runs_of(data_dir, instance)
        assert "No module named 'nonexistent_module_xyz'" in run["reason"]
