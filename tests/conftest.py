"""Shared fixtures: a fresh data directory and algorithm folder per test, a fake clock."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from autotrader_desktop import api, database  # noqa: E402
from autotrader_desktop.clock import FakeClock  # noqa: E402

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
