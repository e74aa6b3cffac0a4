"""The app's closed sets of words, each with the label a person reads.

The values are what the database, the settings and the command line store and accept;
`label` is how the window and messages show them. A StrEnum member equals its value, so
rows read from the database compare equal to the members.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class InstanceStatus(StrEnum):
    """Where an instance is in its life (docs/behaviour.md#instances)."""

    RUNNING = "running"  # runs every cycle
    STOPPED = "stopped"  # by the user; its position was sold, its P&L is realized
    FAILED = "failed"  # its algorithm raised or hung; keeps its capital and position

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Outcome(StrEnum):
    """What became of one run of one instance (a journal row)."""

    EXECUTED = "executed"  # an order, filled
    HOLD = "hold"  # no order
    REJECTED = "rejected"  # an order that could not be filled, or the instance stopped meanwhile
    FAILED = "failed"  # the algorithm raised, returned nonsense or ran out of time
    ORDERED = "ordered"  # sent to an outside broker, not final yet (the row follows the order)

    @property
    def label(self) -> str:
        return self.value


class Feed(StrEnum):
    """Where market data comes from."""

    SIM = "sim"
    ALPACA_IEX = "alpaca-iex"
    ALPACA_SIP = "alpaca-sip"
    NONE = "none"

    @property
    def is_alpaca(self) -> bool:
        return self in (Feed.ALPACA_IEX, Feed.ALPACA_SIP)

    @property
    def alpaca_name(self) -> str:
        """Alpaca's name of the data feed ("iex", "sip"), in its URLs and parameters."""
        return self.removeprefix("alpaca-")

    @property
    def label(self) -> str:
        return _FEED_LABELS[self]

    @property
    def description(self) -> str:
        """The label with what choosing it means, for the settings dialog."""
        return _FEED_DESCRIPTIONS.get(self, self.label)


_FEED_LABELS = {
    Feed.SIM: "simulator",
    Feed.ALPACA_IEX: "Alpaca IEX",
    Feed.ALPACA_SIP: "Alpaca SIP",
    Feed.NONE: "no feed",
}
_FEED_DESCRIPTIONS = {
    Feed.SIM: "Simulator (built in, no account needed)",
    Feed.NONE: "No market data",
}


class FeedState(StrEnum):
    """The market-data stream's state; the value is what the status bar shows."""

    OFF = "off"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth failed"
    INSUFFICIENT_SUBSCRIPTION = "insufficient subscription"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def label(self) -> str:
        return self.value


class Broker(StrEnum):
    """Who fills the orders."""

    PAPER = "paper"  # the built-in paper broker: fills at the last price, plus costs
    ALPACA_PAPER = "alpaca-paper"  # an Alpaca paper account: Alpaca fills, no real money
    ALPACA_LIVE = "alpaca-live"  # an Alpaca live account: real money

    @property
    def is_alpaca(self) -> bool:
        return self in (Broker.ALPACA_PAPER, Broker.ALPACA_LIVE)

    @property
    def label(self) -> str:
        return _BROKER_LABELS[self]


_BROKER_LABELS = {
    Broker.PAPER: "paper trading (simulated fills)",
    Broker.ALPACA_PAPER: "Alpaca paper account",
    Broker.ALPACA_LIVE: "Alpaca LIVE account (real money)",
}


LEGACY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Conventions(StrEnum):
    """How `run` is called for an algorithm's instances (conventions.py decides which)."""

    MODERN = "modern"
    LEGACY = "legacy"

    @property
    def label(self) -> str:
        return _CONVENTIONS_LABELS[self]

    @property
    def fresh_object_per_run(self) -> bool:
        return self is Conventions.LEGACY

    def current_time(self, scheduled_at: datetime) -> datetime | str:
        """The `current_time` argument of `run` for a run scheduled at `scheduled_at`."""
        if self is Conventions.LEGACY:
            return scheduled_at.astimezone(UTC).strftime(LEGACY_TIME_FORMAT)
        return scheduled_at


_CONVENTIONS_LABELS = {
    Conventions.LEGACY: "legacy (web AutoTrader: time as text, a fresh object every run)",
    Conventions.MODERN: "modern (time as a datetime, the object kept until restart)",
}
