"""The selected instance's activity: its trades, runs journal, captured output, last error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from autotrader_desktop import queries
from autotrader_desktop.enums import Outcome
from autotrader_desktop.queries import Activity, InstanceRow
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.instance_table import DRIFT_BADGES, short_version

Index = QModelIndex | QPersistentModelIndex
Colouring = Callable[[str, int], QColor | None]  # (the row's key, column) -> colour


def _local(when: datetime) -> str:
    return f"{when.astimezone():%Y-%m-%d %H:%M:%S}"


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


class RecordsModel(QAbstractTableModel):
    """Read-only rows of already formatted cells; a key per row (e.g. "buy") chooses the
    colours of its cells."""

    def __init__(
        self, headers: Sequence[str], numeric: set[int], colouring: Colouring | None = None
    ) -> None:
        super().__init__()
        self._headers = list(headers)
        self._numeric = numeric
        self._colouring = colouring
        self._rows: list[tuple[str, ...]] = []
        self._keys: list[str] = []

    def set_rows(self, cells: list[tuple[str, ...]], keys: list[str]) -> None:
        if cells == self._rows and keys == self._keys:
            return  # unchanged: no reset, no re-measuring of columns
        self.beginResetModel()
        self._rows, self._keys = cells, keys
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._headers[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and self._colouring is not None:
            return self._colouring(self._keys[index.row()], index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in self._numeric:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None


@dataclass(frozen=True)
class Presented:
    """One instance's activity formatted for the tabs (built off the GUI thread)."""

    instance_id: int
    trades: list[tuple[str, ...]]
    trade_types: list[str]  # buy | sell, per row
    runs: list[tuple[str, ...]]
    run_outcomes: list[str]  # executed | hold | rejected | failed, per row
    output: str
    output_lines: int
    error: str
    error_title: str


def present(activity: Activity) -> Presented:
    trades: list[tuple[str, ...]] = [
        (
            _local(when),
            kind,
            f"{shares:,}",
            _money(price),
            _money(commission),
            _money(shares * price),
        )
        for when, kind, shares, price, commission in activity.trades
    ]
    runs: list[tuple[str, ...]] = [
        (
            _local(scheduled),
            decision or "—",
            f"{outcome}: {reason}" if reason else outcome,
            _money(fill),
            "—" if duration is None else f"{duration:,.0f} ms",
            short_version(version),
        )
        for scheduled, duration, version, decision, outcome, reason, fill in activity.runs
    ]
    output = "\n".join(
        f"{when.astimezone():%H:%M:%S} {stream:<6} {text}" for when, stream, text in activity.output
    )
    if activity.error:
        when = f" at {_local(activity.failed_at)}" if activity.failed_at else ""
        error = f"Failed{when}: {activity.error}\n\n{activity.traceback or ''}"
        title = "Error ⚠"
    elif activity.traceback and activity.failed_at:
        error = (
            f"No current error. The last failure, at {_local(activity.failed_at)}, "
            f"before the engine restarted:\n\n{activity.traceback}"
        )
        title = "Error"
    else:
        error, title = "No errors.", "Error"
    return Presented(
        instance_id=activity.instance_id,
        trades=trades,
        trade_types=[trade[1] for trade in activity.trades],
        runs=runs,
        run_outcomes=[run[4] for run in activity.runs],
        output=output or "(nothing printed or logged yet)",
        output_lines=len(activity.output),
        error=error,
        error_title=title,
    )


def read(instance_id: int) -> Presented | None:
    """An instance's activity, read and formatted (None: deleted). Runs off the GUI thread."""
    found = queries.activity(instance_id)
    return present(found) if found is not None else None


