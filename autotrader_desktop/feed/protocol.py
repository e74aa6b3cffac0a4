"""The Alpaca Market Data v2 stock stream protocol: message shapes, parsing and validation.

Every server frame is a JSON array of objects, each with a type "T". The ones this app
uses are trades ("t"), minute bars ("b"), updated bars ("u", a correction of a bar already
sent) and the control messages "success", "error" and "subscription". Other known types
(quotes, daily bars, statuses, ...) are skipped quietly; anything else, and any message
whose fields have the wrong type, is reported as a problem and skipped, never fatal.

Parsing is on the hot path of the feed (hundreds of thousands of trades a second), so
messages become plain tuples and timestamps are parsed with a per-minute cache.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from datetime import datetime, timedelta
from typing import NamedTuple

# Control-message codes, as documented by Alpaca.
ERROR_CODES = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    500: "internal error",
}
# Subscribed per symbol: trades for prices and the live bar, bars and their corrections.
CHANNELS = ("trades", "bars", "updatedBars")
# Types the protocol defines that this app does not use: skipped without a warning.
IGNORED_TYPES = frozenset({"q", "d", "s", "x", "c", "l", "n", "o", "i"})

_SNIPPET = 200


class ProtocolError(ValueError):
    """A frame that is not a JSON array at all; nothing in it can be used."""


class Trade(NamedTuple):
    symbol: str
    price: float
    size: float
    minute: int  # epoch seconds of the minute the trade falls in
    second: float  # seconds into that minute, [0, 60)

    @property
    def time(self) -> float:
        return self.minute + self.second


class MinuteBar(NamedTuple):
    """OHLCV of one symbol over [t, t + 60 s); t is epoch seconds UTC."""

    symbol: str
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - the protocol's name
    c: float
    v: float


class Notice(NamedTuple):
    """A control message: "success", "error" (with its code) or "subscription"."""

    kind: str
    message: str
    code: int | None = None


class Frame(NamedTuple):
    trades: list[Trade]
    bars: list[MinuteBar]  # "b" and "u" alike: both are the server's word on that minute
    notices: list[Notice]
    problems: list[str]  # one line per skipped message, for the log


# --- timestamps -------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)"
)
_SECONDS = re.compile(r"[0-5]\d(?:\.\d{1,9})?")
# "YYYY-MM-DDTHH:MM" -> epoch seconds of that minute, for timestamps ending in Z.
_minute_cache: dict[str, int] = {}
_MINUTE_CACHE_LIMIT = 10_000


def parse_timestamp(text: str) -> tuple[int, float]:
    """An RFC-3339 timestamp (up to 9 fractional digits) as (minute start, seconds into it).

    Raises ValueError for anything else.
    """
    # Fast path: a minute seen before, in UTC ("Z"); only the seconds need checking.
    minute = _minute_cache.get(text[:16])
    if minute is not None and text[-1] == "Z" and text[16] == ":":
        seconds = text[17:-1]
        if _SECONDS.fullmatch(seconds):
            return minute, float(seconds)
    return _parse_timestamp_slow(text)


def _parse_timestamp_slow(text: str) -> tuple[int, float]:
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an RFC-3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    # datetime() validates the calendar fields (month 13, Feb 30, hour 24 ...).
    start = datetime(year, month, day, hour, minute)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        start -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    epoch_minute = calendar.timegm(start.timetuple())
    if second > 60:
        raise ValueError(f"second out of range in timestamp {text!r}")
    # A leap second (":60") still belongs to the minute it ends.
    seconds = min(second + (float(fraction) if fraction else 0.0), 59.999999999)
    if zone == "Z":
        if len(_minute_cache) >= _MINUTE_CACHE_LIMIT:
            _minute_cache.clear()
        _minute_cache[text[:16]] = epoch_minute
    return epoch_minute, seconds


def format_timestamp(epoch_ns: int) -> str:
    """Epoch nanoseconds as RFC-3339 UTC with 9 fractional digits, as the stream sends them."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def format_minute(epoch_seconds: int) -> str:
    """A bar's start time in the stream's and the REST API's shape: '2024-03-13T15:31:00Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


# --- frames ------------------------------------------------------------------------------


def _snippet(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def is_price(value: object) -> bool:
    """A JSON number > 0 and finite."""
    # bool is an int subclass but never a valid number here; NaN and inf fail the range.
    kind = type(value)
    return (kind is float or kind is int) and 0 < value < float("inf")  # type: ignore[operator]


def is_volume(value: object) -> bool:
    """A JSON number >= 0 and finite."""
    kind = type(value)
    return (kind is float or kind is int) and 0 <= value < float("inf")  # type: ignore[operator]


def parse_bar(symbol: object, item: dict) -> MinuteBar | str:
    """A bar object (stream "b"/"u" or REST, t o h l c v) as a MinuteBar, or what is wrong."""
    stamp = item.get("t")
    if type(symbol) is not str or not symbol:
        return "bar without a symbol"
    values = [item.get(key) for key in ("o", "h", "l", "c")]
    if not all(is_price(value) for value in values) or not is_volume(item.get("v")):
        return "bar with missing or non-numeric o/h/l/c/v"
    o, h, low, c = values
    if not (low <= o <= h and low <= c <= h):
        return "bar whose high/low do not bound its open/close"
    try:
        minute, second = parse_timestamp(stamp)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return "bar with a bad timestamp"
    if second:
        return "bar whose timestamp is not a minute start"
    return MinuteBar(symbol, minute, float(o), float(h), float(low), float(c), float(item["v"]))


def _notice(kind: str, item: dict) -> Notice | str:
    if kind == "subscription":
        channels = (f"{name}={item.get(name)}" for name in CHANNELS if item.get(name))
        return Notice(kind, " ".join(channels))
    message = item.get("msg")
    if type(message) is not str:
        return f"{kind} message without a text"
    if kind == "success":
        return Notice(kind, message)
    code = item.get("code")
    if type(code) is not int:
        return "error message without a numeric code"
    return Notice(kind, message, code)


def parse_frame(raw: str | bytes) -> Frame:
    """Parse one server frame; malformed messages are skipped and described in `problems`.

    Raises ProtocolError when the frame is not a JSON array.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError(f"frame is not JSON: {_snippet(raw)}") from None
    if type(data) is not list:
        raise ProtocolError(f"frame is not a JSON array of messages: {_snippet(data)}")
    trades: list[Trade] = []
    bars: list[MinuteBar] = []
    notices: list[Notice] = []
    problems: list[str] = []
    add_trade = trades.append
    for item in data:
        if type(item) is not dict:
            problems.append(f"message is not an object: {_snippet(item)}")
            continue
        kind = item.get("T")
        if kind == "t":
            symbol, price, size, stamp = item.get("S"), item.get("p"), item.get("s"), item.get("t")
            if type(symbol) is not str or not symbol:
                problems.append(f"trade without a symbol: {_snippet(item)}")
                continue
            if not is_price(price) or not is_volume(size):
                problems.append(f"trade with a bad price or size: {_snippet(item)}")
                continue
            try:
                minute, second = parse_timestamp(stamp)
            except (ValueError, TypeError):
                problems.append(f"trade with a bad timestamp: {_snippet(item)}")
                continue
            add_trade(Trade(symbol, price, size, minute, second))
        elif kind == "b" or kind == "u":
            bar = parse_bar(item.get("S"), item)
            if type(bar) is str:
                problems.append(f"{bar}: {_snippet(item)}")
            else:
                bars.append(bar)
        elif kind == "success" or kind == "error" or kind == "subscription":
            notice = _notice(kind, item)
            if type(notice) is str:
                problems.append(f"{notice}: {_snippet(item)}")
            else:
                notices.append(notice)
        elif kind not in IGNORED_TYPES:
            problems.append(f"unknown message type {kind!r}: {_snippet(item)}")
    return Frame(trades, bars, notices, problems)


# --- client messages ---------------------------------------------------------------------


def auth_message(key: str, secret: str) -> str:
    return json.dumps({"action": "auth", "key": key, "secret": secret})


def subscription_message(action: str, symbols: list[str]) -> str:
    """{"action": "subscribe"|"unsubscribe", "trades": [...], "bars": [...], ...}."""
    if action not in ("subscribe", "unsubscribe"):
        raise ValueError(f"unknown action {action!r}")
    return json.dumps({"action": action, **{channel: symbols for channel in CHANNELS}})
