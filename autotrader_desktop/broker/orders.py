"""Orders for an outside broker: recorded before they are sent, booked as the broker reports.

An order row is written in the same transaction as the decision that makes it (the run's
journal row, or a stop), with a client_order_id that names (installation, instance,
scheduled time); the broker keeps client_order_ids unique, so the same decision can never
become two orders. `sent_at` is set, and committed, before the first request: a row with
`sent_at` and no broker answer is *in doubt* and is looked up before anything is re-sent.

Whatever the broker reports (a stream event, a REST answer, in any order, any number of
times) goes through `apply`, which books only what is new: the broker's cumulative filled
quantity and average price, minus what is booked already. Booking is monotonic, so a late or
repeated report changes nothing, and the trades of an order always add up to the broker's
filled quantity at the broker's average price.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from autotrader_desktop import accounting
from autotrader_desktop.broker import Fill
from autotrader_desktop.database import UtcDateTimeField, db, write_transaction

_dt = UtcDateTimeField().python_value


def _ts(when: datetime) -> str:
    stamp = UtcDateTimeField().db_value(when)
    assert stamp is not None
    return stamp


INSTALLATION_KEY = "installation_id"


class OrderStatus(StrEnum):
    """Ours (RECORDED, NOT_SENT) and the broker's order statuses that we act on."""

    RECORDED = "recorded"  # written; the broker may not have it yet
    NOT_SENT = "not_sent"  # confirmed absent at the broker and dropped (stale, halted, stopped)
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    REPLACED = "replaced"


TERMINAL = (
    OrderStatus.NOT_SENT,
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
    OrderStatus.REPLACED,
)
_TERMINAL_MARKS = ",".join("?" * len(TERMINAL))


@dataclass(frozen=True)
class OrderRow:
    id: int
    client_order_id: str
    instance_id: int
    purpose: str
    scheduled_at: datetime | None
    symbol: str
    side: str
    qty: int
    status: str
    broker_order_id: str | None
    filled_qty: int
    filled_notional: float
    reason: str | None
    created_at: datetime
    sent_at: datetime | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


_COLUMNS = (
    "id, client_order_id, instance_id, purpose, scheduled_at, symbol, side, qty, status,"
    " broker_order_id, filled_qty, filled_notional, reason, created_at, sent_at"
)


def _row(values: tuple) -> OrderRow:
    row = list(values)
    row[4], row[13], row[14] = _dt(row[4]), _dt(row[13]), _dt(row[14])
    return OrderRow(*row)


@dataclass(frozen=True)
class BrokerState:
    """What the broker says about an order (cumulative quantities)."""

    status: str
    broker_order_id: str | None
    filled_qty: int
    filled_avg_price: float | None
    at: datetime
    reason: str | None = None
    # The execution a stream event reports: (qty, price). When it is exactly what is new, its
    # own price is booked; otherwise the price implied by the average (which Alpaca rounds).
    execution: tuple[int, float] | None = None


def installation_id() -> str:
    """A random id made once per database: client_order_ids of two installations never meet."""
    db.execute_sql(
        "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)",
        (INSTALLATION_KEY, f'"{secrets.token_hex(4)}"'),
    )
    (value,) = db.execute_sql(
        "SELECT value FROM settings WHERE key = ?", (INSTALLATION_KEY,)
    ).fetchone()
    return value.strip('"')


def client_order_id(instance_id: int, when: datetime, purpose: str = "run") -> str:
    """`at-<installation>-<instance>-<time>` (a stop: `...-stop-<time>`); <= 128 characters."""
    stamp = _ts(when).replace("-", "").replace(":", "").rstrip("Z")
    kind = "" if purpose == "run" else f"{purpose}-"
    return f"at-{installation_id()}-{instance_id}-{kind}{stamp}"


def record(
    instance_id: int,
    purpose: str,
    symbol: str,
    side: str,
    qty: int,
    estimated_price: float,
    when: datetime,
    now: datetime,
) -> OrderRow:
    """Write a new order (call inside the write transaction that makes the decision)."""
    cid = client_order_id(instance_id, when, purpose)
    db.execute_sql(
        "INSERT INTO orders (client_order_id, instance_id, purpose, scheduled_at, symbol, side,"
        " qty, estimated_price, status, filled_qty, filled_notional, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0.0, ?, ?)",
        (
            cid,
            instance_id,
            purpose,
            _ts(when) if purpose == "run" else None,
            symbol,
            side,
            qty,
            estimated_price,
            OrderStatus.RECORDED,
            _ts(now),
            _ts(now),
        ),
    )
    found = get(cid)
    assert found is not None
    return found


def get(client_order_id: str) -> OrderRow | None:
    values = db.execute_sql(
        f"SELECT {_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)
    ).fetchone()
    return _row(values) if values else None


def unfinished(instance_id: int | None = None) -> list[OrderRow]:
    """Orders not in a final state (oldest first), of one instance or all."""
    where = f"status NOT IN ({_TERMINAL_MARKS})"
    args: list[object] = [*TERMINAL]
    if instance_id is not None:
        where += " AND instance_id = ?"
        args.append(instance_id)
    return [
        _row(values)
        for values in db.execute_sql(
            f"SELECT {_COLUMNS} FROM orders WHERE {where} ORDER BY id", args
        ).fetchall()
    ]


