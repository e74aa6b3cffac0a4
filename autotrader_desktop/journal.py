"""Recording runs: the journal row, the trade and its effect on the instance, atomically.

A batch of finished runs is written in one IMMEDIATE transaction. For each run the
instance's cash and shares are read inside that transaction, the order is filled or
rejected against them, and the trade, the sub-account update and the journal row are
written together: a crash at any moment leaves either all of it or none of it. The journal
row is unique per (instance, scheduled time), and a run whose row already exists is not
recorded again, so no run is ever executed twice, whichever process got there first.

Recording is three steps: `read` what the batch needs (each instance's holding, which runs
are already journaled), `decide` what becomes of each run (a pure function: outcome, fill,
holding after), `write` it all. This is the hot path of a cycle (1,000 instances a
minute), hence plain SQL on the peewee connection rather than model queries.

With an outside broker, `decide` says an order goes to it (outcome `ordered`), `write`
records the order row with the journal row, the broker sends it after the commit, and the
journal row follows the order's life (broker/orders.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autotrader_desktop import accounting, output_log
from autotrader_desktop.broker import Broker, Fill, OrderRequest, Placed, Rejection, orders
from autotrader_desktop.database import UtcDateTimeField, db, write_transaction
from autotrader_desktop.decision import Decision
from autotrader_desktop.enums import Conventions, InstanceStatus, Outcome

_ts = UtcDateTimeField().db_value


@dataclass
class RunResult:
    """What one run of one instance produced, before it is recorded."""

    instance_id: int
    symbol: str
    scheduled_at: datetime
    started_at: datetime
    duration_ms: float
    code_version: str | None = None
    conventions: Conventions | None = None
    decision: Decision | None = None
    error: str | None = None
    traceback: str | None = None
    output: list[tuple[datetime, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedRun:
    instance_id: int
    outcome: Outcome
    reason: str | None
    fill: Fill | None


@dataclass(frozen=True)
class Holding:
    """An instance's sub-account as the journal sees it."""

    cash: float
    shares: int
    status: InstanceStatus


@dataclass(frozen=True)
class Entry:
    """What one run writes: its journal row, its trade if any, the instance's new holding."""

    run: RunResult
    outcome: Outcome
    reason: str | None
    fill: Fill | None
    price: float | None  # the symbol's last price when the run was recorded
    holding: Holding  # after the fill


def record(
    results: Sequence[RunResult],
    broker: Broker,
    prices: Mapping[str, float | None],
    now: Callable[[], datetime],
    output_lines_kept: int,
) -> list[RecordedRun]:
    """Execute and journal a batch of finished runs; returns what happened to each.

    `prices`: the latest price of each run's symbol, looked up before: nothing waits on
    the network while this holds the database's write lock. `output_lines_kept`: how many
    lines of captured output each instance keeps (output_log).
    """
    if not results:
        return []
    with write_transaction():
        holdings, journaled = read(results)
        entries = decide(results, holdings, journaled, prices, broker)
        write(entries, now(), output_lines_kept)
    return [RecordedRun(e.run.instance_id, e.outcome, e.reason, e.fill) for e in entries]


def read(results: Sequence[RunResult]) -> tuple[dict[int, Holding], set[tuple[int, datetime]]]:
    """The holding of each instance in `results` (deleted ones are missing), and which of
    the (instance, scheduled time) runs are journaled already."""
    conn = db.connection()
    ids = [r.instance_id for r in results]
    marks = ",".join("?" * len(ids))
    holdings = {
        instance_id: Holding(cash, shares, InstanceStatus(status))
        for instance_id, cash, shares, status in conn.execute(
            f"SELECT id, cash, shares, status FROM algorithm_instances WHERE id IN ({marks})", ids
        )
    }
    scheduled = {_ts(r.scheduled_at) for r in results}
    journaled = {
        (instance_id, datetime.fromisoformat(when))
        for instance_id, when in conn.execute(
            f"SELECT instance_id, scheduled_at FROM runs WHERE instance_id IN ({marks})"
            f" AND scheduled_at IN ({','.join('?' * len(scheduled))})",
            [*ids, *scheduled],
        )
    }
    return holdings, journaled


