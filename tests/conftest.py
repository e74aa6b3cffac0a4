"""Shared fixtures: a fresh data directory and algorithm folder per test, a fake clock."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from autotrader_desktop import api, database
from autotrader_desktop.clock import FakeClock

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "algorithm"
# A Wednesday, 15:31:02 UTC: a cycle's scheduled second, inside US market hours.
T0 = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("AUTOTRADER_", "APCA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(tmp_path / "data"))
    yield
    database.close_database()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir):
    database.open_database(data_dir)
    yield database.db
    database.close_database()


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock(T0)
    api.set_clock(clock)
    yield clock
    api.set_clock(api.SystemClock())


@pytest.fixture
def algo_dir(tmp_path) -> Path:
    folder = tmp_path / "algorithm"
    folder.mkdir()
    return folder


def write_algorithm(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


class FakeMarket:
    """Market data with prices set by the test; records subscriptions."""

    def __init__(self) -> None:
        from collections import Counter

        self.prices: dict[str, float] = {}
        self.subscriptions: Counter[str] = Counter()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @property
    def symbols(self) -> set[str]:
        return {s for s, n in self.subscriptions.items() if n > 0}

    def subscribe(self, symbol: str) -> None:
        self.subscriptions[symbol] += 1

    def unsubscribe(self, symbol: str) -> None:
        self.subscriptions[symbol] -= 1

    def prepare(self, symbols: list[str]) -> None:
        pass

    def latest_price(self, symbol: str) -> float | None:
        return self.prices.get(symbol, 100.0)


class Scanned:
    """Stands in for a discovery verdict, so engine tests need no worker process."""

    def __init__(self, name: str, available: bool = True, error: str | None = None) -> None:
        self.name, self.available, self.error = name, available, error


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def make_engine(db, clock, algo_dir, market):
    from autotrader_desktop.engine import Engine
    from autotrader_desktop.settings import Settings

    engines = []

    def make(**settings):
        settings.setdefault("run_time_limit", 5.0)
        settings.setdefault("workers", 4)
        engine = Engine(Settings(**settings), algo_dir, clock, market)
        engine.open()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine):
    return make_engine()


def add_instance(engine, symbol: str, algorithm: str, capital: float = 10_000.0):
    """Create an instance as the CLI/dialog would, treating `algorithm` as available."""
    from autotrader_desktop import instances

    instance = instances.create(
        symbol,
        algorithm,
        capital,
        algorithms=[Scanned(algorithm)],
        starting_balance=engine.settings.starting_balance,
        clock=engine.clock,
    )
    engine.sync_subscriptions()
    return instance
