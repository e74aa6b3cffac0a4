"""Paper trading: market orders fill at the latest trade price, adjusted by slippage."""

from __future__ import annotations

from dataclasses import dataclass

from autotrader_desktop.decision import Decision


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


class PaperBroker:
    def __init__(self, commission: float = 0.0, slippage_bps: float = 0.0) -> None:
        self.commission = commission
        self.slippage_bps = slippage_bps

    def fill_price(self, action: str, last_price: float) -> float:
        """Buys pay up, sells receive less, by the slippage."""
        sign = 1 if action == "buy" else -1
        return round(last_price * (1 + sign * self.slippage_bps / 10_000), 4)

    def execute(
        self, order: Decision, cash: float, held: int, symbol: str, last_price: float | None
    ) -> Fill | Rejection:
        """Fill `order` against a sub-account holding `cash` and `held` shares. No shorting."""
        if last_price is None:
            return Rejection(f"no price for {symbol} yet")
        price = self.fill_price(order.action, last_price)
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
