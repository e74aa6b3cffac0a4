"""`system_databse.system_db_manager` as the web AutoTrader's algorithms knew it (read-only).

Rows have the old columns; times are 'YYYY-MM-DDTHH:MM:SSZ' (to the second) as there.
One difference: an instance here can also be 'failed' (the old system only knew
'running' and 'stopped').
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from autotrader_desktop.database import db
from autotrader_desktop.legacy import read_only

_MODULE = "system_databse.system_db_manager"
_COLUMNS = (
    "id, display_name, algorithm_type, ticker, initial_capital, status, created_at, stopped_at"
)


def second(text: str | None) -> str | None:
    """A stored time ('...T15:16:02.123456Z') to the second, as the old system wrote it."""
    if text is None:
        return None
    stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _instance(row: tuple) -> dict[str, Any]:
    keys = [c.strip() for c in _COLUMNS.split(",")]
    found = dict(zip(keys, row, strict=True))
    found["created_at"] = second(found["created_at"])
    found["stopped_at"] = second(found["stopped_at"])
    return found


def get_algorithm(algo_id: int) -> dict[str, Any] | None:
    """One instance as a dict of the old columns, or None."""
    row = (
        db.connection()
        .execute(f"SELECT {_COLUMNS} FROM algorithm_instances WHERE id = ?", (algo_id,))
        .fetchone()
    )
    return _instance(row) if row else None


def get_all_algorithms(status: str | None = None) -> list[dict[str, Any]]:
    """Every instance (only those with `status`, if given), newest first."""
    where, params = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = db.connection().execute(
        f"SELECT {_COLUMNS} FROM algorithm_instances {where} ORDER BY created_at DESC, id DESC",
        params,
    )
    return [_instance(row) for row in rows]


def get_transactions(algo_id: int) -> list[dict[str, Any]]:
    """The instance's trades, newest first: id, algorithm_id, type, shares, price, timestamp
    (to the second)."""
    rows = db.connection().execute(
        "SELECT id, algorithm_id, type, shares, price, timestamp FROM transactions"
        " WHERE algorithm_id = ? ORDER BY timestamp DESC, id DESC",
        (algo_id,),
    )
    return [
        {
            "id": tid,
            "algorithm_id": aid,
            "type": kind,
            "shares": shares,
            "price": price,
            "timestamp": second(stamp),
        }
        for tid, aid, kind, shares, price, stamp in rows
    ]


def generate_display_name(ticker: str, algo_type: str) -> str:
    """The old naming scheme (UTC): NVDA_sma_crossover_20240102_143022."""
    return f"{ticker}_{algo_type}_{datetime.now(UTC):%Y%m%d_%H%M%S}"


_ENGINE = "the engine records trades and manages instances; return ('buy'|'sell', shares)"
_WINDOW = "instances are created and stopped in the window or with the command line"
record_buy = read_only(_MODULE, "record_buy", _ENGINE)
record_sell = read_only(_MODULE, "record_sell", _ENGINE)
create_algorithm = read_only(_MODULE, "create_algorithm", _WINDOW)
stop_algorithm = read_only(_MODULE, "stop_algorithm", _WINDOW)
get_connection = read_only(
    _MODULE, "get_connection", "there is no system.db; use the functions of this module"
)
