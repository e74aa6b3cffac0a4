"""The embedded market simulator: Alpaca's stock stream and historical-bars API, locally.

One server on one port (127.0.0.1, a free port by default) speaks
- the v2 stock stream protocol on any `/v2/<feed>` WebSocket path: `connected`, `auth`,
  `subscribe`/`unsubscribe` with `subscription` replies, a trade per subscribed symbol at
  every price-path tick (TICKS_PER_SECOND a second) and a `"b"` bar right after each
  minute closes;
- the REST shapes of `GET /v2/stocks/{symbol}/bars`, `GET /v2/stocks/bars?symbols=...`
  (timeframe=1Min, start, end, limit, sort, page_token -> next_page_token) and
  `GET /v2/stocks/{symbol}/trades/latest`, answered through websockets' `process_request`
  hook before any WebSocket handshake.

Every price, size and bar is price_path's deterministic function of (symbol, time, seed),
so the stream, the history, a restarted simulator and the tests all agree. The clock is
injectable: with a FakeClock the stream emits what the fake time says has happened.

Stand-alone: `python -m autotrader_desktop.feed.simulator --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import http
import json
import logging
import math
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.feed import price_path
from autotrader_desktop.feed.price_path import TICK_MS, TICKS_PER_MINUTE, TICKS_PER_SECOND
from autotrader_desktop.feed.protocol import format_minute, format_timestamp, parse_timestamp

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
AUTH_TIMEOUT_S = 10.0
# After the clock jumps (a suspended laptop, a test advancing a FakeClock), replay at most
# this much of the stream instead of flooding the client with everything missed.
MAX_CATCH_UP_TICKS = 5 * TICKS_PER_SECOND
MAX_CATCH_UP_BARS = 10
_SYMBOL = re.compile(r"[A-Za-z0-9./-]{1,20}")
_LATEST_TRADE = ["trades", "latest"]
_BAR_CHUNK = 1000  # minutes per numpy batch: 240k ticks, a few MB of temporaries


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _trade_message(symbol: str, tick: int, price: float, size: int) -> dict[str, Any]:
    return {
        "T": "t",
        "S": symbol,
        "i": tick,
        "x": "V",
        "p": price,
        "s": size,
        "t": format_timestamp(tick * TICK_MS * 1_000_000),
        "c": ["@"],
        "z": "C",
    }


class Simulator:
    """Deterministic market data served over the Alpaca protocols."""

    def __init__(
        self,
        clock: Clock | None = None,
        seed: int = price_path.DEFAULT_SEED,
        *,
        tick_interval: float = TICK_MS / 1000,
        auth_timeout: float = AUTH_TIMEOUT_S,
    ) -> None:
        self.clock = clock or SystemClock()
        self.seed = seed
        # The longest the stream sleeps between looks at the clock (tests use a FakeClock
        # and a short interval, so that advancing the clock shows up quickly).
        self.tick_interval = tick_interval
        self.auth_timeout = auth_timeout
        # (symbol, minute) -> the minute's tick prices and sizes, for the stream.
        self._ticks: dict[tuple[str, int], tuple[list[float], list[int]]] = {}

    # --- price data -----------------------------------------------------------------------

    def _now_tick(self) -> int:
        return int(self.clock.now().timestamp() * 1000) // TICK_MS

    def _minute_ticks(self, symbol: str, minute: int) -> tuple[list[float], list[int]]:
        key = (symbol, minute)
        cached = self._ticks.get(key)
        if cached is None:
            if len(self._ticks) > 10_000:
                self._ticks.clear()
            ticks = minute * TICKS_PER_SECOND + np.arange(TICKS_PER_MINUTE)
            cached = (
                price_path.tick_prices(symbol, ticks, self.seed).tolist(),
                price_path.tick_sizes(symbol, ticks, self.seed).tolist(),
            )
            self._ticks[key] = cached
        return cached

    def bars(self, symbol: str, minutes: np.ndarray) -> list[dict[str, Any]]:
        """Alpaca-shaped bars (t o h l c v n vw) for the given minute starts, in that order.

        OHLCV are exactly price_path.minute_bars's: the aggregate of the same ticks.
        """
        rows: list[dict[str, Any]] = []
        for begin in range(0, minutes.size, _BAR_CHUNK):
            chunk = minutes[begin : begin + _BAR_CHUNK]
            ticks = (chunk[:, None] * TICKS_PER_SECOND + np.arange(TICKS_PER_MINUTE)).ravel()
            prices = price_path.tick_prices(symbol, ticks, self.seed).reshape(chunk.size, -1)
            sizes = price_path.tick_sizes(symbol, ticks, self.seed).reshape(chunk.size, -1)
            volume = sizes.sum(axis=1)
            vwap = (prices * sizes).sum(axis=1) / volume
            rows.extend(
                {"t": format_minute(t), "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": w}
                for t, o, h, low, c, v, n, w in zip(
                    chunk.tolist(),
                    prices[:, 0].tolist(),
                    prices.max(axis=1).tolist(),
                    prices.min(axis=1).tolist(),
                    prices[:, -1].tolist(),
                    volume.tolist(),
                    [TICKS_PER_MINUTE] * chunk.size,
                    np.round(vwap, 4).tolist(),
                    strict=True,
                )
            )
        return rows

    def _bar_message(self, symbol: str, minute: int) -> dict[str, Any]:
        prices, sizes = self._minute_ticks(symbol, minute)
        volume = sum(sizes)
        return {
            "T": "b",
            "S": symbol,
            "o": prices[0],
            "h": max(prices),
            "l": min(prices),
            "c": prices[-1],
            "v": volume,
            "t": format_minute(minute),
            "n": TICKS_PER_MINUTE,
            "vw": round(sum(p * s for p, s in zip(prices, sizes, strict=True)) / volume, 4),
        }

    # --- REST -----------------------------------------------------------------------------

    def rest(self, target: str) -> tuple[int, dict[str, Any]]:
        """Answer a REST request ("/v2/stocks/...?query"): (HTTP status, JSON body).

        Thread-safe and pure apart from reading the clock.
        """
        url = urlsplit(target)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        try:
            if parts == ["v2", "stocks", "bars"]:
                symbols = [s for s in query.get("symbols", "").split(",") if s]
                if not symbols:
                    raise _BadRequest(422, "symbols is required")
                return 200, self._bars_page(symbols, query, multi=True)
            if len(parts) == 4 and parts[:2] == ["v2", "stocks"] and parts[3] == "bars":
                return 200, self._bars_page([parts[2]], query, multi=False)
            if len(parts) == 5 and parts[:2] == ["v2", "stocks"] and parts[3:] == _LATEST_TRADE:
                return 200, self._latest_trade(parts[2])
        except _BadRequest as exc:
            return exc.status, {"code": exc.status, "message": str(exc)}
        return 404, {"code": 404, "message": "Not Found"}

    def _time_param(self, query: dict[str, str], name: str, default: int) -> int:
        text = query.get(name)
        if not text:
            return default
        try:
            if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
                text += "T00:00:00Z"
            minute, second = parse_timestamp(text)
        except ValueError:
            raise _BadRequest(422, f"invalid {name}: {text!r}") from None
        return minute + math.ceil(second) if name == "start" else minute

    def _bars_page(self, symbols: list[str], query: dict[str, str], multi: bool) -> dict[str, Any]:
        for symbol in symbols:
            if not _SYMBOL.fullmatch(symbol):
                raise _BadRequest(422, f"invalid symbol: {symbol!r}")
        if query.get("timeframe") not in ("1Min", "1T"):
            raise _BadRequest(422, "invalid timeframe: this simulator serves timeframe=1Min")
        now = int(self.clock.now().timestamp())
        start = self._time_param(query, "start", now // 86_400 * 86_400)
        end = self._time_param(query, "end", now)
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise _BadRequest(422, f"invalid limit: {query['limit']!r}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest(422, f"limit must be between 1 and {MAX_LIMIT}")
        descending = query.get("sort", "asc") == "desc"
        if query.get("sort", "asc") not in ("asc", "desc"):
            raise _BadRequest(422, "sort must be asc or desc")
        # Completed minutes only: [t, t + 60) has ended by now.
        first = -(-start // 60) * 60
        last = min(end // 60 * 60, now // 60 * 60 - 60)
        symbols = sorted(set(symbols))
        position = self._page_position(query.get("page_token"), symbols)
        pages: dict[str, list[dict[str, Any]]] = {}
        next_token = None
        for index in range(symbols.index(position[0]) if position else 0, len(symbols)):
            symbol = symbols[index]
            if position and symbol == position[0]:
                begin = position[1]
            else:
                begin = last if descending else first
            if descending:
                stop = max(first, begin - (limit - 1) * 60)
                minutes = np.arange(begin, stop - 1, -60, dtype=np.int64)
            else:
                stop = min(last, begin + (limit - 1) * 60)
                minutes = np.arange(begin, stop + 1, 60, dtype=np.int64)
            if minutes.size:
                pages[symbol] = self.bars(symbol, minutes)
            limit -= minutes.size
            if limit == 0:
                more = stop > first if descending else stop < last
                if more:
                    next_token = (symbol, stop - 60 if descending else stop + 60)
                elif index + 1 < len(symbols) and first <= last:
                    next_token = (symbols[index + 1], last if descending else first)
                break
        token = (
            base64.urlsafe_b64encode(f"{next_token[0]}:{next_token[1]}".encode()).decode()
            if next_token
            else None
        )
        if multi:
            return {"bars": pages, "next_page_token": token}
        return {"bars": pages.get(symbols[0], []), "symbol": symbols[0], "next_page_token": token}

    @staticmethod
    def _page_position(token: str | None, symbols: list[str]) -> tuple[str, int] | None:
        if not token:
            return None
        try:
            symbol, minute = base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)
            position = (symbol, int(minute))
        except (ValueError, binascii.Error):
            raise _BadRequest(422, "invalid page_token") from None
        if symbol not in symbols or position[1] % 60:
            raise _BadRequest(422, "invalid page_token")
        return position

    def _latest_trade(self, symbol: str) -> dict[str, Any]:
        if not _SYMBOL.fullmatch(symbol):
            raise _BadRequest(422, f"invalid symbol: {symbol!r}")
        tick = self._now_tick()
        minute = tick // TICKS_PER_MINUTE * 60
        prices, sizes = self._minute_ticks(symbol, minute)
        index = tick % TICKS_PER_MINUTE
        trade = _trade_message(symbol, tick, prices[index], sizes[index])
        del trade["T"], trade["S"]
        return {"symbol": symbol, "trade": trade}

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if not request.path.startswith("/v2/stocks/"):
            return None  # the WebSocket stream
        status, payload = await asyncio.to_thread(self.rest, request.path)
        body = json.dumps(payload).encode()
        headers = Headers(
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    # --- stream ---------------------------------------------------------------------------

    async def _handle_stream(self, ws: ServerConnection) -> None:
        # A client may vanish at any point (the app quitting mid-handshake): not an error.
        with contextlib.suppress(ConnectionClosed):
            await self._serve_session(ws)

    async def _serve_session(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        try:
            async with asyncio.timeout(self.auth_timeout):
                while not await self._authenticate(ws, await ws.recv()):
                    pass
        except TimeoutError:
            await ws.send(json.dumps([{"T": "error", "code": 404, "msg": "auth timeout"}]))
            await ws.close()
            return
        trades: set[str] = set()
        bars: set[str] = set()
        emitter = asyncio.create_task(self._emit(ws, trades, bars))
        try:
            async for raw in ws:
                await self._handle_action(ws, raw, trades, bars)
        finally:
            emitter.cancel()

    async def _authenticate(self, ws: ServerConnection, raw: str | bytes) -> bool:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await ws.send(json.dumps([{"T": "error", "code": 400, "msg": "invalid syntax"}]))
            return False
        if message.get("action") != "auth":
            await ws.send(json.dumps([{"T": "error", "code": 401, "msg": "not authenticated"}]))
            return False
        # The simulator has no accounts: any non-empty key and secret will do.
        if not message.get("key") or not message.get("secret"):
            await ws.send(json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}]))
            return False
        await ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
        return True

    async def _handle_action(
        self, ws: ServerConnection, raw: str | bytes, trades: set[str], bars: set[str]
    ) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        action = message.get("action") if isinstance(message, dict) else None
        if action == "auth":
            await ws.send(json.dumps([{"T": "error", "code": 403, "msg": "already authenticated"}]))
            return
        if action not in ("subscribe", "unsubscribe"):
            await ws.send(json.dumps([{"T": "error", "code": 400, "msg": "invalid syntax"}]))
            return
        for channel, subscribed in (("trades", trades), ("bars", bars)):
            symbols = message.get(channel) or []
            if not isinstance(symbols, list) or not all(
                isinstance(s, str) and _SYMBOL.fullmatch(s) for s in symbols
            ):
                await ws.send(json.dumps([{"T": "error", "code": 400, "msg": "invalid syntax"}]))
                return
            if action == "subscribe":
                subscribed.update(symbols)
            else:
                subscribed.difference_update(symbols)
        reply = {
            "T": "subscription",
            "trades": sorted(trades),
            "quotes": [],
            "bars": sorted(bars),
            # Every minute's bar is final when sent: no corrections ever follow.
            "updatedBars": [],
            "dailyBars": [],
            "statuses": [],
            "lulds": [],
        }
        await ws.send(json.dumps([reply]))

    async def _emit(self, ws: ServerConnection, trades: set[str], bars: set[str]) -> None:
        """Send what happened between looks at the clock: bars of closed minutes, trades."""
        last_tick = self._now_tick()
        while True:
            now_tick = self._now_tick()
            if now_tick > last_tick:
                messages = self._messages_between(last_tick, now_tick, trades, bars)
                last_tick = now_tick
                if messages:
                    try:
                        await ws.send(json.dumps(messages))
                    except ConnectionClosed:
                        return
            now_ms = self.clock.now().timestamp() * 1000
            until_next_tick = ((now_tick + 1) * TICK_MS - now_ms) / 1000
            await asyncio.sleep(min(self.tick_interval, max(0.001, until_next_tick)))

    def _messages_between(
        self, last_tick: int, now_tick: int, trades: set[str], bars: set[str]
    ) -> list[dict[str, Any]]:
        """Messages for the ticks in (last_tick, now_tick], oldest first."""
        # A minute's bar is due at the first tick of the next minute.
        first_boundary = -(-(last_tick + 1) // TICKS_PER_MINUTE) * TICKS_PER_MINUTE
        boundaries = list(range(first_boundary, now_tick + 1, TICKS_PER_MINUTE))
        boundaries = boundaries[-MAX_CATCH_UP_BARS:] if bars else []
        messages: list[dict[str, Any]] = []
        for tick in range(max(last_tick + 1, now_tick - MAX_CATCH_UP_TICKS + 1), now_tick + 1):
            while boundaries and boundaries[0] <= tick:
                closed = boundaries.pop(0) // TICKS_PER_SECOND - 60
                messages.extend(self._bar_message(symbol, closed) for symbol in sorted(bars))
            minute = tick // TICKS_PER_MINUTE * 60
            index = tick % TICKS_PER_MINUTE
            for symbol in sorted(trades):
                prices, sizes = self._minute_ticks(symbol, minute)
                messages.append(_trade_message(symbol, tick, prices[index], sizes[index]))
        return messages

    # --- serving --------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Server:
        """The websockets server (use `async with`); port 0 picks a free port."""
        return serve(
            self._handle_stream,
            host,
            port,
            process_request=self._process_request,
            logger=log,
        )


def urls(server: Server) -> tuple[str, str]:
    """(stream URL, history base URL) of a running simulator server."""
    host, port = server.sockets[0].getsockname()[:2]
    return f"ws://{host}:{port}/v2/sim", f"http://{host}:{port}"


class SimulatorThread:
    """A Simulator serving on its own thread and event loop, away from the app's loop."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self._address = (host, port)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.stream_url = ""
        self.history_url = ""

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the port is open (raises if it could not be)."""
        self._thread = threading.Thread(target=self._run, name="market-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the market simulator did not start")
        if self._error is not None:
            raise RuntimeError(f"the market simulator did not start: {self._error}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread just ends
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with self.simulator.serve(*self._address) as server:
            self.stream_url, self.history_url = urls(server)
            self._ready.set()
            await self._stopping.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the server and its connections, and end the thread."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)


async def _main(host: str, port: int, seed: int) -> None:
    async with Simulator(seed=seed).serve(host, port) as server:
        stream_url, history_url = urls(server)
        print(f"market simulator: stream {stream_url}  history {history_url}", flush=True)
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m autotrader_desktop.feed.simulator",
        description="Serve deterministic market data over Alpaca's stream and REST protocols.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=price_path.DEFAULT_SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.seed))


if __name__ == "__main__":
    main()
