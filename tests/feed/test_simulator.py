"""The embedded simulator: deterministic history over REST, paging, and the live stream."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from websockets.asyncio.client import connect

from autotrader_desktop.clock import FakeClock
from autotrader_desktop.feed import price_path
from autotrader_desktop.feed.history import HistoryClient, HistoryError
from autotrader_desktop.feed.protocol import MinuteBar, format_minute, parse_frame
from autotrader_desktop.feed.simulator import Simulator, SimulatorThread
from tests.helpers import Pulse, run

NOW = datetime(2024, 3, 13, 15, 31, 20, tzinfo=UTC)
EPOCH_NOW = int(NOW.timestamp())
LAST_COMPLETE = EPOCH_NOW // 60 * 60 - 60


def expected(symbol: str, start: int, end: int, seed: int = 42) -> list[MinuteBar]:
    """price_path's bars with start <= t <= end: what every history must agree with."""
    return [MinuteBar(symbol, *row) for row in price_path.minute_bars(symbol, start, end + 1, seed)]


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(FakeClock(NOW))


def in_process(simulator: Simulator) -> HistoryClient:
    return HistoryClient("sim:", transport=simulator.rest)


def test_history_is_price_path_minute_bars(simulator):
    start = LAST_COMPLETE - 120 * 60
    bars = in_process(simulator).bars(["AAPL"], start, EPOCH_NOW)["AAPL"]
    assert bars == expected("AAPL", start, LAST_COMPLETE)
    assert bars[-1].t == LAST_COMPLETE  # the minute in progress is not history yet


def test_at_least_two_days_of_history_identical_across_restarts():
    start = LAST_COMPLETE - 2 * 86_400
    fetched = []
    for _ in range(2):  # a restart: a new simulator on a new port
        thread = SimulatorThread(Simulator(FakeClock(NOW)))
        thread.start()
        try:
            client = HistoryClient(thread.history_url)
            fetched.append(client.bars(["AAPL", "MSFT"], start, EPOCH_NOW))
        finally:
            thread.stop()
    assert fetched[0] == fetched[1]
    assert len(fetched[0]["AAPL"]) == len(fetched[0]["MSFT"]) == 2 * 1440 + 1
    assert fetched[0]["MSFT"] == expected("MSFT", start, LAST_COMPLETE)


def test_seed_changes_the_market():
    a = in_process(Simulator(FakeClock(NOW), seed=1)).bars(["AAPL"], LAST_COMPLETE, EPOCH_NOW)
    b = in_process(Simulator(FakeClock(NOW), seed=2)).bars(["AAPL"], LAST_COMPLETE, EPOCH_NOW)
    assert a != b


def query(simulator: Simulator, path: str, **params: object) -> tuple[int, dict]:
    params.setdefault("timeframe", "1Min")
    text = "&".join(f"{name}={value}" for name, value in params.items())
    return simulator.rest(f"{path}?{text}")


def pages(simulator: Simulator, path: str, **params: object) -> list[dict]:
    """Every page of a query, following next_page_token."""
    result = []
    token = None
    while True:
        extra = {"page_token": token} if token else {}
        status, payload = query(simulator, path, **params, **extra)
        assert status == 200, payload
        result.append(payload)
        token = payload["next_page_token"]
        if token is None:
            return result


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_single_symbol_paging(simulator, sort):
    start, end = format_minute(LAST_COMPLETE - 29 * 60), format_minute(LAST_COMPLETE)
    path = "/v2/stocks/AAPL/bars"
    whole = query(simulator, path, start=start, end=end, sort=sort)[1]
    assert whole["symbol"] == "AAPL" and whole["next_page_token"] is None
    assert len(whole["bars"]) == 30
    paged = pages(simulator, path, start=start, end=end, sort=sort, limit=7)
    assert [len(page["bars"]) for page in paged] == [7, 7, 7, 7, 2]
    assert [bar for page in paged for bar in page["bars"]] == whole["bars"]
    times = [bar["t"] for bar in whole["bars"]]
    assert times == sorted(times, reverse=sort == "desc")


