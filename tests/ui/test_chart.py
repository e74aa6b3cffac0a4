"""The chart: the selected instance's symbol as candles and volume, its fills as markers,
the live candle, the crosshair readout, and drawing cost bounded by the screen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from autotrader_desktop.database import Transaction
from autotrader_desktop.queries import Bars, Fills
from autotrader_desktop.ui.chart import (
    BAR_SECONDS,
    BARS_IN_VIEW,
    MIN_BAR_PX,
    ChartWidget,
    aggregate,
)
from tests.helpers import T0, add_instance, give_position, refreshed, settle, store_bars

MINUTE = int(T0.timestamp()) // 60 * 60
START = MINUTE - 300 * 60


def synthetic(n: int, start: int = 0) -> Bars:
    rng = np.random.default_rng(1)
    close = 100 + np.cumsum(rng.normal(0, 0.2, n))
    open_ = np.r_[close[0], close[:-1]]
    return Bars(
        start + 60.0 * np.arange(n),
        open_,
        np.maximum(open_, close) + 0.1,
        np.minimum(open_, close) - 0.1,
        close,
        rng.uniform(100, 1000, n),
    )


def shown_chart(qtbot, bars: Bars) -> ChartWidget:
    chart = ChartWidget()
    chart.resize(900, 500)
    chart.show()
    qtbot.waitExposed(chart)
    chart.show_bars("TEST", bars)
    return chart


def x_range(chart: ChartWidget) -> tuple[float, float]:
    (x0, x1), _ = chart.plot.viewRange()
    return round(x0), round(x1)


def wheel(chart: ChartWidget, notches: int) -> None:
    """Turn the mouse wheel over the middle of the candle pane (> 0 zooms in)."""
    centre = chart.canvas.mapFromScene(chart.plot.vb.sceneBoundingRect().center())
    event = QWheelEvent(
        QPointF(centre),
        QPointF(chart.canvas.viewport().mapToGlobal(centre)),
        QPoint(),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(chart.canvas.viewport(), event)


def test_the_selected_instance_shows_its_candles_and_fills(qtbot, engine, buyer, window):
    nvda_closes = [100.0 + (i % 7) for i in range(300)]
    store_bars("NVDA", START, nvda_closes)
    store_bars("AAPL", START, [50.0] * 120)
    nvda = add_instance(engine, "NVDA", "buyer", 10_000)
    aapl = add_instance(engine, "AAPL", "buyer", 10_000)
    give_position(nvda, 5, 101.5)  # a buy at T0
    Transaction.create(instance=nvda.id, type="sell", shares=2, price=104.0, timestamp=T0)
    refreshed(qtbot, window)

    window.table.select(nvda.id)
    qtbot.waitUntil(lambda: window.chart.symbol == "NVDA")
    settle(qtbot, window)
    candles = window.chart.candles
    assert len(candles.bars) == 300
    assert candles.bars.t[0] == START and candles.bars.t[-1] == START + 299 * 60
    assert list(candles.bars.c[:3]) == nvda_closes[:3]
    assert np.array_equal(window.chart.volume.bars.v, candles.bars.v)
    buy_x, buy_y = window.chart.buys.getData()
    sell_x, sell_y = window.chart.sells.getData()
    assert list(buy_x) == [MINUTE + 30] and list(buy_y) == [101.5]
    assert list(sell_x) == [MINUTE + 30] and list(sell_y) == [104.0]
    assert "NVDA" in window.chart.readout.text()
    assert window.chart.grab().width() > 0  # paints without errors
    assert candles.drawn > 0

    window.table.select(aapl.id)
    qtbot.waitUntil(lambda: window.chart.symbol == "AAPL")
    settle(qtbot, window)
    assert len(window.chart.candles.bars) == 120
    assert len(window.chart.buys.getData()[0]) == 0
    assert len(window.chart.sells.getData()[0]) == 0


def test_the_in_progress_candle_is_live(qtbot, engine, market, clock, buyer, window):
    store_bars("NVDA", MINUTE - 100 * 60, [100.0] * 100)  # up to the minute before T0's
    add_instance(engine, "NVDA", "buyer", 10_000)
    refreshed(qtbot, window)
    qtbot.waitUntil(lambda: window.chart.symbol == "NVDA")
    settle(qtbot, window)

    market.prices["NVDA"] = 101.0
    window.live.poll()
    live = window.chart.candles.live
    assert live is not None and live.t[0] == MINUTE and live.c[0] == 101.0
    market.prices["NVDA"] = 103.0
    window.live.poll()
    market.prices["NVDA"] = 102.0
    window.live.poll()
    live = window.chart.candles.live
    # It opened at the first price polled (the fake market's default, 100).
    assert (live.o[0], live.h[0], live.l[0], live.c[0]) == (100.0, 103.0, 100.0, 102.0)
    assert "(live)" in window.chart.readout.text()

    # The minute ends: its candle stays (as last seen) and a new one starts.
    clock.advance(60)
    market.prices["NVDA"] = 99.0
    window.live.poll()
    bars = window.chart.candles.bars
    assert bars.t[-1] == MINUTE and bars.c[-1] == 102.0
    assert window.chart.candles.live.t[0] == MINUTE + 60
    # The feed stores that minute's bar: it replaces the one seen live.
    store_bars("NVDA", MINUTE, [102.5])
    refreshed(qtbot, window)
    bars = window.chart.candles.bars
    assert bars.t[-1] == MINUTE and bars.c[-1] == 102.5 and bars.v[-1] == 1000.0
    assert len(bars) == 101


def test_the_y_range_fits_the_bars_in_view(qtbot):
    chart = ChartWidget()
    chart.resize(900, 500)
    chart.show()
    qtbot.waitExposed(chart)
    bars = synthetic(2000)
    chart.show_bars("TEST", bars)
    start, end = bars.t[1000], bars.t[1100]
    chart.plot.setXRange(start, end, padding=0)
    (_, _), (y0, y1) = chart.plot.viewRange()
    in_view = (bars.t >= start - 60) & (bars.t <= end)
    low, high = bars.l[in_view].min(), bars.h[in_view].max()
    assert y0 < low < high < y1
    assert (y1 - y0) < 1.5 * (high - low)  # fitted, not the whole history's range


def test_the_crosshair_reads_out_the_bar_under_the_mouse(qtbot):
    chart = ChartWidget()
    chart.resize(900, 500)
    chart.show()
    qtbot.waitExposed(chart)
    bars = synthetic(300)
    chart.show_bars("TEST", bars)
    index = 250
    point = chart.plot.vb.mapViewToScene(QPointF(bars.t[index] + 30, bars.c[index]))
    chart._mouse_moved(point)
    text = chart.readout.text()
    assert f"O {bars.o[index]:,.2f}" in text and f"C {bars.c[index]:,.2f}" in text
    assert chart._vline.isVisible() and chart._hline.isVisible()
    chart._mouse_moved(QPointF(-10, -10))  # left the plot: the newest bar again
    assert f"C {bars.c[-1]:,.2f}" in chart.readout.text()
    assert not chart._vline.isVisible()


def test_drawing_100k_bars_costs_what_the_screen_can_show(qtbot):
    chart = ChartWidget()
    chart.resize(1200, 600)
    chart.show()
    qtbot.waitExposed(chart)
    bars = synthetic(100_000)
    chart.show_bars("TEST", bars)
    chart.plot.setXRange(bars.t[0], bars.t[-1] + 60, padding=0)
    chart.grab()
    width = chart.plot.vb.width()
    assert 0 < chart.candles.drawn <= width / MIN_BAR_PX + 2
    assert 0 < chart.volume.drawn <= width / MIN_BAR_PX + 2
    # Zoomed in, every bar is its own candle.
    chart.plot.setXRange(bars.t[-100], bars.t[-1] + 60, padding=0)
    chart.grab()
    assert 100 <= chart.candles.drawn <= 110


def test_combined_bars_keep_open_high_low_close_and_volume():
    bars = synthetic(10)
    combined = aggregate(bars, 4 * BAR_SECONDS)
    assert list(combined.t) == [0, 240, 480]
    assert combined.o[1] == bars.o[4] and combined.c[1] == bars.c[7]
    assert combined.h[1] == bars.h[4:8].max() and combined.l[1] == bars.l[4:8].min()
    assert np.isclose(combined.v.sum(), bars.v.sum())


@pytest.mark.parametrize("stored_before", [0, 10], ids=["no bars yet", "old bars only"])
def test_a_new_instances_chart_looks_as_after_a_restart(
    qtbot, engine, market, clock, buyer, make_window, stored_before
):
    """Its live candle and its history arrive after the chart opened, in any order: the
    view ends at the live candle, as in a window opened afterwards, and follows it."""
    if stored_before:  # an earlier instance's bars, ending a quarter of an hour ago
        store_bars("NVDA", MINUTE - 25 * 60, [90.0] * stored_before)
    window = make_window()
    add_instance(engine, "NVDA", "buyer", 10_000)
    market.prices["NVDA"] = 101.0
    refreshed(qtbot, window)
    qtbot.waitUntil(lambda: window.chart.symbol == "NVDA")
    window.live.poll()
    assert window.chart.candles.live.t[0] == MINUTE
    assert window.chart.history_pending()  # the window reads again soon, not in 5 s
    # The history arrives (around the old bars).
    store_bars("NVDA", MINUTE - 300 * 60, [100.0] * 275)
    store_bars("NVDA", MINUTE - 15 * 60, [100.0] * 15)
    refreshed(qtbot, window)
    new = window.chart
    assert len(new.candles.bars) == 290 + stored_before
    assert not new.history_pending()

    restarted = make_window()
    qtbot.waitUntil(lambda: restarted.chart.symbol == "NVDA")
    settle(qtbot, restarted)
    restarted.live.poll()
    assert x_range(new) == x_range(restarted.chart)
    x0, x1 = x_range(new)
    assert x1 == MINUTE + 3 * BAR_SECONDS and x1 - x0 == BARS_IN_VIEW * BAR_SECONDS

    clock.advance(60)  # a new minute: the view moves with it
    window.live.poll()
    assert new.candles.live.t[0] == MINUTE + 60
    assert x_range(new) == (x0 + 60, x1 + 60)


def test_the_view_stays_where_the_user_moved_it_until_the_newest_bar_is_back(qtbot):
    bars = synthetic(600)
    chart = shown_chart(qtbot, bars)
    wheel(chart, 2)  # zoom in around the middle: the newest bar is out of view
    moved = x_range(chart)
    assert moved[1] < bars.t[-1]
    chart.add_bars(synthetic(1, start=int(bars.t[-1]) + 60))
    assert x_range(chart) == moved
    chart.plot.setXRange(moved[0] + 10_000, moved[1] + 10_000, padding=0)
    wheel(chart, -1)  # zoomed out over the newest bar: it follows again, at that width
    width = x_range(chart)[1] - x_range(chart)[0]
    chart.add_bars(synthetic(1, start=int(bars.t[-1]) + 120))
    assert x_range(chart)[1] == bars.t[-1] + 120 + 3 * BAR_SECONDS
    assert x_range(chart)[1] - x_range(chart)[0] == width


def test_fills_sit_on_the_candle_they_filled_on(qtbot):
    bars = synthetic(300)
    chart = shown_chart(qtbot, bars)
    last = bars.t[-1]
    # A buy inside the history; a stopped instance's final sell half an hour after its
    # last candle (nothing streamed the symbol since), at that candle's price.
    fills = Fills(
        np.array([bars.t[100] + 12]), np.array([100.0]), np.array([last + 1800]), np.array([99.0])
    )
    chart.set_fills(fills)
    assert list(chart.buys.getData()[0]) == [bars.t[100] + 30]
    assert list(chart.sells.getData()[0]) == [last + 30]
    # Once the candle of its minute exists, the marker moves onto it.
    chart.add_bars(synthetic(1, start=int(last) + 1800))
    assert list(chart.sells.getData()[0]) == [last + 1800 + 30]


def test_the_crosshair_goes_when_the_pointer_leaves_or_the_symbol_changes(qtbot):
    bars = synthetic(300)
    chart = shown_chart(qtbot, bars)
    point = chart.plot.vb.mapViewToScene(QPointF(bars.t[250] + 30, bars.c[250]))
    chart._mouse_moved(point)
    assert chart._vline.isVisible() and f"C {bars.c[250]:,.2f}" in chart.readout.text()

    QApplication.sendEvent(chart.canvas.viewport(), QEvent(QEvent.Type.Leave))
    assert not chart._vline.isVisible() and not chart._hline.isVisible()
    assert f"C {bars.c[-1]:,.2f}" in chart.readout.text()

    chart._mouse_moved(point)
    other = synthetic(50, start=0)
    chart.show_bars("OTHER", other)
    assert not chart._vline.isVisible() and not chart._volume_vline.isVisible()
    assert "OTHER" in chart.readout.text() and f"C {other.c[-1]:,.2f}" in chart.readout.text()
