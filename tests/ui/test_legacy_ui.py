"""The window shows which conventions an instance runs with, and imports an installation."""

from __future__ import annotations

import keyring
from PySide6.QtWidgets import QMessageBox

from autotrader_desktop import credentials, settings
from autotrader_desktop.database import Instance, Setting
from autotrader_desktop.enums import Conventions
from autotrader_desktop.ui.add_dialog import ALGORITHM_ROLE
from tests.helpers import (
    BUYER,
    MemoryKeyring,
    add_instance,
    build_installation,
    cycle,
    write_algorithm,
)

LEGACY = "from system_databse.system_db_manager import get_transactions\n" + BUYER


def test_the_add_dialog_shows_the_conventions_of_the_chosen_file(qtbot, algo_dir, window):
    write_algorithm(algo_dir, "modern_one", BUYER)
    write_algorithm(algo_dir, "old_one", LEGACY)
    window.add_action.trigger()
    dialog = window.add_dialog
    qtbot.waitUntil(lambda: not dialog.scanning, timeout=60_000)
    for name, conventions in (("old_one", Conventions.LEGACY), ("modern_one", Conventions.MODERN)):
        dialog.algorithm.setCurrentIndex(dialog.algorithm.findData(name, ALGORITHM_ROLE))
        assert dialog.conventions.text() == conventions.label
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


def test_switching_the_feed_of_a_data_directory_with_instances_is_refused(
    qtbot, window, engine, algo_dir, monkeypatch
):
    monkeypatch.setattr(credentials, "load", lambda: None)
    monkeypatch.setattr(credentials, "save", lambda found: None)
    write_algorithm(algo_dir, "old_one", LEGACY)
    add_instance(engine, "NVDA", "old_one")  # on the simulator's prices
    window.settings_action.trigger()
    dialog = window.settings_dialog
    qtbot.waitUntil(lambda: not dialog.key_status.text().startswith("Reading"))
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-iex"))
    dialog.key_id.setText("AKXYZ")
    dialog.secret.setText("s3cret")
    dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: "Use another data directory" in dialog.error.text())
    assert dialog.isVisible()
    assert settings.load().feed == "sim"
    assert Setting.get_or_none(Setting.key == "feed") is None
    dialog.reject()
