"""Desktop notifications (a failing instance): the system tray where there is one.

Without a tray (some Linux desktops, offscreen), the window asks for attention instead
(taskbar highlight); the status bar always says what happened.
"""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

MESSAGE_MS = 10_000


class Notifier:
    def __init__(self, window: QWidget, icon: QIcon) -> None:
        self._window = window
        self.sent: list[tuple[str, str]] = []  # what was notified, newest last
        self._tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(icon, window)
            self._tray.setToolTip("AutoTrader Desktop")
            self._tray.activated.connect(self._raise_window)
            self._tray.messageClicked.connect(self._raise_window)
            self._tray.show()

    def notify(self, title: str, message: str) -> None:
        self.sent.append((title, message))
        if self._tray is not None and QSystemTrayIcon.supportsMessages():
            self._tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, MESSAGE_MS)
        else:
            QApplication.alert(self._window)

    def close(self) -> None:
        if self._tray is not None:
            self._tray.hide()

    def _raise_window(self, *args) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
