"""The status bar's engine section: which engine process the window uses, and the controls
that go with it (start it again when it has stopped; keep it trading after the window
closes). The window (main_window) does the work; this only shows and asks."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QWidget

from autotrader_desktop.ui import theme


class EngineStatus(QWidget):
    start_requested = Signal()
    keep_trading_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("engine: connecting …")
        self.start_button = QPushButton("Start engine")
        self.start_button.setToolTip("Start an engine process for this data directory")
        self.start_button.hide()
        self.start_button.clicked.connect(self.start_requested)
        self.keep_trading = QCheckBox("Keep trading after closing")
        self.keep_trading.setToolTip(
            "When this window closes, the engine it started keeps running (and trading) in "
            "the background. Off by default: closing the window stops what it started. An "
            "engine the window attached to is never stopped by the window."
        )
        self.keep_trading.toggled.connect(self.keep_trading_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        for widget in (self.label, self.start_button, self.keep_trading):
            layout.addWidget(widget)

    def set_engine(self, text: str, running: bool) -> None:
        self.label.setText(text)
        self.label.setToolTip(
            text
            if running
            else f"{text}\n\nNo cycles run and no prices arrive until an engine runs; "
            "what is shown stays as it was."
        )
        self.label.setStyleSheet("" if running else f"color: {theme.current().loss.name()}")
        self.start_button.setVisible(not running)
        self.start_button.setEnabled(True)

    def set_starting(self) -> None:
        self.label.setText("engine: starting …")
        self.label.setStyleSheet("")
        self.start_button.setEnabled(False)

    def set_keep_trading(self, keep: bool) -> None:
        self.keep_trading.blockSignals(True)
        self.keep_trading.setChecked(keep)
        self.keep_trading.blockSignals(False)
