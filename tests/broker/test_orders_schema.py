"""Schema v3: a database from before outside brokers gets the order book, keeping its runs."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from autotrader_desktop import database
from autotrader_desktop.database import Instance, Run
from autotrader_desktop.enums import Outcome
from tests.helpers import T0


def test_an_older_database_gets_orders_warnings_and_ordered_runs(data_dir):
    database.open_database(data_dir)
    instance = Instance.create(
        display_name="i",
        algorithm="a",
        symbol="NVDA",
        initial_capital=1.0,
        status="running",
        created_at=T0,
        cash=1.0,
    )
    Run.create(instance=instance, scheduled_at=T0, outcome=Outcome.EXECUTED)
    database.close_database()
    with closing(sqlite3.connect(data_dir / database.DB_FILENAME)) as conn, conn:
        # Back to v2: no orders, no order_id, no warning, and the old outcome check.
        conn.executescript(
            """
            ALTER TABLE algorithm_instances DROP COLUMN warning;
            ALTER TABLE runs RENAME TO runs_new;
            CREATE TABLE runs (id INTEGER PRIMARY KEY, instance_id INTEGER NOT NULL,
                scheduled_at TEXT NOT NULL, started_at TEXT, duration_ms REAL,
                code_version TEXT, decision TEXT,
                outcome TEXT NOT NULL CHECK (outcome IN ('executed', 'hold', 'rejected',
                'failed')), reason TEXT, traceback TEXT, fill_price REAL,
                transaction_id INTEGER);
            INSERT INTO runs SELECT * FROM runs_new;
            DROP TABLE runs_new;
            ALTER TABLE transactions RENAME TO transactions_new;
            CREATE TABLE transactions (id INTEGER PRIMARY KEY, algorithm_id INTEGER NOT NULL,
                type TEXT NOT NULL, shares INTEGER NOT NULL, price REAL NOT NULL,
                commission REAL NOT NULL DEFAULT 0, timestamp TEXT NOT NULL);
            DROP TABLE transactions_new;
            DROP TABLE orders;
            PRAGMA user_version = 2;
            """
        )
    database.open_database(data_dir)
    assert database.schema_version() == database.SCHEMA_VERSION == 3
    assert [run.outcome for run in Run.select()] == ["executed"]
    Run.create(instance=instance, scheduled_at=T0.replace(minute=40), outcome=Outcome.ORDERED)
    assert Instance.get_by_id(instance.id).warning is None
    assert database.db.execute_sql("SELECT COUNT(*), 0 FROM orders").fetchone() == (0, 0)
    columns = {row[1] for row in database.db.execute_sql("PRAGMA table_info(transactions)")}
    assert "order_id" in columns
