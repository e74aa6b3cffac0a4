"""MarketData end to end: the simulator feed, an Alpaca feed against a misbehaving server,
history for short-lived processes, reference-counted subscriptions, credentials."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import closing
from datetime import timedelta

import keyring.errors
import pytest

from autotrader_desktop import credentials
from autotrader_desktop.database import Bar
from autotrader_desktop.enums import Feed, FeedState
from autotrader_desktop.feed import price_path
from autotrader_desktop.feed.client import Backoff
from autotrader_desktop.feed.market_data import MIN_BARS, MarketData
from autotrader_desktop.feed.protocol import MinuteBar, format_minute, format_timestamp
from autotrader_desktop.feed.simulator import Simulator
from autotrader_desktop.settings import Settings
from tests.helpers import (
    KEY,
    SECRET,
    HeadlessOn,
    Pulse,
    ScriptedServer,
    connect,
    run,
    run_cli_subprocess,
    subprocess_env,
)


def stored(symbol: str) -> list[MinuteBar]:
    return [
        MinuteBar(symbol, b.t, b.o, b.h, b.l, b.c, b.v)
        for b in Bar.select().where(Bar.symbol == symbol).order_by(Bar.t)
    ]


def expected(symbol: str, start: int, end: int) -> list[MinuteBar]:
    return [MinuteBar(symbol, *row) for row in price_path.minute_bars(symbol, start, end + 1)]


def minute_of(clock) -> int:
    return int(clock.now().timestamp()) // 60 * 60


def test_prepare_and_latest_price_without_a_stream(db, clock):
    market = MarketData(clock)  # the simulator feed, never started: a CLI process
    assert market.prepare(["AAPL"]) == []
    last_complete = minute_of(clock) - 60
    bars = stored("AAPL")
    assert len(bars) >= MIN_BARS
    assert bars == expected("AAPL", bars[0].t, last_complete)
    assert market.latest_price("AAPL") == price_path.price_at("AAPL", clock.now())

    clock.advance(600)
    assert market.prepare(["AAPL"]) == []  # only the gap is fetched
    assert stored("AAPL") == expected("AAPL", bars[0].t, last_complete + 600)
    assert market.latest_price("AAPL") == price_path.price_at("AAPL", clock.now())
    assert market.status.state == FeedState.OFF


def test_no_feed(db, clock):
    market = MarketData(clock, Settings(feed=Feed.NONE))
    assert market.prepare(["AAPL"]) == []
    assert market.latest_price("AAPL") is None
    run(market.start())
    run(market.stop())
    assert stored("AAPL") == [] and market.status.state == FeedState.OFF


def test_subscriptions_are_reference_counted_from_any_thread(db, clock):
    market = MarketData(clock)
    threads = [threading.Thread(target=market.subscribe, args=("AAPL",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    market.subscribe("MSFT")
    assert market.subscriptions == {"AAPL": 8, "MSFT": 1}
    for _ in range(7):
        market.unsubscribe("AAPL")
    market.unsubscribe("MSFT")
    market.unsubscribe("MSFT")  # one too many: harmless
    assert market.symbols == {"AAPL"}
    assert market.subscriptions["MSFT"] == 0


def test_simulator_feed_end_to_end(db, clock):
    market = MarketData(clock)
    changed = Pulse()
    completed: list[MinuteBar] = []
    market.events.status_changed.connect(changed.notify)
    market.events.data_arrived.connect(changed.notify)
    market.events.bar_stored.connect(completed.append)
    market.events.bar_stored.connect(changed.notify)
    minute = minute_of(clock)

    async def scenario() -> None:
        await market.start()
        # The engine subscribes from worker threads, once per instance.
        await asyncio.to_thread(market.subscribe, "AAPL")
        await asyncio.to_thread(market.subscribe, "AAPL")
        await changed.wait_for(lambda: market.status.state == FeedState.CONNECTED)
        await asyncio.to_thread(market.prepare, ["AAPL"])
        clock.advance(1)  # the simulator streams what happens as its clock moves
        await changed.wait_for(lambda: market.in_progress_bar("AAPL"))
        assert market.in_progress_bar("AAPL").t == minute
        assert market.data_age("AAPL") == 0.0  # the fake clock has not moved
        # Off the loop, the price is the streamed one: the tick at the fake clock's time.
        assert await asyncio.to_thread(market.latest_price, "AAPL") == price_path.price_at(
            "AAPL", clock.now()
        )
        for seconds in (20, 40, 59, 62):  # through the end of the minute
            clock.set(clock.now().replace(second=0) + timedelta(seconds=seconds))
        # Completed twice: from our trades when the clock passes the minute's end, then
        # replaced by the simulator's "b" bar, which saw every trade of the minute.
        await changed.wait_for(lambda: expected("AAPL", minute, minute)[0] in completed)
        await market.flush()
        await asyncio.to_thread(market.unsubscribe, "AAPL")
        assert market.symbols == {"AAPL"}
        await asyncio.to_thread(market.unsubscribe, "AAPL")
        await market.stop()

    run(scenario())
    bars = stored("AAPL")
    assert len(bars) >= MIN_BARS
    # History, the streamed minute (the simulator's "b" bar) and price_path agree.
    assert bars == expected("AAPL", bars[0].t, minute)
    assert market.status.state == FeedState.STOPPED


@pytest.fixture
def alpaca_env(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def send_trade(server: ScriptedServer, clock, price: float, at=None):
    at = at or clock.now()
    stamp = format_timestamp(int(at.timestamp() * 1000) * 1_000_000)
    return server.send([{"T": "t", "S": "AAPL", "p": price, "s": 10, "t": stamp}])


def test_alpaca_feed_survives_faults_with_correct_bars(db, clock, alpaca_env, caplog):
    caplog.set_level(logging.INFO)
    changed = Pulse()
    start_minute = minute_of(clock)

    async def scenario() -> MarketData:
        async with ScriptedServer(Simulator(clock)) as server:
            # Round prices, far from the simulator's: the widest band lets them all through
            # (the band has tests of its own).
            settings = Settings(
                feed=Feed.ALPACA_IEX,
                stream_url=server.url,
                history_url=server.history_url,
                price_band_pct=1000,
            )
            market = MarketData(clock, settings, backoff=Backoff(0.01, 0.05))
            market.events.status_changed.connect(changed.notify)
            market.events.data_arrived.connect(changed.notify)
            market.events.bar_stored.connect(changed.notify)
            server.changed = changed
            market.subscribe("AAPL")  # restored before start, like the engine does
            await market.start()
            await server.wait_connected()
            await changed.wait_for(lambda: server.subscribed == {"AAPL"})
            assert server.received[0] == {"action": "auth", "key": KEY, "secret": SECRET}
            assert await asyncio.to_thread(market.prepare, ["AAPL"]) == []

            # Streamed trades set the price; paper fills use it.
            await send_trade(server, clock, 100.0)
            await changed.wait_for(lambda: market.in_progress_bar("AAPL"))
            assert await asyncio.to_thread(market.latest_price, "AAPL") == 100.0

            # Dropped mid-stream; three hours pass; the gap comes from the history API
            # (the part older than the aggregator's retention straight into the database).
            server.drop()
            clock.advance(3 * 3600)
            await server.wait_connected(count=2)
            gap_end = minute_of(clock) - 60
            await changed.wait_for(lambda: stored_through(gap_end))

            # Late trade: minute m completes (a trade of m+1 arrives), then m gets one more.
            m = minute_of(clock)
            await send_trade(server, clock, 50.0)
            clock.advance(60)
            await send_trade(server, clock, 51.0)
            await send_trade(server, clock, 99.0, at=clock.now() - timedelta(seconds=30))
            await changed.wait_for(lambda: market.latest_price("AAPL") == 51.0)
            await market.flush()
            assert stored("AAPL")[-1] == MinuteBar("AAPL", m, 50.0, 99.0, 50.0, 99.0, 20.0)

            # "u": the server corrects the bar.
            corrected = {"T": "u", "S": "AAPL", "o": 50.0, "h": 99.5, "l": 49.0, "c": 99.0,
                         "v": 30, "t": format_minute(m)}  # fmt: skip
            await server.send([corrected])
            await changed.wait_for(lambda: stored("AAPL")[-1].h == 99.5)
            assert stored("AAPL")[-1] == MinuteBar("AAPL", m, 50.0, 99.5, 49.0, 99.0, 30.0)

            # Garbage and an error code on the same connection: logged, not fatal.
            await server.send("not json")
            await server.send([{"T": "t", "S": "AAPL", "p": "x", "s": 1, "t": "?"}])
            await send_trade(server, clock, 52.0)
            await changed.wait_for(lambda: market.latest_price("AAPL") == 52.0)
            assert len(server.handshakes) == 2
            await market.stop()
            return market

    def stored_through(t: int) -> bool:
        return bool(stored("AAPL")) and stored("AAPL")[-1].t >= t

    market = run(scenario())
    bars = stored("AAPL")
    gap = [bar for bar in bars if start_minute < bar.t < start_minute + 3 * 3600]
    assert gap == expected("AAPL", start_minute + 60, start_minute + 3 * 3600 - 60)
    assert market.status.state == FeedState.STOPPED
    assert "backfilled" in caplog.text and "skipped a frame" in caplog.text
    assert SECRET not in caplog.text


def test_alpaca_feed_without_credentials(db, clock, caplog):
    market = MarketData(clock, Settings(feed=Feed.ALPACA_SIP))
    assert market.prepare(["AAPL"]) == ["AAPL"]
    assert market.latest_price("AAPL") is None
    run(market.start())
    assert market.status.state == FeedState.AUTH_FAILED
    assert "APCA_API_KEY_ID" in market.status.detail
    run(market.stop())
    assert "no Alpaca API key" in caplog.text


def test_alpaca_auth_failure_is_reported(db, clock, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong")

    async def scenario() -> MarketData:
        async with ScriptedServer(Simulator(clock)) as server:
            settings = Settings(
                feed=Feed.ALPACA_IEX, stream_url=server.url, history_url=server.history_url
            )
            market = MarketData(clock, settings)
            changed = Pulse()
            market.events.status_changed.connect(changed.notify)
            await market.start()
            await changed.wait_for(lambda: market.status.state == FeedState.AUTH_FAILED)
            failed = await asyncio.to_thread(market.prepare, ["AAPL"])
            await market.stop()
            return market, failed

    market, failed = run(scenario())
    assert failed == ["AAPL"]  # the history API refused the key too (HTTP 403)
    assert market.status.state == FeedState.STOPPED


def test_credentials_environment_overrides_the_keyring(monkeypatch, memory_keyring):
    assert credentials.load() is None
    credentials.save(credentials.Credentials("stored-key", "stored-secret"))
    assert credentials.load() == credentials.Credentials("stored-key", "stored-secret")
    monkeypatch.setenv("APCA_API_KEY_ID", "env-key")
    assert credentials.load().key_id == "stored-key"  # both variables, or neither
    monkeypatch.setenv("APCA_API_SECRET_KEY", "env-secret")
    assert credentials.load() == credentials.Credentials("env-key", "env-secret")
    assert "env-secret" not in repr(credentials.load())
    assert ("AutoTrader Desktop", "APCA_API_SECRET_KEY") in memory_keyring


def test_an_unavailable_keyring_is_a_warning(monkeypatch, caplog):
    def broken(*args):
        raise keyring.errors.NoKeyringError("no backend; secret=hunter2")

    monkeypatch.setattr(keyring, "get_password", broken)
    monkeypatch.setattr(keyring, "set_password", broken)
    assert credentials.load() is None
    assert "keyring is not available (NoKeyringError)" in caplog.text
    with pytest.raises(credentials.CredentialsError, match="APCA_API_KEY_ID"):
        credentials.save(credentials.Credentials("k", "s"))
    assert "hunter2" not in caplog.text


BUYER = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("buy", 1)
"""