def test_multi_symbol_paging_spans_symbols(simulator):
    start, end = format_minute(LAST_COMPLETE - 9 * 60), format_minute(LAST_COMPLETE)
    path = "/v2/stocks/bars"
    paged = pages(simulator, path, symbols="MSFT,AAPL,NVDA", start=start, end=end, limit=4)
    assert sum(len(bars) for page in paged for bars in page["bars"].values()) == 30
    assert len(paged) == 8  # 30 bars, 4 a page
    merged: dict[str, list] = {}
    for page in paged:
        for symbol, bars in page["bars"].items():
            merged.setdefault(symbol, []).extend(bars)
    whole = query(simulator, path, symbols="MSFT,AAPL,NVDA", start=start, end=end)[1]
    assert merged == whole["bars"]
    assert list(whole["bars"]) == ["AAPL", "MSFT", "NVDA"]


def test_history_client_follows_pages(simulator, monkeypatch):
    monkeypatch.setattr("autotrader_desktop.feed.history.PAGE_LIMIT", 50)
    start = LAST_COMPLETE - 299 * 60
    found = in_process(simulator).bars(["AAPL", "MSFT"], start, LAST_COMPLETE)
    assert found["AAPL"] == expected("AAPL", start, LAST_COMPLETE)
    assert found["MSFT"] == expected("MSFT", start, LAST_COMPLETE)


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("/v2/stocks/AAPL/bars?timeframe=1Hour", 422, "timeframe"),
        ("/v2/stocks/AAPL/bars?timeframe=1Min&limit=0", 422, "limit"),
        ("/v2/stocks/AAPL/bars?timeframe=1Min&limit=x", 422, "limit"),
        ("/v2/stocks/AAPL/bars?timeframe=1Min&sort=up", 422, "sort"),
        ("/v2/stocks/AAPL/bars?timeframe=1Min&start=soon", 422, "start"),
        ("/v2/stocks/AAPL/bars?timeframe=1Min&page_token=%%%", 422, "page_token"),
        ("/v2/stocks/bars?timeframe=1Min", 422, "symbols"),
        ("/v2/stocks/A%20B/bars?timeframe=1Min", 422, "symbol"),
        ("/v2/stocks/AAPL/quotes", 404, "Not Found"),
    ],
)
def test_bad_requests(simulator, target, status, message):
    code, payload = simulator.rest(target)
    assert code == status
    assert message in payload["message"]


def test_history_errors_are_clear(simulator):
    client = HistoryClient("sim:", transport=lambda target: (401, {"message": "forbidden."}))
    with pytest.raises(HistoryError, match=r"HTTP 401: forbidden\. \(check the API key"):
        client.bars(["AAPL"], LAST_COMPLETE, EPOCH_NOW)
    with pytest.raises(HistoryError, match=r"cannot reach http://127\.0\.0\.1:9"):
        HistoryClient("http://127.0.0.1:9", timeout=2).latest_trade("AAPL")


def test_history_skips_malformed_rows(caplog):
    good = {"t": "2024-03-13T15:30:00Z", "o": 1, "h": 2, "l": 1, "c": 2, "v": 10}
    payload = {"bars": [good, {"t": "x"}, 7], "next_page_token": None}
    client = HistoryClient("sim:", transport=lambda target: (200, payload))
    bars = client.bars(["AAPL"], LAST_COMPLETE, EPOCH_NOW)["AAPL"]
    assert bars == [MinuteBar("AAPL", LAST_COMPLETE, 1.0, 2.0, 1.0, 2.0, 10.0)]
    assert "skipped 2 malformed bar(s)" in caplog.text


def test_latest_trade_is_the_price_path_tick(simulator):
    status, payload = simulator.rest("/v2/stocks/NVDA/trades/latest")
    assert status == 200 and payload["symbol"] == "NVDA"
    assert payload["trade"]["p"] == price_path.price_at("NVDA", NOW)
    price, when = in_process(simulator).latest_trade("NVDA")
    assert price == price_path.price_at("NVDA", NOW)
    assert NOW.timestamp() - 1 < when <= NOW.timestamp()


