"""Live market data for the window: last prices, the in-progress candle, the feed's state.

The one adapter between the window and `engine.market_data`. It polls on a timer: the
reads are dictionary lookups in the feed's aggregator (never network calls on the event
loop), and a timer caps the window's work however fast trades stream in. Completed bars
come from the database (queries.bars); the candle of the minute that just ended is shown
from its last live state until the stored bar replaces it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from autotrader_desktop.enums import Feed, FeedState
from autotrader_desktop.feed.market_data import LiveMarket
from autotrader_desktop.queries import Bars

POLL_MS = 250
PRICES_EVERY = 4  # polls: table prices once a second
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class FeedView:
    """What the status bar shows about the feed."""

    name: str  # "simulator", "Alpaca IEX", ...
    state: str  # "connected", "reconnecting in 4 s (...)", "auth failed (...)", ...
    ok: bool
    age: float | None  # seconds since the newest trade or bar of any symbol shown
    stale: list[str]  # symbols whose newest data is older than STALE_AFTER_S


class LiveData(QObject):
    prices_changed = Signal(object)  # dict[str, float]: symbol -> last price
    live_bar_changed = Signal(str, object)  # symbol, Bars with the in-progress bar
    bar_closed = Signal(str, object)  # symbol, Bars with the bar whose minute just ended
    status_changed = Signal(object)  # FeedView

    def __init__(self, market: LiveMarket, feed: Feed, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._market = market
        self._feed_name = feed.label
        self._symbols: set[str] = set()
        self._running: set[str] = set()
        self._watched: str | None = None
        self._live: tuple[float, ...] | None = None  # (t, o, h, l, c, v) of the watched symbol
        self._polls = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        self._timer.stop()

    def set_symbols(self, symbols: set[str], running: set[str] | None = None) -> None:
        """The symbols whose last price the table shows, and of those the ones running
        instances trade (default: all): only these are expected to stream, so only they
        can be stale (nothing subscribes a failed instance's symbol any more)."""
        self._symbols = set(symbols)
        self._running = self._symbols if running is None else set(running)

    def watch(self, symbol: str | None) -> None:
        """The symbol whose in-progress candle the chart shows."""
        if symbol != self._watched:
            self._watched, self._live = symbol, None
            if symbol is not None:
                self._poll_live(symbol)

    @Slot()
    def poll(self) -> None:
        if self._watched is not None:
            self._poll_live(self._watched)
        if self._polls % PRICES_EVERY == 0:
            self._poll_prices()
        self._polls += 1

    def _poll_prices(self) -> None:
        prices = {}
        for symbol in self._symbols:
            price = self._market.latest_price(symbol)
            if price is not None:
                prices[symbol] = price
        if prices:
            self.prices_changed.emit(prices)
        self.status_changed.emit(self.feed_view())

    def feed_view(self) -> FeedView:
        status = self._market.status
        ages = {symbol: self._market.data_age(symbol) for symbol in self._running}
        known = {s: age for s, age in ages.items() if age is not None}
        stale = sorted(s for s, age in known.items() if age > STALE_AFTER_S)
        return FeedView(
            self._feed_name,
            status.text(time.monotonic()),
            status.state == FeedState.CONNECTED,
            min(known.values()) if known else None,
            stale,
        )

    def _poll_live(self, symbol: str) -> None:
        bar = self._current_bar(symbol)
        if bar is None:
            return
        if self._live is not None and self._live[0] < bar[0]:
            self.bar_closed.emit(symbol, Bars.from_rows([self._live]))
        if bar != self._live:
            self._live = bar
            self.live_bar_changed.emit(symbol, Bars.from_rows([bar]))

    def _current_bar(self, symbol: str) -> tuple[float, ...] | None:
        bar = self._market.in_progress_bar(symbol)
        return None if bar is None else (bar.t, bar.o, bar.h, bar.l, bar.c, bar.v)

    @property
    def live_bar(self) -> Bars | None:
        return Bars.from_rows([self._live]) if self._live else None
