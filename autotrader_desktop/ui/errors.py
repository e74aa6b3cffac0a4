"""Unexpected exceptions, from any thread or the event loop, shown in a dialog.

The dialog holds the full traceback in selectable text with a Copy button, so that a user
can paste it into a bug report. Errors arriving while it is open are appended to it.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


class ErrorDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("AutoTrader Desktop — unexpected error")
        self.resize(760, 420)
        self.message = QLabel(
            "Something went wrong inside AutoTrader Desktop. Your instances and trades are "
            "safe in the database. The details below help to fix it: copy them into a bug "
            "report."
        )
        self.message.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.report, 1)
        layout.addWidget(buttons)

    def add(self, text: str) -> None:
        if self.report.toPlainText():
            self.report.appendPlainText("\n" + "-" * 60 + "\n")
        self.report.appendPlainText(text)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.report.toPlainText())

    def closeEvent(self, event) -> None:
        self.report.clear()  # the next error starts a fresh report
        super().closeEvent(event)


class ErrorReporter(QObject):
    """Turns exceptions from anywhere into the error dialog, on the GUI thread."""

    reported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dialog = ErrorDialog(parent)
        self._previous = (sys.excepthook, threading.excepthook)
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def excepthook(
        self,
        kind: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        text = "".join(traceback.format_exception(kind, value, tb))
        log.error("unexpected error:\n%s", text)
        self.reported.emit(text)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    def loop_exception_handler(self, loop: Any, context: dict[str, Any]) -> None:
        """For asyncio's loop.set_exception_handler: an exception nobody awaited."""
        exception = context.get("exception")
        if exception is None:
            log.error("event loop: %s", context.get("message"))
            return
        self.excepthook(type(exception), exception, exception.__traceback__)

    @Slot(str)
    def _show(self, text: str) -> None:
        self.dialog.add(text)
        self.dialog.show()
        self.dialog.raise_()
