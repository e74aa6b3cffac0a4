"""The instance table: a model of InstanceRows, a filter, and the view with its filter bar.

Updates never reset the model: changed rows get dataChanged, new ones are inserted, gone
ones removed, so the selection, the sort order and the scroll position survive every
refresh and every price tick.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from operator import attrgetter
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.module_cache import Drift
from autotrader_desktop.queries import InstanceRow, short_code_version
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.wording import counted

ROW_ROLE = Qt.ItemDataRole.UserRole

Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    SYMBOL = enum.auto()
    ALGORITHM = enum.auto()
    VERSION = enum.auto()
    STATUS = enum.auto()
    CAPITAL = enum.auto()
    CASH = enum.auto()
    SHARES = enum.auto()
    PRICE = enum.auto()
    VALUE = enum.auto()
    PNL = enum.auto()
    PNL_PCT = enum.auto()
    TRADES = enum.auto()
    DECISION = enum.auto()
    LAST_RUN = enum.auto()


HEADERS = {
    Column.NAME: "Name",
    Column.SYMBOL: "Symbol",
    Column.ALGORITHM: "Algorithm",
    Column.VERSION: "Code version",
    Column.STATUS: "Status",
    Column.CAPITAL: "Capital",
    Column.CASH: "Cash",
    Column.SHARES: "Shares",
    Column.PRICE: "Last price",
    Column.VALUE: "Value",
    Column.PNL: "P&L",
    Column.PNL_PCT: "P&L %",
    Column.TRADES: "Trades",
    Column.DECISION: "Last decision",
    Column.LAST_RUN: "Last run",
}
COLUMN_COUNT = len(Column)
NUMERIC = {
    Column.CAPITAL,
    Column.CASH,
    Column.SHARES,
    Column.PRICE,
    Column.VALUE,
    Column.PNL,
    Column.PNL_PCT,
    Column.TRADES,
}
PRICED = (Column.PRICE, Column.VALUE, Column.PNL, Column.PNL_PCT)
DRIFT_BADGES = {Drift.EDITED: "⚠ edited", Drift.DELETED: "⚠ deleted"}


def short_version(code_version: str | None) -> str:
    return short_code_version(code_version) or "—"


def local_time(when: datetime | None) -> str:
    if when is None:
        return "—"
    local = when.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return f"{local:%H:%M:%S}"
    return f"{local:%b %d %H:%M}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _signed(value: float, suffix: str = "") -> str:
    """+1,234.50 / -0.80; zero as 0.00, never -0.00."""
    return f"0.00{suffix}" if abs(value) < 0.005 else f"{value:+,.2f}{suffix}"


def _version(row: InstanceRow) -> str:
    badge = DRIFT_BADGES.get(row.drift) if row.drift else None
    return (
        f"{short_version(row.code_version)}  {badge}" if badge else short_version(row.code_version)
    )


# Per column (in Column order): the text shown, and the value sorted by. Only the cell
# asked for is computed: a paint asks for every visible cell, several roles each.
TEXT: list[Callable[[InstanceRow], str]] = [
    lambda r: r.display_name,
    lambda r: r.symbol,
    lambda r: r.algorithm,
    _version,
    lambda r: f"{r.status} ⚠" if r.warning else r.status,
    lambda r: _money(r.initial_capital),
    lambda r: _money(r.cash),
    lambda r: f"{r.shares:,}",
    lambda r: "—" if r.last_price is None else _money(r.last_price),
    lambda r: _money(r.value),
    lambda r: _signed(r.pnl),
    lambda r: _signed(r.pnl_pct, "%"),
    lambda r: f"{r.trades:,}",
    lambda r: r.last_decision or "—",
    lambda r: local_time(r.last_run_at),
]
SORT_KEY: list[Callable[[InstanceRow], Any]] = [
    lambda r: r.display_name.lower(),
    lambda r: r.symbol,
    lambda r: r.algorithm.lower(),
    lambda r: r.code_version or "",
    lambda r: r.status,
    attrgetter("initial_capital"),
    attrgetter("cash"),
    attrgetter("shares"),
    lambda r: r.last_price or 0.0,
    attrgetter("value"),
    attrgetter("pnl"),
    attrgetter("pnl_pct"),
    attrgetter("trades"),
    lambda r: r.last_decision or "",
    lambda r: r.last_run_at.timestamp() if r.last_run_at else 0.0,
]
_MONEY = (Column.VALUE, Column.PNL, Column.PNL_PCT)
# The columns that show each field of InstanceRow: a change signals only those, so that a
# table sorted by a column that did not change is not re-sorted.
FIELD_COLUMNS: dict[str, tuple[int, ...]] = {
    "id": (),
    "display_name": (Column.NAME,),
    "symbol": (Column.SYMBOL,),
    "algorithm": (Column.ALGORITHM,),
    "status": tuple(Column),  # stopped rows are greyed out
    "code_version": (Column.VERSION,),
    "drift": (Column.VERSION,),
    "initial_capital": (Column.CAPITAL, *_MONEY),
    "cash": (Column.CASH, *_MONEY),
    "shares": (Column.SHARES, *_MONEY),
    "last_price": (Column.PRICE, *_MONEY),
    "trades": (Column.TRADES,),
    "last_decision": (Column.DECISION,),
    "last_run_at": (Column.LAST_RUN,),
    "error": (Column.STATUS,),
    "warning": (Column.STATUS,),
}


def _tooltip(row: InstanceRow, column: int) -> str | None:
    if column == Column.VERSION:
        lines = [f"code version {row.code_version}" if row.code_version else "not run yet"]
        if row.drift in DRIFT_BADGES:
            lines.append(row.drift.value)
        return "\n".join(lines)
    if column == Column.STATUS and (row.error or row.warning):
        return "\n\n".join(text for text in (row.error, row.warning) if text)
    if column == Column.NAME:
        return row.display_name
    return None


class InstanceTableModel(QAbstractTableModel):
    """Every instance; shows those the filter passes, in the chosen order.

    It filters and sorts itself, in Python, rather than behind a QSortFilterProxyModel: on
    each price tick 1,000 rows re-sort, and a proxy re-filters every changed row, rebuilds
    its mapping, and turns every cell the view paints into several more calls into Python
    (mapping the index, row and column counts); that doubled the cost of a repaint.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._stored: dict[int, InstanceRow] = {}  # every instance as read, by id
        self._prices: dict[str, float] = {}  # the live prices, by symbol
        self._all: dict[int, InstanceRow] = {}  # every instance at live prices, by id
        self._rows: list[InstanceRow] = []  # the ones shown, in order
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._text = ""
        self._status: str | None = None
        self._theme = theme.current()
        self._bold = QFont()
        self._bold.setBold(True)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        self._answers: dict[int, Callable[[InstanceRow, int], Any]] = {
            Qt.ItemDataRole.DisplayRole: lambda row, column: TEXT[column](row),
            Qt.ItemDataRole.ForegroundRole: self._colour,
            Qt.ItemDataRole.TextAlignmentRole: lambda row, column: (
                right if column in NUMERIC else None
            ),
            Qt.ItemDataRole.FontRole: self._font,
            Qt.ItemDataRole.ToolTipRole: _tooltip,
            ROW_ROLE: lambda row, column: row,
        }

    # --- the Qt model interface ---------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # A repaint asks for seven roles of every cell shown: one dictionary lookup each.
        answer = self._answers.get(role)
        return None if answer is None else answer(self._rows[index.row()], index.column())

    def _font(self, row: InstanceRow, column: int) -> QFont | None:
        failed = column == Column.STATUS and row.status == InstanceStatus.FAILED
        return self._bold if failed else None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort = (column, order)
        self._show()

    def _colour(self, row: InstanceRow, column: int) -> Any:
        if column == Column.PNL:
            return theme.signed(self._theme, row.pnl)
        if column == Column.PNL_PCT:
            return theme.signed(self._theme, row.pnl_pct)
        if column == Column.STATUS and row.warning and row.status != InstanceStatus.FAILED:
            return self._theme.warning
        if column == Column.STATUS:
            return {
                InstanceStatus.RUNNING: self._theme.running,
                InstanceStatus.FAILED: self._theme.loss,
                InstanceStatus.STOPPED: self._theme.muted,
            }.get(row.status)
        if column == Column.VERSION and row.drift in DRIFT_BADGES:
            return self._theme.warning
        if row.status == InstanceStatus.STOPPED:
            return self._theme.muted
        return None

    # --- reading ------------------------------------------------------------------------

    def rows(self) -> list[InstanceRow]:
        """Every instance, shown or not."""
        return list(self._all.values())

    def total(self) -> int:
        return len(self._all)

    def row_at(self, row: int) -> InstanceRow:
        return self._rows[row]

    def row_of(self, instance_id: int) -> int | None:
        """Where `instance_id` is shown; None if it is not."""
        for position, row in enumerate(self._rows):
            if row.id == instance_id:
                return position
        return None

    # --- updates ------------------------------------------------------------------------

    def set_rows(self, rows: list[InstanceRow]) -> None:
        """Make the model hold `rows` (ordered by id, at their stored prices) at the live
        prices it knows: changed cells are signalled, rows added, removed, filtered or moved
        change the layout (selection and scroll stay). A row given again (the same object:
        queries.Overviews) is not looked at again."""
        columns: set[int] = set()
        # Fields no row has been seen changing yet: after a cycle every row differs in the
        # same few fields, and only the others are still worth comparing (all at once).
        unseen = dict(FIELD_COLUMNS)
        values = attrgetter(*unseen)
        shown: dict[int, InstanceRow] = {}
        for row in rows:
            old = self._all.get(row.id)
            if old is not None and self._stored.get(row.id) is row:
                shown[row.id] = old
                continue
            new = self._priced(row)
            if old is not None and unseen and values(old) != values(new):
                for name in [name for name in unseen if getattr(old, name) != getattr(new, name)]:
                    columns.update(unseen.pop(name))
                if unseen:
                    values = attrgetter(*unseen)
            shown[row.id] = new
        self._stored = {row.id: row for row in rows}
        self._all = shown
        self._show(columns)

    def update_prices(self, prices: dict[str, float]) -> None:
        """New last prices: value and P&L follow."""
        self._prices.update(prices)
        self._all = {row.id: self._priced(row) for row in self._all.values()}
        self._show(set(PRICED))

    def _priced(self, row: InstanceRow) -> InstanceRow:
        """`row` at the live price of its symbol; a stopped one keeps the price it sold at."""
        if row.status == InstanceStatus.STOPPED:
            return row
        return row.priced(self._prices.get(row.symbol))

    def set_text(self, text: str) -> None:
        """Show only rows whose name, symbol or algorithm contain `text`."""
        self._text = text.strip().lower()
        self._show()

    def set_status(self, status: str | None) -> None:
        """Show only rows of `status` (None: every status)."""
        self._status = status
        self._show()

    def set_theme(self, current: theme.Theme) -> None:
        self._theme = current
        self._show(set(Column))

    def _passes(self, row: InstanceRow) -> bool:
        if self._status is not None and row.status != self._status:
            return False
        if not self._text:
            return True
        return self._text in f"{row.display_name}\n{row.symbol}\n{row.algorithm}".lower()

    def _show(self, changed: set[int] | None = None) -> None:
        """Show the rows the filter passes, in order; `changed`: the columns whose values
        may have changed (repainted where the rows stay put)."""
        shown = [row for row in self._all.values() if self._passes(row)]
        if self._sort is not None:
            column, order = self._sort
            descending = order == Qt.SortOrder.DescendingOrder
            shown.sort(key=SORT_KEY[column], reverse=descending)
        if [row.id for row in shown] == [row.id for row in self._rows]:
            self._rows = shown
            if changed and shown:
                self.dataChanged.emit(
                    self.index(0, min(changed)), self.index(len(shown) - 1, max(changed))
                )
            return
        # The view's selection and scroll position are persistent indexes: they follow
        # their instance to its new row, or become invalid when it is no longer shown.
        self.layoutAboutToBeChanged.emit()
        moved_to = {row.id: position for position, row in enumerate(shown)}
        before = self._rows
        self._rows = shown
        old = self.persistentIndexList()
        new = []
        for index in old:
            at = moved_to.get(before[index.row()].id)
            new.append(QModelIndex() if at is None else self.index(at, index.column()))
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()


