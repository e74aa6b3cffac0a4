"""A stand-in for Alpaca's Trading API v2 on 127.0.0.1, written for the tests.

REST (`/v2/orders`, `/v2/orders:by_client_order_id`, `/v2/orders/{id}`, `/v2/account`,
`/v2/positions`, `/v2/assets/{symbol}`) and the `trade_updates` WebSocket stream (binary
frames, as Alpaca's paper endpoint sends them), with Alpaca's field names, status codes and
messages. It keeps real books: cash, positions and every execution, so a test can compare
them with the app's database.

What it can do wrong on purpose:
- `fault(...)`: the next matching request is dropped before or after the order is accepted,
  answered 429 with Retry-After or 500, or answered late;
- `plan(...)`: the next order fills in parts with delays, is rejected after being accepted,
  never fills, or is reported only by REST (no stream events);
- `pause_stream()`/`resume_stream()`: the stream drops every client and refuses new ones,
  so events in between are lost, as after a real disconnect.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

KEY_ID = "PKSTANDIN0000000000"
SECRET = "standin-secret-Zq8vR2xW9pL4"
ACCOUNT_NUMBER = "PA3STANDIN01"
TERMINAL = ("filled", "canceled", "expired", "rejected")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    """What to do to the next request matching `method` and `path` (a prefix)."""

    method: str
    path: str
    accept: bool = False  # create the order before misbehaving (POST /v2/orders)
    drop: bool = False  # close the connection without an answer
    status: int | None = None  # answer this status instead
    retry_after: float | None = None
    delay: float = 0.0  # wait this long before answering (or dropping)


def drop_after_accept(delay: float = 0.0) -> Fault:
    return Fault("POST", "/v2/orders", accept=True, drop=True, delay=delay)


def drop_before_accept() -> Fault:
    return Fault("POST", "/v2/orders", drop=True)


def rate_limited(retry_after: float = 1.0, method: str = "POST", path: str = "/v2/orders") -> Fault:
    return Fault(method, path, status=429, retry_after=retry_after)


def server_error(accept: bool = False, method: str = "POST", path: str = "/v2/orders") -> Fault:
    return Fault(method, path, accept=accept, status=500)


def slow_answer(delay: float, accept: bool = True) -> Fault:
    return Fault("POST", "/v2/orders", accept=accept, delay=delay)


@dataclass
class Plan:
    """How the next order is executed. `parts`: (qty, seconds after the previous step, price
    or None for the symbol's price); None: one fill of the whole order at once."""

    parts: list[tuple[int, float, Decimal | None]] | None = None
    reject_after: float | None = None  # accepted, then rejected
    hold: bool = False  # stays open (new) until canceled
    silent: bool = False  # no stream events: only REST tells


@dataclass
class StandInOrder:
    data: dict[str, Any]
    plan: Plan
    notional: Decimal = Decimal(0)
    executions: list[tuple[int, Decimal]] = field(default_factory=list)


class TradingApiStandIn:
    def __init__(self, cash: Decimal | str = "100000", binary_frames: bool = True) -> None:
        self.cash = self.starting_cash = Decimal(cash)
        self.binary_frames = binary_frames
        self.prices: dict[str, Decimal] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, StandInOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, int] = {}
        self.costs: dict[str, Decimal] = {}
        self.faults: deque[Fault] = deque()
        self.plans: deque[Plan] = deque()
        self.duplicate_posts = 0
        self.posts = 0
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.in_flight = 0  # requests held back by a fault's delay right now
        self.lock = threading.RLock()
        self._timers: list[threading.Timer] = []
        self._listeners: set[ServerConnection] = set()
        self._stream_paused = False
        self.stream_sessions = 0
        self.frames_sent: list[bytes | str] = []
        for symbol in ("NVDA", "AAPL", "MSFT"):
            self.add_asset(symbol)

    # --- set-up ------------------------------------------------------------------------

    def add_asset(
        self, symbol: str, tradable: bool = True, status: str = "active", exchange: str = "NASDAQ"
    ) -> None:
        self.assets[symbol] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "class": "us_equity",
            "exchange": exchange,
            "symbol": symbol,
            "name": f"{symbol} Inc. Common Stock",
            "status": status,
            "tradable": tradable,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": True,
            "attributes": [],
        }

    def price(self, symbol: str) -> Decimal:
        return self.prices.get(symbol, Decimal("100.00"))

    def fault(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def plan(self, *plans: Plan) -> None:
        self.plans.extend(plans)

    def start(self) -> TradingApiStandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._http = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._ws = serve(self._stream_session, "127.0.0.1", 0)
        threading.Thread(target=self._ws.serve_forever, daemon=True).start()
        return self

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/stream"

    def stop(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
        self._http.shutdown()
        self._http.server_close()
        self._ws.shutdown()

    # --- what the tests read -------------------------------------------------------------

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        with self.lock:
            order_id = self.by_client_id.get(client_order_id)
            return dict(self.orders[order_id].data) if order_id else None

    def all_orders(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(o.data) for o in self.orders.values()]

    def executions(self, order_id: str) -> list[tuple[int, Decimal]]:
        with self.lock:
            return list(self.orders[order_id].executions)

    def open_orders(self) -> int:
        with self.lock:
            return sum(o.data["status"] not in TERMINAL for o in self.orders.values())

    # --- the stream ------------------------------------------------------------------------

    def pause_stream(self) -> None:
        """Drop every stream client and refuse new sessions until `resume_stream`."""
        with self.lock:
            self._stream_paused = True
            listeners, self._listeners = list(self._listeners), set()
        for conn in listeners:
            conn.close()

    def resume_stream(self) -> None:
        with self.lock:
            self._stream_paused = False

    def listening(self) -> int:
        with self.lock:
            return len(self._listeners)

    def _send(self, conn: ServerConnection, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        conn.send(text.encode() if self.binary_frames else text)

    def _stream_session(self, conn: ServerConnection) -> None:
        with self.lock:
            paused = self._stream_paused
        if paused:
            conn.close()
            return
        try:
            auth = json.loads(conn.recv(timeout=10))
            data = auth.get("data") or {}
            ok = (
                auth.get("action") == "authenticate"
                and data.get("key_id") == KEY_ID
                and data.get("secret_key") == SECRET
            )
            self._send(
                conn,
                {
                    "stream": "authorization",
                    "data": {
                        "action": "authenticate",
                        "status": "authorized" if ok else "unauthorized",
                    },
                },
            )
            if not ok:
                conn.close()
                return
            listen = json.loads(conn.recv(timeout=10))
            streams = (listen.get("data") or {}).get("streams") or []
            self._send(conn, {"stream": "listening", "data": {"streams": streams}})
            with self.lock:
                if self._stream_paused:
                    conn.close()
                    return
                self._listeners.add(conn)
                self.stream_sessions += 1
            for _ in conn:
                pass
        except (ConnectionClosed, TimeoutError, ValueError, OSError):
            pass
        finally:
            with self.lock:
                self._listeners.discard(conn)

    def _event(self, order: StandInOrder, event: str, **extra: Any) -> None:
        """Send a trade update to every listener (call with the lock held)."""
        if order.plan.silent:
            return
        message = {
            "stream": "trade_updates",
            "data": {"event": event, "timestamp": _now(), "order": dict(order.data), **extra},
        }
        for conn in list(self._listeners):
            with contextlib.suppress(ConnectionClosed, OSError):
                self._send(conn, message)

    # --- orders ----------------------------------------------------------------------------

    def _later(self, delay: float, action, *args: Any) -> None:
        timer = threading.Timer(delay, action, args)
        timer.daemon = True
        with self.lock:
            self._timers.append(timer)
        timer.start()

    def _refusal(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        symbol, side = str(body.get("symbol") or ""), body.get("side")
        qty = int(body.get("qty") or 0)
        if body.get("client_order_id") in self.by_client_id:
            self.duplicate_posts += 1
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        asset = self.assets.get(symbol)
        if asset is None:
            return 422, {"code": 40010001, "message": f'asset "{symbol}" not found'}
        if not asset["tradable"]:
            return 422, {"code": 42210000, "message": f"asset {symbol} is not tradable"}
        if body.get("type") != "market" or body.get("time_in_force") != "day" or qty <= 0:
            return 422, {"code": 40010001, "message": "only day market orders of qty > 0 here"}
        open_orders = [o for o in self.orders.values() if o.data["status"] not in TERMINAL]
        if side == "buy":
            held_back = sum(
                (int(o.data["qty"]) - int(o.data["filled_qty"])) * self.price(o.data["symbol"])
                for o in open_orders
                if o.data["side"] == "buy"
            )
            if qty * self.price(symbol) > self.cash - held_back:
                return 403, {
                    "buying_power": str(self.cash - held_back),
                    "code": 40310000,
                    "cost_basis": str(qty * self.price(symbol)),
                    "message": "insufficient buying power",
                }
        else:
            selling = sum(
                int(o.data["qty"]) - int(o.data["filled_qty"])
                for o in open_orders
                if o.data["side"] == "sell" and o.data["symbol"] == symbol
            )
            available = self.positions.get(symbol, 0) - selling
            if qty > available:
                return 403, {
                    "code": 40310000,
                    "message": f"insufficient qty available for order (requested: {qty}, "
                    f"available: {available})",
                }
        return None

    def _accept(self, body: dict[str, Any]) -> StandInOrder:
        now = _now()
        symbol = body["symbol"]
        order = StandInOrder(
            {
                "id": str(uuid.uuid4()),
                "client_order_id": body.get("client_order_id") or str(uuid.uuid4()),
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "expired_at": None,
                "canceled_at": None,
                "failed_at": None,
                "replaced_at": None,
                "replaced_by": None,
                "replaces": None,
                "asset_id": self.assets[symbol]["id"],
                "symbol": symbol,
                "asset_class": "us_equity",
                "notional": None,
                "qty": str(int(body["qty"])),
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": "simple",
                "order_type": "market",
                "type": "market",
                "side": body["side"],
                "position_intent": "buy_to_open" if body["side"] == "buy" else "sell_to_close",
                "time_in_force": "day",
                "limit_price": None,
                "stop_price": None,
                "status": "new",
                "extended_hours": False,
                "legs": None,
                "trail_percent": None,
                "trail_price": None,
                "hwm": None,
            },
            self.plans.popleft() if self.plans else Plan(),
        )
        self.orders[order.data["id"]] = order
        self.by_client_id[order.data["client_order_id"]] = order.data["id"]
        self._event(order, "new")
        plan, qty = order.plan, int(body["qty"])
        if plan.reject_after is not None:
            self._later(plan.reject_after, self._reject, order)
        elif not plan.hold:
            parts = plan.parts or [(qty, 0.0, None)]
            if parts == [(qty, 0.0, None)]:
                self._execute(order, qty, None)  # fills before the answer, like a liquid stock
            else:
                delay = 0.0
                for part_qty, after, price in parts:
                    delay += after
                    self._later(delay, self._execute, order, part_qty, price)
        return order

    def _execute(self, order: StandInOrder, qty: int, price: Decimal | None) -> None:
        with self.lock:
            data = order.data
            if data["status"] in TERMINAL:
                return
            symbol = data["symbol"]
            price = price if price is not None else self.price(symbol)
            filled = int(data["filled_qty"]) + qty
            order.notional += qty * price
            order.executions.append((qty, price))
            data["filled_qty"] = str(filled)
            data["filled_avg_price"] = str((order.notional / filled).quantize(Decimal("0.0001")))
            sign = 1 if data["side"] == "buy" else -1
            self.cash -= sign * qty * price
            self.positions[symbol] = self.positions.get(symbol, 0) + sign * qty
            self.costs[symbol] = self.costs.get(symbol, Decimal(0)) + sign * qty * price
            now = _now()
            done = filled >= int(data["qty"])
            data["status"] = "filled" if done else "partially_filled"
            data["updated_at"] = now
            if done:
                data["filled_at"] = now
            self._event(
                order,
                "fill" if done else "partial_fill",
                execution_id=str(uuid.uuid4()),
                price=str(price),
                qty=str(qty),
                position_qty=str(self.positions[symbol]),
            )

    def _reject(self, order: StandInOrder) -> None:
        with self.lock:
            if order.data["status"] in TERMINAL:
                return
            order.data.update(status="rejected", failed_at=_now(), updated_at=_now())
            self._event(order, "rejected")

    def cancel(self, order_id: str) -> tuple[int, dict[str, Any] | None]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if order.data["status"] in TERMINAL:
                return 422, {
                    "code": 42210000,
                    "message": f'order is already in "{order.data["status"]}" state',
                }
            order.data.update(status="canceled", canceled_at=_now(), updated_at=_now())
            self._event(order, "canceled")
            return 204, None

    def account(self) -> dict[str, Any]:
        value = sum((q * self.price(s) for s, q in self.positions.items()), Decimal(0))
        cash = str(self.cash)
        return {
            "id": "f1a1e3c8-0000-4000-8000-5a3d1e000001",
            "account_number": ACCOUNT_NUMBER,
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": cash,
            "regt_buying_power": cash,
            "daytrading_buying_power": cash,
            "non_marginable_buying_power": cash,
            "cash": cash,
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "portfolio_value": str(self.cash + value),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T15:04:05.000000Z",
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": False,
            "equity": str(self.cash + value),
            "last_equity": str(self.cash + value),
            "long_market_value": str(value),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
        }

    def position_list(self) -> list[dict[str, Any]]:
        result = []
        for symbol, qty in sorted(self.positions.items()):
            if qty == 0:
                continue
            price, cost = self.price(symbol), self.costs[symbol]
            result.append(
                {
                    "asset_id": self.assets[symbol]["id"],
                    "symbol": symbol,
                    "exchange": self.assets[symbol]["exchange"],
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "avg_entry_price": str((cost / qty).quantize(Decimal("0.0001"))),
                    "qty": str(qty),
                    "qty_available": str(qty),
                    "side": "long" if qty > 0 else "short",
                    "market_value": str(qty * price),
                    "cost_basis": str(cost),
                    "unrealized_pl": str(qty * price - cost),
                    "current_price": str(price),
                    "lastday_price": str(price),
                    "change_today": "0",
                }
            )
        return result


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Dropped connections are what some tests are about; nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    owner: TradingApiStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        owner = self.owner
        with owner.lock:
            for fault in owner.faults:
                if fault.method == method and path.startswith(fault.path):
                    owner.faults.remove(fault)
                    return fault
        return None

    def _handle(self, method: str) -> None:
        owner = self.owner
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if (
            self.headers.get("APCA-API-KEY-ID") != KEY_ID
            or self.headers.get("APCA-API-SECRET-KEY") != SECRET
        ):
            self._answer(401, {"code": 40110000, "message": "request is not authorized"})
            return
        with owner.lock:
            owner.requests.append((time.monotonic(), method, path))
        fault = self._take_fault(method, path)
        accepted = None
        if method == "POST" and path == "/v2/orders":
            body = json.loads(raw or b"{}")
            with owner.lock:
                owner.posts += 1
                if fault is None or fault.accept:
                    refusal = owner._refusal(body)
                    if refusal is not None:
                        self._answer(*refusal)
                        return
                    accepted = owner._accept(body)
        if fault is not None:
            with owner.lock:
                owner.in_flight += 1
            time.sleep(fault.delay)
            with owner.lock:
                owner.in_flight -= 1
            if fault.drop:
                self._drop()
                return
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                self._answer(
                    fault.status, {"code": fault.status * 100000, "message": "fault"}, headers
                )
                return
        with owner.lock:
            if accepted is not None:
                self._answer(200, dict(accepted.data))
            else:
                self._answer(*self._route(method, path, query))

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        owner = self.owner
        not_found = (404, {"code": 40410000, "message": "resource not found"})
        if method == "GET" and path == "/v2/account":
            return 200, owner.account()
        if method == "GET" and path == "/v2/positions":
            return 200, owner.position_list()
        if method == "GET" and path.startswith("/v2/assets/"):
            asset = owner.assets.get(path.rsplit("/", 1)[1])
            if asset is None:
                return 404, {"code": 40410000, "message": "asset not found"}
            return 200, asset
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            found = owner.order_by_client_id((query.get("client_order_id") or [""])[0])
            if found is None:
                return 404, {"code": 40410000, "message": "order not found"}
            return 200, found
        if path.startswith("/v2/orders/"):
            order_id = path.rsplit("/", 1)[1]
            if method == "DELETE":
                return owner.cancel(order_id)
            order = owner.orders.get(order_id)
            return (200, dict(order.data)) if order else not_found
        return not_found
