"""The feed guard: which trades, bars and prices from outside are believed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from autotrader_desktop.feed.bars import BarAggregator
from autotrader_desktop.feed.guard import CONFIRMATIONS, FUTURE_TOLERANCE_S, FeedGuard
from autotrader_desktop.feed.protocol import MinuteBar, Trade, Trades

NOW = datetime(2024, 3, 13, 15, 31, 30, tzinfo=UTC).timestamp()
MINUTE = int(NOW) // 60 * 60
YEAR_2100 = datetime(2100, 1, 1, tzinfo=UTC).timestamp()


def trades(*items: tuple[str, float, float]) -> Trades:
    """(symbol, price, epoch time) each."""
    return Trades.of(
        Trade(symbol, price, 10.0, int(when) // 60 * 60, when % 60) for symbol, price, when in items
    )


class Feed:
    """The guard where the feed uses it: dates first, then the band for the trades that
    would extend a bar's range, then a judgement of the doubtful ones."""

    def __init__(self, guard: FeedGuard) -> None:
        self.guard = guard
        self.bars = BarAggregator()

    def trades(self, frame: Trades, now: float = NOW) -> list[float]:
        """The prices of `frame` that reach the bars: believed at once, then after a look."""
        timely = self.guard.timely(frame, now)
        doubtful = self.bars.add_trades(timely, self.guard.within)
        judged = self.guard.judge(doubtful, now, self.bars.data_time)
        self.bars.add_trades(judged)
        rest = list(doubtful)
        at_once = [t.price for t in timely if t not in rest or rest.remove(t)]
        return at_once + list(judged.prices)


def guard_at(price: float = 100.0, symbol: str = "NVDA") -> FeedGuard:
    guard = FeedGuard()
    guard.seed(symbol, price)
    return guard


def feed_at(price: float = 100.0) -> Feed:
    return Feed(guard_at(price))


def test_dates_in_the_window_pass_untouched():
    guard = guard_at(100.0)
    frame = trades(("NVDA", 100.5, NOW - 1), ("NVDA", 109.9, NOW), ("NVDA", 91.0, NOW))
    assert guard.timely(frame, NOW) is frame  # the hot path: no copy
    assert Feed(guard).trades(frame) == [100.5, 109.9, 91.0]
    assert guard.ignored == 0


def test_a_future_dated_trade_and_an_absurd_price_are_not_believed(caplog):
    feed = feed_at(100.0)
    frame = trades(
        ("NVDA", 100.0, NOW - 1),
        ("NVDA", 500.0, YEAR_2100),  # five times the price, dated 2100
        ("NVDA", 9.9e14, NOW),
        ("NVDA", 100.2, NOW),
    )
    assert feed.trades(frame) == [100.0, 100.2]
    assert feed.guard.ignored == 2
    assert "a trade of NVDA at 500 dated 2100-01-01 00:00:00 UTC" in caplog.text
    assert feed.bars.last_price("NVDA") == 100.2
    assert feed.bars.in_progress("NVDA").h == 100.2  # what the chart's live candle shows


def test_a_trade_a_little_ahead_of_the_clock_is_believed():
    feed = feed_at(100.0)
    assert feed.trades(trades(("NVDA", 100.0, NOW + FUTURE_TOLERANCE_S - 0.5))) == [100.0]
    assert feed.trades(trades(("NVDA", 100.0, NOW + FUTURE_TOLERANCE_S + 0.5))) == []


def test_trades_older_than_the_minutes_kept_are_not_believed():
    feed = feed_at(100.0)
    assert feed.trades(trades(("NVDA", 100.0, NOW - 3 * 3600))) == []
    assert feed.trades(trades(("NVDA", 100.0, NOW - 3600))) == [100.0]


def test_a_real_move_is_believed_once_trades_agree(caplog):
    feed = feed_at(100.0)
    moved = [("NVDA", 130.0 + i / 10, NOW) for i in range(CONFIRMATIONS)]
    for item in moved[:-1]:
        assert feed.trades(trades(item)) == []  # held back
    assert feed.trades(trades(moved[-1])) == [130.0, 130.1, 130.2]
    assert feed.guard.reference("NVDA") == 130.2
    assert "NVDA moved beyond the ±10 % band, from 100 to 130.2" in caplog.text
    assert feed.guard.ignored == 0


def test_held_outliers_are_dropped_when_a_believed_price_follows(caplog):
    feed = feed_at(100.0)
    assert feed.trades(trades(("NVDA", 100.0, NOW - 2))) == [100.0]
    assert feed.trades(trades(("NVDA", 500.0, NOW - 1), ("NVDA", 500.0, NOW - 1))) == []
    # Believed at once (inside the minute's range): the held ones are outliers now.
    assert feed.trades(trades(("NVDA", 100.0, NOW))) == [100.0]
    # No third confirmation: an outlier too, dated no later than a believed trade.
    assert feed.trades(trades(("NVDA", 500.0, NOW))) == []
    assert feed.guard.ignored == 3
    assert "a price of NVDA at 500: outside the ±10 % band around 100" in caplog.text


