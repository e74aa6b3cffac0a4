"""Outside data checked before it is believed: trades, bars and prices from the feed.

A feed can lie: a trade dated 2100 at five times the price would stay the newest price for
good, a trade at 9.9e14 would become a fill. So every trade and bar is checked where it
enters (the stream, history, the latest-trade endpoint) before it reaches the bars, the
chart, or a fill:

- **Time.** Nothing dated more than FUTURE_TOLERANCE_S after this computer's clock; on the
  stream, nothing older than the minutes kept in memory (LATE_LIMIT_S); a bar only once its
  minute has ended; history only inside the range asked for.
- **Price.** Each symbol has a reference: the last price believed. A price within the band
  around it (setting `price_band_pct`, default 10 %: between ref / 1.1 and ref x 1.1) is
  believed. One outside is held back, not used. When CONFIRMATIONS held prices in a row
  agree with each other (within the band), the market really moved: they are used, the
  newest becomes the reference and the move is logged. When a believed price follows, the
  held ones are judged against the reference: outliers are dropped (those held only
  because there was no reference yet are used). A symbol without a reference (no history
  yet) gets one from history or from CONFIRMATIONS agreeing trades. A bar must also be
  coherent: its high at most two bands above its low.

Ignored data is logged once per symbol, then again only after a quiet minute, and counted
in `ignored`.

The stream's hot path (hundreds of thousands of trades a second) pays almost nothing: dates
are checked a frame at a time with builtins (`timely`), and the band only for trades that
would extend their bar's range or start a bar (`within`, called by the bar aggregator); a
trade inside the range of trades already believed needs no check. Only the trades `within`
doubts are judged one by one (`judge`). References follow the believed prices at every
`refresh()` (the feed's flush tick).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from autotrader_desktop.feed.protocol import MinuteBar, Trade, Trades

log = logging.getLogger(__name__)

DEFAULT_BAND_PCT = 10.0
# Clocks disagree by milliseconds when both are synchronised; more than this is no clock
# skew but a date that has not happened.
FUTURE_TOLERANCE_S = 5.0
# A late trade may correct a minute the bar aggregator still holds (its retention, which
# the feed passes in); older ones are not believed.
LATE_LIMIT_S = 2 * 3600.0
CONFIRMATIONS = 3
LOG_QUIET_S = 60.0


def _when(epoch: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        return f"epoch {epoch:.0f}"


class _Level:
    """A symbol's reference price and the prices held back from it, oldest first."""

    __slots__ = ("held", "reference")

    def __init__(self, reference: float | None = None) -> None:
        self.reference = reference
        self.held: list[tuple[float, Any]] = []

    def judge(self, price: float, item: Any, factor: float, accepted: list, ignored: list) -> bool:
        """Believe `item` (priced `price`) or hold it back; True if the level moved."""
        reference = self.reference
        if reference is not None and reference <= price * factor and price <= reference * factor:
            # Held back before there was a reference, or outliers: judged by it now.
            for held_price, held in self.held:
                in_band = reference <= held_price * factor and held_price <= reference * factor
                (accepted if in_band else ignored).append(held)
            self.held = []
            self.reference = price
            accepted.append(item)
            return False
        agreeing = []
        for held_price, held in self.held:
            if max(held_price, price) <= min(held_price, price) * factor:
                agreeing.append((held_price, held))
            else:
                ignored.append(held)
        agreeing.append((price, item))
        if len(agreeing) < CONFIRMATIONS:
            self.held = agreeing
            return False
        accepted.extend(held for _, held in agreeing)
        self.held = []
        self.reference = price
        return True


