"""The status bar: messages, broker (a LIVE badge for real money), feed state and data
age, market hours, next cycle, account.

Every text in it is elided to the room it gets, with the full text in a tooltip: a long
feed error or message must never widen the window (on a small screen that pushed the close
button off it) nor be cut mid-word.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

from autotrader_desktop.accounting import Account
from autotrader_desktop.enums import Broker
from autotrader_desktop.queries import MarketState, Trading
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.live_data import STALE_AFTER_S, FeedView

MARGIN = 8  # px left and right of each section
ELLIPSIS = "…"


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


class ElidedLabel(QLabel):
    """One line of plain text, elided at the right end ("…") when it does not fit.

    Its minimum width is that of the ellipsis, so the text never sets the window's
    minimum width; it asks for its full width and shows the full text as its tooltip.
    """

    text_changed = Signal()

    def __init__(
        self, text: str = "", parent: QWidget | None = None, asks_for_room: bool = True
    ) -> None:
        """`asks_for_room`: whether its size hint is its whole text (or just the ellipsis:
        for a label that only fills the room left over)."""
        super().__init__(parent)
        self._asks_for_room = asks_for_room
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setContentsMargins(MARGIN, 0, MARGIN, 0)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._colour: QColor | None = None
        self.set_text(text)

    def set_text(self, text: str, tooltip: str | None = None, colour: QColor | None = None) -> None:
        """Show `text` (in `colour`, or the palette's); the tooltip is `tooltip` (if given)
        or the text itself."""
        self._colour = colour
        changed = text != self.text()
        self.setText(text)
        self.setToolTip(tooltip if tooltip is not None else text)
        self.update()
        if changed:
            self.text_changed.emit()

    def shown_text(self) -> str:
        """The text as drawn in the room the label has now."""
        room = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, room)

    def is_elided(self) -> bool:
        return self.shown_text() != self.text()

    def sizeHint(self) -> QSize:
        return super().sizeHint() if self._asks_for_room else self.minimumSizeHint()

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        width = self.fontMetrics().horizontalAdvance(ELLIPSIS) + 2 * MARGIN
        return QSize(width if self.text() else 0, hint.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self._colour or self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(
            self.contentsRect(),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            self.shown_text(),
        )


class StatusBar(QStatusBar):
    """Messages on the left (for a while), then feed, market, next cycle and account."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = ElidedLabel(asks_for_room=False)  # it takes the room left over
        # Never elided: "LIVE" must always be seen whole.
        self.broker = QLabel()
        self.broker.setContentsMargins(MARGIN, 0, MARGIN, 0)
        self._trading = Trading()
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)
        self.addWidget(self.message, 1)
        self.feed_light = QLabel("●")
        self.feed_light.setContentsMargins(MARGIN, 0, 0, 0)
        self.feed = ElidedLabel("Feed: starting …")
        self.feed.setContentsMargins(4, 0, MARGIN, 0)
        self.market = ElidedLabel("Market: …")
        self.cycle = ElidedLabel("Engine starting …")
        self.account = ElidedLabel()
        self.cash = ElidedLabel()
        self.addPermanentWidget(self.broker)
        self.addPermanentWidget(self.feed_light)
        self.addPermanentWidget(self.feed)
        self._short = (self.market, self.cycle, self.account, self.cash)
        for label in self._short:
            self.addPermanentWidget(label)
        for label in (self.message, self.feed, *self._short):
            label.text_changed.connect(self._share_room)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._share_room()

    def _share_room(self) -> None:
        """Give way in order: the message, then the feed's text, and only in a window too
        narrow even for them, the short sections (market, next cycle, account, cash).

        A box layout shrinks all its items alike, so the feed's text is capped to the room
        the short sections leave; the message fills (and is elided to) whatever remains.
        """
        shown = [self.message, self.broker, self.feed_light, self.feed, *self._short]
        used = sum(label.width() for label in shown if label.isVisible())
        overhead = self.width() - used if used else 0  # margins, spacing, size grip
        room = self.width() - overhead - self.feed_light.sizeHint().width()
        if self.broker.isVisible():
            room -= self.broker.sizeHint().width()
        room -= sum(label.sizeHint().width() for label in self._short)
        room -= self.message.minimumSizeHint().width()
        self.feed.setMaximumWidth(max(room, self.feed.minimumSizeHint().width()))

    # --- messages (Qt's own temporary message is drawn uncut over the whole bar) ----------

    def showMessage(self, text: str, timeout: int | None = 0) -> None:
        self.message.set_text(text)
        if timeout:
            self._message_timer.start(timeout)
        else:
            self._message_timer.stop()

    def currentMessage(self) -> str:
        return self.message.text()

    def clearMessage(self) -> None:
        self._message_timer.stop()
        self.message.set_text("")

    # --- sections --------------------------------------------------------------------------

    def set_feed(self, view: FeedView) -> None:
        current = theme.current()
        text = f"{view.name}: {view.state}"
        colour = None if view.ok else current.loss
        if view.age is not None:
            text += f" · data {_age(view.age)} old"
        if view.stale:
            colour = current.warning
            names = ", ".join(view.stale[:3]) + (" …" if len(view.stale) > 3 else "")
            text += f" · no data for {_age(STALE_AFTER_S)}+: {names}"
        self.feed_light.setStyleSheet(f"color: {(colour or current.gain).name()}")
        self.feed.set_text(
            text,
            f"{text}\n\nMarket data feed. Data age: time since the newest trade or bar of any "
            "subscribed symbol.",
            colour,
        )

    def set_market(self, state: MarketState | None, gating: bool) -> None:
        if state is None:
            self.market.set_text("Market hours: unknown")
            return
        when = ""
        if state.next_change is not None:
            local = state.next_change.astimezone()
            same_day = local.date() == datetime.now().astimezone().date()
            when = f"{local:%H:%M}" if same_day else f"{local:%a %H:%M}"
        if state.open:
            text = f"Market open{f' · closes {when}' if when else ''}"
        else:
            text = f"Market closed{f' · opens {when}' if when else ''}"
            if gating:
                text += " · cycles paused"
        self.market.set_text(
            text,
            f"{text}\n\nNYSE regular hours. Market-hours gating is "
            + ("on: cycles run only while the market is open." if gating else "off."),
        )

    def set_next_cycle(self, at: datetime | None, now: datetime) -> None:
        if at is None:
            self.cycle.set_text("No cycle scheduled")
        else:
            seconds = max(0, round((at - now).total_seconds()))
            self.cycle.set_text(f"Next cycle {at.astimezone():%H:%M:%S} (in {seconds} s)")

    def set_trading(self, trading: Trading) -> None:
        """Who trades: paper, an Alpaca paper account, or LIVE (a red badge); and a halt."""
        self._trading = trading
        current = theme.current()
        account = f" {trading.account_number}" if trading.account_number else ""
        text = {
            Broker.PAPER: "Paper trading",
            Broker.ALPACA_PAPER: f"Alpaca paper{account}",
            Broker.ALPACA_LIVE: f"LIVE — real money · Alpaca{account}",
        }[trading.broker]
        style = ""
        if trading.broker == Broker.ALPACA_LIVE:
            style = f"background: {current.loss.name()}; color: white; font-weight: bold;"
        if trading.halted:
            text += " · TRADING HALTED"
            style = style or f"color: {current.warning.name()}; font-weight: bold;"
        self.broker.setText(text)
        self._share_room()
        self.broker.setStyleSheet(style)
        self.broker.setToolTip(
            f"{trading.broker.label}."
            + (
                " Trading is halted: no cycle runs and no order is sent until Resume trading."
                if trading.halted
                else ""
            )
        )

    def set_account(self, account: Account) -> None:
        at_broker = self._trading.broker.is_alpaca and self._trading.account_number is not None
        if at_broker:
            self.account.set_text(
                f"Alpaca equity {account.value:,.2f}",
                "The Alpaca account's equity, as Alpaca reported it last (every 15 s or so)",
            )
        else:
            self.account.set_text(
                f"Account value {account.value:,.2f}",
                f"Starting balance {account.starting_balance:,.2f}, realized P&L "
                f"{account.realized_pnl:+,.2f}, committed to instances "
                f"{account.committed_capital:,.2f}",
            )
        self.cash.set_text(f"Available cash {account.available_cash:,.2f}")
