"""The Add Algorithm dialog: symbol, algorithm, capital; validated as you type.

Every time it is shown it rescans the algorithm folder (on a background thread; the
dialog shows that it is scanning), so a file added, fixed, renamed or deleted while the
app runs is seen at once. Excluded files stay in the list, disabled, with the reason.
Creating goes through the engine, which checks everything again in one transaction:
whatever fails, nothing is created, and the error is shown in the dialog.
"""

from __future__ import annotations

import itertools
from html import escape
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from autotrader_desktop import accounting, instances
from autotrader_desktop.discovery import AlgorithmFile, AlgorithmFolderError
from autotrader_desktop.engine_channel import WindowEngine
from autotrader_desktop.errors import UserError
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.background import Background

ALGORITHM_ROLE = Qt.ItemDataRole.UserRole


def _room(widget: QWidget) -> QWidget:
    """`widget` in a box that keeps its place in the layout whether or not the widget
    shows: the progress bar going away never moves the fields under it."""
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(widget)
    box.setFixedHeight(widget.sizeHint().height())
    return box


class AddDialog(QDialog):
    created = Signal(object)  # the new Instance

    def __init__(self, engine: WindowEngine, background: Background, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add Algorithm")
        self.setMinimumWidth(520)
        self._engine = engine
        self._background = background
        self._scan_number = 0
        self.scanning = False
        self.creating = False
        self.available_cash: float | None = None
        self.algorithms: list[AlgorithmFile] = []

        self._build_fields()
        self._build_buttons()
        self._build_layout()
        self.symbol.textChanged.connect(self.validate)
        self.capital.textChanged.connect(self.validate)
        self.algorithm.currentIndexChanged.connect(self.validate)
        self.validate()

    def _build_fields(self) -> None:
        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("e.g. NVDA or BRK.B")
        self.symbol.setMaxLength(20)
        self.symbol.textEdited.connect(self._upper_case)
        self.symbol_error = theme.message_label(theme.current().loss, lines=2)

        self.algorithm = QComboBox()
        self.algorithm.setMinimumContentsLength(24)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.scan_status = QLabel()
        self.scan_status.setWordWrap(True)
        # Which conventions the selected file's instances run with (docs/legacy.md).
        self.conventions = QLabel("—")
        self.conventions.setWordWrap(True)
        self.excluded = QLabel()
        self.excluded.setWordWrap(True)
        self.excluded.setTextFormat(Qt.TextFormat.RichText)

        self.capital = QLineEdit()
        self.capital.setPlaceholderText("e.g. 10000")
        self.capital_hint = QLabel()
        self.capital_error = theme.message_label(theme.current().loss, lines=2)

        self.preview = QLabel("—")
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = theme.message_label(theme.current().loss, lines=2)

    def _build_buttons(self) -> None:
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button: QPushButton = self.buttons.addButton(
            "Create", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        # Enter creates; it must never fall through to Cancel (a button with autoDefault
        # becomes the default while Create is disabled).
        self.cancel_button.setAutoDefault(False)
        self.buttons.accepted.connect(self._create)
        self.buttons.rejected.connect(self.reject)

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("&Symbol", self.symbol)
        form.addRow("", self.symbol_error)
        form.addRow("&Algorithm", self.algorithm)
        form.addRow("", _room(self.busy))
        form.addRow("", self.scan_status)
        form.addRow("", self.excluded)
        form.addRow("Conventions", self.conventions)
        form.addRow("&Capital", self.capital)
        form.addRow("", self.capital_hint)
        form.addRow("", self.capital_error)
        form.addRow("Name", self.preview)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        # Fields in reading order, then Create before Cancel (whatever side the platform
        # puts the buttons on).
        chain = (self.symbol, self.algorithm, self.capital, self.create_button, self.cancel_button)
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    # --- scanning -----------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():  # shown by the app, not restored by the window manager
            self.symbol.setFocus(Qt.FocusReason.OtherFocusReason)
            self.rescan()

    def rescan(self) -> None:
        """Scan the algorithm folder and read the available cash, off the GUI thread."""
        self._scan_number += 1
        number = self._scan_number
        self.scanning = True
        self.error.clear()
        self.busy.show()
        self.scan_status.setText(f"Scanning {self._engine.algorithm_dir} …")
        self.validate()
        starting_balance = self._engine.settings.starting_balance

        def scan() -> tuple[list[AlgorithmFile], float]:
            return self._engine.scan(), accounting.available_cash(starting_balance)

        self._background.submit(
            scan,
            on_done=lambda result: self._scanned(number, *result),
            on_error=lambda exc: self._scan_failed(number, exc),
        )

    def _scanned(self, number: int, found: list[AlgorithmFile], cash: float) -> None:
        if number != self._scan_number:
            return  # a newer scan is on its way
        self.scanning = False
        self.busy.hide()
        self.algorithms = found
        self.available_cash = cash
        self.capital_hint.setText(f"Available cash: {cash:,.2f}")
        previous = self.algorithm.currentData(ALGORITHM_ROLE)
        self.algorithm.blockSignals(True)
        self.algorithm.clear()
        ordered = sorted(found, key=lambda f: (not f.available, f.name.lower()))
        for file in ordered:
            label = file.name if file.available else f"{file.name}  (excluded)"
            self.algorithm.addItem(label, file.name)
            # A combo box's default model is a QStandardItemModel.
            model = cast(QStandardItemModel, self.algorithm.model())
            item = model.item(self.algorithm.count() - 1)
            item.setToolTip(str(file.path) if file.available else f"{file.path.name}: {file.error}")
            if not file.available:
                item.setEnabled(False)
        names = [f.name for f in ordered if f.available]
        self.algorithm.setCurrentIndex(names.index(previous) if previous in names else 0)
        if not names:
            self.algorithm.setCurrentIndex(-1)
        self.algorithm.blockSignals(False)
        excluded = [f for f in ordered if not f.available]
        self.scan_status.setText(
            f"{len(names)} available, {len(excluded)} excluded in {self._engine.algorithm_dir}"
            if found
            else f"No algorithm files in {self._engine.algorithm_dir}"
        )
        self.excluded.setText(
            "<br>".join(f"<b>{escape(f.path.name)}</b>: {escape(f.error or '')}" for f in excluded)
        )
        self.excluded.setVisible(bool(excluded))
        self.validate()

    def _scan_failed(self, number: int, exc: BaseException) -> None:
        if number != self._scan_number:
            return
        self.scanning = False
        self.busy.hide()
        self.scan_status.setText("")
        self.error.setText(f"Cannot scan the algorithm folder: {exc}")
        self.validate()

    # --- validation ---------------------------------------------------------------------

    def _upper_case(self, text: str) -> None:
        if text != text.upper():
            position = self.symbol.cursorPosition()
            self.symbol.setText(text.upper())
            self.symbol.setCursorPosition(position)

    def validate(self) -> bool:
        """Check every field, show what is wrong next to it, enable Create if all is well."""
        symbol = self._check(self.symbol_error, self.symbol.text(), instances.normalize_symbol)
        capital = self._check(self.capital_error, self.capital.text(), self._parse_capital)
        algorithm = self.algorithm.currentData(ALGORITHM_ROLE)
        chosen = next((f for f in self.algorithms if f.name == algorithm), None)
        self.conventions.setText(chosen.conventions.label if chosen and chosen.conventions else "—")
        if symbol and algorithm:
            self.preview.setText(
                instances.display_name(symbol, algorithm, self._engine.clock.now())
            )
        else:
            self.preview.setText("—")
        valid = bool(symbol and capital and algorithm and not self.scanning and not self.creating)
        self.create_button.setEnabled(valid)
        self.create_button.setDefault(valid)
        return valid

    @staticmethod
    def _check(label: QLabel, text: str, parse):
        """Parse a field; an empty field is not an error yet, just not valid."""
        if not text.strip():
            label.clear()
            return None
        try:
            value = parse(text)
        except UserError as exc:
            label.setText(str(exc))
            return None
        label.clear()
        return value

    def _parse_capital(self, text: str) -> float:
        capital = instances.parse_capital(text)
        if self.available_cash is not None and capital > self.available_cash + 1e-9:
            raise instances.InstanceError(
                f"more than the available cash ({self.available_cash:,.2f})"
            )
        return capital

    # --- creating -----------------------------------------------------------------------

    def _create(self) -> None:
        if not self.validate():
            return
        symbol, algorithm, capital = (
            self.symbol.text(),
            self.algorithm.currentData(ALGORITHM_ROLE),
            self.capital.text(),
        )
        self._set_creating(True)
        self._background.submit(
            self._engine.create_instance,
            symbol,
            algorithm,
            capital,
            on_done=self._created,
            on_error=self._create_failed,
        )

    def _set_creating(self, creating: bool) -> None:
        self.creating = creating
        self.busy.setVisible(creating or self.scanning)
        for widget in (self.symbol, self.algorithm, self.capital, self.buttons):
            widget.setEnabled(not creating)
        self.validate()

    def _created(self, instance) -> None:
        self._set_creating(False)
        self.accept()
        self.created.emit(instance)

    def _create_failed(self, exc: BaseException) -> None:
        self._set_creating(False)
        if not isinstance(exc, UserError | AlgorithmFolderError):
            raise exc
        self.error.setText(f"Nothing was created: {exc}")

    def reset(self) -> None:
        """Empty fields for the next instance (the algorithm choice is kept)."""
        self.symbol.clear()
        self.capital.clear()
        self.error.clear()
