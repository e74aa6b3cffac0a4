"""SQLite through peewee: connection setup, the schema, and its migrations.

One database file per data directory. Several processes (the window, CLI commands) may use
it at once: WAL lets readers run beside a writer, writers take the lock up front
(`write_transaction`) and wait on each other through the busy timeout.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    Check,
    CompositeKey,
    Field,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    OperationalError,
    SqliteDatabase,
    TextField,
)

from autotrader_desktop.enums import Outcome

DB_FILENAME = "autotrader.sqlite3"
BUSY_TIMEOUT_MS = 10_000
LOCKED_RETRY_S = 0.02
# PRAGMA application_id of our files ("ATD1"): how a database says it is ours.
APPLICATION_ID = 0x41544431
# Tables every version of our schema has; a file from before application_id was stamped is
# recognised by them and a schema version >= 1 (the web AutoTrader's database uses the first
# name too; ours always have a version).
_OUR_TABLES = {"algorithm_instances", "settings"}
_SQLITE_MAGIC = b"SQLite format 3\x00"

db = SqliteDatabase(None)


class UtcDateTimeField(Field):
    """An aware UTC datetime stored as fixed-width ISO-8601 text: text order is time order."""

    field_type = "TEXT"
    FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

    def db_value(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{self.name}: naive datetime {value!r}; use an aware UTC datetime")
        return value.astimezone(UTC).strftime(self.FORMAT)

    def python_value(self, value: str | None) -> datetime | None:
        if value is None:
            return None
        return datetime.strptime(value, self.FORMAT).replace(tzinfo=UTC)


class BaseModel(Model):
    class Meta:
        database = db


class Instance(BaseModel):
    id = AutoField()
    display_name = TextField(unique=True)
    # The columns keep their first names (the data API and older files use them).
    algorithm = TextField(column_name="algorithm_type")
    symbol = TextField(column_name="ticker", index=True)
    initial_capital = FloatField()
    status = TextField(
        index=True, constraints=[Check("status IN ('running', 'stopped', 'failed')")]
    )
    created_at = UtcDateTimeField()
    stopped_at = UtcDateTimeField(null=True)
    error = TextField(null=True)
    cash = FloatField()
    shares = IntegerField(default=0, constraints=[Check("shares >= 0")])
    trade_count = IntegerField(default=0)
    code_version = TextField(null=True)
    last_price = FloatField(null=True)
    last_run_at = UtcDateTimeField(null=True)
    last_decision = TextField(null=True)
    # The conventions its code ran with last (conventions.py); None before its first run.
    conventions = TextField(null=True)
    # The market data whose prices it trades on (feed/sources.py); None: created before
    # sources were recorded, and taken to be the stored feed's.
    source = TextField(null=True)
    # Something the user must look at that is not a failure (books differ from the broker's,
    # a stop whose sell was rejected).
    warning = TextField(null=True)

    class Meta:
        table_name = "algorithm_instances"


class Order(BaseModel):
    """An order for an outside broker, recorded before it is sent (see broker/orders.py)."""

    id = AutoField()
    client_order_id = TextField(unique=True)
    instance = ForeignKeyField(Instance, on_delete="CASCADE", backref="orders")
    purpose = TextField(constraints=[Check("purpose IN ('run', 'stop')")])
    # The run this order executes (purpose 'run'): its journal row is (instance, scheduled_at).
    scheduled_at = UtcDateTimeField(null=True)
    symbol = TextField()
    side = TextField(constraints=[Check("side IN ('buy', 'sell')")])
    qty = IntegerField(constraints=[Check("qty > 0")])
    estimated_price = FloatField()
    status = TextField(index=True)
    broker_order_id = TextField(null=True)
    filled_qty = IntegerField(default=0)
    filled_notional = FloatField(default=0.0)
    reason = TextField(null=True)
    created_at = UtcDateTimeField()
    sent_at = UtcDateTimeField(null=True)
    updated_at = UtcDateTimeField()

    class Meta:
        table_name = "orders"


class Transaction(BaseModel):
    id = AutoField()
    instance = ForeignKeyField(
        Instance, column_name="algorithm_id", on_delete="CASCADE", backref="transactions"
    )
    type = TextField(constraints=[Check("type IN ('buy', 'sell')")])
    shares = IntegerField(constraints=[Check("shares > 0")])
    price = FloatField()
    commission = FloatField(default=0.0)
    timestamp = UtcDateTimeField(index=True)
    order = ForeignKeyField(Order, null=True, on_delete="SET NULL", backref="trades")

    class Meta:
        table_name = "transactions"


class Run(BaseModel):
    """The journal: one row per (instance, scheduled time), written with the trade it caused."""

    id = AutoField()
    instance = ForeignKeyField(Instance, on_delete="CASCADE", backref="runs")
    scheduled_at = UtcDateTimeField()
    started_at = UtcDateTimeField(null=True)
    duration_ms = FloatField(null=True)
    code_version = TextField(null=True)
    decision = TextField(null=True)
    outcome = TextField(
        constraints=[Check(f"outcome IN ({', '.join(repr(str(o)) for o in Outcome)})")]
    )
    reason = TextField(null=True)
    traceback = TextField(null=True)
    fill_price = FloatField(null=True)
    transaction = ForeignKeyField(Transaction, null=True, on_delete="SET NULL")

    class Meta:
        table_name = "runs"
        indexes = ((("instance", "scheduled_at"), True),)


class OutputLine(BaseModel):
    """What an algorithm printed or logged, per instance."""

    id = AutoField()
    instance = ForeignKeyField(Instance, on_delete="CASCADE", backref="output")
    timestamp = UtcDateTimeField()
    stream = TextField()
    text = TextField()

    class Meta:
        table_name = "output_lines"
        indexes = ((("instance", "id"), False),)


class Bar(BaseModel):
    """A completed minute bar covering [t, t + 60 s); t is epoch seconds UTC.

    Bars are kept per source (feed/sources.py: the simulator with its seed, Alpaca IEX or
    SIP), so simulated and real minutes never meet in one query.
    """

    source = TextField()
    symbol = TextField()
    t = IntegerField()
    o = FloatField()
    h = FloatField()
    l = FloatField()  # noqa: E741 - the protocol's name
    c = FloatField()
    v = FloatField()

    class Meta:
        table_name = "bars"
        primary_key = CompositeKey("source", "symbol", "t")
        without_rowid = True


class BarCoverage(BaseModel):
    """A range [start, end] of minutes whose bars were fetched from a history API: asked
    for once, even where the answer was no bars (nights, holidays, unknown symbols)."""

    source = TextField()
    symbol = TextField()
    start = IntegerField()
    end = IntegerField()

    class Meta:
        table_name = "bar_coverage"
        primary_key = CompositeKey("source", "symbol", "start")
        without_rowid = True


class Setting(BaseModel):
    key = TextField(primary_key=True)
    value = TextField()

    class Meta:
        table_name = "settings"


class DiscoveryVerdict(BaseModel):
    """Whether a file's content imports cleanly; keyed by a hash of content and environment."""

    key = TextField(primary_key=True)
    available = BooleanField()
    error = TextField(null=True)

    class Meta:
        table_name = "discovery_verdicts"