def test_without_a_reference_trades_must_agree_first():
    feed = Feed(FeedGuard())
    frame = trades(("AAPL", 9.9e14, NOW), ("AAPL", 190.0, NOW), ("AAPL", 190.1, NOW))
    assert feed.trades(frame) == []
    assert feed.trades(trades(("AAPL", 190.2, NOW))) == [190.0, 190.1, 190.2]
    assert feed.guard.ignored == 1


def test_trades_held_for_want_of_a_reference_are_used_once_history_gives_one():
    feed = Feed(FeedGuard())
    assert feed.trades(trades(("AAPL", 190.0, NOW - 1))) == []
    feed.guard.seed("AAPL", 189.5)  # history arrived
    assert feed.trades(trades(("AAPL", 190.3, NOW))) == [190.0, 190.3]


def test_outliers_are_logged_once(caplog):
    feed = feed_at(100.0)
    for i in range(100):
        now = NOW + i / 10
        feed.trades(trades(("NVDA", 9.9e14, now), ("NVDA", 100.0, now)), now)
    assert feed.guard.ignored == 100
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    # A new episode after a quiet minute is logged again.
    feed.trades(trades(("NVDA", 9.9e14, NOW + 120)), NOW + 120)
    feed.trades(trades(("NVDA", 100.0, NOW + 120)), NOW + 120)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_references_follow_the_believed_prices():
    feed = feed_at(100.0)
    feed.guard.refresh({"NVDA": 108.0}.get)
    # 118 is within 10 % of 108, not of 100.
    assert feed.trades(trades(("NVDA", 118.0, NOW))) == [118.0]


def bar(t: int, o: float, h: float, low: float, c: float, symbol: str = "NVDA") -> MinuteBar:
    return MinuteBar(symbol, t, o, h, low, c, 1000.0)


def test_stream_bars():
    guard = guard_at(100.0)
    done = MINUTE - 60
    good = bar(done, 100, 101, 99, 100.5)
    assert guard.bars([good], NOW) == [good]
    assert guard.bars([bar(MINUTE, 100, 101, 99, 100.5)], NOW) == []  # minute not over
    assert guard.bars([bar(done, 100, 9.9e14, 99, 100)], NOW) == []  # a spike in the high
    assert guard.bars([bar(done, 500, 501, 499, 500)], NOW) == []  # out of band
    assert guard.bars([bar(int(YEAR_2100) // 60 * 60, 500, 501, 499, 500)], NOW) == []
    assert guard.ignored == 4
    # The server's bar gives a symbol without a reference its first one.
    first = bar(done, 40, 41, 39, 40, symbol="AMD")
    assert guard.bars([first], NOW) == [first]
    assert guard.reference("AMD") == 40


def test_history_series_are_judged_bar_by_bar():
    guard = FeedGuard()
    start = MINUTE - 600
    series = [bar(start + 60 * i, 100, 100.5, 99.5, 100 + i / 10) for i in range(10)]
    series[4] = bar(start + 240, 100, 9.9e14, 99, 100)  # spike
    series[6] = bar(start + 360, 500, 501, 499, 500)  # outlier close
    outside = bar(start - 60, 100, 100, 100, 100)  # before the range asked for
    kept = guard.history("NVDA", [outside, *series], None, start, MINUTE - 60, NOW)
    assert kept == [b for i, b in enumerate(series) if i not in (4, 6)]
    assert guard.ignored == 1  # one log entry for the answer
    # A level that moves for good is followed after CONFIRMATIONS bars.
    jump = [bar(start + 60 * i, 130, 130.5, 129.5, 130) for i in range(CONFIRMATIONS)]
    assert guard.history("NVDA", jump, 100.0, start, MINUTE - 60, NOW) == jump
    # Too few to confirm at the end of an answer: the live price decides.
    assert guard.history("NVDA", jump[:1], 100.0, start, MINUTE - 60, NOW) == []
    guard.seed("NVDA", 131.0)
    assert guard.history("NVDA", jump[:1], 100.0, start, MINUTE - 60, NOW) == jump[:1]


def test_latest_trade_answers():
    guard = guard_at(100.0)
    assert guard.price("NVDA", 101.0, NOW - 30, NOW) == 101.0
    assert guard.price("NVDA", 500.0, YEAR_2100, NOW) is None
    assert guard.price("NVDA", 9.9e14, NOW, NOW) is None
    assert guard.price("AMD", 40.0, None, NOW) == 40.0  # nothing to judge it by
