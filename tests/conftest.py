"""Shared fixtures: a fresh data directory and algorithm folder per test, a fake clock."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from autotrader_desktop import api, database, logging_config, paths
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.feed import sources
from tests.helpers import EXAMPLES, T0, FakeMarket


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("AUTOTRADER_", "APCA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(tmp_path / "data"))
    # An in-process `cli.main` sets the routine loggers' levels (logging_config): not for
    # the tests after it.
    levels = {name: logging.getLogger(name).level for name in logging_config.ROUTINE}
    sources.use(sources.DEFAULT)
    yield
    database.close_database()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


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


@pytest.fixture
def frozen(monkeypatch, tmp_path) -> Path:
    """Pretend to be the packaged app installed in tmp_path/app; returns that folder."""
    app = tmp_path / "app"
    internal = app / "_internal"
    (internal / paths.EXAMPLES_DIR_NAME).mkdir(parents=True)
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, internal / paths.EXAMPLES_DIR_NAME / example.name)
    (app / "autotrader-desktop").write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "autotrader-desktop"))
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    return app


@pytest.fixture
def market(clock) -> FakeMarket:
    return FakeMarket(clock)


@pytest.fixture
def make_engine(db, clock, algo_dir, market):
    from autotrader_desktop.engine import Engine
    from autotrader_desktop.settings import Settings

    engines = []

    def make(**settings):
        settings.setdefault("run_time_limit", 5.0)
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
