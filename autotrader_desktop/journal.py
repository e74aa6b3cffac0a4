"""Recording runs: the journal row, the trade and its effect on the instance, atomically.

A batch of finished runs is written in one IMMEDIATE transaction. For each run the
instance's cash and shares are read inside that transaction, the order is filled or
rejected against them, and the trade, the sub-account update and the journal row are
written together: a crash at any moment leaves either all of it or none of it. The journal
row is unique per (instance, scheduled time), and a run whose row already exists is not
recorded again, so no run is ever executed twice, whichever process got there first.

This is the hot path of a cycle (1,000 instances a minute), hence plain SQL on the peewee
connection rather than model queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from autotrader_desktop import accounting
from autotrader_desktop.database import UtcDateTimeField, db, write_transaction
from autotrader_desktop.decision import Decision
from autotrader_desktop.enums import InstanceStatus, Outcome
from autotrader_desktop.paper_broker import Fill, PaperBroker

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


def record(
    results: Sequence[RunResult],
    broker: PaperBroker,
    price_of: Callable[[str], float | None],
    now: Callable[[], datetime],
) -> list[RecordedRun]:
    """Execute and journal a batch of finished runs; returns what happened to each."""
    if not results:
        return []
    recorded: list[RecordedRun] = []
    with write_transaction():
        conn = db.connection()
        ids = [r.instance_id for r in results]
        marks = ",".join("?" * len(ids))
        accounts = {
            row[0]: row[1:]
            for row in conn.execute(
                f"SELECT id, cash, shares, status FROM algorithm_instances WHERE id IN ({marks})",
                ids,
            )
        }
        done = {
            (row[0], row[1])
            for row in conn.execute(
                f"SELECT instance_id, scheduled_at FROM runs WHERE instance_id IN ({marks})"
                " AND scheduled_at IN (" + ",".join("?" * len(results)) + ")",
                [*ids, *(_ts(r.scheduled_at) for r in results)],
            )
        }
        runs, updates, failures, output = [], [], [], []
        filled_at = now()  # one fill time per batch: batches span <= 50 ms
        stamps: dict[datetime, str] = {}
        for r in results:
            if r.scheduled_at not in stamps:
                stamps[r.scheduled_at] = _ts(r.scheduled_at)
            scheduled = stamps[r.scheduled_at]
            if r.instance_id not in accounts or (r.instance_id, scheduled) in done:
                continue  # deleted meanwhile, or this run was already recorded
            cash, shares, status = accounts[r.instance_id]
            fill, reason, price, trade_id = None, None, price_of(r.symbol), None
            if r.error is not None:
                outcome, reason = Outcome.FAILED, r.error
                failures.append((InstanceStatus.FAILED, r.error, r.instance_id))
            elif status != InstanceStatus.RUNNING:
                outcome, reason = Outcome.REJECTED, f"instance was {status} while it ran"
            elif r.decision is not None and r.decision.is_order:
                result = broker.execute(r.decision, cash, shares, r.symbol, price)
                if isinstance(result, Fill):
                    fill, outcome = result, Outcome.EXECUTED
                    trade_id = accounting.book_trade(r.instance_id, fill, filled_at)
                    cash, shares = fill.cash_after, fill.shares_after
                    accounts[r.instance_id] = (cash, shares, status)
                else:
                    outcome, reason = Outcome.REJECTED, result.reason
            else:
                outcome = Outcome.HOLD
            decision = str(r.decision) if r.decision is not None else None
            runs.append(
                (
                    r.instance_id,
                    scheduled,
                    _ts(r.started_at),
                    r.duration_ms,
                    r.code_version,
                    decision,
                    outcome,
                    reason,
                    r.traceback,
                    fill.price if fill else None,
                    trade_id,
                )
            )
            updates.append(
                (
                    r.code_version,
                    price,
                    scheduled,
                    decision or outcome,
                    r.instance_id,
                )
            )
            output.extend((r.instance_id, _ts(t), stream, text) for t, stream, text in r.output)
            recorded.append(RecordedRun(r.instance_id, outcome, reason, fill))
        conn.executemany(
            "INSERT INTO runs (instance_id, scheduled_at, started_at, duration_ms, code_version,"
            " decision, outcome, reason, traceback, fill_price, transaction_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        conn.executemany(
            "UPDATE algorithm_instances SET code_version = COALESCE(?, code_version),"
            " last_price = COALESCE(?, last_price),"
            " last_run_at = ?, last_decision = ? WHERE id = ?",
            updates,
        )
        conn.executemany(
            "UPDATE algorithm_instances SET status = ?, error = ? WHERE id = ?", failures
        )
        conn.executemany(
            "INSERT INTO output_lines (instance_id, timestamp, stream, text) VALUES (?, ?, ?, ?)",
            output,
        )
    return recorded
