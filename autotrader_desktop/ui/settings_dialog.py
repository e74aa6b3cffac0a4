"""The Settings dialog.

Trading settings (starting balance, commission, slippage, per-order cap, run time limit,
market-hours gating) and the output lines kept apply at once. The feed, its price band, the
broker, their URLs and keys, and the algorithm folder are read when the app starts:
changing them needs a restart of the app. The memory limit of the algorithm hosts reaches
the hosts started after it is saved (Restart engine). Every field's tooltip and its group's
title say which, from settings.READ_AT_START and READ_AT_HOST_START. A numeric field holds
exactly what settings.py accepts (its RANGES), so it never offers a value the core
refuses. The fields scroll when the screen is too short for them; the error and Save and
Cancel stay in view below them. The Alpaca keys (the paper pair, also used for market
data, and the live pair) go to the OS keyring (credentials.py), never to the database.
A setting fixed by an environment variable shows that it is, since a saved value would
not be used.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from autotrader_desktop import accounting, credentials, settings
from autotrader_desktop.enums import Broker, Feed
from autotrader_desktop.errors import UserError
from autotrader_desktop.settings import Settings
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.background import Background
from autotrader_desktop.ui.file_dialog import FileDialog

GATING_CHOICES = [
    (None, "Automatic (on when trading or fed by Alpaca, off for the simulator)"),
    (True, "On: run cycles only while NYSE is open"),
    (False, "Off: run cycles around the clock"),
]
LABELS = {
    "feed": "&Feed",
    "stream_url": "Stream URL",
    "history_url": "History URL",
    "price_band_pct": "Price &outlier band",
    "broker": "&Broker",
    "trading_url": "Trading URL",
    "trading_stream_url": "Trading stream URL",
    "max_order_value": "Per-order &cap",
    "starting_balance": "Starting b&alance",
    "commission": "Comm&ission",
    "slippage_bps": "S&lippage",
    "run_time_limit": "Run &time limit",
    "market_hours_gating": "Market-&hours gating",
    "algorithm_dir": "Fol&der",
    "host_memory_limit_mb": "&Memory limit per host",
    "output_lines_kept": "Out&put lines kept",
}
# What each field does and in what unit; when a change applies is added (`_applies`).
TIPS = {
    "feed": "Where prices come from: the built-in market simulator, Alpaca's IEX or SIP feed "
    "(they need an API key), or nowhere.",
    "stream_url": "Address (ws:// or wss://) of the live price stream; empty: Alpaca's stream "
    "for the feed.",
    "history_url": "Address (http:// or https://) of the API that serves past minute bars; "
    "empty: Alpaca's.",
    "price_band_pct": "How far, in %, a price from the feed may move from the last believed "
    "one (either way: 10 % believes from price / 1.1 to price x 1.1) before it is held back "
    "as a possible outlier. Held prices are used once several in a row agree: the market "
    "really moved.",
    "broker": "Who fills the orders: the app's paper broker (simulated fills at the last "
    "price), or Alpaca paper or live trading.",
    "trading_url": "Address (http:// or https://) of Alpaca's Trading API; empty: Alpaca's "
    "paper or live one, by the broker.",
    "trading_stream_url": "Address (ws:// or wss://) of the stream of order updates; empty: "
    "the trading URL's /stream.",
    "max_order_value": "The most one order may be worth at the last price, in dollars; a "
    "larger order is rejected before it is sent. 0: no cap.",
    "starting_balance": "The account's cash before any trade, in dollars; each instance's "
    "capital comes out of it.",
    "commission": "What the paper broker charges for each filled order, in dollars.",
    "slippage_bps": "How much worse than the last price the paper broker fills, in basis "
    "points (100 bps = 1 %): buys higher, sells lower.",
    "run_time_limit": "The longest one run of an algorithm may take, in seconds; a run that "
    "takes longer fails its instance.",
    "market_hours_gating": "Whether cycles run only while the NYSE is open. Automatic: on "
    "when trading or fed by Alpaca, off for the simulator.",
    "algorithm_dir": "The folder the algorithm files (.py) are read from; empty: the "
    "algorithm folder beside the app.",
    "host_memory_limit_mb": "The most memory, in MB, the process that runs an algorithm (its "
    "host) may take; an instance whose algorithm allocates more fails.",
    "output_lines_kept": "How many lines of what its algorithm prints or logs each instance "
    "keeps; older lines are deleted as new ones are written.",
}
TIP_WIDTH = 64  # characters a tooltip line holds at most
# Room for the title bar and frame a window manager puts around the dialog, outside its
# height (their size is unknown until the dialog is shown).
FRAME_ROOM = 48


class Refused(UserError):
    """What the user entered cannot be saved: why, and the setting if it is about one."""

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message


@dataclass(frozen=True)
class SavedSettings:
    changed: list[str]  # names of the settings that were saved
    needs_restart: bool
    settings: Settings  # as resolved now (environment variables still win)


class _Column(QVBoxLayout):
    """The scrolled column of groups. It claims no height for width, so the scroll area
    sizes it by its minimum size and the forms lay out their rows at their real widths:
    asked for a height for a width, QFormLayout gave the wrapped keyring note the height
    of its size hint (its lines at a narrower width), and empty lines around it."""

    def hasHeightForWidth(self) -> bool:
        return False


def _applies(name: str) -> str:
    """When a change of setting `name` takes effect, in words."""
    if name in settings.READ_AT_START:
        return "applies after restarting the app"
    if name in settings.READ_AT_HOST_START:
        return "applies to hosts started from now on (Restart engine)"
    return "applies now"


def _tip(text: str, name: str) -> str:
    """A field's tooltip: `text`, then when a change applies, as it does for setting `name`.
    In lines of a readable length: Qt shows a plain tooltip on one line, wider than a small
    screen, and wraps a rich-text one into a narrow column."""
    when = _applies(name)
    return "\n".join(textwrap.wrap(f"{text} {when[0].upper()}{when[1:]}.", TIP_WIDTH))


def _group(title: str, name: str) -> QGroupBox:
    """The group of setting `name` and those that apply when it does, titled so."""
    return QGroupBox(f"{title} — {_applies(name)}")


def _spin(name: str, decimals: int, suffix: str) -> QDoubleSpinBox:
    """The field of numeric setting `name`: its range is the one settings.py accepts."""
    box = QDoubleSpinBox()
    box.setDecimals(decimals)  # first: Qt rounds the range to the decimals
    box.setRange(*settings.RANGES[name])
    _style(box, suffix)
    return box


def _whole_spin(name: str, suffix: str) -> QSpinBox:
    """The field of whole-number setting `name`, in the range settings.py accepts."""
    box = QSpinBox()
    low, high = settings.RANGES[name]
    box.setRange(int(low), int(high))
    _style(box, suffix)
    return box


def _row(
    form: QFormLayout, label: str, widget: QWidget, tip: str, field: QWidget | None = None
) -> None:
    """A labelled row; `tip` is the tooltip of its field (`field` inside `widget`, or
    `widget` itself) and of its label."""
    (field or widget).setToolTip(tip)
    form.addRow(label, widget)
    form.labelForField(widget).setToolTip(tip)


def _style(box: QDoubleSpinBox | QSpinBox, suffix: str) -> None:
    box.setSuffix(suffix)
    box.setGroupSeparatorShown(True)
    box.setAlignment(Qt.AlignmentFlag.AlignRight)


class SettingsDialog(QDialog):
    """Saves all the changes or none: every value is checked before anything is written,
    then the settings (and the new key) are written in one transaction."""

    saved = Signal(object)  # SavedSettings

    def __init__(
        self,
        current: Settings,
        save_settings: Callable[[dict[str, Any]], Settings],
        background: Background,
        parent: QWidget | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        """`save_settings(changes)`: the engine's, which stores them all or none and returns
        the settings now; `options`: the settings fixed by a command-line option, and the
        option."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
        self._save_settings = save_settings
        self._background = background
        self._options = options or {}
        self._stored_key_id = ""
        self._stored_live_key_id = ""
        self._fields: dict[str, QWidget] = {}  # by setting name: where to point at an error

        layout = QVBoxLayout(self)
        self._build_fields(layout)
        self._build_buttons(layout)
        self.feed.currentIndexChanged.connect(self._feed_changed)
        self.broker.currentIndexChanged.connect(self._broker_changed)
        self._load(current)
        self._opened = self._shown()
        self._clear_error_on_edit()
        self.fit_into(self.screen().availableGeometry())

    def field(self, name: str) -> QWidget:
        """The input of setting `name`."""
        return self._fields[name]

    def _build_fields(self, layout: QVBoxLayout) -> None:
        """The groups of fields, in a scroll area: a short screen scrolls them."""
        content = self._content = QWidget()
        column = _Column(content)
        column.setContentsMargins(0, 0, 0, 0)
        for group in (
            self._build_market(),
            self._build_broker(),
            self._build_trading(),
            self._build_algorithms(),
            self._build_hosts(),
            self._build_output(),
        ):
            column.addWidget(group)
        column.addStretch(1)
        self._align_labels(content)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setWidget(content)
        layout.addWidget(self.scroll_area, 1)
        for box in content.findChildren(QAbstractSpinBox) + content.findChildren(QComboBox):
            box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not focused by the wheel
            box.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The wheel over a number or a choice the user is not editing scrolls the fields:
        scrolling through the dialog must not change the feed or the balance on the way."""
        if event.type() == QEvent.Type.Wheel and not (
            isinstance(watched, QWidget) and watched.hasFocus()
        ):
            QApplication.sendEvent(self.scroll_area.verticalScrollBar(), event)
            return True
        return super().eventFilter(watched, event)

    @staticmethod
    def _align_labels(content: QWidget) -> None:
        """One label width for every group, so that all the fields start at the same x."""
        labels = [label for label in content.findChildren(QLabel) if label.buddy() is not None]
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)

    def fit_into(self, available: QRect) -> None:
        """Size the dialog to show every field, but no taller than `available` (a screen's
        available geometry) allows with the window's frame: then the fields scroll, and the
        error and Save and Cancel stay in view."""
        content = self._content.sizeHint()
        # As wide as the fields with a scroll bar beside them: never a horizontal scroll.
        self.scroll_area.setMinimumWidth(
            content.width() + self.scroll_area.verticalScrollBar().sizeHint().width()
        )
        hint = self.sizeHint()
        whole = hint.height() - self.scroll_area.sizeHint().height() + content.height()
        self.resize(hint.width(), min(whole, available.height() - FRAME_ROOM))

    def _build_market(self) -> QGroupBox:
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
        theme.keep_room(self.key_status, 2)  # its text arrives later, maybe on two lines
        self.stream_url = QLineEdit()
        self.stream_url.setPlaceholderText("default: Alpaca's stream for the feed")
        self.history_url = QLineEdit()
        self.history_url.setPlaceholderText("default: https://data.alpaca.markets")
        self.price_band = _spin("price_band_pct", 1, " %")
        market = _group("Market data", "feed")
        form = QFormLayout(market)
        self._add_row(form, "feed", self.feed)
        # The paper key is read with the feed (and Alpaca's paper broker) when they start.
        key = "Your Alpaca API key {}, for the Alpaca feeds and paper trading; in the OS keyring."
        _row(form, "API &key ID", self.key_id, _tip(key.format("ID"), "feed"))
        _row(form, "API &secret", self.secret, _tip(key.format("secret"), "feed"))
        form.addRow("", self.key_status)
        self._add_row(form, "stream_url", self.stream_url)
        self._add_row(form, "history_url", self.history_url)
        self._add_row(form, "price_band_pct", self.price_band)
        return market

    def _build_broker(self) -> QGroupBox:
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
        group = _group("Broker", "broker")
        form = QFormLayout(group)
        self._add_row(form, "broker", self.broker)
        form.addRow(
            "",
            QLabel("Alpaca paper trading uses the API key above; live trading its own key."),
        )
        live = "Your Alpaca live trading key {}, for live trading only; in the OS keyring."
        _row(form, "Live key ID", self.live_key_id, _tip(live.format("ID"), "broker"))
        _row(form, "Live secret", self.live_secret, _tip(live.format("secret"), "broker"))
        form.addRow("", self.live_key_status)
        self._add_row(form, "trading_url", self.trading_url)
        self._add_row(form, "trading_stream_url", self.trading_stream_url)
        return group

    def _build_trading(self) -> QGroupBox:
        self.starting_balance = _spin("starting_balance", 2, "")
        self.max_order_value = _spin("max_order_value", 2, "")
        self.max_order_value.setSpecialValueText("no cap")
        self.commission = _spin("commission", 2, " per order")
        self.slippage = _spin("slippage_bps", 1, " bps")
        self.time_limit = _spin("run_time_limit", 1, " s")
        self.gating = QComboBox()
        for value, label in GATING_CHOICES:
            self.gating.addItem(label, value)
        trading = _group("Trading", "starting_balance")
        form = QFormLayout(trading)
        self._add_row(form, "starting_balance", self.starting_balance)
        self._add_row(form, "commission", self.commission)
        self._add_row(form, "slippage_bps", self.slippage)
        self._add_row(form, "max_order_value", self.max_order_value)
        self._add_row(form, "run_time_limit", self.time_limit)
        self._add_row(form, "market_hours_gating", self.gating)
        return trading

    def _build_algorithms(self) -> QGroupBox:
        self.algorithm_dir = QLineEdit()
        self.algorithm_dir.setPlaceholderText("default: the algorithm folder beside the app")
        browse = QPushButton("Browse …")
        browse.clicked.connect(self._browse)
        folder = QWidget()
        row = QHBoxLayout(folder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.algorithm_dir, 1)
        row.addWidget(browse)
        algorithms = _group("Algorithms", "algorithm_dir")
        self._add_row(QFormLayout(algorithms), "algorithm_dir", folder, self.algorithm_dir)
        return algorithms

    def _build_hosts(self) -> QGroupBox:
        self.memory_limit = _whole_spin("host_memory_limit_mb", " MB")
        hosts = _group("Algorithm hosts", "host_memory_limit_mb")
        self._add_row(QFormLayout(hosts), "host_memory_limit_mb", self.memory_limit)
        return hosts

    def _build_output(self) -> QGroupBox:
        self.output_lines = _whole_spin("output_lines_kept", " per instance")
        output = _group("Algorithm output", "output_lines_kept")
        self._add_row(QFormLayout(output), "output_lines_kept", self.output_lines)
        return output

    def _build_buttons(self, layout: QVBoxLayout) -> None:
        self.error = theme.message_label(theme.current().loss, lines=2)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _add_row(
        self, form: QFormLayout, name: str, widget: QWidget, field: QWidget | None = None
    ) -> None:
        """A labelled row for setting `name`, with its tooltip, and a note underneath when an
        environment variable or a command-line option overrides it; `field`: the input
        inside `widget`, if it is not the widget itself."""
        self._fields[name] = field or widget
        variable = settings.ENV_VARS[name]
        source = None
        if name in self._options:
            source = f"the command-line option {self._options[name]}"
        elif os.environ.get(variable):
            source = f"{variable} in the environment"
        if source is not None:
            box = QWidget()
            column = QVBoxLayout(box)
            column.setContentsMargins(0, 0, 0, 0)
            column.addWidget(widget)
            note = f"Set by {source}, which overrides a saved value."
            column.addWidget(theme.message_label(theme.current().warning, note))
            widget = box
        _row(form, LABELS[name], widget, _tip(TIPS[name], name), field)

    def _clear_error_on_edit(self) -> None:
        """An error is about what the user typed: it goes as soon as they edit anything."""
        keys = (self.key_id, self.secret, self.live_key_id, self.live_secret)
        for field in (*self._fields.values(), *keys):
            for signal in ("textEdited", "valueChanged", "currentIndexChanged"):
                if hasattr(field, signal):
                    getattr(field, signal).connect(self.error.clear)

    def _load(self, current: Settings) -> None:
        self.feed.setCurrentIndex(self.feed.findData(current.feed))
        self.stream_url.setText(current.stream_url or "")
        self.history_url.setText(current.history_url or "")
        self.price_band.setValue(current.price_band_pct)
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
        self.memory_limit.setValue(current.host_memory_limit_mb)
        self.output_lines.setValue(current.output_lines_kept)
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

    def _alpaca(self) -> bool:
        return Feed(self.feed.currentData()).is_alpaca

    def _feed_changed(self) -> None:
        for widget in (self.key_id, self.secret, self.stream_url, self.history_url):
            widget.setEnabled(self._alpaca())

    def _broker_changed(self) -> None:
        broker = Broker(self.broker.currentData())
        for widget in (self.trading_url, self.trading_stream_url):
            widget.setEnabled(broker.is_alpaca)
        for widget in (self.live_key_id, self.live_secret):
            widget.setEnabled(broker == Broker.ALPACA_LIVE)

    def _browse(self) -> None:
        chooser = FileDialog(self, "Algorithm folder", self.algorithm_dir.text())
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(self.algorithm_dir.setText)
        chooser.open()

    # --- saving -------------------------------------------------------------------------

    def _shown(self) -> dict[str, Any]:
        """What every field shows, by setting name."""
        return {
            "feed": self.feed.currentData(),
            "stream_url": self.stream_url.text().strip() or None,
            "history_url": self.history_url.text().strip() or None,
            "price_band_pct": self.price_band.value(),
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
            "host_memory_limit_mb": self.memory_limit.value(),
            "output_lines_kept": self.output_lines.value(),
        }

    def values(self) -> dict[str, Any]:
        """What the dialog holds, by setting name. Fields that are disabled (the Alpaca URLs
        with another feed) are not part of it: they keep their stored values."""
        values = self._shown()
        if not self._alpaca():
            del values["stream_url"], values["history_url"]
        if not Broker(self.broker.currentData()).is_alpaca:
            del values["trading_url"], values["trading_stream_url"]
        return values

    def changes(self) -> dict[str, Any]:
        """The settings the user changed (only those are saved): what differs from what its
        field showed when the dialog opened. Not from the stored value: a field that rounds
        it (2.25 bps shown as 2.3) would save the rounded value on any Save."""
        return {name: value for name, value in self.values().items() if value != self._opened[name]}

    def save(self) -> None:
        """Check everything, then write everything in one transaction, or nothing."""
        try:
            changes = self._checked_changes()
            new_key = self._new_key()
            new_live = self._new_live_key()
        except Refused as exc:
            self._fail(exc.message, exc.name)
            return
        self.buttons.setEnabled(False)

        def store() -> SavedSettings:
            # Checked here to point at the field, and again in the transaction that saves.
            if "starting_balance" in changes:
                try:
                    accounting.check_starting_balance(changes["starting_balance"])
                except UserError as exc:
                    raise Refused("starting_balance", str(exc)) from None
            # The keys first: if the keyring refuses one, no setting has changed either; the
            # settings are all checked, so only the database itself could refuse them now.
            if new_key is not None:
                credentials.save(new_key)
            if new_live is not None:
                credentials.save(new_live, live=True)
            stored = self._save_settings(changes)
            new_keys = new_key is not None or new_live is not None
            restart = new_keys or any(name in settings.READ_AT_START for name in changes)
            return SavedSettings(sorted(changes), restart, stored)

        self._background.submit(store, on_done=self._saved, on_error=self._save_failed)

    def _checked_changes(self) -> dict[str, Any]:
        changes = self.changes()
        for name, value in changes.items():
            try:
                settings.parse(name, value)
            except settings.SettingError as exc:
                raise Refused(name, str(exc)) from None
        folder = changes.get("algorithm_dir")
        if folder and not Path(folder).expanduser().is_dir():
            raise Refused("algorithm_dir", f"{folder} does not exist")
        return changes

    def _new_key(self) -> credentials.Credentials | None:
        if not self.key_id.isEnabled():
            return None  # the key fields are disabled: whatever they hold is not meant
        key_id, secret = self.key_id.text().strip(), self.secret.text()
        if (secret and not key_id) or (key_id != self._stored_key_id and not secret):
            raise Refused(None, "Enter both the API key ID and the secret to store a new key.")
        return credentials.Credentials(key_id, secret) if key_id and secret else None

    def _new_live_key(self) -> credentials.Credentials | None:
        if not self.live_key_id.isEnabled():
            return None
        live_id, live_secret = self.live_key_id.text().strip(), self.live_secret.text()
        if (live_secret and not live_id) or (
            live_id != self._stored_live_key_id and not live_secret
        ):
            raise Refused(
                None, "Enter both the live key ID and its secret to store a new live key."
            )
        return credentials.Credentials(live_id, live_secret) if live_id and live_secret else None

    def _saved(self, result: SavedSettings) -> None:
        self.buttons.setEnabled(True)
        self.accept()
        self.saved.emit(result)

    def _save_failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        if isinstance(exc, Refused):
            self._fail(exc.message, exc.name)
        elif isinstance(exc, UserError | credentials.CredentialsError):
            self._fail(str(exc))
        else:
            raise exc

    def _fail(self, message: str, name: str | None = None) -> None:
        """Show why nothing was saved; about a setting: under its label's name, with the
        focus in its field."""
        if name is not None:
            label = LABELS[name].replace("&", "")
            if message.startswith(f"{name} "):  # the core's messages name the setting
                message = label + message.removeprefix(name)
            elif label.lower() not in message.lower():
                message = f"{label}: {message}"
            message = message[0].upper() + message[1:]
            self.scroll_area.ensureWidgetVisible(self._fields[name])
            self._fields[name].setFocus()
        self.error.setText(message)


def _read_keyring() -> tuple[credentials.Credentials | None, credentials.Credentials | None, bool]:
    """The stored paper and live keys, and whether there is an OS keyring at all (off the
    GUI thread: finding the keyring may ask D-Bus)."""
    return credentials.load(), credentials.load(live=True), credentials.keyring_available()
