"""LiveData, the window's one adapter to market data: what it reads of the real
MarketData, the feed state it reports, the in-progress candle it polls."""

from __future__ import annotations

import time

from autotrader_desktop.enums import Feed, FeedState
from autotrader_desktop.feed.client import FeedStatus
from autotrader_desktop.feed.market_data import LiveMarket, MarketData
from autotrader_desktop.feed.protocol import MinuteBar
from autotrader_desktop.settings import Settings
from autotrader_desktop.ui.live_data import STALE_AFTER_S, LiveData
from autotrader_desktop.ui.status_bar import StatusBar
from tests.helpers import T0

MINUTE = int(T0.timestamp()) // 60 * 60


class StreamedMarket(LiveMarket):
    """What a streaming MarketData offers the window, set by the test."""

    def __init__(self) -> None:
        self.status = FeedStatus(FeedState.CONNECTED)
        self.ages: dict[str, float | None] = {}
        self.bars: dict[str, MinuteBar] = {}

    def latest_price(self, symbol: str) -> float | None:
        bar = self.bars.get(symbol)
        return bar.c if bar else None

    def in_progress_bar(self, symbol: str) -> MinuteBar | None:
        return self.bars.get(symbol)

    def data_age(self, symbol: str) -> float | None:
        return self.ages.get(symbol)


def test_the_real_market_data_offers_what_the_window_reads(clock):
    market = MarketData(clock, Settings(feed=Feed.NONE))
    for name in ("latest_price", "in_progress_bar", "data_age", "status"):
        assert hasattr(market, name), name
    view = LiveData(market, Feed.NONE).feed_view()
    assert view.name == "no feed" and view.state == market.status.text()


def test_feed_state_data_age_and_stale_symbols(qtbot, clock):
    market = StreamedMarket()
    live = LiveData(market, Feed.ALPACA_IEX)
    live.set_symbols({"NVDA", "AAPL", "MSFT"})
    market.ages = {"NVDA": 0.4, "AAPL": STALE_AFTER_S + 5, "MSFT": None}
    view = live.feed_view()
    assert (view.name, view.state, view.ok) == ("Alpaca IEX", "connected", True)
    assert view.age == 0.4 and view.stale == ["AAPL"]
    bar = StatusBar()
    bar.set_feed(view)
    assert "Alpaca IEX: connected · data 0.4 s old" in bar.feed.text()
    assert "AAPL" in bar.feed.text()

    market.status = FeedStatus(
        FeedState.RECONNECTING, "connection limit exceeded", time.monotonic() + 4
    )
    view = live.feed_view()
    assert not view.ok and view.state.startswith("reconnecting in ")
    assert "connection limit exceeded" in view.state


def test_the_live_candle_follows_the_feeds_in_progress_bar(qtbot, clock):
    market = StreamedMarket()
    live = LiveData(market, Feed.SIM)
    closed = []
    live.bar_closed.connect(lambda symbol, bars: closed.append((symbol, bars)))
    market.bars["NVDA"] = MinuteBar("NVDA", MINUTE, 10.0, 10.5, 9.9, 10.2, 300.0)
    with qtbot.waitSignal(live.live_bar_changed) as changed:
        live.watch("NVDA")
    symbol, bars = changed.args
    assert symbol == "NVDA" and list(bars.c) == [10.2] and list(bars.v) == [300.0]

    market.bars["NVDA"] = MinuteBar("NVDA", MINUTE + 60, 10.2, 10.3, 10.1, 10.25, 50.0)
    with qtbot.waitSignal(live.live_bar_changed):
        live.poll()
    assert [(s, list(b.t), list(b.c)) for s, b in closed] == [("NVDA", [MINUTE], [10.2])]
    assert list(live.live_bar.t) == [MINUTE + 60]