class FeedGuard:
    """Decides which trades, bars and prices from outside are believed.

    `timely`, `within`, `judge`, `bars` and `refresh` run on the feed's event loop;
    `history`, `price`, `seed` and `reference` may be called from any thread.
    """

    def __init__(
        self, band_pct: float = DEFAULT_BAND_PCT, late_limit: float = LATE_LIMIT_S
    ) -> None:
        self.band_pct = band_pct
        self.late_limit = late_limit
        self._factor = 1 + band_pct / 100
        self._lock = threading.Lock()
        self._levels: dict[str, _Level] = {}
        # The band of each symbol with a reference and nothing held, for `within`.
        self._low: dict[str, float] = {}
        self._high: dict[str, float] = {}
        self._last_logged: dict[str, float] = {}  # symbol -> when an ignore was last seen
        self.ignored = 0

    # --- references ---------------------------------------------------------------------

    def reference(self, symbol: str) -> float | None:
        level = self._levels.get(symbol)
        return None if level is None else level.reference

    def seed(self, symbol: str, price: float) -> None:
        """Use `price` (the newest stored close) as the reference if there is none yet."""
        with self._lock:
            level = self._levels.setdefault(symbol, _Level())
            if level.reference is None:
                self._set(symbol, level, price)

    def _set(self, symbol: str, level: _Level, price: float) -> None:
        level.reference = price
        self._sync(symbol, level)

    def _sync(self, symbol: str, level: _Level) -> None:
        """The band `within` checks: none while trades are held, so that every doubtful
        trade of the symbol is judged (and settles the held ones) until they are settled."""
        if level.reference is None or level.held:
            self._low.pop(symbol, None)
            self._high.pop(symbol, None)
        else:
            self._low[symbol] = level.reference / self._factor
            self._high[symbol] = level.reference * self._factor

    def refresh(self, last_price: Callable[[str], float | None]) -> None:
        """Move each reference to the newest believed price (the close of its newest bar)."""
        with self._lock:
            for symbol, level in self._levels.items():
                price = last_price(symbol)
                if price is not None and price != level.reference:
                    self._set(symbol, level, price)

    # --- the stream -----------------------------------------------------------------------

    def timely(self, trades: Trades, now: float) -> Trades:
        """The trades dated neither ahead of the clock (beyond the tolerance) nor too late.

        The hot path: a frame is checked by its span (which the parser found for free);
        only a frame with a doubtful date in it is looked at trade by trade.
        """
        if not trades:
            return trades
        earliest, latest = trades.time_span()
        if earliest >= now - self.late_limit and latest <= now + FUTURE_TOLERANCE_S:
            return trades
        kept = []
        with self._lock:
            for trade in trades:
                problem = self._date_problem(trade.time, now)
                if problem is None:
                    kept.append(trade)
                else:
                    self._ignore(
                        trade.symbol, now, f"a trade of {trade.symbol} at {trade.price:g} {problem}"
                    )
        return Trades.of(kept)

    def within(self, symbol: str, price: float) -> bool:
        """Whether `price` is inside the symbol's band (False without a reference)."""
        low = self._low.get(symbol)
        return low is not None and low <= price <= self._high[symbol]

    def judge(
        self, trades: Iterable[Trade], now: float, believed_at: Callable[[str], float | None]
    ) -> Trades:
        """The trades `within` had doubts about: those believed, and held ones released.

        `believed_at(symbol)`: the time of the newest trade already believed; a held trade
        from no later than that is an outlier (the market went on at the old level).
        """
        accepted: list[Trade] = []
        ignored: list[Trade] = []
        with self._lock:
            for trade in trades:
                level = self._levels.setdefault(trade.symbol, _Level())
                since = believed_at(trade.symbol)
                self._drop_stale(trade.symbol, level, since, ignored)
                before = level.reference
                if level.judge(trade.price, trade, self._factor, accepted, ignored):
                    self._moved(trade.symbol, before, trade.price, "trades")
                self._drop_stale(trade.symbol, level, since, ignored)
            for trade in ignored:
                self._outlier(trade.symbol, trade.price, now)
        return Trades.of(accepted)

    def _drop_stale(
        self, symbol: str, level: _Level, since: float | None, ignored: list[Trade]
    ) -> None:
        if level.held and since is not None:
            ignored += [held for _, held in level.held if held.time <= since]
            level.held = [(price, held) for price, held in level.held if held.time > since]
        self._sync(symbol, level)

    def bars(self, bars: Sequence[MinuteBar], now: float) -> list[MinuteBar]:
        """The stream's bars ("b", "u") that are believed: ended, recent, coherent, in band."""
        believed = []
        with self._lock:
            for bar in bars:
                problem = self._bar_problem(bar, now) or self._date_problem(bar.t, now)
                level = self._levels.setdefault(bar.symbol, _Level())
                reference = level.reference
                if (
                    problem is None
                    and reference is not None
                    and not self._in_band(bar.c, reference)
                ):
                    problem = f"outside the ±{self.band_pct:g} % band around {reference:g}"
                if problem is None:
                    believed.append(bar)
                    if reference is None:  # the server's word on a whole minute
                        self._set(bar.symbol, level, bar.c)
                else:
                    self._ignore(bar.symbol, now, f"a bar of {bar.symbol}: {problem}")
        return believed

    # --- requests -------------------------------------------------------------------------

    def history(
        self,
        symbol: str,
        bars: Sequence[MinuteBar],
        reference: float | None,
        start: int,
        end: int,
        now: float,
    ) -> list[MinuteBar]:
        """The bars of a history answer that are believed, judged oldest first from
        `reference` (the close before `start`, if known). Bars still held at the end (no
        later bar confirmed them) are judged by the symbol's live reference, if any, and
        left out otherwise."""
        level = _Level(reference)
        accepted: list[MinuteBar] = []
        ignored: list[MinuteBar] = []
        dropped = 0
        for bar in bars:
            if not start <= bar.t <= end or self._bar_problem(bar, now) is not None:
                dropped += 1
            else:
                level.judge(bar.c, bar, self._factor, accepted, ignored)
        live = self.reference(symbol)
        for price, bar in level.held:
            if live is not None and self._in_band(price, live):
                accepted.append(bar)
            else:
                dropped += 1
        dropped += len(ignored)
        if dropped:
            with self._lock:
                self._ignore(
                    symbol,
                    now,
                    f"{dropped} of {len(bars)} history bars of {symbol} (outside the range asked "
                    f"for, incoherent, or outside the ±{self.band_pct:g} % band)",
                )
        return accepted

    def price(self, symbol: str, price: float, when: float | None, now: float) -> float | None:
        """A latest-trade answer: the price if believed, else None."""
        with self._lock:
            if when is not None and when > now + FUTURE_TOLERANCE_S:
                self._ignore(
                    symbol, now, f"the latest trade of {symbol}: dated {_when(when)}, ahead"
                )
                return None
            level = self._levels.setdefault(symbol, _Level())
            if level.reference is not None and not self._in_band(price, level.reference):
                self._outlier(symbol, price, now)
                return None
            self._set(symbol, level, price)
            return price

    # --- helpers --------------------------------------------------------------------------

    def _date_problem(self, when: float, now: float) -> str | None:
        if when > now + FUTURE_TOLERANCE_S:
            return f"dated {_when(when)}, {when - now:,.0f} s ahead of this computer's clock"
        if when < now - self.late_limit:
            return f"dated {_when(when)}, more than {self.late_limit / 3600:g} h ago"
        return None

    def _in_band(self, price: float, reference: float) -> bool:
        return reference <= price * self._factor and price <= reference * self._factor

    def _bar_problem(self, bar: MinuteBar, now: float) -> str | None:
        if bar.t + 60 > now + FUTURE_TOLERANCE_S:
            return f"its minute {_when(bar.t)} has not ended"
        if bar.h > bar.l * self._factor**2:
            return f"high {bar.h:g} and low {bar.l:g} more than two bands apart"
        return None

    def _outlier(self, symbol: str, price: float, now: float) -> None:
        reference = self.reference(symbol)
        around = f"{reference:g}" if reference is not None else "no agreeing price yet"
        self._ignore(
            symbol,
            now,
            f"a price of {symbol} at {price:g}: outside the ±{self.band_pct:g} % band around "
            f"{around}",
        )

    def _ignore(self, symbol: str, now: float, what: str) -> None:
        """Count it; log it unless this symbol's data was ignored within the last minute."""
        self.ignored += 1
        last = self._last_logged.get(symbol)
        self._last_logged[symbol] = now
        if last is None or now - last > LOG_QUIET_S:
            log.warning("market data: ignored %s (logged once a minute at most)", what)

    def _moved(self, symbol: str, before: float | None, price: float, what: str) -> None:
        if before is None:  # routine at every start, before history has given a reference
            log.debug("market data: %s of %s agree on a price of %g", what, symbol, price)
        else:
            log.warning(
                "market data: %s moved beyond the ±%g %% band, from %g to %g (%d %s agree)",
                symbol,
                self.band_pct,
                before,
                price,
                CONFIRMATIONS,
                what,
            )
