"""The window shows which conventions an instance runs with, and imports an installation."""

from __future__ import annotations

import keyring
from PySide6.QtWidgets import QMessageBox

from autotrader_desktop.database import Instance
from autotrader_desktop.enums import Conventions
from tests.helpers import (
    BUYER,
    MemoryKeyring,
    add_instance,
    build_installation,
    cycle,
    write_algorithm,
)
from tests.ui.test_add_dialog import fill, opened

LEGACY = "from system_databse.system_db_manager import get_transactions\n" + BUYER


def test_the_add_dialog_shows_the_conventions_of_the_chosen_file(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "modern_one", BUYER)
    write_algorithm(algo_dir, "old_one", LEGACY)
    dialog = opened(qtbot, window)
    fill(qtbot, dialog, "NVDA", "1000", "old_one")
    assert dialog.conventions.text() == Conventions.LEGACY.label
    fill(qtbot, dialog, "NVDA", "1000", "modern_one")
    assert dialog.conventions.text() == Conventions.MODERN.label
    dialog.reject()


def test_the_instance_details_show_the_conventions_it_ran_with(qtbot, algo_dir, window, engine):
    write_algorithm(algo_dir, "old_one", LEGACY)
    add_instance(engine, "NVDA", "old_one")
    cycle(engine)
    window.refresh()
    qtbot.waitUntil(lambda: window.table.model.rowCount() == 1)
    window.table.select(Instance.get().id)
    qtbot.waitUntil(lambda: "legacy conventions" in window.activity_tabs.header.text())


def test_the_file_menu_imports_an_installation(
    qtbot, window, tmp_path, algo_dir, monkeypatch, request
):
    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: shown.append(args[2]))
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: shown.append(args[2]))
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    request.addfinalizer(lambda: keyring.set_keyring(before))
    assert window.import_action in window.menuBar().actions()[0].menu().actions()
    window.import_installation(build_installation(tmp_path / "APAC"))
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert "instances imported: 2" in shown[0]
    assert Instance.select().count() == 2
    assert (algo_dir / "scalper.py").exists()
