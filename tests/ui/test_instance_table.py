"""The instance table: the user's pick survives filtering and refreshing but is never moved
to another instance; counts in words; columns fitted as their content grows; the header's
menu hides and shows columns."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QMessageBox

from autotrader_desktop.database import Instance
from autotrader_desktop.ui.instance_table import Column
from tests.helpers import add_instance, give_position, refreshed, settle


def picks(window) -> list:
    """Every instance the table reports as picked from now on (None: nothing)."""
    seen: list = []
    window.table.selection_changed.connect(lambda row: seen.append(row and row.symbol))
    return seen


def asked_questions(monkeypatch, button=QMessageBox.StandardButton.Yes) -> list[str]:
    asked: list[str] = []

    def question(parent, title, text, *args):
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_a_filter_that_hides_the_pick_clears_it_and_never_picks_another(
    qtbot, engine, buyer, window, monkeypatch
):
    ids = {s: add_instance(engine, s, "buyer", 1_000).id for s in ("NVDA", "AAPL", "MSFT", "AMD")}
    refreshed(qtbot, window)
    table = window.table
    table.select(ids["AAPL"])
    seen = picks(window)

    qtbot.keyClicks(table.filter_box, "n")  # NVDA only: AAPL is hidden
    assert table.selected() is None and seen == [None]
    assert not table.view.selectionModel().hasSelection()
    assert not window.stop_action.isEnabled() and not window.delete_action.isEnabled()
    asked = asked_questions(monkeypatch)
    window.stop_selected()
    assert asked == []  # nothing the user picked: nothing to stop

    table.filter_box.clear()  # everything shown again; still nothing picked
    refreshed(qtbot, window)
    assert table.selected() is None and seen == [None]

    table.select(ids["NVDA"])
    qtbot.keyClicks(table.filter_box, "nv")  # the pick stays visible: it stays picked
    refreshed(qtbot, window)
    assert table.selected().symbol == "NVDA" and seen == [None, "NVDA"]
    table.status_filter.setCurrentIndex(table.status_filter.findData("stopped"))
    assert table.selected() is None and seen == [None, "NVDA", None]


def test_after_a_delete_nothing_is_picked_and_the_count_is_right(
    qtbot, engine, buyer, window, monkeypatch
):
    ids = [add_instance(engine, s, "buyer", 1_000).id for s in ("A", "B", "C", "D", "E", "F")]
    engine.stop_instance(ids[2])
    refreshed(qtbot, window)
    window.table.select(ids[2])
    asked_questions(monkeypatch)
    window.delete_selected()
    qtbot.waitUntil(lambda: window.table.model.rowCount() == 5)
    settle(qtbot, window)
    assert window.table.count_label.text() == "5 instances"
    assert window.table.selected() is None
    assert not window.table.view.selectionModel().hasSelection()
    assert not window.delete_action.isEnabled()


def test_counts_are_in_words(qtbot, engine, buyer, window, monkeypatch):
    instance = add_instance(engine, "AAPL", "buyer", 1_000)
    give_position(instance, 1, 100.0)
    refreshed(qtbot, window)
    assert window.table.count_label.text() == "1 instance"
    asked = asked_questions(monkeypatch, QMessageBox.StandardButton.No)
    window.table.select(instance.id)
    window.stop_selected()
    assert "open position of 1 AAPL share will be sold" in asked[0]
    Instance.update(status="failed").where(Instance.id == instance.id).execute()
    refreshed(qtbot, window)
    window.restart_engine()
    assert "1 failed instance gets a fresh try" in asked[1]
    # The count keeps its distance from the window's edge.
    label = window.table.count_label
    assert label.contentsMargins().right() >= 6


def test_an_empty_table_has_no_horizontal_scroll_bar(qtbot, engine, buyer, window):
    window.resize(700, 600)
    view = window.table.view
    qtbot.waitUntil(lambda: view.horizontalHeader().length() > view.viewport().width())
    assert not view.horizontalScrollBar().isVisible()
    add_instance(engine, "NVDA", "buyer", 1_000)
    refreshed(qtbot, window)
    qtbot.waitUntil(lambda: view.horizontalScrollBar().isVisible())


def needed(window, column: Column) -> int:
    view = window.table.view
    widest = max(
        (view.model().index(r, column).data() for r in range(view.model().rowCount())), key=len
    )
    return view.fontMetrics().horizontalAdvance(widest)


def test_columns_widen_when_their_content_does(qtbot, engine, market, buyer, window):
    first = add_instance(engine, "NVDA", "buyer", 1_000)
    refreshed(qtbot, window)
    view = window.table.view
    cash = view.columnWidth(Column.CASH)

    Instance.update(cash=123_456_789.5).where(Instance.id == first.id).execute()
    give_position(first, 1000, 100.0)
    market.prices["NVDA"] = 987_654.25  # value and P&L grow with the price
    refreshed(qtbot, window)
    window.live.poll()
    window.live.poll()  # a price poll on the next round
    window.table.update_prices({"NVDA": 987_654.25})
    for column in (Column.CASH, Column.PRICE, Column.VALUE, Column.PNL):
        assert view.columnWidth(column) > needed(window, column), column
    assert view.columnWidth(Column.CASH) > cash

    longer = add_instance(engine, "BRK.B", "buyer_with_a_much_longer_name", 1_000)
    refreshed(qtbot, window)
    assert longer.display_name in [row.display_name for row in window.table.model.rows()]
    assert view.columnWidth(Column.NAME) > needed(window, Column.NAME)

    font = QFont(view.font())
    font.setPointSizeF(font.pointSizeF() * 1.6)
    window.table.setFont(font)  # e.g. another theme's font
    qtbot.waitUntil(lambda: view.columnWidth(Column.VALUE) > needed(window, Column.VALUE))
    assert view.columnWidth(Column.NAME) > needed(window, Column.NAME)


def test_the_header_menu_hides_and_shows_columns_for_good(qtbot, engine, make_window):
    window = make_window()
    header = window.table.view.horizontalHeader()
    menu = window.table.column_menu()
    texts = [action.text() for action in menu.actions()]
    assert texts[:3] == ["Name", "Symbol", "Algorithm"]
    menu.actions()[Column.CASH].trigger()
    assert header.isSectionHidden(Column.CASH)
    window.shutdown()

    again = make_window()
    header = again.table.view.horizontalHeader()
    assert header.isSectionHidden(Column.CASH)
    menu = again.table.column_menu()
    cash = menu.actions()[Column.CASH]
    assert not cash.isChecked()
    cash.trigger()
    assert not header.isSectionHidden(Column.CASH)

    for action in menu.actions()[1:]:  # hide all but Name: Name cannot go
        action.trigger()
    assert not again.table.column_menu().actions()[Column.NAME].isEnabled()
