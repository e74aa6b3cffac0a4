"""Alpaca's Trading API v2 over REST: the calls the broker makes, each answer sorted.

Requests and answers are alpaca-py's models (MarketOrderRequest, Order, TradeAccount,
Position, Asset), so field names are Alpaca's exactly. The transport is our own
(`requests`, which alpaca-py uses too): alpaca-py's TradingClient sets no request timeout
and re-sends a POST after a 429 without honouring Retry-After, and an order must never be
re-sent without first asking whether the first one arrived (see broker/alpaca.py).

Every failed call raises one of two errors:
- `Doubt`: no usable answer (timeout, dropped connection, 429, 5xx). The request may or may
  not have taken effect.
- `Refused`: Alpaca answered no (4xx), with its message; the request did not take effect.
"""

from __future__ import annotations

import threading
import warnings
from email.utils import parsedate_to_datetime
from typing import Any

import requests

with warnings.catch_warnings():
    # alpaca.trading imports its own stream client, built on websockets' deprecated legacy
    # API; we use neither (trade_updates.py), only the models.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="websockets")
    warnings.filterwarnings("ignore", message="websockets.legacy", category=DeprecationWarning)
    from alpaca.trading.enums import AssetExchange, AssetStatus, OrderSide, TimeInForce
    from alpaca.trading.models import Asset, Order, Position, TradeAccount, TradeUpdate
    from alpaca.trading.requests import MarketOrderRequest

from autotrader_desktop.credentials import Credentials

TIMEOUT_S = 10.0
# Alpaca's message when a client_order_id was used before (the order exists already).
DUPLICATE_CLIENT_ORDER_ID = "client_order_id must be unique"

__all__ = [
    "AssetExchange",
    "AssetStatus",
    "Doubt",
    "Order",
    "Refused",
    "TradeAccount",
    "TradeUpdate",
    "TradingApi",
]


class Doubt(Exception):
    """No usable answer; the request may have taken effect. `retry_after`: seconds, if told."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """Alpaca answered with a 4xx status; `message` is Alpaca's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (a number, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class TradingApi:
    def __init__(self, base_url: str, credentials: Credentials, timeout: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {
            "APCA-API-KEY-ID": credentials.key_id,
            "APCA-API-SECRET-KEY": credentials.secret_key,
        }
        self._local = threading.local()  # a Session per thread: Session is not thread-safe

    def __repr__(self) -> str:
        return f"TradingApi({self.base_url!r})"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        try:
            response = self._session().request(
                method, self.base_url + path, params=params, json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            # The exception's text can hold the URL, never the headers; the type is enough.
            raise Doubt(f"{method} {path}: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429:
            raise Doubt(
                f"{method} {path}: rate limited (HTTP 429)",
                _retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise Doubt(
                f"{method} {path}: HTTP {status}", _retry_after(response.headers.get("Retry-After"))
            )
        if status >= 400:
            raise Refused(status, _message(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Doubt(f"{method} {path}: the answer is not JSON") from None

    # --- orders -------------------------------------------------------------------------

    def submit_market_order(self, client_order_id: str, symbol: str, side: str, qty: int) -> Order:
        request = MarketOrderRequest(
            symbol=symbol,
            qty=qty,
            side=OrderSide(side),
            time_in_force=TimeInForce.DAY,
            client_order_id=client_order_id,
        )
        return Order(**self._request("POST", "/v2/orders", body=request.to_request_fields()))

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client_order_id, or None if Alpaca has none."""
        try:
            data = self._request(
                "GET", "/v2/orders:by_client_order_id", {"client_order_id": client_order_id}
            )
        except Refused as exc:
            if exc.status == 404:
                return None
            raise
        return Order(**data)

    def order(self, order_id: str) -> Order:
        return Order(**self._request("GET", f"/v2/orders/{order_id}"))

    def cancel(self, order_id: str) -> None:
        """Ask Alpaca to cancel; Refused (422) when the order can no longer be canceled."""
        self._request("DELETE", f"/v2/orders/{order_id}")

    # --- account ------------------------------------------------------------------------

    def account(self) -> TradeAccount:
        return TradeAccount(**self._request("GET", "/v2/account"))

    def positions(self) -> list[Position]:
        return [Position(**item) for item in self._request("GET", "/v2/positions")]

    def asset(self, symbol: str) -> Asset | None:
        """The asset, or None if Alpaca does not know the symbol."""
        try:
            return Asset(**self._request("GET", f"/v2/assets/{symbol}"))
        except Refused as exc:
            if exc.status == 404:
                return None
            raise


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:500]
    return (response.text.strip() or response.reason or "no message")[:500]
