"""The data API for algorithms.

Import it as `from autotrader_desktop.api import get_data_for_algorithm, get_transactions`
(files from the web AutoTrader may keep their old `database.db_manager` /
`system_databse.system_db_manager` imports; see algorithm_loader).

Everything here reads the app's database, so it works the same in the window, in
`headless` and in `cycle`, from any thread.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, TypedDict

from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.database import Transaction, db

_clock: Clock = SystemClock()


class OHLCV(TypedDict):
    o: float
    h: float
    l: float  # noqa: E741 - the protocol's name
    c: float
    v: float


class BarDict(TypedDict):
    timestamp: str
    ohlcv: OHLCV


def set_clock(clock: Clock) -> None:
    """Decide what "now" is for the completed-bars rule (the engine passes its clock)."""
    global _clock
    _clock = clock


def to_epoch_seconds(value: datetime | str, argument: str) -> int:
    """An aware datetime or an ISO-8601 string ('...Z' or with an offset) as epoch seconds."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{argument}={value!r} is not an ISO-8601 time like '2024-03-15T19:59:00Z'"
            ) from None
    if not isinstance(value, datetime):
        raise TypeError(f"{argument} must be a datetime or an ISO-8601 string, not {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"{argument}={value!r} has no timezone; pass an aware (UTC) datetime")
    return int(value.timestamp())


def _iso(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def _last_completed_bar_start() -> int:
    # The bar starting at t covers [t, t+60): it is complete once now >= t + 60.
    return int(_clock.now().timestamp()) // 60 * 60 - 60


def get_data_for_algorithm(ticker: str, requirement_type: str, **kwargs: Any) -> list[BarDict]:
    """Completed minute bars of `ticker`, oldest first.

    requirement_type='last_n_bars': `n` bars, the newest at or before `before_timestamp`
    (inclusive; an aware datetime or ISO-8601 'Z' string; default: now).
    requirement_type='time_range': every bar with `start` <= timestamp <= `end`.
    The minute in progress is never returned.
    """
    symbol = str(ticker).strip().upper()
    newest = _last_completed_bar_start()
    if requirement_type == "last_n_bars":
        n = kwargs.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"last_n_bars needs n, a positive int (got n={n!r})")
        if kwargs.get("before_timestamp") is not None:
            newest = min(newest, to_epoch_seconds(kwargs["before_timestamp"], "before_timestamp"))
        # The newest n, read backwards along the (symbol, t) key, then put in time order.
        where, order, params = "t <= ?", "t DESC LIMIT ?", (symbol, newest, n)
    elif requirement_type == "time_range":
        if "start" not in kwargs or "end" not in kwargs:
            raise ValueError("time_range needs both start and end")
        start = to_epoch_seconds(kwargs["start"], "start")
        end = min(newest, to_epoch_seconds(kwargs["end"], "end"))
        where, order, params = "t >= ? AND t <= ?", "t", (symbol, start, end)
    else:
        raise ValueError(
            f"unknown requirement_type {requirement_type!r}; use 'last_n_bars' or 'time_range'"
        )
    rows = (
        db.connection()
        .execute(
            f"SELECT t, o, h, l, c, v FROM bars WHERE symbol = ? AND {where} ORDER BY {order}",
            params,
        )
        .fetchall()
    )
    if requirement_type == "last_n_bars":
        rows.reverse()
    return [
        {"timestamp": _iso(t), "ohlcv": {"o": o, "h": h, "l": low, "c": c, "v": v}}
        for t, o, h, low, c, v in rows
    ]


def _timestamp_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def get_transactions(algo_id: int) -> list[dict[str, Any]]:
    """The instance's transactions, newest first.

    Each: id, algorithm_id, type ('buy'|'sell'), shares, price, timestamp (ISO-8601 UTC).
    """
    query = (
        Transaction.select()
        .where(Transaction.instance == algo_id)
        .order_by(Transaction.timestamp.desc(), Transaction.id.desc())
    )
    return [
        {
            "id": t.id,
            "algorithm_id": algo_id,
            "type": t.type,
            "shares": t.shares,
            "price": t.price,
            "timestamp": _timestamp_text(t.timestamp),
        }
        for t in query
    ]


def get_position(algo_id: int) -> dict[str, Any]:
    """The instance's sub-account now: cash, shares, initial_capital (modern API only)."""
    # Plain SQL: algorithms call this every minute, and peewee's query building cost more
    # than the query itself.
    row = (
        db.connection()
        .execute(
            "SELECT cash, shares, initial_capital FROM algorithm_instances WHERE id = ?",
            (algo_id,),
        )
        .fetchone()
    )
    if row is None:
        raise ValueError(f"no instance with id {algo_id}")
    return {"cash": row[0], "shares": row[1], "initial_capital": row[2]}


__all__ = ["get_data_for_algorithm", "get_position", "get_transactions", "set_clock"]
