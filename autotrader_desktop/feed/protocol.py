"""The Alpaca Market Data v2 stock stream protocol: message shapes, parsing and validation.

Every server frame is a JSON array of objects, each with a type "T". The ones this app
uses are trades ("t"), minute bars ("b"), updated bars ("u", a correction of a bar already
sent) and the control messages "success", "error" and "subscription". Other known types
(quotes, daily bars, statuses, ...) are skipped quietly; anything else, and any message
whose fields have the wrong type, is reported as a problem and skipped, never fatal.

Parsing is on the hot path of the feed (hundreds of thousands of trades a second): a
frame's trades are columns (Trades), timestamps are parsed with a per-minute cache, and a
frame made only of trades is checked a column at a time (see _batch_of_trades).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple, TypeGuard

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


@dataclass(frozen=True, slots=True)
class Trades:
    """A frame's trades as columns, in arrival order: how the bar aggregator reads them,
    without an object per trade. Iterating yields Trade tuples."""

    symbols: Sequence[str] = ()
    prices: Sequence[float] = ()
    sizes: Sequence[float] = ()
    minutes: Sequence[int] = ()
    seconds: Sequence[float] = ()
    # (earliest minute, latest trade time) when the parser knew them for free; else None.
    span: tuple[int, float] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, trades: Iterable[Trade]) -> Trades:
        return cls(*zip(*trades, strict=True))

    def time_span(self) -> tuple[int, float]:
        """(earliest minute, an upper bound of the latest trade time) of non-empty trades."""
        if self.span is not None:
            return self.span
        return min(self.minutes), max(self.minutes) + max(self.seconds)

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self) -> Iterator[Trade]:
        columns = (self.symbols, self.prices, self.sizes, self.minutes, self.seconds)
        return map(Trade._make, zip(*columns, strict=True))


class Frame(NamedTuple):
    trades: Trades
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


# Numbers past this are no price or volume; the bound also keeps SQLite integers in range.
_MAX = 1e15
_NUMBER_TYPES = frozenset({int, float})  # not bool, although it is an int subclass


def is_price(value: object) -> TypeGuard[float]:
    """A JSON number > 0 and below 1e15 (NaN and infinity fail the comparison)."""
    return type(value) in _NUMBER_TYPES and 0 < value < _MAX  # type: ignore[operator]


def is_volume(value: object) -> TypeGuard[float]:
    """A JSON number >= 0 and below 1e15."""
    return type(value) in _NUMBER_TYPES and 0 <= value < _MAX  # type: ignore[operator]


def parse_bar(symbol: object, item: dict) -> MinuteBar | str:
    """A bar object (stream "b"/"u" or REST, t o h l c v) as a MinuteBar, or what is wrong."""
    stamp = item.get("t")
    if type(symbol) is not str or not symbol:
        return "bar without a symbol"
    values: list[Any] = [item.get(key) for key in ("o", "h", "l", "c")]
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


def _parse_trade(item: dict) -> Trade | str:
    """A trade message as a Trade, or what is wrong with it (the thorough path)."""
    symbol, price, size = item.get("S"), item.get("p"), item.get("s")
    if type(symbol) is not str or not symbol:
        return "trade without a symbol"
    if not is_price(price) or not is_volume(size):
        return "trade with a bad price or size"
    try:
        minute, second = parse_timestamp(item.get("t"))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return "trade with a bad timestamp"
    return Trade(symbol, price, size, minute, second)


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


def _parse_message(item: object, trades: list[Trade], frame: Frame) -> None:
    """Add one message of any kind to `trades` or the frame, or what is wrong with it."""
    if type(item) is not dict:
        frame.problems.append(f"message is not an object: {_snippet(item)}")
        return
    kind = item.get("T")
    if kind == "t":
        parsed: Trade | MinuteBar | Notice | str = _parse_trade(item)
        target: list = trades
    elif kind == "b" or kind == "u":
        parsed, target = parse_bar(item.get("S"), item), frame.bars
    elif kind == "success" or kind == "error" or kind == "subscription":
        parsed, target = _notice(kind, item), frame.notices
    elif kind in IGNORED_TYPES:
        return
    else:
        parsed = f"unknown message type {kind!r}"
    if type(parsed) is str:
        frame.problems.append(f"{parsed}: {_snippet(item)}")
    else:
        target.append(parsed)


_TRADE_FIELDS = itemgetter("T", "S", "p", "s", "t")
# "2024-03-13T15:31:02Z" is 20 characters; with 1 to 9 fractional digits, 22 to 30.
_STAMP_LENGTHS = frozenset({20, *range(22, 31)})
_LAST_CHARACTER = itemgetter(-1)
_MINUTE_TEXT = itemgetter(slice(0, 16))
_SECONDS_TEXT = itemgetter(slice(17, -1))


def _batch_of_trades(items: list) -> Trades | None:
    """The trades, if every item is a well-formed trade in UTC in a minute seen before;
    else None (then each item takes the thorough path).

    The feed's hot path: a frame is usually a batch of trades, so the checks run a column
    at a time with builtins that loop in C, at a fraction of a per-message Python loop.
    The minute comes from the cache of strictly parsed minutes; the seconds are read by
    float() after a length check, so a few spellings no server uses ("+5.25", "5.125")
    are read leniently, always as a value in [0, 60) of that minute. Anything else unusual
    (a leap second, an offset) goes the thorough way.
    """
    try:
        kinds, symbols, prices, sizes, stamps = zip(*map(_TRADE_FIELDS, items), strict=True)
        "".join(symbols)  # TypeError unless every symbol is a string
        numbers = prices + sizes
        if not (
            set(kinds) == {"t"}
            and "" not in symbols
            and set(map(type, numbers)) <= _NUMBER_TYPES
            # The sums fail for a NaN or an infinity anywhere.
            and min(prices) > 0
            and min(sizes) >= 0
            and sum(prices) < _MAX
            and sum(sizes) < _MAX
            and set(map(len, stamps)) <= _STAMP_LENGTHS
            and set(map(_LAST_CHARACTER, stamps)) == {"Z"}
        ):
            return None
        minute_texts = set(map(_MINUTE_TEXT, stamps))
        seconds = tuple(map(float, map(_SECONDS_TEXT, stamps)))
        first, last = min(seconds), max(seconds)
        if not (first >= 0 and last < 60):
            return None
        if len(minute_texts) == 1:  # the usual case: the whole frame within one minute
            minute = _minute_cache[minute_texts.pop()]
            minutes: Sequence[int] = (minute,) * len(stamps)
            span = (minute, minute + last)
        else:
            minutes = tuple(map(_minute_cache.__getitem__, map(_MINUTE_TEXT, stamps)))
            span = (min(minutes), max(minutes) + last)
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    return Trades(symbols, prices, sizes, minutes, seconds, span)


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
    batch = _batch_of_trades(data)
    if batch is not None:
        return Frame(batch, [], [], [])
    trades: list[Trade] = []
    frame = Frame(Trades(), [], [], [])
    for item in data:
        _parse_message(item, trades, frame)
    return frame._replace(trades=Trades.of(trades)) if trades else frame


# --- client messages ---------------------------------------------------------------------


def auth_message(key: str, secret: str) -> str:
    return json.dumps({"action": "auth", "key": key, "secret": secret})


def subscription_message(action: str, symbols: list[str]) -> str:
    """{"action": "subscribe"|"unsubscribe", "trades": [...], "bars": [...], ...}."""
    if action not in ("subscribe", "unsubscribe"):
        raise ValueError(f"unknown action {action!r}")
    return json.dumps({"action": action, **{channel: symbols for channel in CHANNELS}})
