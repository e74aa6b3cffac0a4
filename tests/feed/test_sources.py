"""Bars are kept per source; a data directory keeps the source its instances trade on."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from autotrader_desktop import api, database, queries, settings
from autotrader_desktop.database import Instance
from autotrader_desktop.engine import Engine
from autotrader_desktop.feed import sources
from autotrader_desktop.feed.bars import store
from autotrader_desktop.feed.market_data import MarketData
from autotrader_desktop.settings import Settings
from tests.helpers import T0, FakeMarket, add_instance, give_position

MINUTE = int(T0.timestamp()) // 60 * 60 - 60


@pytest.fixture
def two_sources(db, clock):
    """The same symbol and minutes from the simulator (seed 42) and from Alpaca IEX."""
    for source, price in (("sim/42", 10.0), ("alpaca-iex", 500.0)):
        rows = [("NVDA", MINUTE - 60 * i, price, price, price, price, 1.0) for i in range(5)]
        store(rows, source=source)


@pytest.mark.parametrize("source, price", [("sim/42", 10.0), ("alpaca-iex", 500.0)])
def test_algorithms_and_the_chart_see_one_source_only(two_sources, source, price):
    sources.use(source)
    bars = api.get_data_for_algorithm("NVDA", "last_n_bars", n=100)
    assert len(bars) == 5 and {b["ohlcv"]["c"] for b in bars} == {price}
    regular = api.get_data_for_algorithm("NVDA", "last_n_bars", n=100, session="regular")
    assert {b["ohlcv"]["c"] for b in regular} == {price}
    chart = queries.bars("NVDA")
    assert len(chart.t) == 5 and set(chart.c.tolist()) == {price}


def test_market_data_uses_the_source_of_its_feed(db, clock):
    assert MarketData(clock, Settings(feed="sim", simulator_seed=7)).source == "sim/7"
    assert sources.current() == "sim/7"
    assert MarketData(clock, Settings(feed="alpaca-sip")).source == "alpaca-sip"
    assert sources.current() == "alpaca-sip"


def test_instances_record_their_source(engine):
    instance = add_instance(engine, "NVDA", "anything")
    assert Instance.get_by_id(instance.id).source == "sim/42"


def test_another_feed_is_refused_once_the_data_directory_has_instances(make_engine, algo_dir):
    engine = make_engine()
    add_instance(engine, "NVDA", "anything")
    engine.close()

    class RealPrices(FakeMarket):
        source = "alpaca-iex"

    with pytest.raises(sources.SourceMismatch, match="the simulator \\(seed 42\\) prices"):
        Engine(Settings(), algo_dir, market_data=RealPrices(engine.clock)).open()
    sources.use("alpaca-iex")
    with pytest.raises(sources.SourceMismatch, match="Use another data directory"):
        add_instance(engine, "AAPL", "anything")
    for name, value in (("feed", "alpaca-iex"), ("simulator_seed", 7)):
        with pytest.raises(sources.SourceMismatch):
            settings.save(name, value)
    assert Instance.select().count() == 1


def test_switching_is_free_while_the_data_directory_has_no_instances(db):
    settings.save("feed", "alpaca-iex")
    settings.save("feed", "sim")
    settings.save("simulator_seed", 7)
    sources.check("alpaca-sip")


def test_a_version_1_database_gets_its_rows_a_source(data_dir):
    """Bars and instances from before sources existed belong to the stored feed."""
    data_dir.mkdir(parents=True)
    with closing(sqlite3.connect(data_dir / database.DB_FILENAME)) as conn, conn:
        conn.executescript(
            """
            CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO settings VALUES ('feed', '"sim"'), ('simulator_seed', '9');
            CREATE TABLE bars (symbol TEXT NOT NULL, t INTEGER NOT NULL, o REAL NOT NULL,
                h REAL NOT NULL, l REAL NOT NULL, c REAL NOT NULL, v REAL NOT NULL,
                PRIMARY KEY (symbol, t)) WITHOUT ROWID;
            INSERT INTO bars VALUES ('NVDA', 60, 1, 2, 0.5, 1.5, 10);
            CREATE TABLE algorithm_instances (id INTEGER PRIMARY KEY, display_name TEXT,
                algorithm_type TEXT, ticker TEXT, initial_capital REAL, status TEXT,
                created_at TEXT, stopped_at TEXT, error TEXT, cash REAL, shares INTEGER,
                trade_count INTEGER, code_version TEXT, last_price REAL, last_run_at TEXT,
                last_decision TEXT);
            INSERT INTO algorithm_instances (id, display_name, algorithm_type, ticker,
                initial_capital, status, created_at, cash, shares, trade_count)
                VALUES (1, 'x', 'a', 'NVDA', 5, 'running', '2024-01-01T00:00:00.000000Z',
                5, 0, 0);
            PRAGMA user_version = 1;
            """
        )
    database.open_database(data_dir)
    assert database.schema_version() == database.SCHEMA_VERSION
    assert database.db.execute_sql("SELECT source, symbol, t FROM bars").fetchall() == [
        ("sim/9", "NVDA", 60)
    ]
    assert Instance.get_by_id(1).source == "sim/9"
    assert sources.of_data_dir() == "sim/9"


def test_shares_are_never_sold_at_another_sources_price(engine):
    instance = add_instance(engine, "NVDA", "anything")
    give_position(instance, 5, 100.0)
    sources.use("alpaca-iex")
    with pytest.raises(sources.SourceMismatch, match="stop it with that feed"):
        engine.stop_instance(instance.id)
    assert Instance.get_by_id(instance.id).shares == 5
    sources.use("sim/42")
    engine.stop_instance(instance.id)
    assert Instance.get_by_id(instance.id).shares == 0