class SourceFacts(BaseModel):
    """What a source file imports and which conventions it states (snapshot.FileFacts as
    JSON), keyed by the SHA-256 of its content: discovery parses each content once."""

    key = TextField(primary_key=True)
    facts = TextField()

    class Meta:
        table_name = "source_facts"


MODELS: list[type[Model]] = [
    Instance,
    Order,
    Transaction,
    Run,
    OutputLine,
    Bar,
    BarCoverage,
    Setting,
    DiscoveryVerdict,
    SourceFacts,
]


def _v1_initial_schema() -> None:
    db.create_tables(MODELS)


def _columns(table: str) -> set[str]:
    return {row[1] for row in db.execute_sql(f"PRAGMA table_info({table})")}


def _v2_sources_and_conventions() -> None:
    """Bars keyed by source, fetched ranges, instances' source and conventions.

    v1 creates the current models, so a database created at v1 by this version already has
    all of it: each step checks first. Rows from before sources existed are taken to come
    from the feed stored in the settings (the simulator with its seed by default).
    """
    stored = dict(db.execute_sql("SELECT key, value FROM settings").fetchall())
    feed = json.loads(stored.get("feed", '"sim"'))
    seed = json.loads(stored.get("simulator_seed", "42"))
    source = f"sim/{seed}" if feed == "sim" else feed
    if "source" not in _columns("bars"):
        db.execute_sql("ALTER TABLE bars RENAME TO bars_v1")
        db.create_tables([Bar])
        db.execute_sql(
            "INSERT INTO bars (source, symbol, t, o, h, l, c, v)"
            " SELECT ?, symbol, t, o, h, l, c, v FROM bars_v1",
            (source,),
        )
        db.execute_sql("DROP TABLE bars_v1")
    db.create_tables([BarCoverage, SourceFacts])
    instance_columns = _columns("algorithm_instances")
    for column in ("conventions", "source"):
        if column not in instance_columns:
            db.execute_sql(f"ALTER TABLE algorithm_instances ADD COLUMN {column} TEXT")
    db.execute_sql("UPDATE algorithm_instances SET source = ? WHERE source IS NULL", (source,))