def _table(model: RecordsModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setResizeContentsPrecision(50)  # measure 50 rows, not all of them, per update
    header.setStretchLastSection(True)
    return view


def _text_view() -> QPlainTextEdit:
    view = QPlainTextEdit()
    view.setReadOnly(True)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return view


class ActivityTabs(QWidget):
    TRADES, RUNS, OUTPUT, ERROR = range(4)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.instance_id: int | None = None
        self._theme = theme.current()

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.trades = RecordsModel(
            ["Time", "Type", "Shares", "Price", "Commission", "Amount"],
            numeric={2, 3, 4, 5},
            colouring=self._trade_colour,
        )
        self.runs = RecordsModel(
            ["Scheduled", "Decision", "Outcome", "Fill price", "Duration", "Code version"],
            numeric={3, 4},
            colouring=self._run_colour,
        )
        self.trades_view = _table(self.trades)
        self.runs_view = _table(self.runs)
        self.output_view = _text_view()
        self.error_view = _text_view()
        self.error_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)  # the message

        self.tabs = QTabWidget()
        self.tabs.addTab(self.trades_view, "Trades")
        self.tabs.addTab(self.runs_view, "Runs")
        self.tabs.addTab(self.output_view, "Output")
        self.tabs.addTab(self.error_view, "Error")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.tabs, 1)
        self.show_instance(None)

    def set_theme(self, current: theme.Theme) -> None:
        self._theme = current
        self.trades.layoutChanged.emit()
        self.runs.layoutChanged.emit()

    def show_instance(self, row: InstanceRow | None) -> None:
        """The header for the selected instance (its activity comes with set_activity)."""
        if row is None or row.id != self.instance_id:
            self.instance_id = row.id if row else None
            self._clear()
        if row is None:
            self.header.setText("<i>No instance selected</i>")
            return
        parts = [f"<b>{row.display_name}</b>", row.status]
        version = f"code {short_version(row.code_version)}"
        if row.drift in DRIFT_BADGES:
            colour = self._theme.warning.name()
            version += f' — <span style="color:{colour}">{row.drift.value}</span>'
        parts.append(version)
        if row.conventions is not None:
            parts.append(
                f'<span title="{row.conventions.label}">{row.conventions} conventions</span>'
            )
        if row.error:
            parts.append(
                f'<span style="color:{self._theme.loss.name()}">{escape(row.error)}</span>'
            )
        self.header.setText(" &nbsp;·&nbsp; ".join(parts))

    def set_activity(self, shown: Presented | None) -> None:
        """The history read for an instance (None: it has been deleted meanwhile)."""
        if shown is None or shown.instance_id != self.instance_id:
            return  # the selection moved on while this was read
        self._keep_scroll(
            self.trades_view, lambda: self.trades.set_rows(shown.trades, shown.trade_types)
        )
        self._keep_scroll(
            self.runs_view, lambda: self.runs.set_rows(shown.runs, shown.run_outcomes)
        )
        self.tabs.setTabText(self.TRADES, f"Trades ({len(shown.trades)})")
        self.tabs.setTabText(self.RUNS, f"Runs ({len(shown.runs)})")
        self.tabs.setTabText(self.OUTPUT, f"Output ({shown.output_lines})")
        self.tabs.setTabText(self.ERROR, shown.error_title)
        self._set_text(self.output_view, shown.output, follow=True)
        self._set_text(self.error_view, shown.error, follow=False)

    def _clear(self) -> None:
        self.trades.set_rows([], [])
        self.runs.set_rows([], [])
        self.output_view.clear()
        self.error_view.clear()
        for tab, title in enumerate(("Trades", "Runs", "Output", "Error")):
            self.tabs.setTabText(tab, title)

    @staticmethod
    def _keep_scroll(view: QTableView, update: Callable[[], None]) -> None:
        bar = view.verticalScrollBar()
        position = bar.value()
        update()
        bar.setValue(position)

    @staticmethod
    def _set_text(view: QPlainTextEdit, text: str, follow: bool) -> None:
        """Replace the text if it changed; `follow`: stay at the end if the view was there."""
        if view.toPlainText() == text:
            return
        bar = view.verticalScrollBar()
        at_end = bar.value() == bar.maximum()
        view.setPlainText(text)
        if follow and at_end:
            bar.setValue(bar.maximum())

    # --- colours ------------------------------------------------------------------------

    def _trade_colour(self, kind: str, column: int) -> QColor | None:
        if column == 1:
            return self._theme.gain if kind == "buy" else self._theme.loss
        return None

    def _run_colour(self, outcome: str, column: int) -> QColor | None:
        colours: dict[str, QColor] = {
            Outcome.FAILED: self._theme.loss,
            Outcome.REJECTED: self._theme.warning,
        }
        return colours.get(outcome) if column == 2 else None
