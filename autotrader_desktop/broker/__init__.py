"""Brokers: where a decision becomes a trade.

Every broker answers one question for the journal, inside the transaction that records the
run: what happens to this order? A `Fill` (the paper broker fills at once), a `Rejection`
(nothing happens; the reason is journaled), or `Placed` (an outside broker will be asked:
the journal writes the order row in its transaction, and `dispatch()` sends it after the
commit). Trades, whoever fills them, are written by `ledger.record_trade` alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from autotrader_desktop.decision import Decision

if TYPE_CHECKING:
    from autotrader_desktop.clock import Clock
    from autotrader_desktop.database import Instance
    from autotrader_desktop.settings import Settings

PriceOf = Callable[[str], float | None]

# The largest position an instance may hold: far above any company's share count, and low
# enough that shares, cash and their products stay exact in SQLite's integers and doubles
# (an order of 2**63 shares does not fit in SQLite at all).
MAX_SHARES = 10**12


@dataclass(frozen=True)
class OrderRequest:
    """A decision to execute for one instance, with its sub-account as the journal read it."""

    instance_id: int
    symbol: str
    decision: Decision
    cash: float
    held: int
    last_price: float | None
    scheduled_at: datetime


@dataclass(frozen=True)
class Fill:
    action: str
    shares: int
    price: float
    commission: float
    cash_after: float
    shares_after: int


@dataclass(frozen=True)
class Rejection:
    reason: str


@dataclass(frozen=True)
class Placed:
    """For an outside broker: the journal records the order, the broker sends it after the
    commit, and the journal row follows the order's life."""


class Broker(Protocol):
    max_order_value: float

    def execute(self, request: OrderRequest) -> Fill | Rejection | Placed:
        """Decide an order inside the journal's write transaction (no network here)."""
        ...

    def dispatch(self) -> None:
        """Send what `execute` placed; called after the journal's transaction committed."""
        ...

    def close_position(self, instance_id: int, price_of: PriceOf) -> Instance | None:
        """Before a stop: an outside broker cancels the instance's open orders and sells its
        shares, returning the instance once the sell filled (that stops it), or None when
        there was nothing to sell. The paper broker sells inside the stop's transaction
        instead, and returns None."""
        ...

    def halt(self) -> int:
        """Stop all trading (broker/halt.py) and cancel the open orders; returns how many."""
        ...

    def account_cash(self) -> float | None:
        """The broker account's cash, or None when the app's starting balance is the account."""
        ...

    def check_symbol(self, symbol: str) -> None:
        """Raise InstanceError when `symbol` cannot be traded here."""
        ...

    def open(self) -> None:
        """Start background work that needs no event loop (resolve orders left in flight)."""
        ...

    async def connect(self) -> None:
        """Start what runs on the event loop (the broker's stream)."""
        ...

    async def disconnect(self) -> None: ...

    def close(self) -> None: ...


def checked_price(request: OrderRequest, cap: float) -> float | Rejection:
    """The last price to trade at, or what every broker refuses before it looks at the
    sub-account: no price yet, a price that is not a positive finite number, a position
    larger than MAX_SHARES, an order over the per-order value cap (0: off)."""
    price = request.last_price
    if price is None:
        return Rejection(f"no price for {request.symbol} yet")
    return _sanity_rejection(request) or _order_value_cap_rejection(request, cap) or price


def _sanity_rejection(request: OrderRequest) -> Rejection | None:
    price, order = request.last_price, request.decision
    if price is None or not (math.isfinite(price) and price > 0):
        return Rejection(f"no usable price for {request.symbol} (last {price!r})")
    if order.shares > MAX_SHARES - (request.held if order.action == "buy" else 0):
        return Rejection(
            f"order too large: {order.shares} shares; a position is at most {MAX_SHARES:,}"
        )
    return None


def _order_value_cap_rejection(request: OrderRequest, cap: float) -> Rejection | None:
    # Against the last price: a runaway algorithm stops here.
    if cap <= 0 or request.last_price is None:
        return None
    value = request.decision.shares * request.last_price
    if value <= cap:
        return None
    return Rejection(
        f"order value {value:,.2f} ({request.decision} {request.symbol} at "
        f"{request.last_price:,.2f}) is over the per-order cap {cap:,.2f} (setting max_order_value)"
    )


def create(settings: Settings, clock: Clock) -> Broker:
    """The broker the settings choose."""
    if not settings.broker.is_alpaca:
        from autotrader_desktop.broker.paper import PaperBroker

        return PaperBroker(
            settings.commission, settings.slippage_bps, settings.max_order_value, clock
        )
    from autotrader_desktop.broker.alpaca import AlpacaBroker

    return AlpacaBroker.from_settings(settings, clock)
