"""Fixtures for the window tests: a MainWindow on the test engine (FakeMarket, FakeClock),
its layout stored in a temporary file, and helpers that wait on conditions."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QSettings

from autotrader_desktop.ui.main_window import MainWindow
from tests.helpers import BUYER, settle, write_algorithm


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt objects must be destroyed on the GUI thread. Collected as cyclic garbage by a
    background thread (a read that happens to trigger the collector), they crash the
    process: collect here instead, as the app does (ui/app.py)."""
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
