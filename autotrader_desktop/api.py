"""The data API for algorithms.

Import it as `from autotrader_desktop.api import get_data_for_algorithm, get_transactions`.
Files from the web AutoTrader keep their old `database.db_manager` /
`system_databse.system_db_manager` imports, which `autotrader_desktop.legacy` serves with
that system's conventions on top of this module (see algorithm_loader).

Everything here reads the app's database, so it works the same in the window, in
`headless` and in `cycle`, from any thread. Bars are those of the process's market-data
source (feed/sources.py): never a mix of simulated and real prices. A request for bars
that are not stored yet (older than what was prepared, or never fetched) fetches them from
the feed's history API first, when the engine has provided one (`set_history`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.database import Transaction, db
from autotrader_desktop.feed import sources

_clock: Clock = SystemClock()

Session = Literal["regular", "all"]
SESSIONS: tuple[Session, ...] = ("regular", "all")
# Modern default: every minute the feed delivered, as the chart shows it and as the
# simulator (which trades around the clock) produces it. "regular" is one word away.
DEFAULT_SESSION: Session = "all"

# Fetches bars of (symbol, start, end) (epoch seconds, inclusive) that were never fetched
# and stores them; gives up at `deadline` (time.monotonic()). True if it asked for any.
HistoryFetcher = Callable[[str, int, int, float], bool]
_history: HistoryFetcher | None = None
# Share of the run's time limit one request may spend fetching history, so that the run
# still answers (with what is stored) before its limit.
HISTORY_SHARE = 0.5
_time_limit = 20.0


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


def set_history(fetch: HistoryFetcher | None, time_limit: float = 20.0) -> None:
    """Let requests fetch missing bars through `fetch` (the engine passes its market data),
    spending at most HISTORY_SHARE of `time_limit` seconds per request."""
    global _history, _time_limit
    _history, _time_limit = fetch, time_limit


def to_epoch_seconds(value: datetime | str, argument: str, *, naive_is_utc: bool = False) -> int:
    """An aware datetime or an ISO-8601 string ('...Z' or with an offset) as epoch seconds.

    A time without a timezone is refused, unless `naive_is_utc` (the legacy conventions).
    """
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
        if not naive_is_utc:
            raise ValueError(f"{argument}={value!r} has no timezone; pass an aware (UTC) datetime")
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def iso(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def last_completed_bar_start() -> int:
    # The bar starting at t covers [t, t+60): it is complete once now >= t + 60.
    return int(_clock.now().timestamp()) // 60 * 60 - 60


Row = tuple[int, float, float, float, float, float]


def _select(symbol: str, where: str, params: tuple, order: str) -> list[Row]:
    return (
        db.connection()
        .execute(
            f"SELECT t, o, h, l, c, v FROM bars WHERE source = ? AND symbol = ? AND {where}"
            f" ORDER BY {order}",
            (sources.current(), symbol, *params),
        )
        .fetchall()
    )


def _regular(rows: list[Row]) -> list[Row]:
    if not rows:
        return rows
    # Loaded when needed: the calendar is slow to load, and an algorithm's host imports
    # nothing (numpy included) its algorithm does not use.
    import numpy as np

    from autotrader_desktop.feed import market_hours

    keep = market_hours.in_session(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
    return [row for row, inside in zip(rows, keep.tolist(), strict=True) if inside]


def _last_n(symbol: str, n: int, newest: int, session: Session) -> list[Row]:
    """The newest n stored bars at or before `newest`, newest first."""
    if session == "all":
        # Read backwards along the (source, symbol, t) key.
        return _select(symbol, "t <= ?", (newest, n), "t DESC LIMIT ?")
    found: list[Row] = []
    batch = max(2 * n, 512)
    cursor = newest
    while len(found) < n:
        rows = _select(symbol, "t <= ?", (cursor, batch), "t DESC LIMIT ?")
        found += _regular(rows)
        if len(rows) < batch:
            break
        cursor = rows[-1][0] - 60
    return found[:n]


def _fetch(symbol: str, start: int, end: int, deadline: float) -> bool:
    return _history is not None and start <= end and _history(symbol, start, end, deadline)


def bars(
    symbol: str,
    requirement_type: str,
    *,
    session: Session,
    n: int | None = None,
    before: int | None = None,
    start: int | None = None,
    end: int | None = None,
) -> list[Row]:
    """Completed bars as (t, o, h, l, c, v) rows, oldest first (arguments already checked).

    Bars missing from the store are fetched first (see set_history).
    """
    if session not in SESSIONS:
        raise ValueError(f"session must be 'regular' or 'all' (got {session!r})")
    newest = last_completed_bar_start()
    deadline = time.monotonic() + HISTORY_SHARE * _time_limit
    if requirement_type == "last_n_bars":
        assert n is not None
        if before is not None:
            newest = min(newest, before)
        rows = _last_n(symbol, n, newest, session)
        # Gaps among the rows found (the app was not running for a while...).
        if rows and _fetch(symbol, rows[-1][0], newest, deadline):
            rows = _last_n(symbol, n, newest, session)
        if len(rows) < n and _history is not None:
            from autotrader_desktop.feed import market_hours

            # Enough sessions for n regular minutes (a superset for "all"); twice as many
            # while bars stay missing (thin IEX data), at most n sessions back: any symbol
            # that trades at all has a bar a day.
            wanted = n
            while len(rows) < n and time.monotonic() < deadline:
                oldest = market_hours.sessions_back(newest, wanted, limit=max(n, 5))
                _fetch(symbol, oldest, newest, deadline)
                rows = _last_n(symbol, n, newest, session)
                if wanted >= n * 390:
                    break
                wanted *= 4
        rows.reverse()
        return rows
    if requirement_type == "time_range":
        assert start is not None and end is not None
        end = min(newest, end)
        _fetch(symbol, start, end, deadline)
        rows = _select(symbol, "t >= ? AND t <= ?", (start, end), "t")
        return _regular(rows) if session == "regular" else rows
    raise ValueError(
        f"unknown requirement_type {requirement_type!r}; use 'last_n_bars' or 'time_range'"
    )


def get_data_for_algorithm(ticker: str, requirement_type: str, **kwargs: Any) -> list[BarDict]:
    """Completed minute bars of `ticker`, oldest first.

    requirement_type='last_n_bars': `n` bars, the newest at or before `before_timestamp`
    (inclusive; an aware datetime or ISO-8601 'Z' string; default: now).
    requirement_type='time_range': every bar with `start` <= timestamp <= `end`.
    session='all' (default: every minute the feed delivered) or 'regular' (9:30-16:00
    New York on trading days only). The minute in progress is never returned.
    """
    symbol = str(ticker).strip().upper()
    session = kwargs.get("session", DEFAULT_SESSION)
    if requirement_type == "last_n_bars":
        n = kwargs.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"last_n_bars needs n, a positive int (got n={n!r})")
        before = kwargs.get("before_timestamp")
        rows = bars(
            symbol,
            requirement_type,
            session=session,
            n=n,
            before=None if before is None else to_epoch_seconds(before, "before_timestamp"),
        )
    elif requirement_type == "time_range":
        if "start" not in kwargs or "end" not in kwargs:
            raise ValueError("time_range needs both start and end")
        rows = bars(
            symbol,
            requirement_type,
            session=session,
            start=to_epoch_seconds(kwargs["start"], "start"),
            end=to_epoch_seconds(kwargs["end"], "end"),
        )
    else:
        rows = bars(symbol, requirement_type, session=session)
    return [
        {"timestamp": iso(t), "ohlcv": {"o": o, "h": h, "l": low, "c": c, "v": v}}
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
