"""Minute bars from the stream: trades aggregated per (symbol, minute start UTC), persisted.

A bar covers [t, t + 60 s). The aggregator lives on the event loop and only touches memory;
completed and corrected bars collect in a pending set that the owner hands, every fraction
of a second, to `BarWriter`, which writes them on its own thread in one transaction.

Who decides a bar's values:
- trades build the bar of their minute; the minute completes when a trade of a later
  minute arrives or the clock passes its end, and a late trade re-opens nothing but
  corrects the completed bar (and it is written again);
- the server's bars ("b", its corrections "u", and REST backfill) replace ours: they saw
  every trade, we may have missed some (the minute we subscribed in, a reconnect). After
  that, trades for that minute are ignored: the server sends "u" if the bar changes.
Recent minutes stay in memory (`retention`) so that corrections keep exact open/close
order. A late trade for a minute from before the stream began (whose bar came from the
history API) or older than the retention is merged in SQL: high, low and volume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from autotrader_desktop.database import db, write_transaction
from autotrader_desktop.feed import sources
from autotrader_desktop.feed.protocol import MinuteBar, Trade, Trades

log = logging.getLogger(__name__)

# A bar in memory is a list, mutated in place on the hot path:
# [open, high, low, close, volume, first trade second, last trade second, state, minute].
_OPEN, _COMPLETED, _SERVER = 0, 1, 2
RETENTION_S = 2 * 3600

Merge = tuple[str, int, float, float]  # symbol, t, price, size

# The source goes in as a literal ({source}): one statement per batch, nothing per row.
_UPSERT = (
    "INSERT INTO bars (source, symbol, t, o, h, l, c, v) VALUES ({source}, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, symbol, t) DO UPDATE SET "
    "o = excluded.o, h = excluded.h, l = excluded.l, c = excluded.c, v = excluded.v"
)
_MERGE = (
    "INSERT INTO bars (source, symbol, t, o, h, l, c, v)"
    " VALUES ({source}, ?1, ?2, ?3, ?3, ?3, ?3, ?4) "
    "ON CONFLICT (source, symbol, t) DO UPDATE SET "
    "h = max(h, excluded.h), l = min(l, excluded.l), v = v + excluded.v"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class BarAggregator:
    """Trades and server bars in, live bars and pending writes out.

    Used from the event loop only, except `last_price` and `data_time`, which any thread
    may call.
    """

    def __init__(self, retention: int = RETENTION_S) -> None:
        self.retention = retention
        self._bars: dict[str, dict[int, list]] = {}  # symbol -> minute -> bar
        self._open: dict[str, list] = {}  # symbol -> its bar in progress
        self._latest: dict[str, int] = {}  # symbol -> newest minute seen
        self._first: dict[str, int] = {}  # symbol -> first minute the stream delivered
        self._horizon = 0  # every minute before this one has ended by the clock
        self._pending: dict[tuple[str, int], list] = {}
        self._merges: list[Merge] = []

    def add_trades(
        self, trades: Trades, within: Callable[[str, float], bool] | None = None
    ) -> list[Trade]:
        """Add trades to their bars. With `within` (symbol, price -> believable?), a trade
        that would extend its bar's range or start a bar is added only if `within` says
        so; the others are returned, in order, for a closer look. A trade inside the range
        of trades already believed needs no check: that keeps the check off the hot path.
        """
        open_bars, add_other = self._open, self._add_trade
        suspects: list[Trade] = []
        columns = (trades.symbols, trades.prices, trades.sizes, trades.minutes, trades.seconds)
        for symbol, price, size, minute, second in zip(*columns, strict=True):
            # The hot path: a trade for the bar in progress. Bars are lists, see above.
            bar = open_bars.get(symbol)
            if bar is not None and bar[8] == minute:
                if price > bar[1]:
                    if within is not None and not within(symbol, price):
                        suspects.append(Trade(symbol, price, size, minute, second))
                        continue
                    bar[1] = price
                elif price < bar[2]:
                    if within is not None and not within(symbol, price):
                        suspects.append(Trade(symbol, price, size, minute, second))
                        continue
                    bar[2] = price
                bar[4] += size
                if second >= bar[6]:
                    bar[3], bar[6] = price, second
                elif second < bar[5]:
                    bar[0], bar[5] = price, second
            elif within is None or within(symbol, price):
                add_other(symbol, price, size, minute, second)
            else:
                suspects.append(Trade(symbol, price, size, minute, second))
        return suspects

    def _add_trade(
        self, symbol: str, price: float, size: float, minute: int, second: float
    ) -> None:
        """A trade for a new minute, or a late one for a minute that has completed."""
        minutes = self._bars.setdefault(symbol, {})
        bar = minutes.get(minute)
        if bar is not None:
            if bar[7] == _SERVER:
                return
            bar[1], bar[2], bar[4] = max(bar[1], price), min(bar[2], price), bar[4] + size
            if second >= bar[6]:
                bar[3], bar[6] = price, second
            elif second < bar[5]:
                bar[0], bar[5] = price, second
            self._pending[symbol, minute] = bar  # a correction
            return
        newest = self._latest.get(symbol)
        if newest is None:
            self._first[symbol] = minute
        if newest is None or minute > newest:
            if newest is not None:
                self._complete(symbol, newest)
            closed = minute < self._horizon  # a lagging feed: the clock has moved on
            bar = [price, price, price, price, size, second, second, int(closed), minute]
            minutes[minute] = bar
            self._latest[symbol] = minute
            if closed:
                self._pending[symbol, minute] = bar
            else:
                self._open[symbol] = bar
        elif minute >= self._first[symbol] and minute >= self._horizon - self.retention:
            # A late first trade for a minute the stream has covered: its own bar.
            bar = [price, price, price, price, size, second, second, _COMPLETED, minute]
            minutes[minute] = bar
            self._pending[symbol, minute] = bar
        else:
            # Before the stream's time (history's bar, if any) or forgotten: merge into
            # what the database holds, without clobbering it.
            self._merges.append((symbol, minute, price, size))

    def _complete(self, symbol: str, minute: int) -> None:
        bar = self._bars[symbol][minute]
        if bar[7] == _OPEN:
            bar[7] = _COMPLETED
            self._pending[symbol, minute] = bar
            del self._open[symbol]

    def apply_bars(self, bars: Iterable[MinuteBar]) -> None:
        """The server's bars (stream "b"/"u", REST backfill): they replace ours."""
        for symbol, t, o, h, low, c, v in bars:
            bar = [o, h, low, c, v, 0.0, 60.0, _SERVER, t]
            minutes = self._bars.setdefault(symbol, {})
            newest = self._latest.get(symbol)
            if newest is None:
                self._first[symbol] = t
            if newest is None or t > newest:
                if newest is not None:
                    self._complete(symbol, newest)
                self._latest[symbol] = t
            elif t == newest:
                self._open.pop(symbol, None)  # ours in progress, if any: the server's wins
            if t == self._latest[symbol] or t >= self._horizon - self.retention:
                minutes[t] = bar
            self._pending[symbol, t] = bar

    def close_minutes(self, now: float) -> None:
        """Complete the bars whose minute has ended by `now` (epoch s); forget old ones."""
        horizon = int(now) // 60 * 60
        if horizon <= self._horizon:
            return
        self._horizon = horizon
        cutoff = horizon - self.retention
        for symbol, newest in self._latest.items():
            if newest < horizon:
                self._complete(symbol, newest)
            minutes = self._bars[symbol]
            for minute in [m for m in minutes if m < cutoff and m != newest]:
                del minutes[minute]

    def take_pending(self) -> tuple[list[MinuteBar], list[Merge]]:
        """The bars completed or corrected since the last call, and late-trade merges."""
        rows = [MinuteBar(s, t, *b[:5]) for (s, t), b in self._pending.items()]
        merges = self._merges
        self._pending, self._merges = {}, []
        return rows, merges

    def in_progress(self, symbol: str) -> MinuteBar | None:
        """The bar of the minute in progress (what the live candle shows), if any."""
        bar = self._open.get(symbol)
        return None if bar is None else MinuteBar(symbol, bar[8], *bar[:5])

    def data_time(self, symbol: str) -> float | None:
        """Epoch time of the newest trade, or the end of the newest server bar. Any thread."""
        minute = self._latest.get(symbol)
        if minute is None:
            return None
        bar = self._bars[symbol].get(minute)
        if bar is None:
            return None
        return minute + (60.0 if bar[7] == _SERVER else bar[6])

    def last_price(self, symbol: str) -> float | None:
        """Close of the newest bar: the latest trade's price. Safe to call from any thread
        (each step is a single dict read, atomic under the GIL; the newest bar is never
        evicted)."""
        minute = self._latest.get(symbol)
        if minute is None:
            return None
        bar = self._bars[symbol].get(minute)
        return bar[3] if bar is not None else None


def store(
    rows: Sequence[MinuteBar], merges: Sequence[Merge] = (), source: str | None = None
) -> None:
    """Write bars of `source` (default: the process's, sources.current()) in one
    transaction: rows replace, merges widen high/low and add volume."""
    quoted = _literal(source or sources.current())
    with write_transaction():
        connection = db.connection()
        connection.executemany(_UPSERT.format(source=quoted), rows)
        connection.executemany(_MERGE.format(source=quoted), merges)


class BarWriter:
    """Writes batches of bars on one background thread, in the order they were submitted."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bar-writer")
        self._source = sources.current()

    def submit(self, rows: list[MinuteBar], merges: list[Merge]) -> Future[None]:
        future = self._executor.submit(store, rows, merges, self._source)
        future.add_done_callback(_report_failure)
        return future

    def close(self) -> None:
        """Finish what was submitted, then close the thread's database connection."""
        self._executor.submit(db.close).result()
        self._executor.shutdown(wait=True)


def _report_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not store minute bars", exc_info=future.exception())
