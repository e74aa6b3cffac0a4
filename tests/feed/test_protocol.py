"""Parsing and validation of Alpaca v2 stock stream frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotrader_desktop.feed.protocol import (
    MinuteBar,
    Notice,
    ProtocolError,
    Trade,
    auth_message,
    format_timestamp,
    parse_frame,
    parse_timestamp,
    subscription_message,
)

MINUTE = int(datetime(2024, 3, 13, 15, 31, tzinfo=UTC).timestamp())


def trade(**fields):
    return {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 171.25, "s": 100,
            "t": "2024-03-13T15:31:02.123456789Z", "c": ["@"], "z": "C", **fields}  # fmt: skip


def bar(**fields):
    return {"T": "b", "S": "AAPL", "o": 171.0, "h": 172.0, "l": 170.5, "c": 171.5, "v": 1200,
            "t": "2024-03-13T15:31:00Z", "n": 12, "vw": 171.3, **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "second"),
    [
        ("2024-03-13T15:31:02Z", 2.0),
        ("2024-03-13T15:31:02.5Z", 2.5),
        ("2024-03-13T15:31:02.123Z", 2.123),
        ("2024-03-13T15:31:02.123456789Z", 2.123456789),
        ("2024-03-13t15:31:02.1z", 2.1),
        ("2024-03-13T17:31:02.25+02:00", 2.25),
        ("2024-03-13T11:01:02-04:30", 2.0),
    ],
)
def test_timestamps_up_to_nine_fractional_digits_and_any_offset(text, second):
    # Twice: the second call takes the cached-minute path.
    for _ in range(2):
        minute, seconds = parse_timestamp(text)
        assert minute == MINUTE
        assert seconds == pytest.approx(second, abs=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-03-13 15:31:02Z",
        "2024-03-13T15:31:02",  # no zone
        "2024-03-13T15:31:02.1234567890Z",  # 10 digits
        "2024-13-13T15:31:02Z",
        "2024-02-30T15:31:02Z",
        "2024-03-13T24:31:02Z",
        "2024-03-13T15:31:61Z",
        "2024-03-13T15:31:0xZ",
        "2024-03-13T15:31:02.Z",
        "2024-03-13T15:31:1e1Z",
    ],
)
def test_malformed_timestamps_are_rejected(text):
    parse_timestamp("2024-03-13T15:31:02Z")  # the minute is cached: the fast path sees these
    with pytest.raises(ValueError):
        parse_timestamp(text)


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_format_and_parse_timestamps_round_trip(epoch_ns):
    text = format_timestamp(epoch_ns)
    minute, second = parse_timestamp(text)
    assert minute == epoch_ns // 60_000_000_000 * 60
    assert second == pytest.approx((epoch_ns % 60_000_000_000) / 1e9, abs=1e-9)


def test_a_frame_of_every_kind():
    frame = parse_frame(
        json.dumps(
            [
                {"T": "success", "msg": "authenticated"},
                {"T": "subscription", "trades": ["AAPL"], "bars": ["AAPL"], "quotes": []},
                {"T": "error", "code": 405, "msg": "symbol limit exceeded"},
                trade(),
                trade(S="MSFT", p=400, s=1.5, t="2024-03-13T15:32:00Z"),
                bar(),
                bar(T="u", S="MSFT"),
                {"T": "q", "S": "AAPL", "bp": 1.0},  # quotes: known, unused, quiet
                {"T": "d", "S": "AAPL"},
            ]
        )
    )
    assert frame.problems == []
    assert list(frame.trades) == [
        Trade("AAPL", 171.25, 100, MINUTE, pytest.approx(2.123456789)),
        Trade("MSFT", 400, 1.5, MINUTE + 60, 0.0),
    ]
    assert next(iter(frame.trades)).time == pytest.approx(MINUTE + 2.123456789)
    assert frame.bars == [
        MinuteBar("AAPL", MINUTE, 171.0, 172.0, 170.5, 171.5, 1200.0),
        MinuteBar("MSFT", MINUTE, 171.0, 172.0, 170.5, 171.5, 1200.0),
    ]
    assert frame.notices == [
        Notice("success", "authenticated"),
        Notice("subscription", "trades=['AAPL'] bars=['AAPL']"),
        Notice("error", "symbol limit exceeded", 405),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2",
        json.dumps(trade()),  # an object instead of an array
        "42",
        "null",
    ],
)
def test_frames_that_are_not_arrays_are_protocol_errors(raw):
    with pytest.raises(ProtocolError):
        parse_frame(raw)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"T": "zz", "S": "AAPL"}, "unknown message type 'zz'"),
        ({"S": "AAPL"}, "unknown message type None"),
        ("a string", "message is not an object"),
        (trade(p="171.25"), "bad price or size"),
        (trade(p=True), "bad price or size"),
        (trade(p=-1), "bad price or size"),
        (trade(p=float("nan")), "bad price or size"),
        (trade(s=None), "bad price or size"),
        (trade(s=-5), "bad price or size"),
        (trade(S=None), "without a symbol"),
        (trade(S=""), "without a symbol"),
        (trade(t=1710343862), "bad timestamp"),
        (trade(t="2024-03-13"), "bad timestamp"),
        (bar(o="171"), "non-numeric"),
        (bar(v=None), "non-numeric"),
        (bar(h=100.0), "do not bound"),
        (bar(t="2024-03-13T15:31:30Z"), "not a minute start"),
        (bar(t=None), "bad timestamp"),
        (bar(S=7), "without a symbol"),
        ({"T": "error", "msg": "x"}, "without a numeric code"),
        ({"T": "success"}, "without a text"),
    ],
)
def test_malformed_messages_are_skipped_and_described(message, problem):
    frame = parse_frame(json.dumps([message, trade()]))
    assert len(frame.problems) == 1
    assert problem in frame.problems[0]
    assert [t.symbol for t in frame.trades] == ["AAPL"]  # the good message still counts
    assert frame.bars == []


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-03-13T15:31:1e1Z",
        "2024-03-13T15:31:02.Z",
        "2024-03-13T15:31:02.1234567890Z",
        "2024-03-13T15:31:61Z",
        "2024-03-13T15:31:-1.5Z",
        "2024-03-13T15:31:02.5",
        "2024-03-13T15:31",
        "2024-03-13T15:31:02.5ZZ",
        "2024-03-13T15:32:02.5+",
        ["2024-03-13T15:31:02.5Z"],
    ],
)
def test_bad_timestamps_in_a_batch_of_trades(stamp):
    parse_timestamp("2024-03-13T15:31:00Z")  # a known minute: the batch path is taken
    frame = parse_frame(json.dumps([trade(), trade(t=stamp), trade()]))
    assert len(frame.trades) == 2
    assert len(frame.problems) == 1 and "bad timestamp" in frame.problems[0]


@pytest.mark.parametrize(
    "bad",
    [
        {"p": float("nan")},
        {"p": float("inf")},
        {"p": 0},
        {"p": 1e15},
        {"s": 10**20},
        {"s": False},
        {"S": ""},
        {"S": ["AAPL"]},
    ],
)
def test_bad_fields_in_a_batch_of_trades(bad):
    frame = parse_frame(json.dumps([trade(), trade(), trade(**bad)]))
    assert len(frame.trades) == 2 and len(frame.problems) == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["AAPL", "MSFT", "BRK.B"]),
            st.integers(1, 10**7).map(lambda cents: cents / 100),
            st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)),
            st.integers(1_710_000_000 * 10**9, 1_710_000_600 * 10**9),
            st.sampled_from(["Z", "+00:00", "-05:00"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_batches_parse_like_single_messages(rows):
    messages = []
    for symbol, price, size, ns, zone in rows:
        stamp = format_timestamp(ns)
        if zone == "-05:00":
            stamp = format_timestamp(ns - 5 * 3600 * 10**9)
        messages.append(trade(S=symbol, p=price, s=size, t=stamp.replace("Z", zone)))
    frame = parse_frame(json.dumps(messages))
    assert frame.problems == []
    assert [(t.symbol, t.price, t.size, t.minute) for t in frame.trades] == [
        (symbol, price, size, ns // 60_000_000_000 * 60) for symbol, price, size, ns, _ in rows
    ]
    for parsed, (*_, ns, _) in zip(frame.trades, rows, strict=True):
        assert parsed.second == pytest.approx(ns % 60_000_000_000 / 1e9, abs=1e-9)


def test_problem_descriptions_are_short():
    frame = parse_frame(json.dumps([trade(p="x" * 10_000)]))
    assert len(frame.problems[0]) < 300


def test_client_messages():
    assert json.loads(auth_message("k", "s")) == {"action": "auth", "key": "k", "secret": "s"}
    assert json.loads(subscription_message("subscribe", ["AAPL", "MSFT"])) == {
        "action": "subscribe",
        "trades": ["AAPL", "MSFT"],
        "bars": ["AAPL", "MSFT"],
        "updatedBars": ["AAPL", "MSFT"],
    }
    with pytest.raises(ValueError):
        subscription_message("subscribe-all", ["AAPL"])
