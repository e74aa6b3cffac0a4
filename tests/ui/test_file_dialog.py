"""File dialogs: Qt's own (where the platform has none) never reads the files it lists."""

from __future__ import annotations

from PySide6.QtCore import QFileInfo
from PySide6.QtWidgets import QFileDialog, QFileIconProvider

from autotrader_desktop.ui.file_dialog import NameOnlyIconProvider

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def test_icons_and_types_come_from_the_name_never_the_contents(qtbot, tmp_path):
    # A file whose name says nothing: Qt's default provider opens it to look (and a file
    # like /proc/kmsg then blocks the window until the kernel logs something).
    unnamed = tmp_path / "picture"
    unnamed.write_bytes(PNG)
    assert QFileIconProvider().type(QFileInfo(str(unnamed))) == "PNG image"  # it sniffs

    provider = NameOnlyIconProvider()
    assert provider.type(QFileInfo(str(unnamed))) != "PNG image"
    assert not provider.icon(QFileInfo(str(unnamed))).isNull()
    named = tmp_path / "trades.csv"
    named.write_text("id\n")
    assert "CSV" in provider.type(QFileInfo(str(named)))
    assert provider.type(QFileInfo(str(tmp_path))) == "Folder"


def test_export_uses_a_platform_dialog_where_there_is_one(qtbot, engine, window, tmp_path):
    window.store.setValue("export/folder", str(tmp_path))
    window.export_action.trigger()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
    assert isinstance(dialog.iconProvider(), NameOnlyIconProvider)
    assert dialog.directory().absolutePath() == str(tmp_path)
    assert dialog.selectedFiles()[0].endswith("autotrader_trades.csv")
    dialog.reject()
