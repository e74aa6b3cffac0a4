"""The Add Algorithm dialog: a fresh scan on every open, excluded files disabled with their
reason, validation as you type, and nothing created on Cancel or on any error."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from autotrader_desktop.database import Instance
from autotrader_desktop.ui.add_dialog import ALGORITHM_ROLE, AddDialog
from autotrader_desktop.ui.instance_table import Column
from tests.helpers import BUYER, add_instance, write_algorithm

SYNTAX_ERROR = "class Algorithm:\n    def run(self\n"
NO_CLASS = "def run():\n    return 'hold', 0\n"


def opened(qtbot, window) -> AddDialog:
    """Open the dialog as the toolbar does and wait for its scan."""
    window.add_action.trigger()
    dialog = window.add_dialog
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.scanning, timeout=60_000)
    return dialog


def names(dialog: AddDialog) -> dict[str, bool]:
    """Algorithm names in the drop-down and whether each can be chosen."""
    model = dialog.algorithm.model()
    return {
        dialog.algorithm.itemData(i, ALGORITHM_ROLE): model.item(i).isEnabled()
        for i in range(dialog.algorithm.count())
    }


def fill(qtbot, dialog: AddDialog, symbol: str, capital: str, algorithm: str | None = None):
    dialog.symbol.clear()
    qtbot.keyClicks(dialog.symbol, symbol)
    dialog.capital.clear()
    qtbot.keyClicks(dialog.capital, capital)
    if algorithm is not None:
        dialog.algorithm.setCurrentIndex(dialog.algorithm.findData(algorithm, ALGORITHM_ROLE))


def test_every_open_rescans_the_folder(qtbot, algo_dir, window):
    first = write_algorithm(algo_dir, "first", BUYER)
    dialog = opened(qtbot, window)
    assert names(dialog) == {"first": True}
    dialog.reject()

    write_algorithm(algo_dir, "second", BUYER)
    first.unlink()
    dialog = opened(qtbot, window)
    assert names(dialog) == {"second": True}
    dialog.reject()


def test_excluded_files_are_listed_disabled_with_the_reason(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    write_algorithm(algo_dir, "broken", SYNTAX_ERROR)
    write_algorithm(algo_dir, "classless", NO_CLASS)
    dialog = opened(qtbot, window)
    assert names(dialog) == {"good": True, "broken": False, "classless": False}
    model = dialog.algorithm.model()
    broken = model.item(dialog.algorithm.findData("broken", ALGORITHM_ROLE))
    assert not broken.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "SyntaxError" in broken.toolTip() and "line 2" in broken.toolTip()
    assert (
        "Algorithm" in model.item(dialog.algorithm.findData("classless", ALGORITHM_ROLE)).toolTip()
    )
    assert "broken.py" in dialog.excluded.text() and dialog.excluded.isVisible()
    assert dialog.algorithm.currentData(ALGORITHM_ROLE) == "good"
    assert "1 available, 2 excluded" in dialog.scan_status.text()
    dialog.reject()


def test_symbol_is_upper_cased_and_the_name_previewed(qtbot, algo_dir, clock, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "brk.b", "1000")
    assert dialog.symbol.text() == "BRK.B"
    local = clock.now().astimezone()
    assert dialog.preview.text() == f"BRK.B_good_{local:%Y%m%d_%H%M%S}"
    assert dialog.create_button.isEnabled()
    assert "Available cash: 100,000.00" in dialog.capital_hint.text()
    dialog.reject()


@pytest.mark.parametrize(
    ("symbol", "capital", "error_field"),
    [
        ("", "1000", None),  # empty: not an error yet, but not valid
        ("NV1DA", "1000", "symbol"),
        ("ABCDEFGHIJK", "1000", "symbol"),
        ("NV DA", "1000", "symbol"),
        ("NVDA", "", None),
        ("NVDA", "lots", "capital"),
        ("NVDA", "-5", "capital"),
        ("NVDA", "0", "capital"),
        ("NVDA", "inf", "capital"),
        ("NVDA", "nan", "capital"),
        ("NVDA", "100000.01", "capital"),  # more than the available cash
    ],
)
def test_invalid_input_keeps_create_disabled_and_creates_nothing(
    qtbot, algo_dir, window, symbol, capital, error_field
):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, symbol, capital)
    assert not dialog.create_button.isEnabled()
    errors = {"symbol": dialog.symbol_error, "capital": dialog.capital_error}
    for field, label in errors.items():
        assert bool(label.text()) == (field == error_field), field
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    dialog.buttons.accepted.emit()  # even forced, Create checks again
    assert dialog.isVisible()
    assert not dialog.creating
    assert Instance.select().count() == 0
    dialog.reject()


def test_no_available_algorithm_keeps_create_disabled(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "broken", SYNTAX_ERROR)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "1000")
    assert dialog.algorithm.currentIndex() == -1
    assert not dialog.create_button.isEnabled()
    dialog.reject()


def test_capital_is_bounded_by_the_available_cash(qtbot, engine, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    add_instance(engine, "AAPL", "good", 60_000)
    dialog = opened(qtbot, window)
    assert "40,000.00" in dialog.capital_hint.text()
    fill(qtbot, dialog, "NVDA", "40000.01")
    assert "available cash" in dialog.capital_error.text()
    assert not dialog.create_button.isEnabled()
    fill(qtbot, dialog, "NVDA", "40,000")
    assert dialog.create_button.isEnabled()
    dialog.reject()


def test_create_adds_a_row_and_selects_it(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "nvda", "2500")
    with qtbot.waitSignal(dialog.created, timeout=60_000):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: window.table.model.rowCount() == 1)
    instance = Instance.get()
    assert (instance.symbol, instance.algorithm, instance.initial_capital) == (
        "NVDA",
        "good",
        2500.0,
    )
    qtbot.waitUntil(lambda: window.table.selected() is not None)
    assert window.table.selected().id == instance.id
    model = window.table.model
    assert model.index(0, Column.STATUS).data() == "running"


def test_enter_creates(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "nvda", "2500")
    with qtbot.waitSignal(dialog.created, timeout=60_000):
        qtbot.keyClick(dialog.capital, Qt.Key.Key_Return)
    assert Instance.select().count() == 1


def test_cancel_creates_nothing(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "2500")
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert Instance.select().count() == 0


def test_an_error_at_creation_is_shown_and_creates_nothing(qtbot, algo_dir, window):
    """The file breaks between the scan and Create: the engine's own check refuses it."""
    path = write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "2500")
    path.write_text(SYNTAX_ERROR)
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.text() != "", timeout=60_000)
    assert "Nothing was created" in dialog.error.text() and "not available" in dialog.error.text()
    assert dialog.isVisible()
    assert Instance.select().count() == 0
    dialog.reject()


