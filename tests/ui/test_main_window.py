"""The main window: table contents and live updates, actions with confirmations, activity tabs,
notifications, export, layout persistence, closing."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from autotrader_desktop.database import Instance
from autotrader_desktop.module_cache import Drift
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.instance_table import ROW_ROLE, Column
from autotrader_desktop.ui.main_window import MainWindow
from tests.helpers import (
    BROKEN_AT_RUN,
    add_instance,
    give_position,
    refreshed,
    settle,
    write_algorithm,
)


def run_cycle(qtbot, window: MainWindow, clock) -> None:
    """One engine cycle on its own thread, as the scheduler runs it; wait for the window."""
    clock.advance(60)
    with qtbot.waitSignal(window.bridge.cycle_finished, timeout=30_000):
        threading.Thread(target=window.engine.cycle, daemon=True).start()
    settle(qtbot, window)


def answer(monkeypatch, button: QMessageBox.StandardButton) -> list[str]:
    """Make confirmations answer `button`; returns the questions asked."""
    asked: list[str] = []

    def question(parent, title, text, *args):
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def cell(window: MainWindow, instance_id: int, column: Column) -> str:
    model = window.table.model
    return model.index(model.row_of(instance_id), column).data()


def test_the_window_is_titled_and_lists_instances(qtbot, engine, buyer, make_window):
    first = add_instance(engine, "NVDA", "buyer", 10_000)
    second = add_instance(engine, "AAPL", "buyer", 5_000)
    window = make_window()
    assert window.windowTitle() == "AutoTrader Desktop"
    assert window.table.model.rowCount() == 2
    assert cell(window, first.id, Column.SYMBOL) == "NVDA"
    assert cell(window, second.id, Column.CAPITAL) == "5,000.00"
    assert cell(window, first.id, Column.STATUS) == "running"
    assert cell(window, first.id, Column.VERSION) == "—"  # not run yet
    assert window.table.selected() is not None  # something is charted from the start
    assert "85,000.00" in window.status.cash.text()


def test_a_cycle_updates_the_rows_without_losing_the_selection(
    qtbot, engine, clock, buyer, make_window
):
    ids = [add_instance(engine, s, "buyer", 10_000).id for s in ("AAPL", "MSFT", "NVDA")]
    window = make_window()
    window.table.select(ids[1])
    resets = []
    window.table.model.modelReset.connect(lambda: resets.append(1))

    run_cycle(qtbot, window, clock)

    qtbot.waitUntil(lambda: cell(window, ids[1], Column.TRADES) == "1")
    assert window.table.selected().id == ids[1]
    assert cell(window, ids[1], Column.SHARES) == "1"
    assert cell(window, ids[1], Column.DECISION) == "buy 1"
    assert len(cell(window, ids[1], Column.VERSION)) == 8
    assert resets == []
    # The activity tabs follow the selected instance.
    qtbot.waitUntil(lambda: window.activity_tabs.trades.rowCount() == 1)
    assert window.activity_tabs.runs.rowCount() == 1
    assert "buying one MSFT" in window.activity_tabs.output_view.toPlainText()


def test_prices_update_value_and_pnl_colour(qtbot, engine, market, buyer, make_window):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    give_position(instance, 10, 100.0)
    window = make_window()
    market.prices["NVDA"] = 110.0
    window.live.poll()
    qtbot.waitUntil(lambda: cell(window, instance.id, Column.PNL) == "+100.00")
    model = window.table.model
    index = model.index(model.row_of(instance.id), Column.PNL)
    assert index.data(Qt.ItemDataRole.ForegroundRole) == theme.current().gain
    assert cell(window, instance.id, Column.PNL_PCT) == "+1.00%"
    market.prices["NVDA"] = 90.0
    window.live.poll()
    qtbot.waitUntil(lambda: cell(window, instance.id, Column.PNL) == "-100.00")
    assert index.data(Qt.ItemDataRole.ForegroundRole) == theme.current().loss
    # A refreshed row (it bought one more, recorded at 100) is shown at the live price.
    give_position(instance, 1, 100.0)
    refreshed(qtbot, window)
    qtbot.waitUntil(lambda: cell(window, instance.id, Column.SHARES) == "11")
    assert cell(window, instance.id, Column.PRICE) == "90.00"
    assert cell(window, instance.id, Column.PNL) == "-110.00"


def test_price_ticks_wait_for_the_first_second_of_a_cycle(
    qtbot, engine, clock, market, buyer, make_window
):
    # While a cycle starts the cores are the engine's and the algorithms'; the table's
    # tick (re-price, re-sort, repaint 1,000 rows) is skipped for a second, or until the
    # cycle is done, whichever comes first.
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    give_position(instance, 10, 100.0)
    window = make_window()

    def tick(price: float) -> None:
        market.prices["NVDA"] = price
        window.live.prices_changed.emit({"NVDA": price})  # as its once-a-second poll does

    engine.events.cycle_started.emit(clock.now())
    qtbot.waitUntil(lambda: window.cycle_started_at == clock.now())
    tick(110.0)
    assert cell(window, instance.id, Column.PRICE) != "110.00"
    clock.advance(1.0)  # the first second is over: ticks show again
    tick(120.0)
    assert cell(window, instance.id, Column.PRICE) == "120.00"

    engine.events.cycle_started.emit(clock.now())
    qtbot.waitUntil(lambda: window.cycle_started_at == clock.now())
    tick(130.0)
    assert cell(window, instance.id, Column.PRICE) == "120.00"
    run_cycle(qtbot, window, clock)  # done: its refresh and the next tick show
    tick(140.0)
    assert cell(window, instance.id, Column.PRICE) == "140.00"


def test_stop_names_the_position_and_sells_it(qtbot, engine, market, buyer, monkeypatch, window):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    give_position(instance, 12, 100.0)
    market.prices["NVDA"] = 105.0
    refreshed(qtbot, window)
    window.table.select(instance.id)

    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    window.stop_action.trigger()
    assert "12 NVDA shares will be sold" in asked[0]
    settle(qtbot, window)
    assert Instance.get_by_id(instance.id).status == "running"  # "No" changes nothing

    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: cell(window, instance.id, Column.STATUS) == "stopped")
    assert cell(window, instance.id, Column.SHARES) == "0"
    assert Instance.get_by_id(instance.id).cash == 10_000 + 12 * 5.0
    assert not window.stop_action.isEnabled()
    assert window.delete_action.isEnabled()


def test_delete_only_stopped_or_failed_after_confirmation(
    qtbot, engine, buyer, monkeypatch, window
):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    refreshed(qtbot, window)
    window.table.select(instance.id)
    assert not window.delete_action.isEnabled()  # running

    engine.stop_instance(instance.id)
    refreshed(qtbot, window)
    assert window.delete_action.isEnabled()
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    window.delete_action.trigger()
    assert instance.display_name in asked[0]
    settle(qtbot, window)
    assert window.table.model.rowCount() == 1

    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    window.delete_action.trigger()
    qtbot.waitUntil(lambda: window.table.model.rowCount() == 0)
    assert Instance.get_or_none(Instance.id == instance.id) is None
    assert window.chart.symbol is None
    assert window.chart.stack.currentWidget() is window.chart.placeholder
    assert "No instances yet" in window.chart.placeholder.text()


def test_a_failure_is_notified_shown_and_retried_by_restart(
    qtbot, engine, clock, algo_dir, monkeypatch, make_window
):
    write_algorithm(algo_dir, "broken", BROKEN_AT_RUN)
    instance = add_instance(engine, "NVDA", "broken", 10_000)
    window = make_window()
    run_cycle(qtbot, window, clock)

    qtbot.waitUntil(lambda: cell(window, instance.id, Column.STATUS) == "failed")
    title, message = window.notifier.sent[-1]
    assert title == "An instance failed"
    assert instance.display_name in message and "no idea what to do" in message
    qtbot.waitUntil(lambda: "ValueError" in window.activity_tabs.error_view.toPlainText())
    text = window.activity_tabs.error_view.toPlainText()
    assert "Traceback" in text and "broken.py" in text
    assert window.activity_tabs.tabs.tabText(window.activity_tabs.ERROR) == "Error ⚠"

    asked = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    window.restart_action.trigger()
    assert "1 failed instance gets a fresh try" in asked[0]
    qtbot.waitUntil(lambda: cell(window, instance.id, Column.STATUS) == "running")
    assert "restarted" in window.status.currentMessage()


def test_the_drift_badge_shows_an_edited_or_deleted_file(
    qtbot, engine, clock, buyer, monkeypatch, make_window
):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    window = make_window()
    run_cycle(qtbot, window, clock)
    assert "⚠" not in cell(window, instance.id, Column.VERSION)

    buyer.write_text(buyer.read_text() + "\n# edited\n")
    refreshed(qtbot, window)
    assert cell(window, instance.id, Column.VERSION).endswith("⚠ edited")
    model = window.table.model
    index = model.index(model.row_of(instance.id), Column.VERSION)
    assert Drift.EDITED.value in index.data(Qt.ItemDataRole.ToolTipRole)
    assert Drift.EDITED.value in window.activity_tabs.header.text()

    # Restart engine loads the edit: a new code version, no badge.
    before = cell(window, instance.id, Column.VERSION)[:8]
    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    window.restart_action.trigger()
    qtbot.waitUntil(lambda: "restarted" in window.status.currentMessage())
    run_cycle(qtbot, window, clock)
    qtbot.waitUntil(lambda: "⚠" not in cell(window, instance.id, Column.VERSION))
    assert cell(window, instance.id, Column.VERSION) != before

    buyer.unlink()
    refreshed(qtbot, window)
    assert cell(window, instance.id, Column.VERSION).endswith("⚠ deleted")
    assert index.data(ROW_ROLE).drift is Drift.DELETED


def test_filter_box_and_status_filter(qtbot, engine, buyer, window):
    add_instance(engine, "NVDA", "buyer", 1_000)
    stopped = add_instance(engine, "AAPL", "buyer", 1_000)
    engine.stop_instance(stopped.id)
    refreshed(qtbot, window)
    table = window.table
    qtbot.keyClicks(table.filter_box, "aapl")
    assert table.model.rowCount() == 1
    assert table.count_label.text() == "1 of 2 instances"
    table.filter_box.clear()
    table.status_filter.setCurrentIndex(table.status_filter.findData("running"))
    assert table.model.rowCount() == 1
    assert table.model.index(0, Column.SYMBOL).data() == "NVDA"


def test_export_trades_to_csv(qtbot, engine, buyer, tmp_path, window):
    instance = add_instance(engine, "NVDA", "buyer", 10_000)
    give_position(instance, 3, 100.0)
    refreshed(qtbot, window)
    target = tmp_path / "trades.csv"
    window.write_trades(target, window.table.model.row_at(0))
    settle(qtbot, window)
    lines = target.read_text().splitlines()
    assert lines[0].startswith("id,algorithm_id,display_name,ticker,type,shares,price")
    assert len(lines) == 2 and ",NVDA,buy,3,100.0," in lines[1]
    assert "Exported 1 trade to" in window.status.currentMessage()


def test_columns_are_fitted_once_there_are_rows(qtbot, engine, buyer, make_window):
    first = make_window()  # a first session without instances
    first.shutdown()
    add_instance(engine, "NVDA", "buyer", 10_000)
    window = make_window()
    name = window.table.view.columnWidth(Column.NAME)
    assert name >= window.table.view.fontMetrics().horizontalAdvance(
        window.table.model.row_at(0).display_name
    )


def test_layout_persists(qtbot, engine, store, make_window):
    window = make_window()
    header = window.table.view.horizontalHeader()
    header.moveSection(Column.PNL, 0)
    header.hideSection(Column.CASH)
    window.table.view.sortByColumn(Column.PNL, Qt.SortOrder.DescendingOrder)
    window.splitter.setSizes([100, 500])
    window.shutdown()
    again = make_window()
    header = again.table.view.horizontalHeader()
    assert header.visualIndex(Column.PNL) == 0
    assert header.isSectionHidden(Column.CASH)
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        Column.PNL,
        Qt.SortOrder.DescendingOrder,
    )
    assert again.splitter.sizes()[0] < again.splitter.sizes()[1] / 3


def test_closing_stops_updates_and_listening(qtbot, engine, window):
    assert len(engine.events.cycle_finished) and len(engine.events.runs_recorded)
    window.close()  # asks the app to shut down; the window stays until it has
    assert window.isVisible()
    window.shutdown()
    assert not window.isVisible()
    assert len(engine.events.cycle_finished) == len(engine.events.runs_recorded) == 0
    assert not any(t.name.startswith("ui-background") for t in threading.enumerate())


def test_sorting_by_pnl_follows_prices_and_keeps_the_selection(
    qtbot, engine, market, buyer, window
):
    up = add_instance(engine, "NVDA", "buyer", 10_000)
    down = add_instance(engine, "AAPL", "buyer", 10_000)
    give_position(up, 10, 100.0)
    give_position(down, 10, 100.0)
    market.prices.update(NVDA=110.0, AAPL=90.0)
    refreshed(qtbot, window)
    table = window.table
    table.view.sortByColumn(Column.PNL, Qt.SortOrder.DescendingOrder)
    table.select(down.id)

    def order() -> list[str]:
        return [table.model.index(r, Column.SYMBOL).data() for r in range(table.model.rowCount())]

    assert order() == ["NVDA", "AAPL"]
    market.prices.update(NVDA=95.0, AAPL=120.0)
    window.live.poll()
    qtbot.waitUntil(lambda: order() == ["AAPL", "NVDA"])
    assert table.selected().id == down.id
    assert table.view.selectionModel().selectedRows()[0].row() == 0  # it moved with its row


def test_a_maximized_window_comes_back_maximized_with_its_normal_size(qtbot, make_window):
    window = make_window()
    screen = window.screen().availableGeometry()  # offscreen: 800 x 800
    normal = (screen.width() - 100, screen.height() * 2 // 3)  # not the maximized size
    assert window.minimumSizeHint().width() < normal[0]
    window.setGeometry(4, 30, *normal)
    qtbot.waitUntil(lambda: window.size().toTuple() == normal)
    window.showMaximized()
    qtbot.waitUntil(window.isMaximized)
    window.shutdown()

    again = make_window()
    qtbot.waitUntil(again.isMaximized)
    again.showNormal()
    qtbot.waitUntil(lambda: not again.isMaximized())
    qtbot.waitUntil(lambda: again.size().toTuple() == normal)
    assert again.normalGeometry().topLeft().toTuple() == (4, 30)
