"""Trading in the window: Stop all trading / Resume, the broker badge (LIVE for real money),
Alpaca's equity, the live-trading confirmation naming the account, instance warnings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from autotrader_desktop.database import Instance, db
from autotrader_desktop.enums import Broker
from autotrader_desktop.ui import app
from autotrader_desktop.ui.instance_table import Column
from autotrader_desktop.ui.main_window import MainWindow
from tests.alpaca_trading_standin import ACCOUNT_NUMBER, KEY_ID, SECRET, TradingApiStandIn
from tests.helpers import add_instance, alpaca_broker, refreshed, settle


@pytest.fixture
def standin():
    server = TradingApiStandIn().start()
    yield server
    server.stop()


def test_stop_all_trading_pauses_every_instance_until_resumed(
    qtbot, engine, buyer, monkeypatch, window
):
    add_instance(engine, "NVDA", "buyer", 10_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    window.halt_action.trigger()
    qtbot.waitUntil(lambda: window.resume_action.isVisible())
    assert not window.halt_action.isVisible()
    assert "TRADING HALTED" in window.status.broker.text()
    assert engine.cycle().runs == 0  # paused
    window.resume_action.trigger()
    qtbot.waitUntil(lambda: window.halt_action.isVisible())
    assert "TRADING HALTED" not in window.status.broker.text()
    assert engine.cycle().runs == 1


def test_a_warning_shows_on_the_instance(qtbot, engine, buyer, window):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    db.execute_sql(
        "UPDATE algorithm_instances SET warning = ? WHERE id = ?",
        ("position differs: Alpaca holds 7 NVDA", instance.id),
    )
    refreshed(qtbot, window)
    model = window.table.model
    index = model.index(model.row_of(instance.id), Column.STATUS)
    assert index.data() == "running ⚠"
    assert "position differs" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_live_trading_shows_a_badge_the_account_and_its_equity(
    qtbot, make_engine, store, monkeypatch, standin
):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    engine = make_engine(
        broker=Broker.ALPACA_LIVE,
        trading_url=standin.rest_url,
        trading_stream_url=standin.stream_url,
    )
    qtbot.waitUntil(engine.broker.ready.is_set, timeout=10_000)
    window = MainWindow(engine, store)
    try:
        window.show()
        window.start()
        qtbot.waitUntil(lambda: ACCOUNT_NUMBER in window.status.broker.text(), timeout=10_000)
        assert window.status.broker.text().startswith("LIVE")
        assert "background" in window.status.broker.styleSheet()
        assert "LIVE TRADING" in window.windowTitle()
        assert window.status.account.text() == "Alpaca equity 100,000.00"
        assert window.status.cash.text() == "Available cash 100,000.00"
    finally:
        window.shutdown()


class LiveContext:
    """What app.confirm_live needs of cli.Context."""

    def __init__(self, broker) -> None:
        self._broker = broker

    def broker(self, trades: bool = True):
        return self._broker


@pytest.mark.parametrize("button", ["Yes", "No"])
def test_live_trading_is_confirmed_in_a_dialog_naming_the_account(
    qtbot, db, clock, standin, button
):
    asked = []

    def answer() -> None:
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
        visible = [box for box in boxes if box.isVisible()]
        if visible:
            poller.stop()
            asked.append(visible[0].text())
            visible[0].button(getattr(QMessageBox.StandardButton, button)).click()

    poller = QTimer()
    poller.timeout.connect(answer)
    poller.start(20)
    confirmed = app.run_on_qt_loop(app.confirm_live(LiveContext(alpaca_broker(standin, clock))))
    assert confirmed is (button == "Yes")
    assert ACCOUNT_NUMBER in asked[0] and "REAL MONEY" in asked[0]


def test_paper_trading_is_named_and_no_warning_means_a_plain_status(qtbot, engine, buyer, window):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    refreshed(qtbot, window)
    settle(qtbot, window)
    model = window.table.model
    assert model.index(model.row_of(instance.id), Column.STATUS).data() == "running"
    assert Instance.get_by_id(instance.id).warning is None
    assert window.status.broker.text() == "Paper trading"


def test_stopping_at_alpaca_says_the_sell_is_a_market_order_there(
    qtbot, make_engine, store, monkeypatch, standin
):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    engine = make_engine(
        broker=Broker.ALPACA_PAPER,
        trading_url=standin.rest_url,
        trading_stream_url=standin.stream_url,
    )
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    db.execute_sql("UPDATE algorithm_instances SET shares = 3 WHERE id = ?", (instance.id,))
    window = MainWindow(engine, store)
    try:
        window.show()
        window.start()
        qtbot.waitUntil(lambda: window.table.model.rowCount() == 1, timeout=10_000)
        window.table.select(instance.id)
        asked: list[str] = []

        def question(parent, title, text, *args):
            asked.append(text)
            return QMessageBox.StandardButton.No

        monkeypatch.setattr(QMessageBox, "question", question)
        window.stop_action.trigger()
        assert "sold by a market order at Alpaca" in asked[0]
        assert "stops once that sell has filled" in asked[0]
    finally:
        window.shutdown()