def _v3_broker_orders() -> None:
    """Orders for outside brokers, trades linked to them, instance warnings, 'ordered' runs.

    A database created at v1 by this code already has all of it (v1 creates the current
    models), so each step checks first.
    """
    from playhouse.migrate import SqliteMigrator, migrate

    # Tables a v1 database lacks (none, unless it was made by hand) are made as they are now.
    db.create_tables([Order, Transaction, Run], safe=True)
    migrator = SqliteMigrator(db)
    if "order_id" not in _columns("transactions"):
        migrate(migrator.add_column("transactions", "order_id", Transaction.order))
    if "warning" not in _columns("algorithm_instances"):
        migrate(migrator.add_column("algorithm_instances", "warning", Instance.warning))
    (sql,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()
    if "'ordered'" not in sql:
        # SQLite cannot change a CHECK constraint: rebuild the table (nothing references it).
        db.execute_sql("ALTER TABLE runs RENAME TO runs_v1")
        for row in db.execute_sql("PRAGMA index_list(runs_v1)").fetchall():
            if not row[1].startswith("sqlite_"):
                db.execute_sql(f"DROP INDEX {row[1]}")
        Run.create_table()
        db.execute_sql("INSERT INTO runs SELECT * FROM runs_v1")
        db.execute_sql("DROP TABLE runs_v1")


# Schema version N is reached by running MIGRATIONS[N - 1]. Later versions use
# playhouse.migrate (SqliteMigrator); never edit an applied migration.
MIGRATIONS: list[Callable[[], None]] = [
    _v1_initial_schema,
    _v2_sources_and_conventions,
    _v3_broker_orders,
]
SCHEMA_VERSION = len(MIGRATIONS)


class NotOurDatabase(RuntimeError):
    """The database file is garbage, truncated or another program's; it was left as it was."""


def check_file(path: Path) -> None:
    """Refuse a file that is not one of our databases, without writing to it.

    Runs before anything opens the file for writing: setting WAL mode alone would change
    another program's file. Raises NotOurDatabase saying what is wrong.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # created on open
    if size == 0:
        return  # SQLite's own empty database
    with path.open("rb") as file:
        header = file.read(100)
    refuse = f"{path} is not an AutoTrader Desktop database"
    advice = "move it away or choose another data directory with --data-dir"
    if not header.startswith(_SQLITE_MAGIC):
        raise NotOurDatabase(f"{refuse} (not an SQLite file); {advice}")
    if len(header) < 100:
        raise NotOurDatabase(f"{refuse} (truncated to {size} bytes); {advice}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65_536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when its change counter matches (SQLite's rule).
    if header[24:28] == header[92:96] and size < pages * page_size:
        raise NotOurDatabase(
            f"{path} is damaged: truncated to {size:,} of {pages * page_size:,} bytes; "
            f"restore it from a backup, or {advice}"
        )
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as conn:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
    except sqlite3.OperationalError:
        return  # cannot even open it (permissions...): the real open says why
    except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
        raise NotOurDatabase(f"{refuse} ({exc}); {advice}") from None
    if application_id == APPLICATION_ID:
        return
    if application_id == 0 and not tables and version == 0:
        return  # an empty SQLite file: ours to fill
    if application_id == 0 and version >= 1 and tables >= _OUR_TABLES:
        return  # written before application_id was stamped
    found = ", ".join(sorted(tables)[:5]) or "no tables"
    raise NotOurDatabase(f"{refuse} (it belongs to another program: {found}); {advice}")


def open_database(data_dir: Path) -> Path:
    """Open (creating and migrating as needed) the database in `data_dir`; returns its path.

    Raises NotOurDatabase, unchanged, for a file that is not ours.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILENAME
    check_file(path)
    if not db.is_closed():
        db.close()
    db.init(
        str(path),
        timeout=BUSY_TIMEOUT_MS // 1000,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": 1,
            "busy_timeout": BUSY_TIMEOUT_MS,
        },
    )
    _connect()
    migrate()
    return path


def _connect() -> None:
    """Connect, switching a new database to WAL. The switch needs the file to itself and,
    where waiting could deadlock with a writer (several processes creating one database
    at once), SQLite answers "database is locked" at once instead of waiting: retried,
    within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.connect(reuse_if_open=True)
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(LOCKED_RETRY_S)


def data_dir() -> Path:
    """The data directory of the open database."""
    return Path(db.database).parent


def open_read_only(path: Path) -> None:
    """Open the database file at `path` for reading only (algorithm hosts: the data API)."""
    if not db.is_closed():
        db.close()
    db.init(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_MS // 1000,
        pragmas={"query_only": 1, "busy_timeout": BUSY_TIMEOUT_MS},
    )
    db.connect(reuse_if_open=True)


def schema_version() -> int:
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate() -> None:
    # IMMEDIATE: two processes starting at once must not both run the same migration.
    with db.atomic("IMMEDIATE"):
        current = schema_version()
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database was written by a newer AutoTrader Desktop (schema {current}, "
                f"this version knows {SCHEMA_VERSION}); update the app or use another --data-dir"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1]()
            db.execute_sql(f"PRAGMA user_version = {version}")
        if db.execute_sql("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            db.execute_sql(f"PRAGMA application_id = {APPLICATION_ID}")


def write_transaction() -> AbstractContextManager[Any]:
    """A transaction that takes the write lock at BEGIN, so it never fails half-way on upgrade."""
    return db.atomic("IMMEDIATE")


def close_database() -> None:
    if not db.is_closed():
        db.close()


__all__ = [
    "SQL",
    "Bar",
    "BarCoverage",
    "DiscoveryVerdict",
    "Instance",
    "NotOurDatabase",
    "Order",
    "OutputLine",
    "Run",
    "Setting",
    "SourceFacts",
    "Transaction",
    "close_database",
    "db",
    "open_database",
    "write_transaction",
]
