"""The Settings dialog: saves what changed, applies trading settings at once, says what
needs a restart, stores the API key in the keyring (faked here), refuses bad input, fits
a small screen."""

from __future__ import annotations

from dataclasses import fields

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from autotrader_desktop import credentials, settings
from autotrader_desktop.database import Instance, Setting
from autotrader_desktop.settings import Settings
from autotrader_desktop.ui.main_window import MainWindow
from autotrader_desktop.ui.settings_dialog import FRAME_ROOM, LABELS, TIP_WIDTH, SettingsDialog
from tests.helpers import add_instance


@pytest.fixture
def keyring(monkeypatch):
    stored: dict[str, credentials.Credentials] = {}

    def key(live: bool) -> str:
        return "live key" if live else "key"

    monkeypatch.setattr(credentials, "load", lambda live=False: stored.get(key(live)))
    monkeypatch.setattr(
        credentials, "save", lambda found, live=False: stored.__setitem__(key(live), found)
    )
    return stored


def opened(qtbot, window) -> SettingsDialog:
    window.settings_action.trigger()
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.key_status.text().startswith("Reading"))
    return dialog


def save(qtbot, dialog: SettingsDialog) -> list[str]:
    """Save; returns the names of the settings saved."""
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as saved:
        dialog.buttons.accepted.emit()
    return saved.args[0].changed


def tip(widget: QWidget) -> str:
    """Its tooltip, as one line."""
    return " ".join(widget.toolTip().split())


def rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def test_trading_settings_apply_at_once(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    dialog.commission.setValue(1.5)
    dialog.slippage.setValue(2.0)
    dialog.time_limit.setValue(7.0)
    dialog.starting_balance.setValue(50_000)
    save(qtbot, dialog)
    assert not dialog.isVisible()
    assert engine.broker.commission == 1.5 and engine.broker.slippage_bps == 2.0
    assert engine.hosts.settings.time_limit == 7.0
    assert engine.settings.starting_balance == 50_000
    stored = settings.load()
    assert (stored.commission, stored.slippage_bps, stored.run_time_limit) == (1.5, 2.0, 7.0)
    assert "Restart" not in window.status.currentMessage()


def test_only_changed_settings_are_saved(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    save(qtbot, dialog)
    assert Setting.select().count() == 0
    assert window.status.currentMessage() == "No setting changed."


def test_feed_and_key_need_a_restart(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    assert not dialog.key_id.isEnabled()  # only for Alpaca
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-iex"))
    assert dialog.key_id.isEnabled()
    dialog.key_id.setText("AKXYZ")
    dialog.secret.setText("s3cret")
    save(qtbot, dialog)
    assert keyring["key"] == credentials.Credentials("AKXYZ", "s3cret")
    assert settings.load().feed == "alpaca-iex"
    assert engine.settings.feed == "sim"  # the running feed stays until the app restarts
    assert "Restart AutoTrader Desktop" in window.status.currentMessage()
    assert Setting.get_or_none(Setting.key == "secret") is None
    assert all("s3cret" not in row.value for row in Setting.select())


def test_bad_input_is_refused_and_nothing_saved(qtbot, keyring, tmp_path, window):
    dialog = opened(qtbot, window)
    dialog.algorithm_dir.setText(str(tmp_path / "missing"))
    dialog.commission.setValue(3.0)
    dialog.buttons.accepted.emit()
    assert dialog.isVisible() and "does not exist" in dialog.error.text()
    dialog.algorithm_dir.clear()
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-sip"))
    dialog.secret.setText("only a secret")
    dialog.buttons.accepted.emit()
    assert dialog.isVisible() and "both" in dialog.error.text()
    assert Setting.select().count() == 0
    assert keyring == {}
    dialog.reject()


def test_an_environment_override_is_pointed_out(qtbot, monkeypatch, keyring, window):
    monkeypatch.setenv("AUTOTRADER_COMMISSION", "2")
    dialog = opened(qtbot, window)
    notes = [label.text() for label in dialog.findChildren(type(dialog.error))]
    assert any("AUTOTRADER_COMMISSION" in text for text in notes)
    dialog.reject()


@pytest.mark.parametrize("available", [False, True], ids=["no keyring", "keyring"])
def test_the_dialog_says_when_there_is_no_os_keyring(
    qtbot, monkeypatch, keyring, window, available
):
    monkeypatch.setattr(credentials, "keyring_available", lambda: available)
    dialog = opened(qtbot, window)
    status = dialog.key_status.text()
    assert ("No OS keyring is available" in status) == (not available), status
    assert ("APCA_API_KEY_ID" in status) == (not available), status
    assert (status == "No API key stored. Needed for the Alpaca feeds.") == available
    dialog.reject()


def test_broker_cap_and_live_key_are_saved_separately(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    assert not dialog.live_key_id.isEnabled()  # only for live trading
    dialog.broker.setCurrentIndex(dialog.broker.findData("alpaca-live"))
    dialog.live_key_id.setText("AKLIVE")
    dialog.live_secret.setText("l1ve-s3cret")
    dialog.max_order_value.setValue(2_500)
    save(qtbot, dialog)
    assert keyring == {"live key": credentials.Credentials("AKLIVE", "l1ve-s3cret")}
    stored = settings.load()
    assert (stored.broker, stored.max_order_value) == ("alpaca-live", 2_500)
    assert engine.settings.broker == "paper"  # the running broker stays until a restart
    assert engine.broker.max_order_value == 2_500  # the cap applies at once
    assert "Restart AutoTrader Desktop" in window.status.currentMessage()
    assert all("l1ve-s3cret" not in row.value for row in Setting.select())


def test_a_save_is_all_or_nothing_and_names_the_field(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    dialog.commission.setValue(4.0)
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-iex"))
    dialog.key_id.setText("AKXYZ")
    dialog.secret.setText("s3cret")
    dialog.stream_url.setText("stream.example.com")  # no scheme
    qtbot.waitUntil(lambda: dialog.stream_url.isEnabled())
    place = dialog.stream_url.mapTo(dialog, dialog.stream_url.rect().topLeft())
    height = dialog.height()
    dialog.buttons.accepted.emit()
    assert dialog.isVisible()
    # The error has its room: nothing moves, nothing is squeezed.
    qtbot.waitUntil(
        lambda: dialog.error.height() >= dialog.error.heightForWidth(dialog.error.width())
    )
    assert dialog.stream_url.mapTo(dialog, dialog.stream_url.rect().topLeft()) == place
    assert dialog.height() == height
    status = dialog.key_status
    assert status.height() >= status.heightForWidth(status.width())
    assert dialog.error.text().startswith("Stream URL must be a ws:// or wss:// URL")
    assert "stream_url" not in dialog.error.text()
    assert Setting.select().count() == 0 and keyring == {}  # not the feed, not the key
    assert engine.settings.commission == 0.0

    qtbot.keyClicks(dialog.stream_url, "/v2")  # editing the field: the old error goes
    assert dialog.error.text() == ""
    dialog.reject()
    assert Setting.select().count() == 0


def test_a_keyring_refusal_saves_no_setting_either(qtbot, monkeypatch, keyring, window):
    def refuse(found):
        raise credentials.CredentialsError("the keyring is locked")

    monkeypatch.setattr(credentials, "save", refuse)
    dialog = opened(qtbot, window)
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-sip"))
    dialog.commission.setValue(4.0)
    dialog.key_id.setText("AKXYZ")
    dialog.secret.setText("s3cret")
    dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: "keyring is locked" in dialog.error.text())
    assert dialog.isVisible() and Setting.select().count() == 0
    dialog.reject()


def test_back_to_the_simulator_a_disabled_url_does_not_block_save(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    dialog.feed.setCurrentIndex(dialog.feed.findData("alpaca-iex"))
    dialog.stream_url.setText("not a url")
    dialog.key_id.setText("half a key")
    dialog.feed.setCurrentIndex(dialog.feed.findData("sim"))
    assert not dialog.stream_url.isEnabled()
    dialog.time_limit.setValue(9.0)
    save(qtbot, dialog)
    assert settings.load().run_time_limit == 9.0
    assert settings.load().stream_url is None and keyring == {}


def test_the_starting_balance_cannot_go_below_the_committed_capital(
    qtbot, engine, keyring, buyer, window
):
    add_instance(engine, "NVDA", "buyer", 40_000)
    failed = add_instance(engine, "AAPL", "buyer", 20_000)
    Instance.update(status="failed").where(Instance.id == failed.id).execute()
    dialog = opened(qtbot, window)
    dialog.starting_balance.setValue(10_000)
    dialog.commission.setValue(1.0)
    dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: dialog.error.text() != "")
    assert "The starting balance cannot be below 60,000.00" in dialog.error.text()
    assert "60,000.00 is committed to running and failed instances" in dialog.error.text()
    assert Setting.select().count() == 0 and engine.settings.starting_balance == 100_000
    dialog.starting_balance.setValue(60_000)  # exactly what is committed: nothing left, allowed
    save(qtbot, dialog)
    assert engine.settings.starting_balance == 60_000


def test_a_command_line_option_is_pointed_out(qtbot, engine, store, keyring):
    window = MainWindow(engine, store, options={"algorithm_dir": "--algorithm-dir"})
    qtbot.addWidget(window)
    window.show()
    dialog = opened(qtbot, window)
    notes = [label.text() for label in dialog.findChildren(type(dialog.error))]
    assert any("--algorithm-dir" in text for text in notes)
    dialog.reject()
    window.shutdown()


def test_every_number_field_holds_exactly_what_the_core_accepts(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    by_label = {label: name for name, label in LABELS.items()}
    ranges = {}
    for box in [*dialog.findChildren(QDoubleSpinBox), *dialog.findChildren(QSpinBox)]:
        label = box.parentWidget().layout().labelForField(box).text()
        ranges[by_label[label]] = (box.minimum(), box.maximum())
    assert ranges == {name: settings.RANGES[name] for name in ranges}
    assert set(ranges) == {
        *("starting_balance", "commission", "slippage_bps", "max_order_value"),
        *("run_time_limit", "price_band_pct", "host_memory_limit_mb", "output_lines_kept"),
    }
    dialog.reject()


def test_slippage_of_100_percent_cannot_be_entered(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    assert dialog.slippage.maximum() == 9_999
    dialog.slippage.selectAll()
    qtbot.keyClicks(dialog.slippage, "10000")
    assert dialog.slippage.value() == 1_000  # the fifth digit is refused
    save(qtbot, dialog)
    assert settings.load().slippage_bps == 1_000


def test_the_output_lines_kept_apply_at_once(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    assert "Applies now" in tip(dialog.output_lines)
    assert dialog.output_lines.value() == 2_000
    dialog.output_lines.setValue(500)
    save(qtbot, dialog)
    assert settings.load().output_lines_kept == 500
    assert engine.settings.output_lines_kept == 500
    assert "Restart" not in window.status.currentMessage()


def test_the_price_band_needs_a_restart(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    assert "after restarting the app" in tip(dialog.price_band)
    assert dialog.price_band.value() == 10.0
    dialog.price_band.setValue(25.0)
    save(qtbot, dialog)
    assert settings.load().price_band_pct == 25.0
    assert engine.settings.price_band_pct == 10.0  # the running feed's guard keeps its band
    assert "Restart AutoTrader Desktop" in window.status.currentMessage()


@pytest.mark.parametrize(
    ("name", "field", "value", "label"),
    [
        ("price_band_pct", "price_band", 50.0, "Price outlier band"),
        ("output_lines_kept", "output_lines", 5_000, "Output lines kept"),
    ],
)
def test_a_refused_value_is_named_by_its_label_and_nothing_is_saved(
    qtbot, monkeypatch, keyring, window, name, field, value, label
):
    dialog = opened(qtbot, window)
    dialog.commission.setValue(2.0)
    getattr(dialog, field).setValue(value)
    # The core checks again on save (here with a bound narrowed after the dialog took its
    # range): its refusal names the field by its label.
    low, _ = settings.RANGES[name]
    monkeypatch.setitem(settings.RANGES, name, (low, value - 1))
    dialog.buttons.accepted.emit()
    assert dialog.isVisible()
    assert dialog.error.text().startswith(f"{label} must be between"), dialog.error.text()
    assert Setting.select().count() == 0
    dialog.reject()


def test_a_value_its_field_rounds_is_kept_unless_the_user_edits_it(qtbot, engine, keyring, window):
    exact = {"slippage_bps": 2.25, "commission": 0.125, "run_time_limit": 7.25}
    for name, value in exact.items():
        settings.save(name, value)
    engine.apply_settings(settings.load())
    dialog = opened(qtbot, window)
    assert dialog.slippage.text() == "2.3 bps"  # one decimal: what the user sees
    dialog.output_lines.setValue(500)
    assert save(qtbot, dialog) == ["output_lines_kept"]
    stored = settings.load()
    assert {name: getattr(stored, name) for name in exact} == exact
    assert engine.broker.slippage_bps == 2.25

    dialog = opened(qtbot, window)
    dialog.slippage.setValue(2.4)  # edited: what the field shows is saved
    assert save(qtbot, dialog) == ["slippage_bps"]
    assert settings.load().slippage_bps == 2.4


def test_every_field_says_what_it_does_and_when_it_applies(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    # Every setting has its field, but the seed (command line) and keeping trading after
    # the window closes (status bar).
    shown_elsewhere = {"simulator_seed", "keep_trading_in_background"}
    assert set(LABELS) == {field.name for field in fields(Settings)} - shown_elsewhere
    for name in LABELS:
        said = tip(dialog.field(name))
        assert ("after restarting the app" in said) == (name in settings.READ_AT_START), name
        assert ("(Restart engine)" in said) == (name in settings.READ_AT_HOST_START), name
        assert ("Applies now." in said) == (
            name not in (*settings.READ_AT_START, *settings.READ_AT_HOST_START)
        ), name
        group = dialog.field(name).parentWidget()
        while not isinstance(group, QGroupBox):
            group = group.parentWidget()
        _, when = group.title().split(" — ")  # the group's title agrees with its fields
        assert said.endswith(f" {when[0].upper()}{when[1:]}."), (name, group.title())
    inputs = [
        widget
        for widget in dialog.findChildren(QWidget)
        if isinstance(widget, QLineEdit | QComboBox | QAbstractSpinBox)
        and not isinstance(widget.parentWidget(), QAbstractSpinBox)  # a spin box's own editor
    ]
    assert len(inputs) == len(LABELS) + 4  # and the two key pairs
    assert all(widget.toolTip() for widget in inputs)
    # In lines a small screen shows whole.
    assert max(len(line) for w in inputs for line in w.toolTip().splitlines()) <= TIP_WIDTH
    for form in dialog.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole).widget()
            if label is not None:
                assert label.widget().toolTip(), label.widget().text()
                assert label.widget().toolTip() in {
                    widget.toolTip() for widget in (field, *field.findChildren(QWidget))
                }
    assert "dollars" in tip(dialog.commission) and "MB" in tip(dialog.memory_limit)
    dialog.reject()


def test_the_host_memory_limit_applies_to_hosts_started_from_now_on(qtbot, engine, keyring, window):
    dialog = opened(qtbot, window)
    assert dialog.memory_limit.value() == 1_024
    dialog.memory_limit.setValue(2_048)
    assert save(qtbot, dialog) == ["host_memory_limit_mb"]
    assert settings.load().host_memory_limit_mb == 2_048
    assert engine.hosts.settings.memory_limit_mb == 2_048  # what the next host is given
    assert "Restart engine starts them all again" in window.status.currentMessage()
    assert "Restart AutoTrader" not in window.status.currentMessage()


def test_on_a_1280x720_screen_save_stays_in_view_and_every_field_scrolls_into_it(
    qtbot, monkeypatch, keyring, window
):
    monkeypatch.setattr(credentials, "keyring_available", lambda: False)  # a long note
    dialog = opened(qtbot, window)
    assert dialog.height() <= dialog.screen().availableGeometry().height() - FRAME_ROOM
    assert dialog.scroll_area.widget().sizeHint().height() > 720  # too tall without scrolling
    dialog.fit_into(QRect(0, 0, 1280, 720))
    qtbot.waitUntil(lambda: dialog.height() == 720 - FRAME_ROOM)
    assert dialog.width() <= 1280
    assert dialog.rect().contains(rect_in(dialog.buttons, dialog))
    assert dialog.rect().contains(rect_in(dialog.error, dialog))
    assert dialog.scroll_area.horizontalScrollBar().maximum() == 0
    # Every group's fields start at the same x.
    assert len({rect_in(dialog.field(name), dialog).left() for name in LABELS}) == 1
    note = dialog.key_status  # the room of its two lines, no more
    assert note.height() == max(note.heightForWidth(note.width()), note.minimumHeight())
    viewport = dialog.scroll_area.viewport()
    for field in [dialog.field(name) for name in LABELS] + [dialog.key_id, dialog.live_secret]:
        dialog.scroll_area.ensureWidgetVisible(field)
        assert viewport.rect().contains(rect_in(field, viewport)), field

    # A refused field out of view is scrolled to.
    dialog.scroll_area.verticalScrollBar().setValue(0)
    assert not viewport.rect().contains(rect_in(dialog.algorithm_dir, viewport))
    dialog.algorithm_dir.setText("/no/such/folder")
    dialog.buttons.accepted.emit()
    assert "does not exist" in dialog.error.text()
    assert viewport.rect().contains(rect_in(dialog.algorithm_dir, viewport))
    dialog.reject()


def test_on_a_tall_screen_every_field_shows_without_scrolling(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    dialog.fit_into(QRect(0, 0, 1920, 1200))
    qtbot.waitUntil(lambda: dialog.scroll_area.verticalScrollBar().maximum() == 0)
    assert dialog.height() < 1200 - FRAME_ROOM
    dialog.reject()


def wheel_down(widget: QWidget) -> None:
    """A turn of the mouse wheel, down, with the pointer over `widget`."""
    at = QPointF(widget.rect().center())
    QApplication.sendEvent(
        widget,
        QWheelEvent(
            at,
            widget.mapToGlobal(at),
            QPoint(),
            QPoint(0, -120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        ),
    )


def test_the_wheel_scrolls_the_fields_without_changing_the_ones_it_passes(qtbot, keyring, window):
    dialog = opened(qtbot, window)
    dialog.fit_into(QRect(0, 0, 1280, 720))
    bar = dialog.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(0)
    for field in (dialog.feed, dialog.price_band, dialog.broker):
        before = bar.value()
        wheel_down(field)
        assert bar.value() > before
    assert dialog.changes() == {}
    dialog.reject()
