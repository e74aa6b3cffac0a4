"""Outside data is checked before it is believed, seen from outside the app: a real engine
process against a local protocol server and a local data API that lie or hang."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autotrader_desktop.feed.protocol import format_timestamp
from autotrader_desktop.feed.simulator import Simulator
from tests.helpers import (
    BUYER,
    KEY,
    SECRET,
    HeadlessOn,
    ScriptedServer,
    check_accounts,
    kill,
    popen_python,
    query,
    run,
    run_cli_subprocess,
    subprocess_env,
    wait_until,
    write_algorithm,
)

YEAR_2100_NS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()) * 10**9


def trade(price: float, when_ns: int | None = None) -> list[dict]:
    stamp = format_timestamp(time.time_ns() if when_ns is None else when_ns)
    return [{"T": "t", "S": "AAPL", "p": price, "s": 10, "t": stamp}]


def alpaca_env(data: Path, algorithms: Path, **extra: str) -> dict[str, str]:
    return subprocess_env(
        data,
        algorithms,
        APCA_API_KEY_ID=KEY,
        APCA_API_SECRET_KEY=SECRET,
        AUTOTRADER_MARKET_HOURS_GATING="off",
        # Instances are created on the feed they trade on (one source's prices per data
        # directory).
        AUTOTRADER_FEED="alpaca-iex",
        **extra,
    )


@pytest.mark.slow
def test_a_future_dated_and_an_absurd_trade_never_become_a_fill_bar_or_price(tmp_path):
    data, algorithms = tmp_path / "data", tmp_path / "algorithm"
    algorithms.mkdir()
    write_algorithm(algorithms, "buyer", BUYER)
    env = alpaca_env(data, algorithms)
    assert run_cli_subprocess(["add", "AAPL", "buyer", "100000"], env).returncode == 0

    def paid() -> list[float]:
        return [row[0] for row in query(data, "SELECT price FROM transactions ORDER BY id")]

    async def scenario() -> str:
        async with ScriptedServer(Simulator()) as server, HeadlessOn(server, env) as engine:
            await server.wait_connected()
            await server.changed.wait_for(lambda: "bars of AAPL history" in engine.log, timeout=30)
            [(close,)] = await asyncio.to_thread(
                query, data, "SELECT c FROM bars WHERE symbol = 'AAPL' ORDER BY t DESC LIMIT 1"
            )
            good = round(close * 1.01, 2)
            await server.send(trade(good))
            await engine.two_cycles()
            fills = await asyncio.to_thread(paid)
            assert fills[-1] == good
            # Five times the price, dated 2100; then 9.9e14, dated now.
            await server.send(trade(good * 5, YEAR_2100_NS))
            await server.send(trade(9.9e14))
            await engine.two_cycles()
            assert set((await asyncio.to_thread(paid))[len(fills) - 1 :]) == {good}
            # The next believed trade is the price again: nothing was pinned.
            better = round(good * 1.02, 2)
            await server.send(trade(better))
            await engine.two_cycles()
            assert (await asyncio.to_thread(paid))[-1] == better
        return engine.log

    log = run(scenario(), timeout=120)
    assert "ignored a trade of AAPL at" in log and "dated 2100-01-01" in log
    assert "Traceback" not in log
    prices = {row[0] for row in query(data, "SELECT price FROM transactions")}
    assert max(prices) < 2 * min(prices)
    [row] = query(data, "SELECT max(t) AS t, max(h) AS h, min(l) AS l FROM bars")
    assert row["t"] < time.time()
    assert row["h"] < 2 * row["l"]
    [instance] = query(data, "SELECT last_price FROM algorithm_instances")
    assert instance["last_price"] in prices
    check_accounts(data)


class DataApi:
    """A local stand-in for the historical data API: bars from the simulator, and a
    latest-trade answer (or a hang) chosen by the test. Counts requests in flight."""

    def __init__(self, latest: Callable[[str], dict | None], hang: set[str]) -> None:
        self.simulator = Simulator()
        self.latest = latest
        self.hang = hang  # "bars", "trades": endpoints that hang until `release` is set
        self.release = threading.Event()
        self.in_flight: dict[str, int] = {"bars": 0, "trades": 0}
        self.most_in_flight: dict[str, int] = {"bars": 0, "trades": 0}
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DataApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        endpoint = "trades" if "/trades/latest" in request.path else "bars"
        with self._lock:
            self.in_flight[endpoint] += 1
            self.most_in_flight[endpoint] = max(
                self.most_in_flight[endpoint], self.in_flight[endpoint]
            )
        try:
            if endpoint in self.hang:
                self.release.wait(timeout=60)
            if endpoint == "trades":
                symbol = request.path.split("/")[3]
                status, payload = 200, {"symbol": symbol, "trade": self.latest(symbol)}
            else:
                status, payload = self.simulator.rest(request.path)
            body = json.dumps(payload).encode()
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            pass  # the client gave up
        finally:
            with self._lock:
                self.in_flight[endpoint] -= 1


SYMBOLS = ("AAPL", "MSFT", "NVDA")


def add_buyers(data: Path, algorithms: Path) -> dict[str, str]:
    write_algorithm(algorithms, "buyer", BUYER)
    env = alpaca_env(data, algorithms)
    for symbol in SYMBOLS:
        assert run_cli_subprocess(["add", symbol, "buyer", "10000"], env).returncode == 0
    return env


def test_an_absurd_latest_trade_never_becomes_a_fill(tmp_path):
    """No stream (`cycle`): prices come from the latest-trade endpoint, judged against the
    history just stored. AAPL's answer is absurd, MSFT's dated 2100, NVDA's plausible."""
    data, algorithms = tmp_path / "data", tmp_path / "algorithm"
    algorithms.mkdir()
    env = add_buyers(data, algorithms)

    def latest(symbol: str) -> dict:
        now = datetime.now(UTC).timestamp()
        price = api.simulator.rest(f"/v2/stocks/{symbol}/trades/latest")[1]["trade"]["p"]
        when = {"MSFT": datetime(2100, 1, 1, tzinfo=UTC).timestamp()}.get(symbol, now)
        price = 9.9e14 if symbol == "AAPL" else price
        return {"p": price, "s": 1, "t": format_timestamp(int(when) * 10**9)}

    with DataApi(latest, hang=set()) as api:
        result = run_cli_subprocess(
            ["--feed", "alpaca-iex", "--history-url", api.url, "cycle"], env
        )
    assert result.returncode == 0, result.stderr
    runs = {
        row["ticker"]: (row["outcome"], row["reason"])
        for row in query(
            data,
            "SELECT ticker, outcome, reason FROM runs JOIN algorithm_instances i"
            " ON i.id = runs.instance_id",
        )
    }
    assert runs["AAPL"] == ("rejected", "no price for AAPL yet")
    assert runs["MSFT"] == ("rejected", "no price for MSFT yet")
    assert runs["NVDA"][0] == "executed"
    assert "ignored a price of AAPL at 9.9e+14" in result.stderr
    assert "ignored the latest trade of MSFT: dated 2100" in result.stderr
    check_accounts(data)