def _widest_text(column: int, rows: list[InstanceRow]) -> str:
    """The longest text of `column` among `rows`. A number's text is as long as its
    magnitude makes it (signs and separators included), so only the largest and the most
    negative are formatted: a price tick checks 1,000 rows in well under a millisecond."""
    if column in NUMERIC:  # the largest or the most negative
        key = SORT_KEY[column]
        return max((TEXT[column](max(rows, key=key)), TEXT[column](min(rows, key=key))), key=len)
    text = TEXT[column]
    return max((text(row) for row in rows), key=len)


class InstanceTable(QWidget):
    """The filter bar and the table view; emits the instance the user picked.

    The pick is the user's alone: filtering, sorting, refreshing or deleting never selects
    another instance. A pick that a filter hides or that goes away is cleared (and stays
    cleared when the filter is removed), so Stop and Delete only ever act on a row the
    user chose and can see.
    """

    selection_changed = Signal(object)  # InstanceRow | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = InstanceTableModel(self)
        self._picked: int | None = None  # the id of the instance the user picked
        self._syncing = False  # the view's selection is being changed by the table itself
        self.fitted = False  # column widths fitted to real rows (now or in an earlier session)
        self._build_filter_bar()
        self._build_view()
        self._build_layout()
        self._rows_changed()

    def _build_filter_bar(self) -> None:
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter by name, symbol or algorithm (Ctrl+F)")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.textChanged.connect(lambda text: self._filter(self.model.set_text, text))
        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", None)
        for status in InstanceStatus:
            self.status_filter.addItem(status.label, status)
        self.status_filter.currentIndexChanged.connect(
            lambda: self._filter(self.model.set_status, self.status_filter.currentData())
        )
        self.count_label = QLabel()
        self.count_label.setContentsMargins(6, 0, 8, 0)

    def _build_view(self) -> None:
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        # Fitting columns to their content looks at this many rows, not all of them.
        self.view.horizontalHeader().setResizeContentsPrecision(100)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(
            lambda position: self.column_menu().popup(header.mapToGlobal(position))
        )
        self.view.selectionModel().selectionChanged.connect(self._user_selected)
        for signal in (self.model.layoutChanged, self.model.modelReset):  # e.g. sorted
            signal.connect(self._rows_changed)

    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.filter_box, 1)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    # --- the user's pick ----------------------------------------------------------------

    def selected(self) -> InstanceRow | None:
        """The instance the user picked, as shown now; None without a pick."""
        position = None if self._picked is None else self.model.row_of(self._picked)
        return None if position is None else self.model.row_at(position)

    def select(self, instance_id: int) -> None:
        """Pick `instance_id` (a new instance), if it is shown."""
        if self._shown_index(instance_id) is not None:
            self._pick(instance_id)
            self._sync_view()

    def _shown_index(self, instance_id: int | None) -> QModelIndex | None:
        position = None if instance_id is None else self.model.row_of(instance_id)
        return None if position is None else self.model.index(position, 0)

    def _user_selected(self, *args) -> None:
        if self._syncing:
            return
        rows = self.view.selectionModel().selectedRows()
        self._pick(rows[0].data(ROW_ROLE).id if rows else None)

    def _pick(self, instance_id: int | None) -> None:
        if instance_id != self._picked:
            self._picked = instance_id
            self.selection_changed.emit(self.selected())

    @contextmanager
    def _changing_rows(self) -> Iterator[None]:
        """Rows are being filtered, added, removed or re-sorted. Qt moves the selection
        meanwhile (onto a neighbour of a removed row, one removed range at a time): that is
        not the user's doing. Afterwards the view selects the pick again, or nothing."""
        outer = self._syncing
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = outer
        if not outer:
            self._rows_changed()

    def _sync_view(self) -> None:
        """Make the view select the pick if it is shown, and nothing otherwise."""
        index = self._shown_index(self._picked)
        with self._changing_selection():
            selection = self.view.selectionModel()
            if index is None:
                selection.clear()
            elif [i.row() for i in selection.selectedRows()] != [index.row()]:
                self.view.selectRow(index.row())
                self.view.scrollTo(index)
        if index is None:
            self._pick(None)

    @contextmanager
    def _changing_selection(self) -> Iterator[None]:
        outer, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = outer

    def _filter(self, change: Callable[[Any], None], value: Any) -> None:
        with self._changing_rows():
            change(value)

    def _rows_changed(self, *args) -> None:
        if self._syncing:
            return  # once the change is complete
        self._sync_view()
        self._update_count()
        # An empty table has nothing to scroll to: no scroll bar under the headers.
        self.view.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded
            if self.model.rowCount()
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )

    # --- rows ---------------------------------------------------------------------------

    def set_rows(self, rows: list[InstanceRow]) -> None:
        first_load = self.model.total() == 0
        names = {row.id for row in self.model.rows()}
        with self._changing_rows():
            self.model.set_rows(rows)
        if rows and not self.fitted:
            self.fitted = True  # fit the columns to real content once; then they are the user's
            self.view.resizeColumnsToContents()
            # Leave room for a drift badge that may appear later.
            widest = self.view.fontMetrics().horizontalAdvance("00000000  ⚠ deleted") + 16
            if self.view.columnWidth(Column.VERSION) < widest:
                self.view.setColumnWidth(Column.VERSION, widest)
        else:
            new = [row for row in rows if row.id not in names]
            self._widen((Column.NAME, Column.SYMBOL, Column.ALGORITHM), new)
            self._widen(NUMERIC, rows)
        if first_load and rows and self._picked is None and self.model.rowCount():
            # Something to chart from the start.
            self.select(self.model.row_at(0).id)

    def update_prices(self, prices: dict[str, float]) -> None:
        with self._changing_rows():
            self.model.update_prices(prices)
        self._widen(PRICED, self.model.rows())

    # --- columns ------------------------------------------------------------------------

    def _widen(self, columns: Iterable[int], rows: list[InstanceRow]) -> None:
        """Widen columns whose widest text among `rows` no longer fits (values grew, a
        new row's name, a larger font); never narrower than the user made them."""
        if not rows or not self.fitted:
            return
        metrics = self.view.fontMetrics()
        padding = 2 * self.view.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 12
        for column in columns:
            if self.view.isColumnHidden(column):
                continue
            needed = metrics.horizontalAdvance(_widest_text(column, rows)) + padding
            if self.view.columnWidth(column) < needed:
                self.view.setColumnWidth(column, needed)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._widen((Column.NAME, Column.SYMBOL, Column.ALGORITHM, *NUMERIC), self.model.rows())

    def column_menu(self) -> QMenu:
        """The header's context menu: a check box per column, in the order shown; the last
        visible column cannot be hidden. Hidden columns persist with the header's state."""
        header = self.view.horizontalHeader()
        menu = QMenu(self)
        shown = COLUMN_COUNT - header.hiddenSectionCount()
        for visual in range(COLUMN_COUNT):
            column = header.logicalIndex(visual)
            action = menu.addAction(HEADERS[Column(column)])
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(column))
            action.setEnabled(not (action.isChecked() and shown == 1))
            action.toggled.connect(
                lambda checked, column=column: self._show_column(column, checked)
            )
        return menu

    def _show_column(self, column: int, shown: bool) -> None:
        self.view.horizontalHeader().setSectionHidden(column, not shown)
        if shown:
            self._widen((column,), self.model.rows())

    def restore_header(self, state: bytes, fitted: bool) -> None:
        """The user's column order, widths and hidden columns, as saved last time;
        `fitted`: whether those widths were fitted to rows (not a first, empty session)."""
        if state and self.view.horizontalHeader().restoreState(state):
            self.fitted = fitted

    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total()
        all_of_them = counted(total, "instance")
        self.count_label.setText(all_of_them if shown == total else f"{shown:,} of {all_of_them}")
