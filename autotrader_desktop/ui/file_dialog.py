"""File dialogs: the platform's own where there is one, and a Qt dialog that never reads
the files it lists.

Qt's own dialog (used where the platform offers none, e.g. Linux without a desktop portal
or platform theme) asks its icon provider for each file's icon and type, and the default
provider sniffs the contents of files whose names say nothing: listing /proc read
/proc/kmsg, which blocks until the kernel logs something, and froze the window for 40 s.
Icons and types by file name only cost nothing and never wait.
"""

from __future__ import annotations

from PySide6.QtCore import QFileInfo, QMimeDatabase, QMimeType
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QFileDialog, QFileIconProvider, QWidget


class NameOnlyIconProvider(QFileIconProvider):
    """Icons and type names from the file name (and whether it is a folder), never from
    the contents."""

    def __init__(self) -> None:
        super().__init__()
        self._mime = QMimeDatabase()

    def icon(self, what: QFileInfo | QFileIconProvider.IconType) -> QIcon:
        if not isinstance(what, QFileInfo):
            return super().icon(what)
        if what.isDir():
            return super().icon(QFileIconProvider.IconType.Folder)
        themed = QIcon.fromTheme(self._by_name(what).iconName())
        return themed if not themed.isNull() else super().icon(QFileIconProvider.IconType.File)

    def type(self, info: QFileInfo) -> str:
        if info.isDir():
            return "Folder"
        return self._by_name(info).comment() or "File"

    def _by_name(self, info: QFileInfo) -> QMimeType:
        return self._mime.mimeTypeForFile(info.fileName(), QMimeDatabase.MatchMode.MatchExtension)


class FileDialog(QFileDialog):
    """A window-modal file dialog to `open()` (never `exec()`): the platform's native one
    where there is one, else Qt's, with icons and types by file name only."""

    def __init__(self, parent: QWidget, caption: str, directory: str, filter: str = "") -> None:
        super().__init__(parent, caption, directory, filter)
        self._icons = NameOnlyIconProvider()  # the dialog does not own it: keep it alive
        self.setIconProvider(self._icons)  # used only by Qt's own dialog