@pytest.mark.parametrize("endpoint", ["bars", "trades"])
def test_a_hanging_data_api_delays_only_what_needs_it(tmp_path, endpoint):
    """Every symbol's history, then every latest trade, is asked for at once; while the
    endpoint hangs no database lock is held: another process adds an instance meanwhile."""
    data, algorithms = tmp_path / "data", tmp_path / "algorithm"
    algorithms.mkdir()
    env = add_buyers(data, algorithms)
    log = tmp_path / "cycle.log"
    with DataApi(lambda symbol: None, hang={endpoint}) as api:
        argv = ["-m", "autotrader_desktop", "--feed", "alpaca-iex", "--history-url", api.url]
        cycle = popen_python([*argv, "cycle"], env, log)
        try:
            wait_until(
                lambda: api.in_flight[endpoint] == len(SYMBOLS),
                timeout=60,
                message=f"every symbol's {endpoint} asked for at once",
            )
            added = run_cli_subprocess(["add", "AMD", "buyer", "100"], env)
            assert added.returncode == 0, added.stderr
            api.release.set()
            assert cycle.wait(timeout=60) == 0, log.read_text()
        finally:
            kill(cycle)
    assert api.most_in_flight[endpoint] == len(SYMBOLS)
    # The endpoint had no latest trade to give: no price, no fill.
    # (AMD, added meanwhile, may have run in this cycle too.)
    outcomes = [row[0] for row in query(data, "SELECT outcome FROM runs")]
    assert set(outcomes) == {"rejected"} and len(outcomes) >= len(SYMBOLS)
    assert "database is locked" not in log.read_text()
    check_accounts(data)
