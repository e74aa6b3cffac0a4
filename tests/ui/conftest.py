"""Fixtures for the window tests: a MainWindow on the test engine (FakeMarket, FakeClock),
its layout stored in a temporary file, and helpers that wait on conditions."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QSettings

from autotrader_desktop.database import Bar, Instance, Transaction
from autotrader_desktop.ui.main_window import MainWindow
from tests.conftest import T0, write_algorithm

BUYER = """
class Algorithm:
    def __init__(self, ticker, capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        print("buying one", self.ticker)
        return "buy", 1
"""

BROKEN_AT_RUN = """
class Algorithm:
    def __init__(self, ticker, capital):
        pass

    def run(self, current_time, algo_id):
        raise ValueError("no idea what to do")
"""


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt objects must be destroyed on the GUI thread. Collected as cyclic garbage by a
    background thread (a read that happens to trigger the collector), they crash the
    process: collect here instead, as the app does (app.py)."""
    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture
def store(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def buyer(algo_dir):
    return write_algorithm(algo_dir, "buyer", BUYER)


@pytest.fixture
def make_window(qtbot, engine, store):
    windows = []

    def make() -> MainWindow:
        window = MainWindow(engine, store)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        window.start()
        settle(qtbot, window)
        return window

    yield make
    for window in windows:
        window.shutdown()


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def settle(qtbot, window: MainWindow) -> None:
    """Wait until every background read the window asked for has been delivered."""
    qtbot.waitUntil(window.background.idle, timeout=30_000)


def refreshed(qtbot, window: MainWindow) -> None:
    """Ask for a refresh and wait until it has been shown."""
    window.refresh()
    settle(qtbot, window)


def store_bars(symbol: str, start: int, closes: list[float]) -> None:
    """Minute bars from `start` (epoch seconds), one per close, opening at the previous close."""
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        rows.append(
            (
                symbol,
                start + 60 * i,
                previous,
                max(previous, close) + 0.5,
                min(previous, close) - 0.5,
                close,
                1000.0 + i,
            )
        )
        previous = close
    Bar.insert_many(rows, fields=[Bar.symbol, Bar.t, Bar.o, Bar.h, Bar.l, Bar.c, Bar.v]).execute()


def give_position(instance: Instance, shares: int, price: float) -> None:
    """Book a buy for `instance` as the broker would."""
    Transaction.create(algorithm=instance.id, type="buy", shares=shares, price=price, timestamp=T0)
    Instance.update(
        cash=Instance.cash - shares * price,
        shares=Instance.shares + shares,
        trade_count=Instance.trade_count + 1,
        last_price=price,
    ).where(Instance.id == instance.id).execute()
