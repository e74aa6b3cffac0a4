"""The desktop window (PySide6). Only this package and app.py import Qt."""

from autotrader_desktop.ui import qt_compat

qt_compat.protect()
