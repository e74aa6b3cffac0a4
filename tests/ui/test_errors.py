"""Unexpected exceptions end in the error dialog, with a traceback to copy."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtGui import QGuiApplication

from autotrader_desktop.ui.errors import ErrorReporter

# The offscreen platform cannot raise a window above others, and says so.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support raise", extend=True)


def boom() -> None:
    raise RuntimeError("something inside broke")


def test_an_exception_shows_its_traceback_to_copy(qtbot):
    reporter = ErrorReporter()
    try:
        boom()
    except RuntimeError as exc:
        reporter.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(reporter.dialog.isVisible)
    text = reporter.dialog.report.toPlainText()
    assert "RuntimeError: something inside broke" in text and "in boom" in text
    assert reporter.dialog.report.isReadOnly()
    reporter.dialog.copy()
    assert "something inside broke" in QGuiApplication.clipboard().text()
    reporter.dialog.close()


def test_exceptions_from_threads_and_the_event_loop_are_shown_on_the_gui_thread(qtbot):
    reporter = ErrorReporter()
    reporter.install()
    try:
        worker = threading.Thread(target=boom)
        worker.start()
        worker.join()
        qtbot.waitUntil(reporter.dialog.isVisible)
        exc = ValueError("a task nobody awaited")
        reporter.loop_exception_handler(None, {"message": "Task exception", "exception": exc})
        qtbot.waitUntil(lambda: "a task nobody awaited" in reporter.dialog.report.toPlainText())
        assert "something inside broke" in reporter.dialog.report.toPlainText()  # both kept
    finally:
        reporter.uninstall()
        reporter.dialog.close()
