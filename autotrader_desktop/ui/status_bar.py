"""The status bar: feed state and data age, market hours, next cycle, account."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from autotrader_desktop.accounting import Account
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.live_data import STALE_AFTER_S, FeedView
from autotrader_desktop.ui.queries import MarketState


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _coloured(text: str, colour: str | None) -> str:
    return f'<span style="color:{colour}">{text}</span>' if colour else text


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = QLabel()
        self.market = QLabel()
        self.cycle = QLabel()
        self.account = QLabel()
        self.cash = QLabel()
        for label in (self.feed, self.market, self.cycle, self.account, self.cash):
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)
        self.feed.setText("Feed: starting …")
        self.market.setText("Market: …")
        self.cycle.setText("Engine starting …")

    def set_feed(self, view: FeedView) -> None:
        current = theme.current()
        text = f"{view.name}: {view.state}"
        colour = None if view.ok else current.loss.name()
        if view.age is not None:
            text += f" · data {_age(view.age)} old"
        if view.stale:
            colour = current.warning.name()
            names = ", ".join(view.stale[:3]) + (" …" if len(view.stale) > 3 else "")
            text += f" · no data for {_age(STALE_AFTER_S)}+: {names}"
        self.feed.setText(_coloured("● ", colour or current.gain.name()) + _coloured(text, colour))
        self.feed.setToolTip(
            "Market data feed. Data age: time since the newest trade or bar of any "
            "subscribed symbol."
        )

    def set_market(self, state: MarketState | None, gating: bool) -> None:
        if state is None:
            self.market.setText("Market hours: unknown")
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
        self.market.setText(text)
        self.market.setToolTip(
            "NYSE regular hours. Market-hours gating is "
            + ("on: cycles run only while the market is open." if gating else "off.")
        )

    def set_next_cycle(self, at: datetime | None, now: datetime) -> None:
        if at is None:
            self.cycle.setText("No cycle scheduled")
        else:
            seconds = max(0, round((at - now).total_seconds()))
            self.cycle.setText(f"Next cycle {at.astimezone():%H:%M:%S} (in {seconds} s)")

    def set_account(self, account: Account) -> None:
        self.account.setText(f"Account value {account.value:,.2f}")
        self.cash.setText(f"Available cash {account.available_cash:,.2f}")
        self.account.setToolTip(
            f"Starting balance {account.starting_balance:,.2f}, realized P&L "
            f"{account.realized_pnl:+,.2f}, committed to instances "
            f"{account.committed_capital:,.2f}"
        )
