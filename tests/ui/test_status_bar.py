"""The status bar: texts elided to their room with the full text in a tooltip, so that no
message widens the window; stale-data warnings only for symbols something streams."""

from __future__ import annotations

from autotrader_desktop.database import Instance
from autotrader_desktop.enums import FeedState
from autotrader_desktop.feed.client import FeedStatus
from autotrader_desktop.ui.live_data import STALE_AFTER_S, FeedView
from autotrader_desktop.ui.status_bar import StatusBar
from tests.helpers import add_instance, refreshed

LONG_ERROR = (
    "auth failed (no Alpaca API key: store one in Settings, or set APCA_API_KEY_ID and "
    "APCA_API_SECRET_KEY in the environment; the simulator needs none) " * 4
)


def test_a_long_feed_error_is_elided_and_never_widens_the_window(qtbot, window):
    window.resize(1600, 800)
    status = window.status
    status.set_feed(FeedView("Alpaca IEX", "auth failed (no key)", False, None, []))
    status.showMessage("Settings saved.")
    status.layout().activate()
    short = window.minimumSizeHint().width()
    status.set_feed(FeedView("Alpaca IEX", LONG_ERROR, False, None, []))
    status.showMessage("Restart AutoTrader Desktop to use the new settings. " * 6)
    qtbot.waitUntil(lambda: status.feed.is_elided() and status.message.is_elided())
    status.layout().activate()  # the layout as it settles

    assert window.minimumSizeHint().width() == short < 1000
    assert window.width() == 1600
    assert status.feed.shown_text().endswith("…")
    assert LONG_ERROR.strip() in status.feed.toolTip()
    assert status.message.shown_text().endswith("…")
    assert status.message.toolTip() == status.currentMessage()
    # The short sections stay whole: only the message and the feed give way.
    for section in ("market", "cycle", "account", "cash"):
        assert not getattr(status, section).is_elided(), section


def test_a_short_text_is_shown_whole(qtbot):
    bar = StatusBar()
    bar.resize(1600, 30)
    bar.show()
    qtbot.waitExposed(bar)
    bar.set_feed(FeedView("simulator", "connected", True, 0.4, []))
    bar.showMessage("Settings saved.", 10_000)
    qtbot.waitUntil(lambda: bar.message.shown_text() == "Settings saved.")
    qtbot.waitUntil(lambda: bar.feed.shown_text() == "simulator: connected · data 0.4 s old")
    bar.clearMessage()
    assert bar.currentMessage() == "" and bar.message.shown_text() == ""


def test_a_message_goes_away_after_its_time(qtbot):
    bar = StatusBar()
    bar.showMessage("Created NVDA_buyer_20240315_150000", 50)
    assert bar.currentMessage().startswith("Created")
    qtbot.waitUntil(lambda: bar.currentMessage() == "")


def test_a_failed_instances_symbol_is_never_stale(qtbot, engine, market, buyer, make_window):
    running = add_instance(engine, "NVDA", "buyer", 1_000)
    failed = add_instance(engine, "AAPL", "buyer", 1_000)
    Instance.update(status="failed", error="boom").where(Instance.id == failed.id).execute()
    market.status = FeedStatus(FeedState.CONNECTED)
    market.data_age = lambda symbol: STALE_AFTER_S + 60  # nothing streams anything
    window = make_window()
    refreshed(qtbot, window)
    assert window.live.feed_view().stale == [running.symbol]
    Instance.update(status="failed", error="boom").where(Instance.id == running.id).execute()
    refreshed(qtbot, window)
    assert window.live.feed_view().stale == []
    window.live.poll()
    assert "no data" not in window.status.feed.text()
