"""The read models: what the window (and the command line's `list`) shows, as plain data.

Runs on background threads; imports no Qt.

Every read is bounded: the activity tabs show the newest rows only, and each query uses an
index (runs by instance and time, output by instance and id, transactions by instance,
bars by symbol and time).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autotrader_desktop import accounting
from autotrader_desktop.broker import account as broker_account
from autotrader_desktop.broker import halt
from autotrader_desktop.database import (
    Instance,
    OutputLine,
    Run,
    Transaction,
    db,
)
from autotrader_desktop.enums import Broker, Conventions, InstanceStatus, Outcome
from autotrader_desktop.feed import market_hours, sources
from autotrader_desktop.module_cache import Drift
from autotrader_desktop.settings import Settings

TRADES_SHOWN = 500
RUNS_SHOWN = 300
OUTPUT_SHOWN = 1000
MAX_BARS = 200_000
MAX_FILLS = 20_000


def _utc(text: str) -> datetime:
    """A stored timestamp (UtcDateTimeField's '2024-03-15T19:59:02.000000Z') as an aware
    UTC datetime; fromisoformat reads that format ~40x as fast as the field's strptime."""
    return datetime.fromisoformat(text)


class EngineView(Protocol):
    """What a snapshot needs of the engine: live prices, drift, the starting balance. The
    engine itself, or the window's client of an engine in another process."""

    @property
    def settings(self) -> Settings: ...

    def latest_price(self, symbol: str) -> float | None: ...

    def drift(self, algorithm: str) -> Drift | None: ...


@dataclass(frozen=True)
class InstanceRow:
    id: int
    display_name: str
    symbol: str
    algorithm: str
    status: InstanceStatus
    code_version: str | None
    drift: Drift | None
    initial_capital: float
    cash: float
    shares: int
    last_price: float | None
    trades: int
    last_decision: str | None
    last_run_at: datetime | None
    error: str | None
    # Those its code last ran with (docs/legacy.md); None before its first run.
    conventions: Conventions | None = None
    # Not a failure, but for the user to look at (e.g. a position that differs at the broker).
    warning: str | None = None

    # Derived from the fields above, once per row: a price tick re-sorts and re-measures
    # 1,000 rows by these, which as properties cost ~20 ms of the GUI thread per tick.
    value: float = field(init=False, compare=False)
    pnl: float = field(init=False, compare=False)
    pnl_pct: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self._derive()

    def _derive(self) -> None:
        derived = self.__dict__  # frozen: the dataclass's own way round is object.__setattr__
        derived["value"] = value = accounting.instance_value(self)
        derived["pnl"] = pnl = value - self.initial_capital
        derived["pnl_pct"] = 100.0 * pnl / self.initial_capital if self.initial_capital else 0.0

    def priced(self, price: float | None) -> InstanceRow:
        """The row at a newer last price (None keeps the stored one).

        A copy of the fields rather than dataclasses.replace, which re-runs __init__ and
        costs ~10x as much: the table reprices every row on every price tick."""
        if price is None or price == self.last_price:
            return self
        row = object.__new__(InstanceRow)
        row.__dict__.update(self.__dict__, last_price=price)
        row._derive()
        return row


@dataclass(frozen=True)
class Trading:
    """Who trades, and whether trading is halted (the status bar's badge)."""

    broker: Broker = Broker.PAPER
    halted: bool = False
    account_number: str | None = None  # the outside broker's account, once it was read


@dataclass(frozen=True)
class Overview:
    rows: list[InstanceRow]
    account: accounting.Account
    trading: Trading = Trading()


# The columns a row shows, by SQL: peewee models (every column, datetimes by strptime)
# cost ~10x as much per row.
_ROWS_SQL = (
    "SELECT id, display_name, ticker, algorithm_type, status, code_version, initial_capital,"
    " cash, shares, last_price, trade_count, last_decision, last_run_at, error, conventions,"
    " warning"
    " FROM algorithm_instances ORDER BY id"
)


class Overviews:
    """Reads the overview: every instance, and the account at live prices (the table and
    the status bar show them).

    It runs on a background thread after every cycle, and its Python holds the GIL that
    the GUI thread needs. So it reads only the shown columns (peewee models and a second
    read for the account once cost ~46 ms for 1,000 instances and stalled the window by up
    to ~100 ms), and it remembers the rows it made: a row whose stored columns and drift
    are as last time is the same object again, built by nobody and recognised by identity
    in the window. The rows carry their stored last price; the table applies the live ones
    (a price tick every second). One reader per window: reads are one at a time.
    """

    def __init__(self) -> None:
        self._made: dict[int, tuple[tuple[Any, ...], InstanceRow]] = {}

    def __call__(self, engine: EngineView) -> Overview:
        drift: dict[str, Drift | None] = {}
        made: dict[int, tuple[tuple[Any, ...], InstanceRow]] = {}
        rows = []
        for stored in db.execute_sql(_ROWS_SQL):
            algorithm = stored[3]
            if algorithm not in drift:
                drift[algorithm] = engine.drift(algorithm)
            key = (*stored, drift[algorithm])
            before = self._made.get(stored[0])
            row = before[1] if before is not None and before[0] == key else _row(*key)
            made[row.id] = (key, row)
            rows.append(row)
        self._made = made
        prices = {symbol: engine.latest_price(symbol) for symbol in {row.symbol for row in rows}}
        account = accounting.summarize(engine.settings.starting_balance, rows, prices.get)
        trading = Trading(engine.settings.broker, halt.is_halted())
        at_broker = broker_account.load() if engine.settings.broker.is_alpaca else None
        if at_broker is not None:
            account = accounting.at_broker(account, at_broker.cash, at_broker.equity, rows)
            trading = replace(trading, account_number=at_broker.account_number)
        return Overview(rows, account, trading)


def _row(
    instance_id: int,
    name: str,
    symbol: str,
    algorithm: str,
    status: str,
    version: str | None,
    capital: float,
    cash: float,
    shares: int,
    last_price: float | None,
    trades: int,
    decision: str | None,
    last_run_at: str | None,
    error: str | None,
    conventions: str | None,
    warning: str | None,
    drift: Drift | None,
) -> InstanceRow:
    # Positional, in InstanceRow's field order: with 17 fields, keywords cost twice as much,
    # and after a cycle 1,000 rows are built while the GUI thread waits for the GIL.
    return InstanceRow(
        instance_id,
        name,
        symbol,
        algorithm,
        _STATUSES[status],
        version,
        drift,
        capital,
        cash,
        shares,
        last_price,
        trades,
        decision,
        _utc(last_run_at) if last_run_at else None,
        error,
        _CONVENTIONS[conventions] if conventions else None,
        warning,
    )


_STATUSES = {status.value: status for status in InstanceStatus}  # a lookup, not Enum()
_CONVENTIONS = {conventions.value: conventions for conventions in Conventions}


def short_code_version(code_version: str | None) -> str | None:
    """A code version (SHA-256) as a person reads it: in the window, `list`, `list --json`."""
    return code_version[:8] if code_version else None


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as the command line's `--json` and the engine's channel give it."""

    id: int
    display_name: str
    ticker: str
    algorithm_type: str
    status: str
    code_version: str | None  # short, as shown
    code_sha256: str | None
    initial_capital: float
    cash: float
    shares: int
    value: float
    pnl: float
    trades: int
    error: str | None
    warning: str | None


def instance_info(instance: Instance) -> dict[str, Any]:
    """InstanceInfo's fields of `instance`, as JSON-ready values."""
    value = accounting.instance_value(instance)
    return asdict(
        InstanceInfo(
            id=instance.id,
            display_name=instance.display_name,
            ticker=instance.symbol,
            algorithm_type=instance.algorithm,
            status=instance.status,
            code_version=short_code_version(instance.code_version),
            code_sha256=instance.code_version,
            initial_capital=instance.initial_capital,
            cash=round(instance.cash, 4),
            shares=instance.shares,
            value=round(value, 4),
            pnl=round(value - instance.initial_capital, 4),
            trades=instance.trade_count,
            error=instance.error,
            warning=instance.warning,
        )
    )


@dataclass(frozen=True)
class Activity:
    """What one instance did lately (trades, runs, output, its failure), for its tabs."""

    instance_id: int
    # (timestamp, type, shares, price, commission), newest first
    trades: list[tuple[datetime, str, int, float, float]]
    # (scheduled_at, duration_ms, code_version, decision, outcome, reason, fill_price)
    runs: list[tuple]
    # (timestamp, stream, text), oldest first
    output: list[tuple[datetime, str, str]]
    error: str | None
    # the latest failed run: when, and its traceback
    failed_at: datetime | None
    traceback: str | None


def _tuples(query: Any) -> list[Any]:
    """The rows of a `.tuples()` query (peewee's type hints call them models)."""
    return list(query)


def activity(instance_id: int) -> Activity | None:
    instance = Instance.get_or_none(Instance.id == instance_id)
    if instance is None:
        return None
    trades = (
        Transaction.select(
            Transaction.timestamp,
            Transaction.type,
            Transaction.shares,
            Transaction.price,
            Transaction.commission,
        )
        .where(Transaction.instance == instance_id)
        .order_by(Transaction.id.desc())
        .limit(TRADES_SHOWN)
        .tuples()
    )
    runs = (
        Run.select(
            Run.scheduled_at,
            Run.duration_ms,
            Run.code_version,
            Run.decision,
            Run.outcome,
            Run.reason,
            Run.fill_price,
        )
        .where(Run.instance == instance_id)
        .order_by(Run.scheduled_at.desc())
        .limit(RUNS_SHOWN)
        .tuples()
    )
    output = (
        OutputLine.select(OutputLine.timestamp, OutputLine.stream, OutputLine.text)
        .where(OutputLine.instance == instance_id)
        .order_by(OutputLine.id.desc())
        .limit(OUTPUT_SHOWN)
        .tuples()
    )
    failure = (
        Run.select(Run.scheduled_at, Run.traceback)
        .where((Run.instance == instance_id) & (Run.outcome == Outcome.FAILED))
        .order_by(Run.scheduled_at.desc())
        .limit(1)
        .tuples()
        .first()
    )
    return Activity(
        instance_id=instance_id,
        trades=_tuples(trades),
        runs=_tuples(runs),
        output=_tuples(output)[::-1],
        error=instance.error,
        failed_at=failure[0] if failure else None,
        traceback=failure[1] if failure else None,
    )


@dataclass(frozen=True)
class Bars:
    """Minute bars as columns, oldest first; `t` is the minute's start in epoch seconds."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741 - the protocol's name
    c: np.ndarray
    v: np.ndarray

    COLUMNS = ("t", "o", "h", "l", "c", "v")

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_rows(cls, rows: list[tuple[float, ...]]) -> Bars:
        """From (t, o, h, l, c, v) rows, oldest first."""
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        return cls(*(np.ascontiguousarray(array[:, i]) for i in range(6)))

    def merged(self, newer: Bars) -> Bars:
        """These bars with `newer` ones added or replacing those of the same minute."""
        if not len(newer):
            return self
        keep = ~np.isin(self.t, newer.t)
        order = np.argsort(np.concatenate([self.t[keep], newer.t]), kind="stable")
        return Bars(
            *(
                np.concatenate([getattr(self, name)[keep], getattr(newer, name)])[order]
                for name in self.COLUMNS
            )
        )


def bars(symbol: str, after: int | None = None, limit: int = MAX_BARS) -> Bars:
    """The newest `limit` stored bars of `symbol` (those after minute `after` if given), of
    the process's one source: a chart never shows two."""
    rows = db.execute_sql(
        "SELECT t, o, h, l, c, v FROM bars WHERE source = ? AND symbol = ? AND t > ?"
        " ORDER BY t DESC LIMIT ?",
        (sources.current(), symbol, -1 if after is None else after, limit),
    ).fetchall()
    rows.reverse()
    return Bars.from_rows(rows)


@dataclass(frozen=True)
class Fills:
    """An instance's trades as marker positions: epoch seconds and fill prices."""

    buy_t: np.ndarray
    buy_price: np.ndarray
    sell_t: np.ndarray
    sell_price: np.ndarray


def fills(instance_id: int) -> Fills:
    rows = db.execute_sql(
        "SELECT timestamp, type, price FROM transactions WHERE algorithm_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (instance_id, MAX_FILLS),
    ).fetchall()
    columns: dict[str, tuple[list[float], list[float]]] = {"buy": ([], []), "sell": ([], [])}
    for timestamp, kind, price in rows:
        times, prices = columns[kind]
        times.append(_utc(timestamp).timestamp())
        prices.append(price)
    (bt, bp), (st, sp) = columns["buy"], columns["sell"]
    return Fills(np.array(bt), np.array(bp), np.array(st), np.array(sp))


@dataclass(frozen=True)
class MarketState:
    open: bool
    next_change: datetime | None  # the next close while open, the next open while closed


def market_state(at: datetime) -> MarketState:
    """Whether NYSE is open at `at` (the first call loads the calendar: seconds)."""
    is_open = market_hours.is_open(at)
    try:
        change = market_hours.next_close(at) if is_open else market_hours.next_open(at)
    except ValueError:  # beyond the calendar's horizon
        change = None
    return MarketState(is_open, change)


TRADE_CSV_FIELDS = [
    "id",
    "algorithm_id",
    "display_name",
    "ticker",
    "type",
    "shares",
    "price",
    "commission",
    "timestamp",
]


def export_trades(path: Path, instance_id: int | None = None) -> int:
    """Write trades (one instance's, or all) to a CSV file; returns how many."""
    query = (
        Transaction.select(
            Transaction.id,
            Transaction.instance,
            Instance.display_name,
            Instance.symbol,
            Transaction.type,
            Transaction.shares,
            Transaction.price,
            Transaction.commission,
            Transaction.timestamp,
        )
        .join(Instance)
        .order_by(Transaction.id)
    )
    if instance_id is not None:
        query = query.where(Transaction.instance == instance_id)
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TRADE_CSV_FIELDS)
        for row in query.tuples().iterator():
            *head, timestamp = row
            writer.writerow([*head, timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")])
            count += 1
    return count
