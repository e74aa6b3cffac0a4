"""The account and its sub-accounts (one per instance).

Instance: value = cash + shares x last price; P&L = value - initial capital.
Account: available cash = starting balance + realized P&L of stopped instances
- capital of running and failed instances; account value = available cash + the value
of running and failed instances (a failed instance still holds its capital and position).
Deleting a stopped instance moves its realized P&L into an archive total, so that deleting
history never changes the account's cash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autotrader_desktop.database import Instance, Setting, db
from autotrader_desktop.enums import InstanceStatus

ARCHIVED_PNL_KEY = "archived_realized_pnl"

PriceOf = Callable[[str], float | None]


@dataclass(frozen=True)
class Account:
    starting_balance: float
    realized_pnl: float
    committed_capital: float
    available_cash: float
    value: float


def last_price(instance: Instance, price_of: PriceOf | None) -> float | None:
    live = price_of(instance.symbol) if price_of else None
    return live if live is not None else instance.last_price


def instance_value(instance: Instance, price_of: PriceOf | None = None) -> float:
    price = last_price(instance, price_of)
    return instance.cash + instance.shares * (price or 0.0)


def archived_pnl() -> float:
    row = Setting.get_or_none(Setting.key == ARCHIVED_PNL_KEY)
    return float(row.value) if row else 0.0


def archive_pnl(amount: float) -> None:
    """Add a deleted instance's realized P&L to the archive (call inside its transaction)."""
    Setting.insert(
        key=ARCHIVED_PNL_KEY, value=repr(archived_pnl() + amount)
    ).on_conflict_replace().execute()


def available_cash(starting_balance: float) -> float:
    """Cash not committed to any running or failed instance (one query; usable in a transaction)."""
    realized, committed = db.execute_sql(
        "SELECT COALESCE(SUM(CASE WHEN status = ?1 THEN cash - initial_capital END), 0),"
        " COALESCE(SUM(CASE WHEN status != ?1 THEN initial_capital END), 0)"
        " FROM algorithm_instances",
        (InstanceStatus.STOPPED,),
    ).fetchone()
    return starting_balance + archived_pnl() + realized - committed


def account(starting_balance: float, price_of: PriceOf | None = None) -> Account:
    realized = archived_pnl()
    committed, value = 0.0, 0.0
    for instance in Instance.select():
        if instance.status == InstanceStatus.STOPPED:
            realized += instance.cash - instance.initial_capital
        else:
            committed += instance.initial_capital
            value += instance_value(instance, price_of)
    available = starting_balance + realized - committed
    return Account(starting_balance, realized, committed, available, available + value)
