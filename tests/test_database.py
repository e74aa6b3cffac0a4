"""The SQLite database (docs/behaviour.md#database) — pragmas, schema version and
migrations, cascades, and several processes writing to one data directory at once."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

import pytest

from autotrader_desktop import cli, database, instances
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.database import (
    BUSY_TIMEOUT_MS,
    DB_FILENAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    Instance,
    OutputLine,
    Run,
    Transaction,
)
from tests.helpers import (
    T0,
    Scanned,
    count,
    dump,
    instance_rows,
    kill,
    popen_python,
    returning,
    run_cli_subprocess,
    scalar,
    subprocess_env,
    write_algorithm,
)

HOLDER = returning("'hold', 0")


def pragmas() -> tuple:
    return tuple(
        database.db.execute_sql(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    )


def test_connection_pragmas(db):
    assert pragmas() == ("wal", 1, 1, BUSY_TIMEOUT_MS)
    assert BUSY_TIMEOUT_MS >= 1000


def test_every_threads_connection_has_the_pragmas(db):
    """Algorithms read the database from worker threads, each on its own connection."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(pragmas()))
    thread.start()
    thread.join(timeout=30)
    assert seen == [("wal", 1, 1, BUSY_TIMEOUT_MS)]


def test_schema_version_and_tables(db, data_dir):
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    with closing(sqlite3.connect(data_dir / DB_FILENAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file

        def columns(table: str) -> set[str]:
            return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}

        assert {
            "id",
            "display_name",
            "algorithm_type",
            "ticker",
            "initial_capital",
            "status",
            "created_at",
            "stopped_at",
            "error",
        } <= columns("algorithm_instances")
        assert {"id", "algorithm_id", "type", "shares", "price", "timestamp"} <= columns(
            "transactions"
        )
        assert {"instance_id", "scheduled_at", "outcome", "transaction_id"} <= columns("runs")


def test_reopening_is_idempotent(data_dir):
    path = database.open_database(data_dir)
    instance = instances.create(
        "NVDA",
        "holder",
        1000,
        algorithms=[Scanned("holder")],
        starting_balance=1e5,
        clock=FakeClock(T0),
    )
    database.open_database(data_dir)  # while open
    database.close_database()
    assert database.open_database(data_dir) == path
    assert database.schema_version() == SCHEMA_VERSION
    assert [i.display_name for i in Instance.select()] == [instance.display_name]
    database.close_database()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_database_from_a_newer_version_is_refused_clearly(data_dir, tmp_path, capsys):
    database.open_database(data_dir)
    instances.create(
        "NVDA",
        "holder",
        1000,
        algorithms=[Scanned("holder")],
        starting_balance=1e5,
        clock=FakeClock(T0),
    )
    database.close_database()
    with closing(sqlite3.connect(data_dir / DB_FILENAME)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = dump(data_dir)

    code = cli.main(["--data-dir", str(data_dir), "list"])
    err = capsys.readouterr().err
    assert code != 0
    assert "newer AutoTrader Desktop" in err and "--data-dir" in err
    assert "Traceback" not in err

    folder = tmp_path / "algorithm"
    folder.mkdir()
    result = run_cli_subprocess(["list", "--json"], subprocess_env(data_dir, folder))
    assert result.returncode != 0
    assert "newer AutoTrader Desktop" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert scalar(data_dir, "PRAGMA user_version") == SCHEMA_VERSION + 1
    assert dump(data_dir) == before


def _garbage(path) -> None:
    path.write_bytes(bytes(range(256)) * 40)


def _foreign(path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
        conn.execute("PRAGMA user_version = 3")
        conn.commit()


def _truncated(path) -> None:
    database.open_database(path.parent)
    instances.create(
        "NVDA",
        "holder",
        1000,
        algorithms=[Scanned("holder")],
        starting_balance=1e5,
        clock=FakeClock(T0),
    )
    database.close_database()  # checkpoints the WAL into the file
    path.write_bytes(path.read_bytes()[: 3 * 4096])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_garbage, "is not an AutoTrader Desktop database (not an SQLite file)"),
        (
            _foreign,
            "is not an AutoTrader Desktop database (it belongs to another program: customers)",
        ),
        (_truncated, "is damaged: truncated to 12,288 of"),
    ],
    ids=["garbage", "foreign", "truncated"],
)
def test_a_file_that_is_not_our_database_is_refused_unchanged(make, message, data_dir, tmp_path):
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILENAME
    make(path)
    before = path.read_bytes()
    folder = tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "holder", HOLDER)
    env = subprocess_env(data_dir, folder)
    for argv in (["list"], ["add", "NVDA", "holder", "100"], ["cycle"]):
        result = run_cli_subprocess(argv, env)
        assert result.returncode == 2, argv
        assert f"{path} {message}" in result.stderr, result.stderr
        assert "--data-dir" in result.stderr
        assert "Traceback" not in result.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in data_dir.iterdir()) == [DB_FILENAME]


