"""Aggregation of trades into minute bars, corrections, and their persistence."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader_desktop.database import Bar
from autotrader_desktop.feed.bars import BarAggregator, BarWriter, store
from autotrader_desktop.feed.protocol import MinuteBar, Trade, Trades

T = 1_710_343_860  # 2024-03-13 15:31:00 UTC, a minute start


def trade(symbol: str, at: float, price: float, size: float = 10) -> Trade:
    minute = int(at // 60 * 60)
    return Trade(symbol, price, size, minute, at - minute)


def reference(trades: list[Trade]) -> dict[tuple[str, int], tuple]:
    """The obvious definition: per (symbol, minute), open = earliest trade (first to arrive
    among equal times), close = latest (last to arrive among equal times).

    Except for minutes before the minute of a symbol's first trade to arrive: those belong
    to the history API's bars, and late trades only widen them (open = close = the first
    trade to arrive when there was no stored bar)."""
    groups: dict[tuple[str, int], list[tuple[int, Trade]]] = defaultdict(list)
    first: dict[str, int] = {}
    for arrival, t in enumerate(trades):
        groups[t.symbol, t.minute].append((arrival, t))
        first.setdefault(t.symbol, t.minute)
    result = {}
    for (symbol, minute), items in groups.items():
        ordered = sorted(items, key=lambda item: (item[1].second, item[0]))
        if minute < first[symbol]:
            ordered = [items[0], items[0]]
        prices = [t.price for _, t in items]
        result[symbol, minute] = (
            ordered[0][1].price,
            max(prices),
            min(prices),
            ordered[-1][1].price,
            sum(t.size for _, t in items),
        )
    return result


def drain(aggregator: BarAggregator, into: dict) -> None:
    """Apply the pending writes the way bars.store() does, to a dict."""
    rows, merges = aggregator.take_pending()
    for symbol, t, *values in rows:
        into[symbol, t] = tuple(values)
    for symbol, t, price, size in merges:
        o, h, low, c, v = into.get((symbol, t), (price, price, price, price, 0))
        into[symbol, t] = (o, max(h, price), min(low, price), c, v + size)


trades_strategy = st.lists(
    st.builds(
        trade,
        st.sampled_from(["AAPL", "MSFT", "BRK.B"]),
        # Five minutes, in whole milliseconds so that equal times happen.
        st.integers(0, 5 * 60_000 - 1).map(lambda ms: T + ms / 1000),
        st.integers(1, 100_000).map(lambda cents: cents / 100),
        st.integers(1, 1000),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(trades=trades_strategy, batch=st.integers(1, 50), clock_steps=st.booleans())
def test_aggregation_matches_the_reference_in_any_arrival_order(trades, batch, clock_steps):
    aggregator = BarAggregator()
    stored: dict = {}
    for begin in range(0, len(trades), batch):
        aggregator.add_trades(Trades.of(trades[begin : begin + batch]))
        if clock_steps:
            # The clock moves on as the batches come in: late trades become corrections.
            aggregator.close_minutes(max(t.time for t in trades[: begin + batch]))
        drain(aggregator, stored)
    aggregator.close_minutes(T + 3600)
    drain(aggregator, stored)
    assert stored == reference(trades)


def test_live_bar_then_completion_by_the_next_trade_or_the_clock():
    aggregator = BarAggregator()
    aggregator.close_minutes(T + 1)
    aggregator.add_trades(Trades.of([trade("AAPL", T + 1, 10.0), trade("AAPL", T + 2, 12.0, 5)]))
    assert aggregator.in_progress("AAPL") == MinuteBar("AAPL", T, 10.0, 12.0, 10.0, 12.0, 15)
    assert aggregator.take_pending() == ([], [])
    aggregator.add_trades(Trades.of([trade("AAPL", T + 61, 11.0)]))
    assert aggregator.take_pending()[0] == [("AAPL", T, 10.0, 12.0, 10.0, 12.0, 15)]
    assert aggregator.in_progress("AAPL").t == T + 60
    aggregator.close_minutes(T + 120)  # no trade in the next minute: the clock completes it
    assert aggregator.in_progress("AAPL") is None
    assert aggregator.take_pending()[0] == [("AAPL", T + 60, 11.0, 11.0, 11.0, 11.0, 10)]
    assert aggregator.last_price("AAPL") == 11.0
    assert aggregator.data_time("AAPL") == T + 61
    assert aggregator.last_price("MSFT") is None and aggregator.data_time("MSFT") is None
    aggregator.apply_bars([MinuteBar("AAPL", T + 120, 1, 1, 1, 1, 1)])
    assert aggregator.data_time("AAPL") == T + 180  # a server bar: data up to its end


def test_server_bars_replace_ours_and_later_trades_are_ignored():
    aggregator = BarAggregator()
    aggregator.add_trades(Trades.of([trade("AAPL", T + 1, 10.0), trade("AAPL", T + 61, 11.0)]))
    aggregator.take_pending()
    server = MinuteBar("AAPL", T, 9.5, 12.5, 9.0, 10.5, 999)
    aggregator.apply_bars([server])
    assert aggregator.take_pending()[0] == [tuple(server)]
    aggregator.add_trades(
        Trades.of([trade("AAPL", T + 30, 20.0)])
    )  # the server sends "u" if needed
    assert aggregator.take_pending() == ([], [])
    corrected = server._replace(h=13.0, v=1001)  # "u"
    aggregator.apply_bars([corrected])
    assert aggregator.take_pending()[0] == [tuple(corrected)]
    assert aggregator.in_progress("AAPL").t == T + 60  # untouched


def test_server_bar_for_a_new_minute_completes_the_live_one():
    aggregator = BarAggregator()
    aggregator.add_trades(Trades.of([trade("AAPL", T + 1, 10.0)]))
    aggregator.apply_bars([MinuteBar("AAPL", T + 60, 1, 1, 1, 1, 1)])
    assert sorted(row[1] for row in aggregator.take_pending()[0]) == [T, T + 60]
    assert aggregator.in_progress("AAPL") is None


def test_very_late_trades_merge_into_the_stored_bar(db):
    aggregator = BarAggregator(retention=600)
    store([("AAPL", T, 10.0, 11.0, 9.0, 10.5, 100.0)])  # stored before this process ran
    aggregator.add_trades(Trades.of([trade("AAPL", T + 3600, 10.0)]))
    aggregator.close_minutes(T + 3600)
    aggregator.take_pending()
    aggregator.add_trades(Trades.of([trade("AAPL", T + 5, 12.0, 7), trade("AAPL", T - 55, 8.0, 3)]))
    rows, merges = aggregator.take_pending()
    assert rows == [] and len(merges) == 2
    store(rows, merges)
    stored = {(b.symbol, b.t): (b.o, b.h, b.l, b.c, b.v) for b in Bar.select()}
    assert stored[("AAPL", T)] == (10.0, 12.0, 9.0, 10.5, 107.0)  # open/close kept
    assert stored[("AAPL", T - 60)] == (8.0, 8.0, 8.0, 8.0, 3.0)  # a bar of its own


def test_old_minutes_are_forgotten_but_never_the_newest():
    aggregator = BarAggregator(retention=120)
    aggregator.add_trades(Trades.of([trade("AAPL", T + 1, 10.0), trade("MSFT", T + 300, 5.0)]))
    aggregator.close_minutes(T + 3600)
    assert aggregator.last_price("AAPL") == 10.0
    aggregator.add_trades(
        Trades.of([trade("MSFT", T + 301, 6.0)])
    )  # older than retention, but newest
    assert aggregator.take_pending()[0][-1] == ("MSFT", T + 300, 5.0, 6.0, 5.0, 6.0, 20)


def test_writer_persists_in_order_and_closes(db):
    writer = BarWriter()
    writer.submit([("AAPL", T, 1.0, 2.0, 0.5, 1.5, 10.0)], [])
    writer.submit([("AAPL", T, 1.0, 3.0, 0.5, 2.5, 20.0)], [("AAPL", T, 0.25, 5.0)])
    writer.submit([], []).result(timeout=10)
    writer.close()
    assert [(b.o, b.h, b.l, b.c, b.v) for b in Bar.select()] == [(1.0, 3.0, 0.25, 2.5, 25.0)]
