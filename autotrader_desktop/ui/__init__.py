"""The desktop window (PySide6). Only this package and app.py import Qt."""
