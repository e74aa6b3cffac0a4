"""Market data as the engine sees it: subscriptions, latest prices, stored history.

STAND-IN (issue 2): prices come straight from the deterministic price path and history is
written to the database on subscribe. Issue 3 replaces this with the live feed
(feed/client.py + feed/simulator.py) behind the same interface.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Bar, db
from autotrader_desktop.feed import price_path

HISTORY = timedelta(days=2)


class MarketData:
    """Reference-counted symbol subscriptions and the latest trade price per symbol."""

    def __init__(self, clock: Clock, seed: int = price_path.DEFAULT_SEED) -> None:
        self._clock = clock
        self._seed = seed
        self._subscriptions: Counter[str] = Counter()

    async def start(self) -> None:
        """Connect to the feed (nothing to do for the stand-in)."""

    async def stop(self) -> None:
        """Disconnect from the feed (nothing to do for the stand-in)."""

    @property
    def symbols(self) -> set[str]:
        return {symbol for symbol, count in self._subscriptions.items() if count > 0}

    def subscribe(self, symbol: str) -> None:
        self._subscriptions[symbol] += 1
        if self._subscriptions[symbol] == 1:
            self.prepare([symbol])

    def unsubscribe(self, symbol: str) -> None:
        if self._subscriptions[symbol] > 0:
            self._subscriptions[symbol] -= 1
        if self._subscriptions[symbol] == 0:
            del self._subscriptions[symbol]

    def prepare(self, symbols: list[str]) -> None:
        """Make sure recent history is stored for `symbols` (blocking; call off the GUI thread)."""
        now = int(self._clock.now().timestamp())
        start = now - int(HISTORY.total_seconds())
        for symbol in symbols:
            newest = Bar.select(Bar.t).where(Bar.symbol == symbol).order_by(Bar.t.desc()).scalar()
            first = max(start, newest + 60) if newest is not None else start
            # Bars whose minute has closed: t + 60 <= now.
            rows = price_path.minute_bars(symbol, first, now - 59, self._seed)
            with db.atomic():
                for chunk in range(0, len(rows), 5000):
                    Bar.insert_many(
                        [(symbol, *row) for row in rows[chunk : chunk + 5000]],
                        fields=[Bar.symbol, Bar.t, Bar.o, Bar.h, Bar.l, Bar.c, Bar.v],
                    ).on_conflict_ignore().execute()

    def latest_price(self, symbol: str) -> float | None:
        """Price of the latest trade; thread-safe."""
        return price_path.price_at(symbol, self._clock.now(), self._seed)
