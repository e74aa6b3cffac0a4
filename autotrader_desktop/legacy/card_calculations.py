"""`system_databse.card_calculations` as the web AutoTrader's algorithms knew it.

Computed from the instance's transactions with the old formulas (commissions, which the old
system did not have, are not in them; the window's figures include them).
"""

from __future__ import annotations

from typing import Any

from autotrader_desktop.database import db
from autotrader_desktop.legacy import system_db_manager


def _sum(sql: str, algo_id: int) -> Any:
    return db.connection().execute(sql, (algo_id,)).fetchone()[0]


def calculate_position(algo_id: int) -> int:
    """Shares held: bought minus sold."""
    return _sum(
        "SELECT COALESCE(SUM(CASE WHEN type = 'buy' THEN shares ELSE -shares END), 0)"
        " FROM transactions WHERE algorithm_id = ?",
        algo_id,
    )


def calculate_trade_count(algo_id: int) -> int:
    return _sum("SELECT COUNT(*) FROM transactions WHERE algorithm_id = ?", algo_id)


def calculate_invested_amount(algo_id: int) -> float:
    """Cash in the position: buy costs minus sell proceeds."""
    return float(
        _sum(
            "SELECT COALESCE(SUM(CASE WHEN type = 'buy' THEN shares * price"
            " ELSE -(shares * price) END), 0.0) FROM transactions WHERE algorithm_id = ?",
            algo_id,
        )
    )


def calculate_current_value(algo_id: int, current_price: float, initial_capital: float) -> float:
    """Shares at `current_price` plus the cash not invested."""
    uninvested = initial_capital - calculate_invested_amount(algo_id)
    return calculate_position(algo_id) * current_price + uninvested


def calculate_pnl(current_value: float, initial_capital: float) -> float:
    return current_value - initial_capital


def get_algorithm_with_calculations(algo_id: int, current_price: float) -> dict[str, Any] | None:
    """A running instance with current_shares, trade_count, current_value, pnl and
    current_price added; None if it is not running or the price is not positive."""
    algo = system_db_manager.get_algorithm(algo_id)
    if algo is None or algo["status"] != "running" or not current_price > 0:
        return None
    value = calculate_current_value(algo_id, current_price, algo["initial_capital"])
    algo.update(
        current_shares=calculate_position(algo_id),
        trade_count=calculate_trade_count(algo_id),
        current_value=value,
        pnl=calculate_pnl(value, algo["initial_capital"]),
        current_price=current_price,
    )
    return algo
