"""The account and its sub-accounts (one per instance).

Instance: value = cash + shares x last price; P&L = value - initial capital.
Account: available cash = starting balance + realized P&L of stopped instances
- capital of running and failed instances; account value = available cash + the value
of running and failed instances (a failed instance still holds its capital and position).
Deleting a stopped instance moves its realized P&L into an archive total, so that deleting
history never changes the account's cash.

With an outside broker (Alpaca) the account is the broker's: available cash = the account's
cash - the cash of running and failed instances. Their invested part is already out of the
broker's cash (it bought their shares), so subtracting their capital would count it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from autotrader_desktop.broker import Fill
from autotrader_desktop.database import Setting, UtcDateTimeField, db
from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.errors import UserError

ARCHIVED_PNL_KEY = "archived_realized_pnl"

PriceOf = Callable[[str], float | None]


class SubAccount(Protocol):
    """What the formulas need of an instance: a model, a read model's row, a SQL row."""

    @property
    def symbol(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def initial_capital(self) -> float: ...
    @property
    def cash(self) -> float: ...
    @property
    def shares(self) -> int: ...
    @property
    def last_price(self) -> float | None: ...


@dataclass(frozen=True)
class Account:
    starting_balance: float
    realized_pnl: float
    committed_capital: float
    available_cash: float
    value: float


@dataclass(frozen=True)
class _Row:
    symbol: str
    status: str
    initial_capital: float
    cash: float
    shares: int
    last_price: float | None


def last_price(instance: SubAccount, price_of: PriceOf | None) -> float | None:
    live = price_of(instance.symbol) if price_of else None
    return live if live is not None else instance.last_price


def instance_value(instance: SubAccount, price_of: PriceOf | None = None) -> float:
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


def summarize(
    starting_balance: float,
    instances: Iterable[SubAccount],
    price_of: PriceOf | None = None,
    archived: float | None = None,
) -> Account:
    """The account of these sub-accounts (every instance there is): the one formula."""
    realized = archived_pnl() if archived is None else archived
    committed = value = 0.0
    for instance in instances:
        if instance.status == InstanceStatus.STOPPED:
            realized += instance.cash - instance.initial_capital
        else:
            committed += instance.initial_capital
            value += instance_value(instance, price_of)
    available = starting_balance + realized - committed
    return Account(starting_balance, realized, committed, available, available + value)


def at_broker(
    account: Account, broker_cash: float, equity: float, instances: Iterable[SubAccount]
) -> Account:
    """The account when an outside broker holds it: available cash is the broker's cash
    less the cash of running and failed instances, the value is the broker's equity."""
    held = sum(i.cash for i in instances if i.status != InstanceStatus.STOPPED)
    return replace(account, available_cash=broker_cash - held, value=equity)


def account(starting_balance: float, price_of: PriceOf | None = None) -> Account:
    """The account now, from the database (one query; usable inside a transaction)."""
    rows = db.execute_sql(
        "SELECT ticker, status, initial_capital, cash, shares, last_price FROM algorithm_instances"
    )
    return summarize(starting_balance, (_Row(*row) for row in rows), price_of)


def available_cash(starting_balance: float, broker_cash: float | None = None) -> float:
    """Cash not committed to any running or failed instance.

    `broker_cash`: the outside broker's account cash, when there is one.
    """
    if broker_cash is not None:
        (held,) = db.execute_sql(
            "SELECT COALESCE(SUM(cash), 0) FROM algorithm_instances WHERE status != 'stopped'"
        ).fetchone()
        return broker_cash - held
    return account(starting_balance).available_cash


def check_starting_balance(starting_balance: float) -> None:
    """Refuse a starting balance that would leave less than nothing available: the capital
    of running and failed instances is committed (call in the transaction that saves it)."""
    now = account(starting_balance)
    realized, committed = now.realized_pnl, now.committed_capital
    floor = committed - realized
    if starting_balance < floor - 0.005:
        less = f", less {realized:,.2f} realized P&L" if realized > 0.005 else ""
        more = f", plus {-realized:,.2f} realized loss" if realized < -0.005 else ""
        raise UserError(
            f"the starting balance cannot be below {floor:,.2f}: {committed:,.2f} is committed "
            f"to running and failed instances{less}{more}"
        )


_ts = UtcDateTimeField().db_value


def book_trade(instance_id: int, fill: Fill, at: datetime, order_id: int | None = None) -> int:
    """Write a trade and its effect on the instance's sub-account; returns the trade's id.

    The only place a trade is written, whichever broker filled it (`order_id`: the outside
    broker's order it fills). Call it inside the write transaction that read the cash and
    shares the fill was computed from, so both change together or not at all.
    """
    conn = db.connection()
    trade_id = conn.execute(
        "INSERT INTO transactions (algorithm_id, type, shares, price, commission, timestamp,"
        " order_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (instance_id, fill.action, fill.shares, fill.price, fill.commission, _ts(at), order_id),
    ).lastrowid
    conn.execute(
        "UPDATE algorithm_instances SET cash = ?, shares = ?, trade_count = trade_count + 1"
        " WHERE id = ?",
        (fill.cash_after, fill.shares_after, instance_id),
    )
    return trade_id