def test_http_serves_the_same_history():
    thread = SimulatorThread(Simulator(FakeClock(NOW)))
    thread.start()
    try:
        url = f"{thread.history_url}/v2/stocks/AAPL/bars?timeframe=1Min&limit=3"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == "application/json"
            over_http = json.load(response)
        assert over_http == Simulator(FakeClock(NOW)).rest(url.removeprefix(thread.history_url))[1]
    finally:
        thread.stop()


def test_stream_sends_ticks_and_a_bar_after_each_minute():
    clock = FakeClock(NOW)
    simulator = Simulator(clock, tick_interval=0.005)
    minute = EPOCH_NOW // 60 * 60

    async def scenario() -> tuple[list, list]:
        trades, bars = [], []
        got = Pulse()
        async with simulator.serve() as server, connect(urls(server)) as ws:
            assert parse_frame(await ws.recv()).notices[0].message == "connected"
            await ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
            assert parse_frame(await ws.recv()).notices[0].message == "authenticated"
            await ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"], "bars": ["AAPL"]}))
            assert "trades=['AAPL']" in parse_frame(await ws.recv()).notices[0].message

            async def receive() -> None:
                async for raw in ws:
                    frame = parse_frame(raw)
                    trades.extend(frame.trades)
                    bars.extend(frame.bars)
                    got.notify()

            receiver = asyncio.create_task(receive())
            # Move time to the end of the minute, then past it, in steps the stream sees.
            for seconds in (25, 40, 55, 60.5):
                clock.set(NOW.replace(second=0) + timedelta(seconds=seconds))
                await got.wait_for(lambda s=seconds: trades and trades[-1].time >= minute + s)
            await got.wait_for(lambda: bars)
            receiver.cancel()
        return trades, bars

    def urls(server):
        return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v2/sim"

    trades, bars = run(scenario())
    assert bars == expected("AAPL", minute, minute)
    # After a jump the stream replays at most MAX_CATCH_UP_TICKS, never a second late.
    ticks = np.array([round(t.time * 1000) // price_path.TICK_MS for t in trades])
    assert np.all(np.diff(ticks) > 0)
    assert [t.price for t in trades] == price_path.tick_prices("AAPL", ticks).tolist()
    assert [t.size for t in trades] == price_path.tick_sizes("AAPL", ticks).tolist()
    per_second = np.bincount((ticks // price_path.TICKS_PER_SECOND) - ticks[0] // 4)
    assert per_second.max() == price_path.TICKS_PER_SECOND  # several trades a second


def test_stream_auth_timeout_and_errors():
    simulator = Simulator(FakeClock(NOW), auth_timeout=0.1)

    async def scenario() -> list[str]:
        seen = []
        async with simulator.serve() as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/v2/sim") as ws:
                await ws.recv()
                await ws.send("{}")
                seen.append(await ws.recv())
                await ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
                seen.append(await ws.recv())
                seen.append(await ws.recv())  # then the timeout
                await ws.wait_closed()
            async with connect(f"ws://127.0.0.1:{port}/v2/sim") as ws:
                await ws.recv()
                await ws.send(json.dumps({"action": "auth", "key": "", "secret": ""}))
                seen.append(await ws.recv())
        return seen

    codes = [json.loads(raw)[0]["code"] for raw in run(scenario())]
    assert codes == [401, 401, 404, 402]


def test_a_client_vanishing_mid_handshake_is_not_an_error(caplog):
    async def scenario() -> None:
        async with Simulator(FakeClock(NOW)).serve() as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/v2/sim") as ws:
                await ws.recv()  # "connected"
                ws.transport.abort()  # e.g. the app quitting before it authenticated
        # Leaving `serve` waited for the connection's handler to finish.

    run(scenario())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.slow
def test_runs_stand_alone(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "autotrader_desktop.feed.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        history_url = line.split("history ")[1].strip()
        client = HistoryClient(history_url)
        assert client.latest_trade("AAPL") is not None
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
