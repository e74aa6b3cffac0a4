"""`import-apac DIR`: a small web AutoTrader installation, built here, migrates once."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from autotrader_desktop import cli, credentials, database
from tests.helpers import (
    OLD_SCALPER,
    OLD_SMA,
    USER_TABLES,
    MemoryKeyring,
    build_installation,
    dump,
    instance_rows,
    query,
    write_algorithm,
)


@pytest.fixture
def use_keyring():
    before = keyring.get_keyring()

    def use(backend):
        keyring.set_keyring(backend)
        return backend

    yield use
    keyring.set_keyring(before)


def cli_run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def installation(tmp_path):
    return build_installation(tmp_path / "APAC")


@pytest.fixture
def folder(algo_dir, monkeypatch):
    monkeypatch.setenv("AUTOTRADER_ALGORITHM_DIR", str(algo_dir))
    # The desktop's own sma_crossover.py, different from the old one of that name.
    write_algorithm(algo_dir, "sma_crossover", "# the desktop example\nclass Algorithm: pass\n")
    return algo_dir


def test_an_installation_migrates_once(capsys, installation, folder, data_dir, use_keyring):
    secrets = use_keyring(MemoryKeyring())
    code, out, err = cli_run(capsys, "import-apac", str(installation))
    assert code == 0, err
    assert "instances imported: 2" in out and "trades imported: 4" in out
    assert "imported as sma_crossover_apac.py" in out

    rows = {r["display_name"]: r for r in instance_rows(data_dir)}
    nvda = rows["NVDA_sma_crossover_20250102_143022"]
    assert (nvda["ticker"], nvda["algorithm_type"], nvda["status"]) == (
        "NVDA",
        "sma_crossover_apac",  # runs the old file, not the desktop's of the same name
        "running",
    )
    assert nvda["initial_capital"] == 5000.0
    assert (nvda["shares"], nvda["trade_count"]) == (6, 2)
    assert nvda["cash"] == pytest.approx(5000 - 10 * 140.5 + 4 * 150.25)
    assert nvda["created_at"] == "2025-01-02T14:30:22.000000Z"
    assert nvda["source"] == "alpaca-iex"
    aapl = rows["AAPL_scalper_20250103_150000"]
    assert (aapl["status"], aapl["shares"], aapl["algorithm_type"]) == ("stopped", 0, "scalper")
    assert aapl["cash"] == pytest.approx(2000 + 5 * 5.0)
    assert aapl["stopped_at"] == "2025-01-06T16:00:00.000000Z"
    trades = query(
        data_dir,
        "SELECT type, shares, price, timestamp FROM transactions WHERE algorithm_id = ?"
        " ORDER BY id",
        (nvda["id"],),
    )
    assert [tuple(t) for t in trades] == [
        ("buy", 10, 140.5, "2025-01-02T15:16:02.000000Z"),
        ("sell", 4, 150.25, "2025-01-03T14:31:02.000000Z"),
    ]
    # Files: the old ones copied, the desktop's own left as it was.
    assert (folder / "scalper.py").read_text() == OLD_SCALPER
    assert (folder / "sma_crossover_apac.py").read_text() == OLD_SMA
    assert (folder / "sma_crossover.py").read_text().startswith("# the desktop example")
    # The key went to the keyring, never to the database; the feed follows ALPACA_FEED.
    assert secrets.secrets[(credentials.SERVICE, credentials.SECRET_ENV)] == "s3cr3t value"
    assert secrets.secrets[(credentials.SERVICE, credentials.KEY_ENV)] == "PKTEST123"
    assert query(data_dir, "SELECT value FROM settings WHERE key = 'feed'")[0][0] == '"alpaca-iex"'
    assert "s3cr3t" not in str(dump(data_dir))

    before = dump(data_dir)
    files = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    code, out, err = cli_run(capsys, "import-apac", str(installation))
    assert code == 0, err
    assert "instances imported: 0" in out and "trades imported: 0" in out
    assert "already imported, skipped: " in out
    assert dump(data_dir) == before
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == files


def test_without_a_safe_keyring_the_key_is_not_stored_and_the_report_says_how(
    capsys, installation, folder, data_dir, use_keyring
):
    use_keyring(keyring.backends.fail.Keyring())
    code, out, err = cli_run(capsys, "import-apac", str(installation))
    assert code == 0, err
    assert "the Alpaca key was NOT stored: no OS keyring is available" in out
    assert "Set APCA_API_KEY_ID and APCA_API_SECRET_KEY" in out
    assert "--feed alpaca-iex" in out
    assert query(data_dir, "SELECT value FROM settings WHERE key = 'feed'") == []


def damage(installation: Path, how: str) -> None:
    system_db = installation / "system_databse" / "system.db"
    if how == "garbage":
        system_db.write_bytes(b"this is not a database at all" * 100)
    elif how == "truncated":
        system_db.write_bytes(system_db.read_bytes()[:1500])
    elif how == "foreign":
        system_db.unlink()
        with closing(sqlite3.connect(system_db)) as conn, conn:
            conn.execute("CREATE TABLE algorithm_instances (id INTEGER PRIMARY KEY, name TEXT)")
    elif how == "oversold":
        with closing(sqlite3.connect(system_db)) as conn, conn:
            conn.execute("UPDATE transactions SET shares = 50 WHERE id = 2")
    elif how == "bad_symbol":
        with closing(sqlite3.connect(system_db)) as conn, conn:
            conn.execute("UPDATE algorithm_instances SET ticker = 'not a symbol!' WHERE id = 2")
    elif how == "missing":
        system_db.unlink()
    elif how == "binary_env":
        (installation / ".env").write_bytes(b"\x00\xff\xfe garbage")


@pytest.mark.parametrize(
    "how, message",
    [
        ("garbage", "is damaged or not an SQLite database"),
        ("truncated", "is damaged"),
        ("foreign", "is not a web AutoTrader system.db: table algorithm_instances lacks"),
        ("oversold", "instance 1 sells more shares than it holds"),
        ("bad_symbol", "symbol 'NOT A SYMBOL!' is not valid"),
        ("missing", "is not a web AutoTrader installation: no system_databse/system.db"),
        ("binary_env", "is not a .env file"),
    ],
)
def test_a_damaged_or_foreign_installation_is_refused_and_nothing_changes(
    capsys, installation, folder, data_dir, use_keyring, how, message
):
    secrets = use_keyring(MemoryKeyring())
    database.open_database(data_dir)  # an existing data directory
    database.close_database()
    before = dump(data_dir, USER_TABLES)
    files = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    damage(installation, how)
    code, _, err = cli_run(capsys, "import-apac", str(installation))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert dump(data_dir, USER_TABLES) == before
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == files
    assert secrets.secrets == {}


def test_a_data_directory_trading_simulated_prices_refuses_the_import(
    capsys, installation, folder, data_dir, use_keyring
):
    use_keyring(MemoryKeyring())
    write_algorithm(folder, "buyer", OLD_SCALPER)
    code, _, err = cli_run(capsys, "add", "NVDA", "buyer", "1000")
    assert code == 0, err
    before = dump(data_dir)
    code, _, err = cli_run(capsys, "import-apac", str(installation))
    assert code == 2
    assert "Use another data directory" in err
    assert dump(data_dir) == before
    assert not (folder / "scalper.py").exists()