def reserved(instance_id: int) -> tuple[float, int, bool]:
    """What the instance's open orders hold back: (buy value at their estimated prices,
    shares being sold, whether a stop is under way)."""
    buy_value, sell_qty, stopping = db.execute_sql(
        "SELECT COALESCE(SUM(CASE WHEN side = 'buy' THEN (qty - filled_qty) * estimated_price"
        " END), 0), COALESCE(SUM(CASE WHEN side = 'sell' THEN qty - filled_qty END), 0),"
        " COALESCE(MAX(purpose = 'stop'), 0)"
        f" FROM orders WHERE instance_id = ? AND status NOT IN ({_TERMINAL_MARKS})",
        (instance_id, *TERMINAL),
    ).fetchone()
    return float(buy_value), int(sell_qty), bool(stopping)


def claim(order_id: int, now: datetime) -> bool:
    """Mark the first send; False if some attempt (maybe in another process) came first."""
    with write_transaction():
        cursor = db.execute_sql(
            "UPDATE orders SET sent_at = ?, updated_at = ? WHERE id = ? AND sent_at IS NULL",
            (_ts(now), _ts(now), order_id),
        )
        return cursor.rowcount == 1


def drop(order: OrderRow, reason: str, now: datetime) -> None:
    """The broker does not have this order and never will: it is not sent."""
    apply(order.client_order_id, BrokerState(OrderStatus.NOT_SENT, None, 0, None, now, reason))


def apply(client_order_id: str, state: BrokerState) -> OrderRow | None:
    """Book what the broker reports about one of our orders; None if the order is not ours."""
    with write_transaction():
        order = get(client_order_id)
        if order is None:
            return None
        conn = db.connection()
        stamp = _ts(state.at)
        filled, notional = order.filled_qty, order.filled_notional
        first_trade = None
        if state.filled_qty > filled and state.filled_avg_price is not None:
            total = state.filled_qty * state.filled_avg_price
            more = state.filled_qty - filled
            price = (total - notional) / more
            if state.execution is not None and state.execution[0] == more:
                price = state.execution[1]
                total = notional + more * price
            cash, shares = conn.execute(
                "SELECT cash, shares FROM algorithm_instances WHERE id = ?", (order.instance_id,)
            ).fetchone()
            sign = 1 if order.side == "buy" else -1
            fill = Fill(
                order.side, more, price, 0.0, cash - sign * more * price, shares + sign * more
            )
            first_trade = accounting.book_trade(order.instance_id, fill, state.at, order.id)
            filled, notional = state.filled_qty, total
        status = order.status
        # A final state is kept against stale reports, except our own NOT_SENT: if the broker
        # has the order after all, the broker is right.
        if not order.terminal or order.status == OrderStatus.NOT_SENT or state.status in TERMINAL:
            status = state.status
        if status == order.status and filled == order.filled_qty and state.reason is None:
            return order  # nothing new
        conn.execute(
            "UPDATE orders SET status = ?, broker_order_id = COALESCE(?, broker_order_id),"
            " filled_qty = ?, filled_notional = ?, reason = COALESCE(?, reason), updated_at = ?"
            " WHERE id = ?",
            (status, state.broker_order_id, filled, notional, state.reason, stamp, order.id),
        )
        updated = get(client_order_id)
        assert updated is not None
        if updated.purpose == "run":
            _journal(conn, updated, first_trade)
        else:
            _stop_progress(conn, updated, stamp)
        return updated


def describe(order: OrderRow) -> tuple[str, str]:
    """(run outcome, reason) for the journal row of the run this order executes."""
    avg = order.filled_notional / order.filled_qty if order.filled_qty else None
    if order.status == OrderStatus.FILLED:
        return "executed", f"filled {order.filled_qty} at {avg:,.4f} (Alpaca order)"
    if order.terminal:
        if order.filled_qty:
            return (
                "executed",
                f"filled {order.filled_qty} of {order.qty} at {avg:,.4f}; the rest {order.status}",
            )
        finals: dict[str, str] = {
            OrderStatus.REJECTED: "Alpaca rejected the order",
            OrderStatus.CANCELED: "canceled at Alpaca",
            OrderStatus.EXPIRED: "expired unfilled",
        }
        why = order.reason or finals.get(order.status, order.status)
        return "rejected", why
    if order.filled_qty:
        return "ordered", f"partially filled: {order.filled_qty} of {order.qty} at {avg:,.4f}"
    if order.status == OrderStatus.RECORDED:
        return "ordered", order.reason or "order recorded, being sent to Alpaca"
    return "ordered", f"sent to Alpaca ({order.status})"


def _journal(conn: sqlite3.Connection, order: OrderRow, trade_id: int | None) -> None:
    assert order.scheduled_at is not None  # an order of a run
    outcome, reason = describe(order)
    avg = order.filled_notional / order.filled_qty if order.filled_qty else None
    conn.execute(
        "UPDATE runs SET outcome = ?, reason = ?, fill_price = ?,"
        " transaction_id = COALESCE(transaction_id, ?) WHERE instance_id = ? AND scheduled_at = ?",
        (outcome, reason, avg, trade_id, order.instance_id, _ts(order.scheduled_at)),
    )


def _stop_progress(conn: sqlite3.Connection, order: OrderRow, stamp: str) -> None:
    """A stop's sell: the instance is stopped once it filled; a failure is shown on it."""
    if order.status == OrderStatus.FILLED:
        conn.execute(
            "UPDATE algorithm_instances SET status = 'stopped', stopped_at = ?, warning = NULL"
            " WHERE id = ? AND status != 'stopped'",
            (stamp, order.instance_id),
        )
    elif order.terminal:
        conn.execute(
            "UPDATE algorithm_instances SET warning = ? WHERE id = ?",
            (stop_failure(order), order.instance_id),
        )


def stop_failure(order: OrderRow) -> str:
    why = order.reason or f"the sell was {order.status}"
    if order.filled_qty:
        why = f"only {order.filled_qty} of {order.qty} sold ({why})"
    return f"stop failed: {why}; close the position in Alpaca"
