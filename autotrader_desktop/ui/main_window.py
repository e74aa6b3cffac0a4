"""The main window: toolbar, instance table, chart, activity tabs, status bar; and its actions.

All reads of more than a row or two and every engine action run on background threads
(ui.background); the engine's callbacks arrive through the bridge as queued signals.
The window refreshes its picture of the instances after every batch of recorded runs,
after every cycle, and every few seconds (to see what other processes, e.g. the command
line, changed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QRect, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QToolBar,
    QWidget,
)

from autotrader_desktop import paths, queries, settings
from autotrader_desktop.discovery import AlgorithmFolderError
from autotrader_desktop.engine_channel import WindowEngine
from autotrader_desktop.engine_lock import EngineInfo
from autotrader_desktop.engine_process import EngineLink
from autotrader_desktop.enums import Broker, InstanceStatus, Outcome
from autotrader_desktop.errors import UserError
from autotrader_desktop.journal import RecordedRun
from autotrader_desktop.legacy.apac_import import ImportReport
from autotrader_desktop.orchestrator import CycleReport
from autotrader_desktop.queries import Bars, Fills, InstanceRow, Overview, Trading
from autotrader_desktop.ui import activity, theme
from autotrader_desktop.ui.activity import ActivityTabs
from autotrader_desktop.ui.add_dialog import AddDialog
from autotrader_desktop.ui.background import Background, Refresh
from autotrader_desktop.ui.bridge import EngineBridge
from autotrader_desktop.ui.chart import ChartWidget
from autotrader_desktop.ui.engine_status import EngineStatus
from autotrader_desktop.ui.file_dialog import FileDialog
from autotrader_desktop.ui.instance_table import InstanceTable
from autotrader_desktop.ui.live_data import LiveData
from autotrader_desktop.ui.notifications import Notifier
from autotrader_desktop.ui.settings_dialog import SavedSettings, SettingsDialog
from autotrader_desktop.ui.status_bar import StatusBar
from autotrader_desktop.ui.wording import counted

TITLE = "AutoTrader Desktop"
REFRESH_MS = 5_000  # re-read instances even without a cycle (other processes, prices)
# While a cycle runs, its recorded runs show at most this often (a long cycle shows its
# progress); the cycle's end refreshes at once. A refresh of 1,000 changed rows is work
# for the GUI thread while the engine and hosts keep the cores busy: a short cycle is
# shown once, at its end.
SOON_MS = 1_000
CHART_SOON_MS = 1_000  # a chart waiting for its symbol's history reads again this soon
# For this long after a cycle starts the table skips its price tick: the engine and the
# user's algorithms then keep the cores busy, a tick re-prices, re-sorts and repaints
# 1,000 rows, and the cycle's own refresh (at its end) and the next tick show it all.
CYCLE_QUIET = timedelta(seconds=1)
MARKET_MS = 60_000
MESSAGE_MS = 8_000


class ChartData:
    """Bars and fills read for the chart: all of a symbol's bars, or those after `after`."""

    def __init__(self, symbol: str, after: int | None, bars: Bars, fills: Fills | None) -> None:
        self.symbol, self.after, self.bars, self.fills = symbol, after, bars, fills


def read_chart_data(symbol: str, instance_id: int | None, after: int | None) -> ChartData:
    fills = queries.fills(instance_id) if instance_id is not None else None
    return ChartData(symbol, after, queries.bars(symbol, after), fills)


def _stored_bytes(store: QSettings, key: str) -> bytes:
    """A stored layout blob; empty when missing or not bytes (a hand-edited file)."""
    value = store.value(key, b"")
    if isinstance(value, QByteArray):
        return bytes(value.data())
    return value if isinstance(value, bytes) else b""