def test_a_database_from_before_the_application_id_still_opens(data_dir):
    """Files written before we stamped PRAGMA application_id are known by their tables."""
    path = database.open_database(data_dir)
    database.close_database()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA application_id = 0")
    database.open_database(data_dir)
    assert database.db.execute_sql("PRAGMA application_id").fetchone()[0] == (
        database.APPLICATION_ID
    )


def test_an_empty_file_becomes_our_database(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / DB_FILENAME).touch()
    database.open_database(data_dir)
    assert database.schema_version() == SCHEMA_VERSION


def test_deleting_an_instance_deletes_its_history(db, clock):
    def make(symbol: str) -> Instance:
        instance = instances.create(
            symbol,
            "holder",
            1000,
            algorithms=[Scanned("holder")],
            starting_balance=1e5,
            clock=clock,
        )
        trade = Transaction.create(
            instance=instance.id, type="buy", shares=1, price=10.0, timestamp=T0
        )
        Run.create(instance=instance.id, scheduled_at=T0, outcome="executed", transaction=trade.id)
        OutputLine.create(instance=instance.id, timestamp=T0, stream="stdout", text="hi")
        instance.status = "stopped"
        instance.save()
        return instance

    doomed, kept = make("NVDA"), make("AMD")
    instances.delete(doomed.id)
    for model, column in (
        (Transaction, Transaction.instance),
        (Run, Run.instance),
        (OutputLine, OutputLine.instance),
    ):
        assert model.select().where(column == doomed.id).count() == 0, model.__name__
        assert model.select().where(column == kept.id).count() == 1, model.__name__
    assert [i.id for i in Instance.select()] == [kept.id]
    assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []


def test_foreign_keys_are_enforced(db):
    with pytest.raises(Exception, match="FOREIGN KEY"):
        Transaction.create(instance=12345, type="buy", shares=1, price=1.0, timestamp=T0)
    assert Transaction.select().count() == 0


def start_adds(tmp_path, data_dir, folder, capitals, name: str):
    env = subprocess_env(data_dir, folder)
    symbols = ["NVDA", "AMD", "INTC", "MSFT", "AAPL", "TSLA"]
    logs = [tmp_path / f"{name}{n}.log" for n in range(len(capitals))]
    children = [
        popen_python(
            ["-m", "autotrader_desktop", "add", symbols[n], "holder", str(capital)], env, log
        )
        for n, (capital, log) in enumerate(zip(capitals, logs, strict=True))
    ]
    try:
        codes = [child.wait(timeout=120) for child in children]
    finally:
        for child in children:
            kill(child)
    return codes, [log.read_text() for log in logs]


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "holder", HOLDER)
    return folder


def test_parallel_adds_on_a_new_data_directory_all_succeed(tmp_path, data_dir, folder):
    """Four processes create (and migrate) the database and write to it at the same time."""
    codes, logs = start_adds(tmp_path, data_dir, folder, [1000] * 4, "add")
    assert codes == [0, 0, 0, 0], logs
    assert not any("Traceback" in log or "locked" in log for log in logs), logs
    rows = instance_rows(data_dir)
    assert sorted(r["ticker"] for r in rows) == ["AMD", "INTC", "MSFT", "NVDA"]
    assert len({r["display_name"] for r in rows}) == 4
    assert scalar(data_dir, "PRAGMA user_version") == SCHEMA_VERSION
    assert scalar(data_dir, "PRAGMA integrity_check") == "ok"


def test_parallel_adds_never_overcommit_the_account(tmp_path, data_dir, folder):
    """Available cash is checked and spent in one write transaction: of four processes
    each asking for 30,000 of 100,000, exactly three succeed."""
    database.open_database(data_dir)
    database.close_database()
    assert (
        cli.main(["--data-dir", str(data_dir), "--algorithm-dir", str(folder), "algorithms"]) == 0
    )
    codes, logs = start_adds(tmp_path, data_dir, folder, [30_000] * 4, "over")
    assert sorted(codes) == [0, 0, 0, 2], logs
    [refused] = [log for code, log in zip(codes, logs, strict=True) if code]
    assert "more than the available cash 10,000.00" in refused
    assert "Traceback" not in refused
    assert count(data_dir, "algorithm_instances") == 3


def test_opening_waits_for_another_process_creating_the_database(tmp_path):
    # Another process is writing the new, still empty file. Switching to WAL needs the file
    # to itself, and SQLite answers "database is locked" at once instead of waiting (it
    # would otherwise deadlock with a writer): opening retries until the writer is done.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    writer = sqlite3.connect(
        data_dir / database.DB_FILENAME, isolation_level=None, check_same_thread=False
    )
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE scratch (x)")
    done = threading.Timer(0.3, writer.execute, ("COMMIT",))
    done.start()
    try:
        database.open_database(data_dir)
        assert scalar(data_dir, "PRAGMA journal_mode") == "wal"
    finally:
        done.join()
        writer.close()
        database.close_database()
