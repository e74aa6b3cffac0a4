"""Market data as the engine and the window see it: subscriptions, prices, bars, feed status.

One code path for every feed; only URLs and credentials differ:
- "sim": the embedded simulator (feed/simulator.py) on its own thread, at a free port on
  127.0.0.1, with placeholder credentials;
- "alpaca-iex" / "alpaca-sip": Alpaca's stream and data URLs (or `stream_url` /
  `history_url` from the settings), with the key and secret from credentials.py;
- "none": no market data at all.

While started (`start()`, on the app's event loop) the stream client feeds the bar
aggregator; completed bars go to the database through the bar writer thread; a reconnect
backfills the gap from the history API, and so does a first subscription.

Without `start()` (short-lived CLI processes) `prepare()` still stores history and
`latest_price()` asks the latest-trade endpoint. For the simulator that needs no server:
the history client calls the simulator's REST handler in-process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from autotrader_desktop import credentials
from autotrader_desktop.clock import Clock
from autotrader_desktop.database import db, write_transaction
from autotrader_desktop.enums import Feed, FeedState
from autotrader_desktop.events import event
from autotrader_desktop.feed import market_hours, sources
from autotrader_desktop.feed.bars import BarAggregator, BarWriter, store
from autotrader_desktop.feed.client import Backoff, FeedClient, FeedStatus
from autotrader_desktop.feed.guard import FeedGuard
from autotrader_desktop.feed.history import HistoryClient, HistoryError
from autotrader_desktop.feed.protocol import Frame, MinuteBar
from autotrader_desktop.feed.simulator import Simulator, SimulatorThread
from autotrader_desktop.settings import Settings

log = logging.getLogger(__name__)

ALPACA_STREAM_URL = "wss://stream.data.alpaca.markets/v2/{feed}"
ALPACA_HISTORY_URL = "https://data.alpaca.markets"
MIN_BARS = 200
# How far back a symbol's history goes when it has fewer than MIN_BARS, and the longest
# gap filled in one go. The simulator trades around the clock; NYSE needs a long weekend
# plus a holiday to be sure of 200 minutes.
LOOKBACK_S = {"sim": 2 * 86_400, "alpaca": 5 * 86_400}
FLUSH_INTERVAL_S = 0.25
# How long a latest-trade answer stands in for a price when no stream is running.
PRICE_CACHE_S = 1.0
# Requests to the history and latest-trade endpoints made at once.
REQUEST_CONCURRENCY = 8
SIM_CREDENTIALS = credentials.Credentials("simulator", "simulator")


def _settled(result: bool) -> Future[bool]:
    future: Future[bool] = Future()
    future.set_result(result)
    return future


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class MarketEvents:
    """What market data announces, on the event loop that started it (the rules:
    autotrader_desktop/events.py)."""

    status_changed = event(FeedStatus)
    # After each frame with trades or bars: prices and in-progress bars moved.
    data_arrived = event()
    # A completed or corrected bar, once it is stored (listeners can query it).
    bar_stored = event(MinuteBar)


class LiveMarket(Protocol):
    """What the window reads of market data: last prices, the in-progress bar, the feed's
    state. All of it is in memory: reads never wait on the network or the database."""

    status: FeedStatus

    def latest_price(self, symbol: str) -> float | None: ...

    def in_progress_bar(self, symbol: str) -> MinuteBar | None: ...

    def data_age(self, symbol: str) -> float | None: ...


class MarketDataPort(LiveMarket, Protocol):
    """Everything the engine uses of market data. `MarketData` is the implementation; test
    doubles subclass this protocol, so a change of interface fails type checking (mypy
    checks tests/helpers.py) rather than a run."""

    events: MarketEvents
    source: str  # whose bars these are (feed/sources.py)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, symbol: str) -> None: ...

    def unsubscribe(self, symbol: str) -> None: ...

    def start_preparing(self, symbols: list[str]) -> dict[str, Future[bool]]: ...

    def ensure_history(self, symbol: str, start: int, end: int, deadline: float) -> bool: ...

    def latest_prices(self, symbols: Iterable[str]) -> dict[str, float | None]: ...


class MarketData:
    """Reference-counted symbol subscriptions, latest prices, minute bars and feed status.

    Thread-safety: `subscribe`, `unsubscribe`, `prepare`, `start_preparing`, `latest_price`,
    `symbols`, `subscriptions` and `data_age` may be called from any thread; `prepare`
    blocks (history over the network). Everything else, and the listeners, run on the event
    loop that called `start()`.
    """

    def __init__(
        self,
        clock: Clock,
        settings: Settings | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.feed = self.settings.feed
        self.source = sources.for_feed(self.feed, self.settings.simulator_seed)
        sources.use(self.source)
        self._clock = clock
        self._backoff = backoff
        self._lock = threading.Lock()
        self._subscriptions: Counter[str] = Counter()
        self._prepared: set[str] = set()
        # symbol -> its history request in flight: one per symbol, whoever asks meanwhile
        # waits for that one and then finds its bars stored.
        self._fetching: dict[str, Future[bool]] = {}
        # symbol -> the newest minute its history was prepared up to
        self._horizon: dict[str, int] = {}
        self._fallback_prices: dict[str, tuple[float, float]] = {}  # price, when (epoch s)
        self._simulator = Simulator(clock, self.settings.simulator_seed)
        self._history: HistoryClient | None = None
        self._aggregator = BarAggregator()
        # Every trade, bar and price from outside passes it before it is used.
        self.guard = FeedGuard(self.settings.price_band_pct, self._aggregator.retention)
        self._last_data_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: FeedClient | None = None
        self._writer: BarWriter | None = None
        self._sim_thread: SimulatorThread | None = None
        self._tasks: set[asyncio.Task] = set()  # everything running on the loop
        self._streaming: set[asyncio.Task] = set()  # of which: the client and the flusher
        self._was_connected = False
        self.status = FeedStatus(FeedState.OFF)
        self.events = MarketEvents()

    # --- endpoints --------------------------------------------------------------------------

    @property
    def _lookback(self) -> int:
        return LOOKBACK_S["sim" if self.feed == Feed.SIM else "alpaca"]

    def _credentials(self) -> credentials.Credentials:
        if self.feed == Feed.SIM:
            return SIM_CREDENTIALS
        found = credentials.load()
        if found is None:
            raise credentials.CredentialsError(credentials.missing_message())
        return found

    def _history_client(self) -> HistoryClient | None:
        """The history client, created on first use (the keyring is only read when needed)."""
        if self._history is None and self.feed == Feed.SIM:
            self._history = HistoryClient("sim:", transport=self._simulator.rest)
        elif self._history is None and self.feed.is_alpaca:
            # Not under self._lock: reading the keyring may wait for the user to allow it.
            self._history = HistoryClient(
                self.settings.history_url or ALPACA_HISTORY_URL,
                self._credentials(),
                feed=self.feed.alpaca_name,
            )
        return self._history

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start streaming (and, for "sim", the simulator) on the running event loop."""
        if self.settings.gating_enabled:
            # The NYSE calendar takes ~0.5 s to load (pandas): not on the loop at a cycle.
            self._spawn(asyncio.to_thread(market_hours.is_open, self._clock.now()))
        if self.feed == Feed.NONE:
            return
        loop = asyncio.get_running_loop()
        if self.feed == Feed.SIM:
            self._sim_thread = SimulatorThread(self._simulator)
            await asyncio.to_thread(self._sim_thread.start)
            stream_url = self._sim_thread.stream_url
            # The server is up: from now on history goes over HTTP, like Alpaca's.
            self._history = HistoryClient(self._sim_thread.history_url, SIM_CREDENTIALS)
        else:
            stream_url = self.settings.stream_url or ALPACA_STREAM_URL.format(
                feed=self.feed.alpaca_name
            )
        try:
            creds = await asyncio.to_thread(self._credentials)
        except credentials.CredentialsError as exc:
            log.error("market data: %s", exc)
            self._status_changed(FeedStatus(FeedState.AUTH_FAILED, str(exc)))
            return
        self._writer = BarWriter()
        self._client = FeedClient(
            stream_url,
            creds,
            self._on_frame,
            on_status=self._status_changed,
            backoff=self._backoff,
        )
        with self._lock:
            # Together, so that a subscribe() from another thread is either in this
            # snapshot or sees the loop and forwards itself.
            symbols = sorted(self._subscriptions)
            self._client.subscribe(symbols)
            self._loop = loop
        self._streaming.add(self._spawn(self._client.run()))
        self._streaming.add(self._spawn(self._flush_periodically()))
        if symbols:
            self._spawn(asyncio.to_thread(self.prepare, symbols))

    async def stop(self) -> None:
        """Disconnect, store every bar aggregated so far and stop the simulator."""
        with self._lock:
            self._loop = None
        for task in self._streaming:
            task.cancel()
        # Backfills run on threads that cannot be cancelled: let them finish their writes.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._streaming.clear()
        if self._writer is not None:
            await self.flush()
            await asyncio.to_thread(self._writer.close)
            self._writer = None
        if self._sim_thread is not None:
            await asyncio.to_thread(self._sim_thread.stop)
            self._sim_thread = None
        self._client = None
        if self.status.state not in (FeedState.OFF, FeedState.STOPPED):
            self._status_changed(FeedStatus(FeedState.STOPPED))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- subscriptions ----------------------------------------------------------------------

    @property
    def symbols(self) -> set[str]:
        with self._lock:
            return {symbol for symbol, count in self._subscriptions.items() if count > 0}

    @property
    def subscriptions(self) -> Counter[str]:
        """How many subscribers each symbol has (a copy)."""
        with self._lock:
            return Counter(self._subscriptions)

    def subscribe(self, symbol: str) -> None:
        """Add a subscriber; the first one subscribes the feed and backfills history."""
        with self._lock:
            self._subscriptions[symbol] += 1
            if self._subscriptions[symbol] == 1:
                self._forward(symbol)

    def unsubscribe(self, symbol: str) -> None:
        """Remove a subscriber; the last one unsubscribes the feed."""
        with self._lock:
            if self._subscriptions[symbol] > 0:
                self._subscriptions[symbol] -= 1
            if self._subscriptions[symbol] == 0:
                del self._subscriptions[symbol]
                self._forward(symbol)

    def _forward(self, symbol: str) -> None:
        """Bring the stream in line with the counts for `symbol` (call with the lock held)."""
        loop = self._loop
        if loop is None:
            return  # not streaming: start() subscribes to whatever is counted then
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            loop.call_soon(self._sync_subscription, symbol)
        else:
            loop.call_soon_threadsafe(self._sync_subscription, symbol)

    def _sync_subscription(self, symbol: str) -> None:
        client = self._client
        if client is None:
            return
        with self._lock:
            wanted = self._subscriptions[symbol] > 0
        if wanted and symbol not in client.symbols:
            client.subscribe([symbol])
            self._spawn(asyncio.to_thread(self.prepare, [symbol]))
        elif not wanted and symbol in client.symbols:
            client.unsubscribe([symbol])

    # --- history ----------------------------------------------------------------------------

    def prepare(self, symbols: list[str]) -> list[str]:
        """Make sure at least MIN_BARS completed bars of each symbol are stored, and that
        nothing is missing since the newest one. Blocking: call it off the event loop.

        Returns the symbols whose history could not be fetched (the reason is logged):
        a network or credentials problem must not stop the engine's cycle.
        """
        preparing = self.start_preparing(symbols)
        return sorted(symbol for symbol, done in preparing.items() if not done.result())

    def start_preparing(self, symbols: list[str]) -> dict[str, Future[bool]]:
        """`prepare` without waiting for the network: each symbol's future is done once its
        history is stored (True) or could not be fetched (False, logged). Symbols that need
        nothing fetched are done on return; the others are asked for all at once on threads,
        each under the client's timeout, so a hanging endpoint holds back only the symbols
        waiting for it. Blocks only to read the database (and the keyring, on first use).
        """
        if not symbols:
            return {}
        try:
            history = self._history_client()
        except credentials.CredentialsError as exc:
            log.warning("market data: no history for %s: %s", ", ".join(symbols), exc)
            return {symbol: _settled(False) for symbol in symbols}
        if history is None:
            return {symbol: _settled(True) for symbol in symbols}
        now = self._clock.now().timestamp()
        last_complete = int(now) // 60 * 60 - 60
        streaming = self.status.state == FeedState.CONNECTED
        preparing: dict[str, Future[bool]] = {}
        # symbol -> (first minute to fetch, the stored close before it, if any)
        wanted: dict[str, tuple[int, float | None]] = {}
        for symbol in symbols:
            with self._lock:
                fetching = self._fetching.get(symbol)
                # While the stream is up it keeps a prepared symbol's bars complete.
                kept = symbol in self._prepared and streaming and self._subscriptions[symbol]
            if fetching is not None or kept:
                preparing[symbol] = fetching or _settled(True)
                continue
            rows = (
                db.connection()
                .execute(
                    "SELECT t, c FROM bars WHERE source = ? AND symbol = ? AND t <= ?"
                    " ORDER BY t DESC LIMIT ?",
                    (self.source, symbol, last_complete, MIN_BARS),
                )
                .fetchall()
            )
            start = last_complete - self._lookback
            if len(rows) >= MIN_BARS:
                start = max(start, rows[0][0] + 60)
            if start <= last_complete:
                wanted[symbol] = (start, rows[0][1] if rows and rows[0][0] < start else None)
            else:
                self.guard.seed(symbol, rows[0][1])
                self._prepared_through(symbol, last_complete)
                preparing[symbol] = _settled(True)
        if not wanted:
            return preparing
        # Only the requests and the writes of what they bring run on the pool; nothing
        # holds a lock while it waits on the network. The threads end with their requests.
        pool = ThreadPoolExecutor(
            max_workers=min(REQUEST_CONCURRENCY, len(wanted)), thread_name_prefix="history"
        )
        for symbol, (start, before) in wanted.items():
            with self._lock:
                # Claimed by another caller since it was read: that request will do.
                if symbol not in self._fetching:
                    self._fetching[symbol] = pool.submit(
                        self._fetch, history, symbol, start, last_complete, before
                    )
                preparing[symbol] = self._fetching[symbol]
        pool.shutdown(wait=False)
        return preparing

    def _fetch(
        self, history: HistoryClient, symbol: str, start: int, end: int, before: float | None
    ) -> bool:
        """Ask for a symbol's missing history and store it (on a pool thread)."""
        try:
            bars = history.bars([symbol], start, end)[symbol]
            bars = self._store_fetched(symbol, start, end, bars, before)
            newest = bars[-1].c if bars else before
            if newest is not None:
                self.guard.seed(symbol, newest)
            log.info("market data: stored %d bars of %s history", len(bars), symbol)
            self._prepared_through(symbol, end)
            return True
        except HistoryError as exc:
            log.warning("market data: no history for %s: %s", symbol, exc)
        except Exception:
            # On a pool thread nobody else would hear of it; the instances still run.
            log.exception("market data: could not store %s history", symbol)
        finally:
            # Released before the future is done: whoever it wakes finds the bars stored.
            with self._lock:
                del self._fetching[symbol]
        return False

    def _prepared_through(self, symbol: str, last_complete: int) -> None:
        with self._lock:
            self._prepared.add(symbol)
            self._horizon[symbol] = last_complete

    def _store_fetched(
        self, symbol: str, start: int, end: int, bars: list[MinuteBar], before: float | None
    ) -> list[MinuteBar]:
        """Store what a history request answered that is believed (feed/guard.py, judged
        from `before`, the stored close before `start`) and remember the range as asked for
        (merged with the ranges it touches, so a symbol keeps a few rows, not one a minute).
        Returns the bars stored."""
        bars = self.guard.history(symbol, bars, before, start, end, self._clock.now().timestamp())
        key = (self.source, symbol)
        with write_transaction():
            store(bars, source=self.source)
            conn = db.connection()
            touching = conn.execute(
                "SELECT start, end FROM bar_coverage WHERE source = ? AND symbol = ?"
                " AND end >= ? AND start <= ?",
                (*key, start - 60, end + 60),
            ).fetchall()
            start = min([start, *(row[0] for row in touching)])
            end = max([end, *(row[1] for row in touching)])
            conn.execute(
                "DELETE FROM bar_coverage WHERE source = ? AND symbol = ? AND start >= ?"
                " AND start <= ?",
                (*key, start, end),
            )
            conn.execute(
                "INSERT INTO bar_coverage (source, symbol, start, end) VALUES (?, ?, ?, ?)",
                (*key, start, end),
            )
        return bars

    def _missing(self, symbol: str, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end] (minute starts) never asked of the history API."""
        covered = (
            db.connection()
            .execute(
                "SELECT start, end FROM bar_coverage WHERE source = ? AND symbol = ?"
                " AND end >= ? AND start <= ? ORDER BY start",
                (self.source, symbol, start, end),
            )
            .fetchall()
        )
        gaps, cursor = [], start
        for low, high in covered:
            if low > cursor:
                gaps.append((cursor, min(low - 60, end)))
            cursor = max(cursor, high + 60)
        if cursor <= end:
            gaps.append((cursor, end))
        return [(a, b) for a, b in gaps if a <= b]

    def ensure_history(self, symbol: str, start: int, end: int, deadline: float) -> bool:
        """Fetch and store the bars of [start, end] that were never fetched (newest part
        first), until `deadline` (time.monotonic()). For the data API: blocking, any
        thread. Failures are logged: the caller answers with what is stored. True if
        anything was asked of the history API.

        Minutes after a streaming symbol was prepared are the stream's to deliver.
        """
        with self._lock:
            streaming = self._client is not None and symbol in self._horizon
            if streaming:
                end = min(end, self._horizon[symbol])
        gaps = self._missing(symbol, start // 60 * 60, end)
        if not gaps:
            return False
        try:
            history = self._history_client()
        except credentials.CredentialsError as exc:
            log.warning("market data: no history for %s: %s", symbol, exc)
            return False
        if history is None:
            return False
        for low, high in reversed(gaps):
            if time.monotonic() >= deadline:
                log.warning("market data: %s history request ran out of time", symbol)
                return True
            try:
                bars = history.bars([symbol], low, high)[symbol]
            except HistoryError as exc:
                log.warning("market data: no history for %s: %s", symbol, exc)
                return True
            before = (
                db.connection()
                .execute(
                    "SELECT c FROM bars WHERE source = ? AND symbol = ? AND t < ?"
                    " ORDER BY t DESC LIMIT 1",
                    (self.source, symbol, low),
                )
                .fetchone()
            )
            self._store_fetched(symbol, low, high, bars, before[0] if before else None)
        return True

    async def _backfill_gap(self, since: float) -> None:
        """After a reconnect: the server's bars from the minute the stream went quiet."""
        symbols = sorted(self.symbols)
        last_complete = int(self._clock.now().timestamp()) // 60 * 60 - 60
        start = max(int(since) // 60 * 60, last_complete - self._lookback)
        if not symbols or start > last_complete:
            return

        recent = last_complete - self._aggregator.retention
        now = self._clock.now().timestamp()

        def fetch() -> list[MinuteBar]:
            """On a thread: store what is too old to matter to the aggregator (after a long
            sleep that is most of it, and it would stall the loop); return the rest."""
            history = self._history_client()
            found = history.bars(symbols, start, last_complete) if history else {}
            bars = [
                bar
                for symbol, rows in found.items()
                for bar in self.guard.history(
                    symbol, rows, self.guard.reference(symbol), start, last_complete, now
                )
            ]
            store([bar for bar in bars if bar.t < recent], source=self.source)
            return [bar for bar in bars if bar.t >= recent]

        try:
            bars = await asyncio.to_thread(fetch)
        except (HistoryError, credentials.CredentialsError) as exc:
            log.warning("market data: could not backfill the gap after reconnecting: %s", exc)
            return
        self._aggregator.apply_bars(bars)
        log.info(
            "market data: backfilled the gap since %s UTC",
            time.strftime("%H:%M", time.gmtime(start)),
        )

    # --- the stream -------------------------------------------------------------------------

    def _status_changed(self, status: FeedStatus) -> None:
        self.status = status
        if status.state == FeedState.CONNECTED:
            if self._was_connected and self._last_data_at is not None:
                self._spawn(self._backfill_gap(self._last_data_at))
            self._was_connected = True
        self.events.status_changed.emit(status)

    def _on_frame(self, frame: Frame) -> None:
        now = self._clock.now().timestamp()
        aggregator, guard = self._aggregator, self.guard
        if frame.bars:
            aggregator.apply_bars(guard.bars(frame.bars, now))
        if frame.trades:
            # Trades that would move a bar beyond the believed range get a closer look.
            doubtful = aggregator.add_trades(guard.timely(frame.trades, now), guard.within)
            if doubtful:
                aggregator.add_trades(guard.judge(doubtful, now, aggregator.data_time))
        self._last_data_at = now
        self.events.data_arrived.emit()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self._flush()

    def _flush(self) -> Future[None] | None:
        if self._writer is None:
            return None
        self._aggregator.close_minutes(self._clock.now().timestamp())
        self.guard.refresh(self._aggregator.last_price)
        rows, merges = self._aggregator.take_pending()
        future = self._writer.submit(rows, merges)
        if rows and len(self.events.bar_stored):
            # Listeners hear of completed bars once they are stored, so they can query them.
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._notify_stored, rows))
        return future

    def _notify_stored(self, rows: list[MinuteBar]) -> None:
        for row in rows:
            self.events.bar_stored.emit(row)

    async def flush(self) -> None:
        """Hand everything aggregated so far to the database and wait until it is stored."""
        future = self._flush()
        if future is not None:
            await asyncio.wrap_future(future)

    # --- what the engine and the window read ------------------------------------------------

    def latest_price(self, symbol: str) -> float | None:
        """Price of the latest trade believed (see feed/guard.py); thread-safe.

        The streamed price when there is one. Otherwise the latest-trade endpoint, asked
        only off the event loop (it blocks) and cached: while streaming, until a trade
        streams in; without a stream, for PRICE_CACHE_S.
        """
        return self.latest_prices([symbol])[symbol]

    def latest_prices(self, symbols: Iterable[str]) -> dict[str, float | None]:
        """`latest_price` of each symbol; those that need the endpoint are asked at once,
        so a hanging endpoint delays this call by one timeout, not one per symbol."""
        prices: dict[str, float | None] = {}
        ask: list[str] = []
        streaming = self._client is not None
        now = self._clock.now().timestamp()
        on_loop = _on_event_loop()
        for symbol in dict.fromkeys(symbols):
            prices[symbol] = self._aggregator.last_price(symbol)
            if prices[symbol] is not None:
                continue
            with self._lock:
                cached = self._fallback_prices.get(symbol)
            prices[symbol] = cached[0] if cached else None
            fresh = cached is not None and (streaming or now - cached[1] < PRICE_CACHE_S)
            if not fresh and not on_loop:
                ask.append(symbol)
        if not ask:
            return prices
        try:
            history = self._history_client()
        except credentials.CredentialsError as exc:
            log.warning("market data: no latest price for %s: %s", ", ".join(ask), exc)
            return prices
        if history is None:
            return prices
        for symbol in ask:
            if self.guard.reference(symbol) is None:
                # Judged against the newest stored close when nothing newer is known.
                row = (
                    db.connection()
                    .execute(
                        "SELECT c FROM bars WHERE symbol = ? ORDER BY t DESC LIMIT 1", (symbol,)
                    )
                    .fetchone()
                )
                if row is not None:
                    self.guard.seed(symbol, row[0])
        with ThreadPoolExecutor(
            max_workers=min(REQUEST_CONCURRENCY, len(ask)), thread_name_prefix="latest-trade"
        ) as pool:
            answers = dict(zip(ask, pool.map(self._ask_latest_trade(history), ask), strict=True))
        for symbol, answer in answers.items():
            if answer is None:
                continue
            price = self.guard.price(symbol, *answer, now)
            if price is not None:
                prices[symbol] = price
                with self._lock:
                    self._fallback_prices[symbol] = (price, now)
        return prices

    @staticmethod
    def _ask_latest_trade(
        history: HistoryClient,
    ) -> Callable[[str], tuple[float, float | None] | None]:
        def ask(symbol: str) -> tuple[float, float | None] | None:
            try:
                return history.latest_trade(symbol)
            except HistoryError as exc:
                log.warning("market data: no latest price for %s: %s", symbol, exc)
                return None

        return ask

    def in_progress_bar(self, symbol: str) -> MinuteBar | None:
        """The bar of the minute in progress, from streamed trades (for the live candle)."""
        return self._aggregator.in_progress(symbol)

    def data_age(self, symbol: str) -> float | None:
        """Seconds since the newest trade (or bar end) the feed delivered for `symbol`, by
        its timestamp; None before any. The stale-data warning reads this."""
        newest = self._aggregator.data_time(symbol)
        return None if newest is None else self._clock.now().timestamp() - newest