class MainWindow(QMainWindow):
    close_requested = Signal()  # the user wants to quit; the app shuts down, then closes
    engine_changed = Signal()  # attached to an engine, or it stopped

    def __init__(
        self,
        engine: WindowEngine,
        store: QSettings | None = None,
        parent: QWidget | None = None,
        link: EngineLink | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        """`engine`: the engine's client (`link.client`) in the app; `link`: how the window
        found or started that engine (None: an engine of the caller's, e.g. in tests);
        `options`: the settings fixed by command-line options, and the option."""
        super().__init__(parent)
        self.engine = engine
        self.link = link
        self._options = options or {}
        self.store = store or QSettings()
        self.setWindowTitle(TITLE)
        self.setWindowIcon(theme.app_icon())
        self._may_close = False
        self._select_after_refresh: int | None = None  # a new instance, once it is listed
        # When the running cycle started (the engine's clock); None between cycles.
        self.cycle_started_at: datetime | None = None

        self.background = Background(self)
        self.bridge = EngineBridge(engine, self)
        self.live = LiveData(engine.market_data, engine.settings.feed, self)
        self.notifier = Notifier(self, self.windowIcon())

        self.table = InstanceTable()
        self.chart = ChartWidget()
        self.activity_tabs = ActivityTabs()
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.engine_status = EngineStatus()
        if link is not None:
            self.status.addPermanentWidget(self.engine_status)
            self.engine_status.start_requested.connect(self.start_engine)
            self.engine_status.keep_trading_changed.connect(self._keep_trading_changed)
        self.lower_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.lower_splitter.addWidget(self.chart)
        self.lower_splitter.addWidget(self.activity_tabs)
        self.lower_splitter.setStretchFactor(0, 3)
        self.lower_splitter.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.lower_splitter)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.setCentralWidget(self.splitter)

        self.add_dialog = AddDialog(engine, self.background, self)
        self.add_dialog.created.connect(self._instance_created)
        self.settings_dialog: SettingsDialog | None = None
        self.export_dialog: FileDialog | None = None
        self._build_actions()

        self.overview = Refresh(self.background, queries.Overviews(), self._overview_loaded)
        self.activity = Refresh(self.background, activity.read, self.activity_tabs.set_activity)
        self.chart_data = Refresh(self.background, read_chart_data, self._chart_data_loaded)
        self.market = Refresh(self.background, queries.market_state, self._market_loaded)

        self.table.selection_changed.connect(self._selection_changed)
        queued = Qt.ConnectionType.QueuedConnection
        self.bridge.cycle_started.connect(self._cycle_started, queued)
        self.bridge.cycle_finished.connect(self._cycle_finished, queued)
        self.bridge.runs_recorded.connect(self._runs_recorded, queued)
        self.bridge.engine_lost.connect(self._engine_lost, queued)
        self.live.prices_changed.connect(self._prices_changed)
        self.live.live_bar_changed.connect(self._live_bar)
        self.live.bar_closed.connect(self._bar_closed)
        self.live.status_changed.connect(self.status.set_feed)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.apply_theme)

        self._soon = self._timer(SOON_MS, self.refresh, single_shot=True)
        self._chart_soon = self._timer(CHART_SOON_MS, self._reload_chart, single_shot=True)
        self._timers = [
            self._timer(1000, self._tick),
            self._timer(REFRESH_MS, self.refresh),
            self._timer(MARKET_MS, self._refresh_market),
        ]
        self._restore_layout()

    def _timer(self, interval: int, slot: Callable[[], None], single_shot: bool = False) -> QTimer:
        timer = QTimer(self)
        timer.setInterval(interval)
        timer.setSingleShot(single_shot)
        timer.timeout.connect(slot)
        return timer

    # --- actions ------------------------------------------------------------------------

    def _build_actions(self) -> None:
        """Every action has a shortcut (window-wide) and a tooltip naming it; the main
        ones are on the toolbar."""
        self._build_instance_actions()
        self._build_window_actions()
        self._build_toolbar_and_menu()
        self._update_actions()

    def _action(
        self,
        text: str,
        shortcut: QKeySequence | QKeySequence.StandardKey | str,
        slot: Callable[[], Any],
        tip: str,
    ) -> QAction:
        act = QAction(text, self)
        act.setShortcut(QKeySequence(shortcut))
        native = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
        act.setToolTip(f"{tip} ({native})")
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_instance_actions(self) -> None:
        self.add_action = self._action(
            "Add Algorithm",
            QKeySequence.StandardKey.New,
            self.open_add_dialog,
            "Start an instance of an algorithm on a symbol",
        )
        self.stop_action = self._action(
            "Stop", "Ctrl+T", self.stop_selected, "Stop the selected instance, selling its shares"
        )
        self.delete_action = self._action(
            "Delete",
            QKeySequence.StandardKey.Delete,
            self.delete_selected,
            "Delete the selected stopped or failed instance and its history",
        )
        self.export_action = self._action(
            "Export trades",
            "Ctrl+E",
            self.export_trades,
            "Save the selected instance's trades (all trades without a selection) as CSV",
        )

    def _build_window_actions(self) -> None:
        self.restart_action = self._action(
            "Restart engine",
            "Ctrl+Shift+R",
            self.restart_engine,
            "Unload every algorithm module: the next runs load the files as they are now",
        )
        self.settings_action = self._action(
            "Settings",
            QKeySequence.StandardKey.Preferences,
            self.open_settings,
            "Feed, API key, costs, time limit, market hours, algorithm folder",
        )
        if self.settings_action.shortcut().isEmpty():  # no platform default (Linux)
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self._action(
            "Refresh", QKeySequence.StandardKey.Refresh, self.refresh, "Re-read everything"
        )
        self.import_action = self._action(
            "Import web AutoTrader…",
            "Ctrl+Shift+I",
            self.import_apac,
            "Import a web AutoTrader installation: instances, trades, algorithm files, key",
        )
        self.halt_action = self._action(
            "Stop all trading",
            "Ctrl+Shift+H",
            self.halt_trading,
            "Cancel every open order and pause every instance, until Resume trading",
        )
        self.resume_action = self._action(
            "Resume trading",
            "Ctrl+Shift+U",
            self.resume_trading,
            "Let the instances run and trade again after Stop all trading",
        )
        self.resume_action.setVisible(False)
        self._action(
            "Filter", QKeySequence.StandardKey.Find, self._focus_filter, "Filter instances"
        )
        self._action("Quit", QKeySequence.StandardKey.Quit, self.close, "Quit AutoTrader Desktop")

    def _build_toolbar_and_menu(self) -> None:
        toolbar = QToolBar("Actions")
        toolbar.setObjectName("actions")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for act in (self.add_action, self.stop_action, self.delete_action):
            toolbar.addAction(act)
        toolbar.addSeparator()
        toolbar.addAction(self.restart_action)
        toolbar.addAction(self.settings_action)
        toolbar.addAction(self.export_action)
        toolbar.addSeparator()
        toolbar.addAction(self.halt_action)
        toolbar.addAction(self.resume_action)
        self.addToolBar(toolbar)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)

    def _update_actions(self) -> None:
        row = self.table.selected()
        self.stop_action.setEnabled(row is not None and row.status != InstanceStatus.STOPPED)
        self.delete_action.setEnabled(row is not None and row.status != InstanceStatus.RUNNING)

    def _focus_filter(self) -> None:
        self.table.filter_box.setFocus()
        self.table.filter_box.selectAll()

    def open_add_dialog(self) -> None:
        self.add_dialog.reset()
        self.add_dialog.open()

    def _instance_created(self, instance: Any) -> None:
        self.status.showMessage(f"Created {instance.display_name}", MESSAGE_MS)
        self._select_after_refresh = instance.id
        self.refresh()

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _run(self, fn: Callable[..., Any], *args: Any, done: Callable[[Any], None]) -> None:
        """An engine action off the GUI thread; a user error is shown, not raised."""

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, UserError | AlgorithmFolderError):
                raise exc
            QMessageBox.warning(self, TITLE, str(exc))
            self.refresh()

        self.background.submit(fn, *args, on_done=done, on_error=failed)

    def stop_selected(self) -> None:
        row = self.table.selected()
        if row is None or row.status == InstanceStatus.STOPPED:
            return
        if row.shares and self.engine.settings.broker.is_alpaca:
            position = (
                f"Its open orders are canceled and its "
                f"{counted(row.shares, f'{row.symbol} share')} are sold by a market order at "
                "Alpaca; it stops once that sell has filled."
            )
        elif row.shares:
            price = f"{row.last_price:,.2f}" if row.last_price is not None else "unknown"
            position = (
                f"Its open position of {counted(row.shares, f'{row.symbol} share')} will be "
                f"sold at the last price (now {price}, about "
                f"{row.shares * (row.last_price or 0):,.2f})."
            )
        else:
            position = "It holds no shares, so nothing will be sold."
        text = f"Stop {row.display_name}?\n\n{position} Its cash returns to the account."
        if not self.confirm("Stop instance", text):
            return

        def done(instance: Any) -> None:
            self.status.showMessage(
                f"Stopped {instance.display_name}; cash {instance.cash:,.2f}", MESSAGE_MS
            )
            self.refresh()

        self._run(self.engine.stop_instance, row.id, done=done)

    def delete_selected(self) -> None:
        row = self.table.selected()
        if row is None or row.status == InstanceStatus.RUNNING:
            return
        text = (
            f"Delete {row.display_name} and its history ({counted(row.trades, 'trade')}, its runs "
            "journal and output)?\n\nThis cannot be undone. Its realized P&L stays in the "
            "account."
        )
        if not self.confirm("Delete instance", text):
            return

        def done(instance: Any) -> None:
            self.status.showMessage(f"Deleted {instance.display_name}", MESSAGE_MS)
            self.refresh()

        self._run(self.engine.delete_instance, row.id, done=done)

    def restart_engine(self) -> None:
        failed = sum(1 for row in self.table.model.rows() if row.status == InstanceStatus.FAILED)
        text = (
            "Restart the engine?\n\nEvery algorithm module is unloaded, as if the app "
            "restarted: each instance loads its algorithm file as it is now on its next run. "
            f"{counted(failed, 'failed instance')} {'gets' if failed == 1 else 'get'} a fresh "
            "try. A cycle in progress finishes first."
        )
        if not self.confirm("Restart engine", text):
            return
        self.restart_action.setEnabled(False)
        self.status.showMessage("Restarting the engine …")

        def done(retried: int) -> None:
            self.restart_action.setEnabled(True)
            self.status.showMessage(
                "Engine restarted: modules unloaded, "
                f"{counted(retried, 'failed instance')} retried",
                MESSAGE_MS,
            )
            self.refresh()

        self._run(self.engine.restart, done=done)

    def halt_trading(self) -> None:
        text = (
            "Stop all trading?\n\nEvery open order the app placed is canceled, orders not "
            "sent yet are withdrawn, and every instance pauses: no cycle runs until you "
            "resume trading. Positions are kept (stop an instance to sell its shares)."
        )
        if not self.confirm("Stop all trading", text):
            return

        def done(canceled: int) -> None:
            self.status.showMessage(
                f"Trading halted: {counted(canceled, 'open order')} canceled, every instance "
                "paused",
                MESSAGE_MS,
            )
            self.refresh()

        self._run(self.engine.halt_trading, done=done)

    def resume_trading(self) -> None:
        def done(_: Any) -> None:
            self.status.showMessage("Trading resumed: instances run at the next cycle", MESSAGE_MS)
            self.refresh()

        self._run(self.engine.resume_trading, done=done)

    def open_settings(self) -> None:
        self.settings_dialog = SettingsDialog(
            self.engine.settings, self.engine.save_settings, self.background, self, self._options
        )
        self.settings_dialog.saved.connect(self._settings_saved)
        self.settings_dialog.open()

    def _settings_saved(self, result: SavedSettings) -> None:
        self._refresh_market()  # gating may have changed
        message = "Settings saved." if result.changed else "No setting changed."
        link = self.link
        outlives_window = link is not None and (
            not link.started_here or self.engine.settings.keep_trading_in_background
        )
        if result.needs_restart and outlives_window and link and link.info:
            message += (
                f" Stop the engine (process {link.info.pid}) and start it again to use the "
                "new settings: it goes on when this window closes."
            )
        elif result.needs_restart:
            message += " Restart AutoTrader Desktop to use the new settings."
        elif any(name in settings.READ_AT_HOST_START for name in result.changed):
            message += (
                " Algorithm hosts started from now on use it; Restart engine starts them all again."
            )
        self.status.showMessage(message, MESSAGE_MS)
        self.refresh()

    def export_trades(self) -> None:
        row = self.table.selected()
        name = f"{row.display_name}_trades.csv" if row else "autotrader_trades.csv"
        folder = str(self.store.value("export/folder", str(Path.home())))
        self.export_dialog = FileDialog(
            self, "Export trades", str(Path(folder) / name), "CSV files (*.csv)"
        )
        self.export_dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        self.export_dialog.setDefaultSuffix("csv")
        self.export_dialog.fileSelected.connect(lambda path: self.write_trades(Path(path), row))
        self.export_dialog.open()

    def write_trades(self, path: Path, row: InstanceRow | None) -> None:
        self.store.setValue("export/folder", str(path.parent))  # where the next export starts

        def done(count: int) -> None:
            self.status.showMessage(f"Exported {counted(count, 'trade')} to {path}", MESSAGE_MS)

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, OSError):
                raise exc
            QMessageBox.warning(self, TITLE, f"Cannot write {path}: {exc.strerror or exc}")

        self.background.submit(
            queries.export_trades, path, row.id if row else None, on_done=done, on_error=failed
        )

    def import_apac(self) -> None:
        chooser = FileDialog(self, "Import a web AutoTrader installation", str(Path.home()))
        chooser.setFileMode(QFileDialog.FileMode.Directory)
        chooser.setOption(QFileDialog.Option.ShowDirsOnly, True)
        chooser.fileSelected.connect(lambda path: self.import_installation(Path(path)))
        chooser.open()

    def import_installation(self, directory: Path) -> None:
        """Import it off the GUI thread; the report (or why not) in a message box."""

        def done(report: ImportReport) -> None:
            QMessageBox.information(self, TITLE, "\n".join(report.lines()))
            self.refresh()

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, UserError):
                raise exc
            QMessageBox.warning(self, TITLE, f"Nothing was imported: {exc}")

        self.background.submit(self.engine.import_apac, directory, on_done=done, on_error=failed)

    # --- the engine process -------------------------------------------------------------

    def start_engine(self) -> None:
        """Attach to the data directory's engine, starting one if none runs (off the GUI
        thread: starting takes seconds)."""
        if self.link is None:
            return
        self.engine_status.set_starting()
        self.background.submit(
            self.link.attach_or_start, on_done=self.engine_attached, on_error=self.engine_failed
        )

    def engine_attached(self, info: EngineInfo | None = None) -> None:
        if self.link is not None:
            self.engine_status.set_engine(self.link.describe(), True)
            self.engine_status.set_keep_trading(self.engine.settings.keep_trading_in_background)
            self.status.showMessage(self.link.describe().capitalize(), MESSAGE_MS)
        self.engine_changed.emit()
        self.refresh()
        self._tick()

    def engine_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, UserError):
            raise exc
        self.engine_status.set_engine("engine: not running", False)
        self.status.showMessage(f"No engine: {exc}", MESSAGE_MS)
        self.engine_changed.emit()

    @Slot(object)
    def _engine_lost(self, info: EngineInfo) -> None:
        """The engine process ended: say so; what is shown stays, the database is still read."""
        assert self.link is not None
        self.engine_status.set_engine(self.link.describe(), False)
        self.status.showMessage(
            f"The engine (process {info.pid}) has stopped: no cycles run and no prices arrive. "
            "Start engine starts it again.",
            MESSAGE_MS,
        )
        self.engine_changed.emit()
        self._tick()

    def _keep_trading_changed(self, keep: bool) -> None:
        def failed(exc: BaseException) -> None:
            if not isinstance(exc, UserError):
                raise exc
            self.engine_status.set_keep_trading(not keep)
            QMessageBox.warning(self, TITLE, f"The setting was not saved: {exc}")

        self.background.submit(
            self.engine.save_settings,
            {"keep_trading_in_background": keep},
            on_error=failed,
        )

    # --- refreshing ---------------------------------------------------------------------

    def start(self) -> None:
        """Begin live updates (the engine may still be starting)."""
        for timer in self._timers:
            timer.start()
        self.live.start()
        self.refresh()
        self._refresh_market()
        self._tick()

    @Slot()
    def refresh(self) -> None:
        self.overview.request(self.engine)
        row = self.table.selected()
        if row is not None:
            self.activity.request(row.id)
            self.chart_data.request(row.symbol, row.id, self.chart.reload_after())

    def _refresh_market(self) -> None:
        self.market.request(self.engine.clock.now())

    def _overview_loaded(self, overview: Overview) -> None:
        self.table.set_rows(overview.rows)
        self._show_trading(overview.trading)
        self.status.set_account(overview.account)
        self.live.set_symbols(
            {row.symbol for row in overview.rows if row.status != InstanceStatus.STOPPED},
            {row.symbol for row in overview.rows if row.status == InstanceStatus.RUNNING},
        )
        if self._select_after_refresh is not None:
            self.table.select(self._select_after_refresh)
            self._select_after_refresh = None
        self.activity_tabs.show_instance(self.table.selected())
        if self.chart.symbol is None and self.table.selected() is None:
            self.chart.clear(self._no_chart_message())
        self._update_actions()

    def _show_trading(self, trading: Trading) -> None:
        self.status.set_trading(trading)
        self.halt_action.setVisible(not trading.halted)
        self.resume_action.setVisible(trading.halted)
        live = trading.broker == Broker.ALPACA_LIVE
        account = f" {trading.account_number}" if trading.account_number else ""
        self.setWindowTitle(f"{TITLE} — LIVE TRADING (Alpaca{account})" if live else TITLE)

    def _no_chart_message(self) -> str:
        if self.table.model.rowCount() == 0:
            return "No instances yet.\nAdd Algorithm (Ctrl+N) starts one of your algorithms."
        return "Select an instance to see its chart."

    def _market_loaded(self, state: queries.MarketState) -> None:
        self.status.set_market(state, self.engine.settings.gating_enabled)

    def _tick(self) -> None:
        self.status.set_next_cycle(self.engine.next_cycle_at(), self.engine.clock.now())

    @Slot(object)
    def _selection_changed(self, row: InstanceRow | None) -> None:
        self._update_actions()
        self.activity_tabs.show_instance(row)
        self.live.watch(row.symbol if row else None)
        if row is None:
            self.chart.clear(self._no_chart_message())
            return
        self.activity.request(row.id)
        if row.symbol != self.chart.symbol:
            self.chart.clear(f"Loading {row.symbol} …")
            self.chart_data.request(row.symbol, row.id, None)
        else:
            self.chart_data.request(row.symbol, row.id, self.chart.reload_after())

    def _chart_data_loaded(self, data: ChartData) -> None:
        row = self.table.selected()
        if row is None or row.symbol != data.symbol:
            return  # the selection moved on
        if self.chart.symbol == data.symbol:
            self.chart.add_bars(data.bars)
        elif data.after is None:
            self.chart.show_bars(data.symbol, data.bars)
            self.chart.set_live(self.live.live_bar)
        else:
            return  # newer bars for a chart that has been cleared since
        self.chart.set_fills(data.fills)
        if self.chart.history_pending() and not self._chart_soon.isActive():
            self._chart_soon.start()  # a new symbol's history is being fetched: look again

    def _reload_chart(self) -> None:
        row = self.table.selected()
        if row is not None and row.symbol == self.chart.symbol:
            self.chart_data.request(row.symbol, row.id, self.chart.reload_after())

    @Slot(str, object)
    def _live_bar(self, symbol: str, bar: Bars) -> None:
        if symbol == self.chart.symbol:
            self.chart.set_live(bar)

    @Slot(str, object)
    def _bar_closed(self, symbol: str, bar: Bars) -> None:
        if symbol == self.chart.symbol:
            self.chart.add_bars(bar, stored=False)

    @Slot(object)
    def _runs_recorded(self, batch: list[RecordedRun]) -> None:
        failures = [run for run in batch if run.outcome == Outcome.FAILED]
        if failures:
            self._notify_failures(failures)
        if not self._soon.isActive():
            self._soon.start()

    @Slot(object)
    def _cycle_started(self, scheduled_at: datetime) -> None:
        self.cycle_started_at = self.engine.clock.now()

    @Slot(object)
    def _cycle_finished(self, report: CycleReport) -> None:
        self.cycle_started_at = None
        self._soon.stop()
        self.refresh()

    @Slot(object)
    def _prices_changed(self, prices: dict[str, float]) -> None:
        started = self.cycle_started_at
        if started is not None and self.engine.clock.now() - started < CYCLE_QUIET:
            return
        self.table.update_prices(prices)

    def _notify_failures(self, failures: list[RecordedRun]) -> None:
        names = {row.id: row.display_name for row in self.table.model.rows()}
        lines = [
            f"{names.get(run.instance_id, f'instance {run.instance_id}')}: {run.reason}"
            for run in failures
        ]
        title = "An instance failed" if len(lines) == 1 else f"{len(lines)} instances failed"
        more = f"\n… and {len(lines) - 3} more" if len(lines) > 3 else ""
        shown = "\n".join(lines[:3]) + more
        self.notifier.notify(title, shown)
        self.status.showMessage(f"{title}: {lines[0]}", MESSAGE_MS)

    # --- look and layout ----------------------------------------------------------------

    @Slot()
    def apply_theme(self, *args) -> None:
        current = theme.current()
        self.table.model.set_theme(current)
        self.activity_tabs.set_theme(current)
        self.chart.apply_theme()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.apply_theme()

    def _restore_layout(self) -> None:
        store = self.store
        self._restore_geometry()
        self.restoreState(_stored_bytes(store, "window/state"))
        if not self.splitter.restoreState(_stored_bytes(store, "window/splitter")):
            self.splitter.setSizes([self.height() // 3, self.height() * 2 // 3])
        if not self.lower_splitter.restoreState(_stored_bytes(store, "window/lower_splitter")):
            self.lower_splitter.setSizes([self.width() * 3 // 5, self.width() * 2 // 5])
        self.table.restore_header(
            _stored_bytes(store, "table/header"),
            bool(store.value("table/fitted", False, type=bool)),
        )

    def _restore_geometry(self) -> None:
        """The normal (un-maximized) geometry first, then maximized if it was: Qt's
        restoreGeometry() of a maximized window loses the normal size on X11 (un-maximizing
        gave a default 1010x513)."""
        store = self.store
        normal = store.value("window/normal", QRect(), type=QRect)
        if not isinstance(normal, QRect):  # a hand-edited file
            normal = QRect()
        screen = QGuiApplication.primaryScreen().availableGeometry()
        on_a_screen = any(
            s.availableGeometry().intersects(normal) for s in QGuiApplication.screens()
        )
        if normal.isValid() and on_a_screen:
            self.setGeometry(normal)
        else:
            self.resize(min(1500, screen.width() - 40), min(940, screen.height() - 60))
        if store.value("window/maximized", False, type=bool):
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    def save_layout(self) -> None:
        store = self.store
        store.setValue("window/normal", self.normalGeometry())
        store.setValue("window/maximized", self.isMaximized())
        store.setValue("window/state", self.saveState())
        store.setValue("window/splitter", self.splitter.saveState())
        store.setValue("window/lower_splitter", self.lower_splitter.saveState())
        store.setValue("table/header", self.table.view.horizontalHeader().saveState())
        store.setValue("table/fitted", self.table.fitted)
        store.sync()

    # --- closing ------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            super().closeEvent(event)
            return
        # The app stops the engine first (ui/app.py), then calls shutdown(), which closes.
        event.ignore()
        self.close_requested.emit()

    def shutdown(self) -> None:
        """Stop updates, wait for background reads, save the layout, close the window."""
        if self._may_close:
            return
        self.save_layout()
        self.bridge.detach()
        self.live.stop()
        self._soon.stop()
        self._chart_soon.stop()
        for timer in self._timers:
            timer.stop()
        self.notifier.close()
        self.hide()
        self.background.shutdown()
        self._may_close = True
        self.close()


def default_store() -> QSettings:
    """Where the window keeps its layout (per user, by the platform's convention)."""
    return QSettings(paths.APP_NAME, "window")