def test_the_cursor_is_in_symbol_every_time_it_opens(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    assert dialog.focusWidget() is dialog.symbol
    dialog.capital.setFocus()
    dialog.reject()
    dialog = opened(qtbot, window)
    assert dialog.focusWidget() is dialog.symbol
    dialog.reject()


def test_tab_reaches_create_before_cancel(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "1000")
    assert dialog.create_button.isEnabled()
    dialog.symbol.setFocus()
    visited = [dialog.focusWidget()]
    for _ in range(4):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        visited.append(dialog.focusWidget())
    assert visited == [
        dialog.symbol,
        dialog.algorithm,
        dialog.capital,
        dialog.create_button,
        dialog.cancel_button,
    ]
    dialog.reject()


def test_a_capital_of_less_than_a_cent_says_why_create_is_disabled(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "0.004")
    assert not dialog.create_button.isEnabled()
    # Not a single cent: the reason is shown, not just a disabled Create.
    assert "more than 2 decimals" in dialog.capital_error.text()
    assert "0.01" in dialog.capital_error.text()
    dialog.reject()


def test_an_error_never_moves_the_form(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "good", BUYER)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "1000")
    qtbot.waitUntil(lambda: dialog.busy.isHidden())
    places = [w.mapTo(dialog, w.rect().topLeft()) for w in (dialog.capital, dialog.buttons)]
    height = dialog.height()
    fill(qtbot, dialog, "NVDA_TOO_LONG", "-5")  # two errors, the symbol's on two lines
    assert dialog.symbol_error.text() and dialog.capital_error.text()
    qtbot.waitUntil(
        lambda: (
            [w.mapTo(dialog, w.rect().topLeft()) for w in (dialog.capital, dialog.buttons)]
            == places
        )
    )
    assert dialog.height() == height
    # Nothing is clipped: each error has the room its text needs at this width.
    for label in (dialog.symbol_error, dialog.capital_error):
        assert label.height() >= label.heightForWidth(label.width())
    dialog.reject()
