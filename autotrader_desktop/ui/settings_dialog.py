"""The Settings dialog.

Trading settings (starting balance, commission, slippage, per-order cap, run time limit,
market-hours gating) apply at once. The feed, the broker, their URLs and keys, and the
algorithm folder are read when the app starts: changing them needs a restart of the app,
and the dialog says so. The Alpaca keys (the paper pair, also used for market data, and
the live pair) go to the OS keyring (credentials.py), never to the database.
A setting fixed by an environment variable shows that it is, since a saved value would
not be used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from autotrader_desktop import credentials, settings
from autotrader_desktop.enums import Broker, Feed
from autotrader_desktop.errors import UserError
from autotrader_desktop.settings import Settings
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.background import Background

GATING_CHOICES = [
    (None, "Automatic (on when trading or fed by Alpaca, off for the simulator)"),
    (True, "On: run cycles only while NYSE is open"),
    (False, "Off: run cycles around the clock"),
]


@dataclass(frozen=True)
class SavedSettings:
    changed: list[str]  # names of the settings that were saved
    needs_restart: bool
    settings: Settings  # as resolved now (environment variables still win)


def _spin(maximum: float, decimals: int, suffix: str, minimum: float = 0.0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(minimum, maximum)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setGroupSeparatorShown(True)
    box.setAlignment(Qt.AlignmentFlag.AlignRight)
    return box


class SettingsDialog(QDialog):
    saved = Signal(object)  # SavedSettings

    def __init__(
        self,
        current: Settings,
        save_settings: Callable[[dict[str, Any]], Settings],
        background: Background,
        parent: QWidget | None = None,
    ) -> None:
        """`save_settings(changes)`: the engine's, which stores them and returns them all."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
        self._current = current
        self._save_settings = save_settings
        self._background = background
        self._stored_key_id = ""

        self.feed = QComboBox()
        for feed in Feed:
            self.feed.addItem(feed.description, feed)
        self.key_id = QLineEdit()
        self.key_id.setPlaceholderText("API key ID")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("API secret key (leave empty to keep the stored one)")
        self.key_status = QLabel()
        self.key_status.setWordWrap(True)
        self.stream_url = QLineEdit()
        self.stream_url.setPlaceholderText("default: Alpaca's stream for the feed")
        self.history_url = QLineEdit()
        self.history_url.setPlaceholderText("default: https://data.alpaca.markets")

        self.broker = QComboBox()
        for broker in Broker:
            self.broker.addItem(broker.label, broker)
        self.trading_url = QLineEdit()
        self.trading_url.setPlaceholderText("default: Alpaca's paper or live Trading API")
        self.trading_stream_url = QLineEdit()
        self.trading_stream_url.setPlaceholderText("default: the trading URL's /stream")
        self.live_key_id = QLineEdit()
        self.live_key_id.setPlaceholderText("live API key ID")
        self.live_secret = QLineEdit()
        self.live_secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.live_secret.setPlaceholderText("live secret key (leave empty to keep the stored one)")
        self.live_key_status = QLabel()
        self.live_key_status.setWordWrap(True)
        self._stored_live_key_id = ""

        self.starting_balance = _spin(1e12, 2, "", minimum=0.01)
        self.max_order_value = _spin(1e12, 2, "")
        self.max_order_value.setSpecialValueText("no cap")
        self.commission = _spin(1e6, 2, " per order")
        self.slippage = _spin(10_000, 1, " bps")
        self.time_limit = _spin(3600, 1, " s", minimum=0.1)
        self.gating = QComboBox()
        for value, label in GATING_CHOICES:
            self.gating.addItem(label, value)

        self.algorithm_dir = QLineEdit()
        self.algorithm_dir.setPlaceholderText("default: the algorithm folder beside the app")
        browse = QPushButton("Browse …")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.algorithm_dir, 1)
        folder_row.addWidget(browse)

        market = QGroupBox("Market data — applies after restarting the app")
        market_form = QFormLayout(market)
        market_form.addRow("&Feed", self._with_note(self.feed, "feed"))
        market_form.addRow("API &key ID", self.key_id)
        market_form.addRow("API &secret", self.secret)
        market_form.addRow("", self.key_status)
        market_form.addRow("Stream URL", self._with_note(self.stream_url, "stream_url"))
        market_form.addRow("History URL", self._with_note(self.history_url, "history_url"))

        broker_group = QGroupBox("Broker — applies after restarting the app")
        broker_form = QFormLayout(broker_group)
        broker_form.addRow("&Broker", self._with_note(self.broker, "broker"))
        broker_form.addRow(
            "",
            QLabel("Alpaca paper trading uses the API key above; live trading its own key."),
        )
        broker_form.addRow("Live key ID", self.live_key_id)
        broker_form.addRow("Live secret", self.live_secret)
        broker_form.addRow("", self.live_key_status)
        broker_form.addRow("Trading URL", self._with_note(self.trading_url, "trading_url"))
        broker_form.addRow(
            "Trading stream URL", self._with_note(self.trading_stream_url, "trading_stream_url")
        )

        trading = QGroupBox("Trading — applies now")
        trading_form = QFormLayout(trading)
        trading_form.addRow(
            "Starting &balance", self._with_note(self.starting_balance, "starting_balance")
        )
        trading_form.addRow("&Commission", self._with_note(self.commission, "commission"))
        trading_form.addRow("S&lippage", self._with_note(self.slippage, "slippage_bps"))
        trading_form.addRow(
            "Per-order &cap", self._with_note(self.max_order_value, "max_order_value")
        )
        trading_form.addRow("Run &time limit", self._with_note(self.time_limit, "run_time_limit"))
        trading_form.addRow(
            "Market-&hours gating", self._with_note(self.gating, "market_hours_gating")
        )

        algorithms = QGroupBox("Algorithms — applies after restarting the app")
        algorithms_form = QFormLayout(algorithms)
        folder = QWidget()
        folder.setLayout(folder_row)
        folder_row.setContentsMargins(0, 0, 0, 0)
        algorithms_form.addRow("&Folder", self._with_note(folder, "algorithm_dir"))

        self.error = theme.message_label(theme.current().loss)
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        for group in (market, broker_group, trading, algorithms):
            layout.addWidget(group)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        self.feed.currentIndexChanged.connect(self._feed_changed)
        self.broker.currentIndexChanged.connect(self._broker_changed)
        self._load(current)

    def _with_note(self, widget: QWidget, name: str) -> QWidget:
        """The field, with a note underneath when an environment variable overrides it."""
        variable = settings.ENV_VARS[name]
        if not os.environ.get(variable):
            return widget
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(widget)
        note = theme.message_label(
            theme.current().warning,
            f"Set by {variable} in the environment, which overrides a saved value.",
        )
        column.addWidget(note)
        return box

    def _load(self, current: Settings) -> None:
        self.feed.setCurrentIndex(self.feed.findData(current.feed))
        self.stream_url.setText(current.stream_url or "")
        self.history_url.setText(current.history_url or "")
        self.broker.setCurrentIndex(self.broker.findData(current.broker))
        self.trading_url.setText(current.trading_url or "")
        self.trading_stream_url.setText(current.trading_stream_url or "")
        self.max_order_value.setValue(current.max_order_value)
        self.starting_balance.setValue(current.starting_balance)
        self.commission.setValue(current.commission)
        self.slippage.setValue(current.slippage_bps)
        self.time_limit.setValue(current.run_time_limit)
        self.gating.setCurrentIndex(
            [value for value, _ in GATING_CHOICES].index(current.market_hours_gating)
        )
        self.algorithm_dir.setText(current.algorithm_dir or "")
        self.key_status.setText("Reading the OS keyring …")
        self._background.submit(
            _read_keyring, on_done=self._credentials_loaded, on_error=self._keyring_failed
        )
        self._feed_changed()
        self._broker_changed()

    def _credentials_loaded(
        self,
        read: tuple[credentials.Credentials | None, credentials.Credentials | None, bool],
    ) -> None:
        found, live, keyring_available = read
        if live is not None:
            self._stored_live_key_id = live.key_id
            self.live_key_id.setText(live.key_id)
            self.live_key_status.setText("A live key is stored (the secret is never shown).")
        else:
            self.live_key_status.setText("No live key stored. Needed for Alpaca live trading.")
        if found is None and not keyring_available:
            self.key_status.setText(
                "No OS keyring is available here, so an API key cannot be stored: set "
                f"{credentials.KEY_ENV} and {credentials.SECRET_ENV} in the environment."
            )
        elif found is None:
            self.key_status.setText("No API key stored. Needed for the Alpaca feeds.")
        else:
            self._stored_key_id = found.key_id
            self.key_id.setText(found.key_id)
            self.key_status.setText(
                "A key is stored (the secret is never shown). Enter both fields to replace it."
            )

    def _keyring_failed(self, exc: BaseException) -> None:
        self.key_status.setText(f"The OS keyring cannot be read: {exc}")

    def _feed_changed(self) -> None:
        alpaca = Feed(self.feed.currentData()).is_alpaca
        for widget in (self.key_id, self.secret, self.stream_url, self.history_url):
            widget.setEnabled(alpaca)

    def _broker_changed(self) -> None:
        broker = Broker(self.broker.currentData())
        for widget in (self.trading_url, self.trading_stream_url):
            widget.setEnabled(broker.is_alpaca)
        for widget in (self.live_key_id, self.live_secret):
            widget.setEnabled(broker == Broker.ALPACA_LIVE)

    def _browse(self) -> None:
        chooser = QFileDialog(self, "Algorithm folder", self.algorithm_dir.text())
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(self.algorithm_dir.setText)
        chooser.open()

    # --- saving -------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """What the dialog holds, by setting name."""
        return {
            "feed": self.feed.currentData(),
            "stream_url": self.stream_url.text().strip() or None,
            "history_url": self.history_url.text().strip() or None,
            "algorithm_dir": self.algorithm_dir.text().strip() or None,
            "broker": self.broker.currentData(),
            "trading_url": self.trading_url.text().strip() or None,
            "trading_stream_url": self.trading_stream_url.text().strip() or None,
            "max_order_value": self.max_order_value.value(),
            "starting_balance": self.starting_balance.value(),
            "commission": self.commission.value(),
            "slippage_bps": self.slippage.value(),
            "run_time_limit": self.time_limit.value(),
            "market_hours_gating": self.gating.currentData(),
        }

    def changes(self) -> dict[str, Any]:
        """The settings the user changed (only those are saved)."""
        return {
            name: value
            for name, value in self.values().items()
            if value != getattr(self._current, name)
        }

    def save(self) -> None:
        changes = self.changes()
        folder = changes.get("algorithm_dir")
        if folder and not Path(folder).expanduser().is_dir():
            self._fail(f"The algorithm folder {folder} does not exist.")
            return
        key_id, secret = self.key_id.text().strip(), self.secret.text()
        if (secret and not key_id) or (key_id != self._stored_key_id and not secret):
            self._fail("Enter both the API key ID and the secret to store a new key.")
            return
        new_key = credentials.Credentials(key_id, secret) if key_id and secret else None
        live_id, live_secret = self.live_key_id.text().strip(), self.live_secret.text()
        if (live_secret and not live_id) or (
            live_id != self._stored_live_key_id and not live_secret
        ):
            self._fail("Enter both the live key ID and its secret to store a new live key.")
            return
        new_live = (
            credentials.Credentials(live_id, live_secret) if live_id and live_secret else None
        )
        self.buttons.setEnabled(False)

        def store() -> SavedSettings:
            # The keys first: if the keyring refuses one, no setting has changed either.
            if new_key is not None:
                credentials.save(new_key)
            if new_live is not None:
                credentials.save(new_live, live=True)
            stored = self._save_settings(changes)
            new_keys = new_key is not None or new_live is not None
            restart = new_keys or any(name in settings.READ_AT_START for name in changes)
            return SavedSettings(sorted(changes), restart, stored)

        self._background.submit(store, on_done=self._saved, on_error=self._save_failed)

    def _saved(self, result: SavedSettings) -> None:
        self.buttons.setEnabled(True)
        self.accept()
        self.saved.emit(result)

    def _save_failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        if not isinstance(exc, UserError | credentials.CredentialsError):
            raise exc
        self._fail(str(exc))

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()


def _read_keyring() -> tuple[credentials.Credentials | None, credentials.Credentials | None, bool]:
    """The stored paper and live keys, and whether there is an OS keyring at all (off the
    GUI thread: finding the keyring may ask D-Bus)."""
    return credentials.load(), credentials.load(live=True), credentials.keyring_available()