def decide(
    results: Sequence[RunResult],
    holdings: Mapping[int, Holding],
    journaled: set[tuple[int, datetime]],
    prices: Mapping[str, float | None],
    broker: Broker,
) -> list[Entry]:
    """What becomes of each run, in order (pure). A run of a deleted instance, or one that
    is journaled already, is left out; a fill changes the holding later runs see."""
    holdings = dict(holdings)
    entries = []
    for run in results:
        holding = holdings.get(run.instance_id)
        if holding is None or (run.instance_id, run.scheduled_at) in journaled:
            continue
        price = prices.get(run.symbol)
        outcome, reason, fill = _outcome(run, holding, price, broker)
        if fill is not None:
            holding = Holding(fill.cash_after, fill.shares_after, holding.status)
            holdings[run.instance_id] = holding
        entries.append(Entry(run, outcome, reason, fill, price, holding))
    return entries


def _outcome(
    run: RunResult, holding: Holding, price: float | None, broker: Broker
) -> tuple[Outcome, str | None, Fill | None]:
    if run.error is not None:
        return Outcome.FAILED, run.error, None
    if holding.status != InstanceStatus.RUNNING:
        return Outcome.REJECTED, f"instance was {holding.status} while it ran", None
    if run.decision is None or not run.decision.is_order:
        return Outcome.HOLD, None, None
    result = broker.execute(
        OrderRequest(
            run.instance_id,
            run.symbol,
            run.decision,
            holding.cash,
            holding.shares,
            price,
            run.scheduled_at,
        )
    )
    if isinstance(result, Rejection):
        return Outcome.REJECTED, result.reason, None
    if isinstance(result, Placed):
        return Outcome.ORDERED, None, None
    return Outcome.EXECUTED, None, result


def write(entries: Sequence[Entry], filled_at: datetime, output_lines_kept: int) -> None:
    """Write the trades, journal rows, instance updates and output of `entries` (inside
    the caller's write transaction). All fills of a batch share one time: a batch spans
    <= 50 ms."""
    conn = db.connection()
    runs: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    failures: list[tuple[Any, ...]] = []
    output: list[tuple[Any, ...]] = []
    for e in entries:
        r, fill, reason = e.run, e.fill, e.reason
        trade_id = None
        if fill is not None:
            trade_id = accounting.book_trade(r.instance_id, fill, filled_at)
        if e.outcome == Outcome.ORDERED:
            assert r.decision is not None and e.price is not None
            order = orders.record(
                r.instance_id,
                "run",
                r.symbol,
                r.decision.action,
                r.decision.shares,
                e.price,
                r.scheduled_at,
                filled_at,
            )
            reason = f"order {order.client_order_id} recorded, being sent to Alpaca"
        scheduled = _ts(r.scheduled_at)
        decision = str(r.decision) if r.decision is not None else None
        runs.append(
            (
                r.instance_id,
                scheduled,
                _ts(r.started_at),
                r.duration_ms,
                r.code_version,
                decision,
                e.outcome,
                reason,
                r.traceback,
                fill.price if fill else None,
                trade_id,
            )
        )
        updates.append(
            (
                r.code_version,
                r.conventions.value if r.conventions else None,
                e.price,
                scheduled,
                decision or e.outcome,
                r.instance_id,
            )
        )
        if e.outcome == Outcome.FAILED:
            failures.append((InstanceStatus.FAILED, r.error, r.instance_id))
        output.extend((r.instance_id, _ts(t), stream, text) for t, stream, text in r.output)
    conn.executemany(
        "INSERT INTO runs (instance_id, scheduled_at, started_at, duration_ms, code_version,"
        " decision, outcome, reason, traceback, fill_price, transaction_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany(
        "UPDATE algorithm_instances SET code_version = COALESCE(?, code_version),"
        " conventions = COALESCE(?, conventions), last_price = COALESCE(?, last_price),"
        " last_run_at = ?, last_decision = ? WHERE id = ?",
        updates,
    )
    conn.executemany("UPDATE algorithm_instances SET status = ?, error = ? WHERE id = ?", failures)
    output_log.store(conn, output, output_lines_kept)