@pytest.mark.slow
def test_headless_on_an_alpaca_feed_trades_at_streamed_prices_through_faults(tmp_path):
    """Market data end to end (docs/behaviour.md#market-data): `headless --feed
    alpaca-iex` against a protocol-speaking server authenticates from APCA_*, backfills,
    fills at streamed prices, survives faults."""
    data, algorithms = tmp_path / "data", tmp_path / "algorithm"
    algorithms.mkdir()
    (algorithms / "buyer.py").write_text(BUYER)
    env = subprocess_env(
        data,
        algorithms,
        APCA_API_KEY_ID=KEY,
        APCA_API_SECRET_KEY=SECRET,
        AUTOTRADER_MARKET_HOURS_GATING="off",  # on by default for Alpaca; the test runs anytime
        AUTOTRADER_PRICE_BAND_PCT="1000",  # round prices far from the simulator's history
    )
    # Created on the feed it trades on: a data directory keeps one source's prices.
    added = run_cli_subprocess(["--feed", "alpaca-iex", "add", "AAPL", "buyer", "100000"], env)
    assert added.returncode == 0, added.stderr

    def prices_paid() -> set[float]:
        with closing(connect(data)) as conn:
            return {row[0] for row in conn.execute("SELECT price FROM transactions")}

    async def scenario() -> str:
        async with ScriptedServer(Simulator()) as server, HeadlessOn(server, env) as engine:

            async def fills_at(price: float) -> None:
                # Two cycles after the trade streamed in, the fill must have used it.
                await server.send(trade_message(price))
                await engine.two_cycles()
                assert price in await asyncio.to_thread(prices_paid), engine.log

            await server.wait_connected()
            await server.changed.wait_for(lambda: "AAPL" in server.subscribed, timeout=30)
            assert server.received[0] == {"action": "auth", "key": KEY, "secret": SECRET}
            # History first: it is what a lone trade's price is judged against.
            await server.changed.wait_for(lambda: "bars of AAPL history" in engine.log, timeout=30)
            await fills_at(123.45)
            server.script = ["406"]  # the next connection is refused
            server.drop()
            await server.wait_connected(count=3)
            await server.changed.wait_for(lambda: "AAPL" in server.subscribed, timeout=30)
            await server.send("not json")
            await server.send([{"T": "t", "S": "AAPL", "p": "1", "s": 1, "t": "?"}])
            await fills_at(124.5)
        return engine.log

    log = run(scenario(), timeout=120)
    assert "stored" in log and "bars of AAPL history" in log  # backfilled
    assert "server error 406" in log and "skipped a frame" in log
    assert SECRET not in log


def trade_message(price: float) -> list[dict]:
    stamp = format_timestamp(time.time_ns())
    return [{"T": "t", "S": "AAPL", "p": price, "s": 10, "t": stamp}]
