"""`database.db_manager` as the web AutoTrader's algorithms knew it (read-only).

Differences on purpose (docs/legacy.md): `last_n_bars` returns n completed bars (the old
one gave n-1 while the current minute's slot was still empty; asking for n+1 still works),
and the minute in progress is never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from autotrader_desktop import api
from autotrader_desktop.legacy import read_only

_MODULE = "database.db_manager"


def _count(value: Any) -> int:
    """n as the old system took it: 11, 11.0 and '11' all mean 11."""
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number.is_integer() or number < 1:
        raise ValueError(f"last_n_bars needs n, a positive whole number (got n={value!r})")
    return int(number)


def _epoch(value: datetime | str, argument: str) -> int:
    return api.to_epoch_seconds(value, argument, naive_is_utc=True)


def _dicts(rows: list[api.Row]) -> list[dict[str, Any]]:
    return [
        {"timestamp": api.iso(t), "ohlcv": {"o": o, "h": h, "l": low, "c": c, "v": round(v)}}
        for t, o, h, low, c, v in rows
    ]


def get_data_for_algorithm(ticker: str, requirement_type: str, **kwargs: Any) -> list[dict]:
    """Regular-session minute bars, oldest first, as {timestamp, ohlcv} with integer v.

    'last_n_bars': n (int, float or text), before_timestamp (optional; naive means UTC).
    'time_range': start, end. Missing history is fetched; no data gives [].
    """
    symbol = str(ticker).strip().upper()
    if requirement_type == "last_n_bars":
        before = kwargs.get("before_timestamp")
        rows = api.bars(
            symbol,
            requirement_type,
            session="regular",
            n=_count(kwargs.get("n")),
            before=None if before is None else _epoch(before, "before_timestamp"),
        )
    elif requirement_type == "time_range":
        if "start" not in kwargs or "end" not in kwargs:
            raise ValueError("time_range needs both start and end")
        rows = api.bars(
            symbol,
            requirement_type,
            session="regular",
            start=_epoch(kwargs["start"], "start"),
            end=_epoch(kwargs["end"], "end"),
        )
    else:
        raise ValueError(f"Unknown requirement type: {requirement_type}")
    return _dicts(rows)


def get_historical_data(ticker: str, start_date: str, end_date: str) -> list[dict]:
    """The bars with start_date <= timestamp <= end_date."""
    return get_data_for_algorithm(ticker, "time_range", start=start_date, end=end_date)


def get_latest_price(ticker: str) -> dict | None:
    """The newest completed regular-session bar as {timestamp, ohlcv}, or None."""
    bars = get_data_for_algorithm(ticker, "last_n_bars", n=1)
    return bars[-1] if bars else None


def add_ticker_if_missing(ticker: str) -> None:
    """Every symbol is known here: only the old validation remains."""
    if not str(ticker).replace("_", "").isalnum():
        raise ValueError(f"Invalid ticker symbol: {ticker}")


_BARS = "the app stores market data itself; algorithms read it with get_data_for_algorithm"
initialize_database = read_only(_MODULE, "initialize_database", _BARS)
insert_minute_data = read_only(_MODULE, "insert_minute_data", _BARS)
insert_historical_data = read_only(_MODULE, "insert_historical_data", _BARS)
