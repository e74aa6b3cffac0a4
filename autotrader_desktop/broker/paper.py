"""Paper trading: market orders fill at the latest trade price, adjusted by slippage."""

from __future__ import annotations

from autotrader_desktop.broker import (
    Fill,
    OrderRequest,
    PriceOf,
    Rejection,
    checked_price,
    halt,
)
from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.database import write_transaction


class PaperBroker:
    def __init__(
        self,
        commission: float = 0.0,
        slippage_bps: float = 0.0,
        max_order_value: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.commission = commission
        self.slippage_bps = slippage_bps
        self.max_order_value = max_order_value
        self.clock = clock or SystemClock()

    def fill_price(self, action: str, last_price: float) -> float:
        """Buys pay up, sells receive less, by the slippage."""
        sign = 1 if action == "buy" else -1
        return round(last_price * (1 + sign * self.slippage_bps / 10_000), 4)

    def execute(self, request: OrderRequest) -> Fill | Rejection:
        """Fill against the sub-account's cash and shares. No shorting."""
        order, symbol, cash, held = request.decision, request.symbol, request.cash, request.held
        last_price = checked_price(request, self.max_order_value)
        if isinstance(last_price, Rejection):
            return last_price
        price = self.fill_price(order.action, last_price)
        if not price > 0:
            # The slippage rounded it away (a sell of a sub-cent stock at 9,999 bps).
            return Rejection(f"no usable price for {symbol} (fill {price!r} after slippage)")
        if order.action == "buy":
            cost = order.shares * price + self.commission
            if cost > cash + 1e-9:
                return Rejection(
                    f"insufficient cash: {order.shares} {symbol} at {price:,.2f} costs "
                    f"{cost:,.2f}, cash is {cash:,.2f}"
                )
            return Fill(
                "buy", order.shares, price, self.commission, cash - cost, held + order.shares
            )
        if order.shares > held:
            return Rejection(f"insufficient shares: selling {order.shares}, holding {held}")
        proceeds = order.shares * price - self.commission
        if cash + proceeds < 0:
            return Rejection(f"insufficient cash for the {self.commission:,.2f} commission")
        return Fill(
            "sell", order.shares, price, self.commission, cash + proceeds, held - order.shares
        )

    def dispatch(self) -> None:
        """Nothing to send: paper orders fill inside the journal's transaction."""

    def close_position(self, instance_id: int, price_of: PriceOf) -> None:
        """Nothing before the stop: instances.stop sells in the stop's own transaction."""

    def halt(self) -> int:
        """Paper orders fill at once: there is never an open one to cancel."""
        with write_transaction():
            halt.set_halted(True)
        return 0

    def account_cash(self) -> None:
        return None

    def check_symbol(self, symbol: str) -> None:
        """Every well-formed symbol can be paper-traded."""

    def open(self) -> None:
        pass

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    def close(self) -> None:
        pass
