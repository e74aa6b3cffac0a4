"""The Alpaca broker (paper or live): orders exactly once, fills as Alpaca reports them.

Life of an order (details in docs/broker.md):
1. `execute` (inside the journal's transaction) checks the order against the instance's
   cash and shares, minus what its open orders hold back, and records it (orders.record).
2. The order desk, a thread of its own, sends recorded orders after the commit. The first
   send is claimed in the database first; any later attempt (after a timeout, a dropped
   connection, 429, 5xx, or a crash of this or another process) looks the order up by its
   client_order_id before it re-sends. Alpaca refusing (403, 422) is final and journaled.
3. Fills arrive on the trade_updates stream; the desk also asks Alpaca by REST about every
   open order at start, after each (re)connection of the stream, at each cycle and every
   `reconcile_every` seconds, so an event the stream never delivered is still booked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from autotrader_desktop import credentials, instances
from autotrader_desktop.broker import (
    OrderRequest,
    Placed,
    PriceOf,
    Rejection,
    checked_price,
    halt,
    orders,
)
from autotrader_desktop.broker import account as broker_account
from autotrader_desktop.broker.account import BrokerAccount
from autotrader_desktop.broker.alpaca_api import (
    DUPLICATE_CLIENT_ORDER_ID,
    AssetExchange,
    AssetStatus,
    Doubt,
    Order,
    Refused,
    TradeAccount,
    TradeUpdate,
    TradingApi,
)
from autotrader_desktop.broker.orders import BrokerState, OrderRow, OrderStatus
from autotrader_desktop.broker.trade_updates import TradeUpdatesStream
from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Instance, db, write_transaction
from autotrader_desktop.errors import UserError
from autotrader_desktop.feed.client import Backoff
from autotrader_desktop.instances import InstanceError
from autotrader_desktop.settings import Settings

log = logging.getLogger(__name__)

# A decision not confirmed at Alpaca this long after it was made is dropped, not sent late.
PLACE_WITHIN_S = 120.0
RECONCILE_EVERY_S = 15.0
# An order in doubt is asked about again within this (sooner, honouring Retry-After).
DOUBT_BACKOFF_CAP_S = 5.0
# How long `stop` waits for its sell to fill before saying it is still open.
STOP_WAIT_S = 30.0
POSITION_WARNING = "position differs"


def state_of(
    order: Order, at: datetime | None = None, execution: tuple[int, float] | None = None
) -> BrokerState:
    status = order.status.value if hasattr(order.status, "value") else str(order.status)
    price = order.filled_avg_price
    return BrokerState(
        status,
        str(order.id),
        int(Decimal(str(order.filled_qty or 0))),
        float(price) if price not in (None, "") else None,
        at or order.filled_at or order.updated_at,
        execution=execution,
    )


class AlpacaBroker:
    def __init__(
        self,
        api: TradingApi,
        stream_url: str,
        key: credentials.Credentials,
        clock: Clock,
        *,
        live: bool = False,
        max_order_value: float = 0.0,
        reconcile_every: float = RECONCILE_EVERY_S,
    ) -> None:
        self.api = api
        self.clock = clock
        self.live = live
        self.max_order_value = max_order_value
        self.reconcile_every = reconcile_every
        self.stream = TradeUpdatesStream(stream_url, key, self.on_trade_update, self.reconcile)
        self.account: TradeAccount | None = None
        self.ready = threading.Event()  # orders left in flight are resolved
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._desk: threading.Thread | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._refresh_due = True
        self._last_refresh = 0.0
        self._retry_at: dict[int, float] = {}
        self._backoffs: dict[int, Backoff] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> AlpacaBroker:
        key = credentials.load(live=settings.live)
        if key is None:
            raise UserError(credentials.missing_message(settings.live))
        return cls(
            TradingApi(settings.resolved_trading_url, key),
            settings.resolved_trading_stream_url,
            key,
            clock,
            live=settings.live,
            max_order_value=settings.max_order_value,
        )

    # --- the journal's side (inside its write transaction) ------------------------------

    def execute(self, request: OrderRequest) -> Placed | Rejection:
        order, symbol = request.decision, request.symbol
        if halt.is_halted():
            return Rejection("trading is halted (Stop all trading); resume it to trade again")
        last_price = checked_price(request, self.max_order_value)
        if isinstance(last_price, Rejection):
            return last_price
        buying, selling, stopping = orders.reserved(request.instance_id)
        if stopping:
            return Rejection("the instance is being stopped: its sell order is open at Alpaca")
        if order.action == "buy":
            cost = order.shares * last_price
            free = request.cash - buying
            if cost > free + 1e-9:
                held_back = f" ({buying:,.2f} held for open orders)" if buying else ""
                return Rejection(
                    f"insufficient cash: {order.shares} {symbol} at about "
                    f"{last_price:,.2f} cost {cost:,.2f}, cash is {free:,.2f}{held_back}"
                )
        elif order.shares > request.held - selling:
            being_sold = f" ({selling} already being sold)" if selling else ""
            return Rejection(
                f"insufficient shares: selling {order.shares}, holding {request.held}{being_sold}"
            )
        return Placed()

    def dispatch(self) -> None:
        """Wake the desk: send what was recorded and ask Alpaca about open orders."""
        self._refresh_due = True
        self._wake.set()

    # --- life cycle -----------------------------------------------------------------------

    def open(self) -> None:
        if self._desk is None:
            self._closing.clear()
            self._desk = threading.Thread(target=self._run_desk, name="order desk", daemon=True)
            self._desk.start()

    async def connect(self) -> None:
        self._stream_task = asyncio.get_running_loop().create_task(self.stream.run())

    async def disconnect(self) -> None:
        task, self._stream_task = self._stream_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def close(self, drain_s: float = 10.0) -> None:
        """Stop the desk after it has sent what is recorded (waits up to `drain_s`)."""
        desk, self._desk = self._desk, None
        if desk is None:
            return
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and any(
            o.status == OrderStatus.RECORDED for o in orders.unfinished()
        ):
            self._wake.set()
            time.sleep(0.05)
        self._closing.set()
        self._wake.set()
        desk.join(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        self.api.close()

    # --- the order desk ---------------------------------------------------------------------

    def _run_desk(self) -> None:
        # Own database connection: peewee connections are per thread.
        self._pass()
        self._compare_positions()
        self.ready.set()
        while not self._closing.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._closing.is_set():
                break
            self._pass()
        db.close()

    def _next_wait(self) -> float:
        wait = max(0.0, self._last_refresh + self.reconcile_every - time.monotonic())
        if self._retry_at:
            wait = min(wait, max(0.0, min(self._retry_at.values()) - time.monotonic()))
        return max(wait, 0.02)

    def _pass(self) -> None:
        try:
            now = time.monotonic()
            refresh = self._refresh_due or now - self._last_refresh >= self.reconcile_every
            if refresh:
                self._refresh_due = False
                self._last_refresh = now
            for order in orders.unfinished():
                if order.status == OrderStatus.RECORDED:
                    if now >= self._retry_at.get(order.id, 0.0):
                        self._place(order)
                elif refresh:
                    self._refresh(order)
            if refresh:
                self._refresh_account()
        except Exception:
            # The desk must outlive anything one order does; the next pass tries again.
            log.exception("order desk pass failed")

    def _later(self, order: OrderRow, doubt: Doubt | None) -> None:
        backoff = self._backoffs.setdefault(order.id, Backoff(base=0.5, cap=DOUBT_BACKOFF_CAP_S))
        delay = backoff.next_delay()
        if doubt is not None and doubt.retry_after is not None:
            delay = min(max(doubt.retry_after, 0.0), 60.0)
        self._retry_at[order.id] = time.monotonic() + delay
        self._wake.set()

    def _settled(self, order: OrderRow) -> None:
        self._retry_at.pop(order.id, None)
        self._backoffs.pop(order.id, None)

    def _place(self, order: OrderRow) -> None:
        """Send a recorded order, unless a previous attempt may have arrived: then ask first."""
        now = self.clock.now()
        if not orders.claim(order.id, now):
            try:
                found = self.api.order_by_client_id(order.client_order_id)
            except (Doubt, Refused) as exc:
                log.warning("order %s in doubt, lookup failed: %s", order.client_order_id, exc)
                self._later(order, exc if isinstance(exc, Doubt) else None)
                return
            if found is not None:
                status = state_of(found).status
                log.info("order %s found at Alpaca (%s)", order.client_order_id, status)
                self._apply(found)
                self._settled(order)
                return
            age = (now - order.created_at).total_seconds()
            if halt.is_halted() or age > PLACE_WITHIN_S:
                why = (
                    "trading was halted"
                    if halt.is_halted()
                    else f"Alpaca could not be reached within {PLACE_WITHIN_S:g} s of the decision"
                )
                orders.drop(order, f"not sent: {why}", now)
                self._settled(order)
                return
        elif halt.is_halted():
            orders.drop(order, "not sent: trading was halted", now)
            self._settled(order)
            return
        try:
            sent = self.api.submit_market_order(
                order.client_order_id, order.symbol, order.side, order.qty
            )
        except Doubt as exc:
            log.warning("order %s in doubt: %s", order.client_order_id, exc)
            self._later(order, exc)
            return
        except Refused as exc:
            if DUPLICATE_CLIENT_ORDER_ID in exc.message:
                self._later(order, None)  # it exists: the next attempt looks it up
                return
            if exc.status == 401:
                log.error(
                    "Alpaca refused the API key (%s); order %s waits", exc, order.client_order_id
                )
                self._later(order, None)
                return
            log.info("order %s rejected by Alpaca: %s", order.client_order_id, exc.message)
            orders.apply(
                order.client_order_id,
                BrokerState(OrderStatus.REJECTED, None, 0, None, now, f"Alpaca: {exc.message}"),
            )
            self._settled(order)
            return
        self._apply(sent)
        self._settled(order)

    def _refresh(self, order: OrderRow) -> None:
        try:
            if order.broker_order_id:
                found: Order | None = self.api.order(order.broker_order_id)
            else:
                found = self.api.order_by_client_id(order.client_order_id)
        except (Doubt, Refused) as exc:
            log.warning("could not ask Alpaca about order %s: %s", order.client_order_id, exc)
            return
        if found is not None:
            self._apply(found)

    def _apply(
        self,
        order: Order,
        at: datetime | None = None,
        execution: tuple[int, float] | None = None,
    ) -> OrderRow | None:
        return orders.apply(order.client_order_id, state_of(order, at, execution))

    def _refresh_account(self) -> None:
        with contextlib.suppress(Doubt, Refused):
            self._keep(self.api.account())

    def _keep(self, account: TradeAccount) -> None:
        self.account = account
        broker_account.save(
            BrokerAccount(
                account.account_number, float(account.cash or 0), float(account.equity or 0)
            )
        )

    def reconcile(self) -> None:
        """After any gap in the stream: ask Alpaca about every open order (on the desk)."""
        self.dispatch()

    def on_trade_update(self, update: TradeUpdate) -> None:
        event = update.event.value if hasattr(update.event, "value") else str(update.event)
        execution = None
        if event in ("fill", "partial_fill") and update.qty and update.price is not None:
            execution = (int(update.qty), float(update.price))
        applied = self._apply(update.order, update.timestamp, execution)
        if applied is not None:
            log.info(
                "order %s: %s (%s of %s filled)",
                applied.client_order_id,
                event,
                applied.filled_qty,
                applied.qty,
            )

    # --- positions --------------------------------------------------------------------------

    def _compare_positions(self) -> None:
        """Show any difference between Alpaca's positions and the instances' shares (never fix)."""
        try:
            held = {p.symbol: int(Decimal(p.qty)) for p in self.api.positions()}
        except (Doubt, Refused) as exc:
            log.warning("could not compare positions with Alpaca: %s", exc)
            return
        ours: dict[str, int] = {}
        for symbol, shares in db.execute_sql(
            "SELECT ticker, SUM(shares) FROM algorithm_instances WHERE status != 'stopped'"
            " GROUP BY ticker"
        ).fetchall():
            ours[symbol] = shares
        with write_transaction():
            for symbol, shares in ours.items():
                at_alpaca = held.get(symbol, 0)
                if at_alpaca != shares:
                    message = (
                        f"{POSITION_WARNING}: Alpaca holds {at_alpaca} {symbol}, the instances "
                        f"on {symbol} hold {shares}; traded outside the app? Check the "
                        "position in Alpaca (nothing was changed here)"
                    )
                    log.warning(message)
                    db.execute_sql(
                        "UPDATE algorithm_instances SET warning = ? WHERE ticker = ?"
                        " AND status != 'stopped'",
                        (message, symbol),
                    )
                else:
                    db.execute_sql(
                        "UPDATE algorithm_instances SET warning = NULL WHERE ticker = ?"
                        " AND warning LIKE ?",
                        (symbol, POSITION_WARNING + "%"),
                    )
        for symbol in sorted(set(held) - set(ours)):
            log.info("Alpaca holds %s %s, which no instance trades", held[symbol], symbol)

    # --- what the user does -------------------------------------------------------------------

    def account_cash(self) -> float:
        try:
            account = self.api.account()
        except (Doubt, Refused) as exc:
            raise UserError(f"cannot read the account's cash from Alpaca: {exc}") from None
        self._keep(account)
        return float(account.cash or 0)

    def check_symbol(self, symbol: str) -> None:
        try:
            asset = self.api.asset(symbol)
        except (Doubt, Refused) as exc:
            raise InstanceError(
                f"could not check {symbol} with Alpaca ({exc}); try again"
            ) from None
        if asset is None:
            raise InstanceError(f"Alpaca does not know the symbol {symbol}")
        if asset.status != AssetStatus.ACTIVE:
            raise InstanceError(f"{symbol} is not active at Alpaca")
        if not asset.tradable:
            raise InstanceError(f"{symbol} is not tradable at Alpaca")
        if asset.exchange == AssetExchange.OTC:
            raise InstanceError(
                f"{symbol} trades over the counter (OTC), which the app does not trade"
            )

    def close_position(
        self, instance_id: int, price_of: PriceOf, wait_s: float = STOP_WAIT_S
    ) -> Instance | None:
        """Cancel the instance's open orders and sell its shares; the instance is stopped
        when the sell filled (orders.apply). None: nothing was left to sell."""
        deadline = time.monotonic() + wait_s
        instance = instances.get(instance_id)
        if instance.status == "stopped":
            raise InstanceError(
                f"instance {instance_id} ({instance.display_name}) is already stopped"
            )
        for order in orders.unfinished(instance_id):
            if order.purpose == "run":
                self._withdraw(order, "withdrawn: the instance was stopped")
        self._settle(lambda: orders.unfinished(instance_id), deadline, purpose="run")
        instance = instances.get(instance_id)
        if instance.shares == 0 and not orders.unfinished(instance_id):
            return None
        open_stop = [o for o in orders.unfinished(instance_id) if o.purpose == "stop"]
        if open_stop:
            stop = open_stop[0]
        else:
            now = self.clock.now()
            with write_transaction():
                stop = orders.record(
                    instance_id,
                    "stop",
                    instance.symbol,
                    "sell",
                    instance.shares,
                    price_of(instance.symbol) or instance.last_price or 0.0,
                    now,
                    now,
                )
        self._settle(lambda: [o for o in [orders.get(stop.client_order_id)] if o], deadline)
        final = orders.get(stop.client_order_id)
        assert final is not None
        if final.status == OrderStatus.FILLED:
            return instances.get(instance_id)
        if final.terminal:
            raise InstanceError(orders.stop_failure(final))
        raise InstanceError(
            f"the sell of {final.qty - final.filled_qty} {final.symbol} is placed at Alpaca but "
            "not filled yet (is the market open?); the instance stops when it fills"
        )

    def _settle(
        self,
        pending: Callable[[], list[OrderRow]],
        deadline: float,
        purpose: str | None = None,
    ) -> None:
        """Drive orders to a final state (send, look up, refresh) until `deadline`."""
        while time.monotonic() < deadline:
            left = [
                o for o in pending() if not o.terminal and (purpose is None or o.purpose == purpose)
            ]
            if not left:
                return
            for order in left:
                if order.status == OrderStatus.RECORDED:
                    if time.monotonic() >= self._retry_at.get(order.id, 0.0):
                        self._place(order)
                else:
                    self._refresh(order)
            time.sleep(0.1)

    def _withdraw(self, order: OrderRow, reason: str) -> None:
        """Take back an order: never sent if we can still keep it from being sent, else cancel."""
        now = self.clock.now()
        if order.status == OrderStatus.RECORDED:
            if orders.claim(order.id, now):
                orders.drop(order, reason, now)
                return
            try:
                found = self.api.order_by_client_id(order.client_order_id)
            except (Doubt, Refused) as exc:
                log.warning("could not look up order %s: %s", order.client_order_id, exc)
                return
            if found is None:
                orders.drop(order, reason, now)
                return
            updated = self._apply(found)
            if updated is None or updated.terminal:
                return
            order = updated
        if order.broker_order_id and not order.terminal:
            try:
                self.api.cancel(order.broker_order_id)
            except Refused:
                pass  # already final: the refresh below says how
            except Doubt as exc:
                log.warning("cancel of order %s in doubt: %s", order.client_order_id, exc)
            self._refresh(order)

    def halt(self, wait_s: float = 10.0) -> int:
        """Stop all trading: set the halt, cancel every open order of ours. Returns how many."""
        with write_transaction():
            halt.set_halted(True)
        unfinished = orders.unfinished()
        for order in unfinished:
            self._withdraw(order, "not sent: trading was halted")
        self._settle(orders.unfinished, time.monotonic() + wait_s)
        return len(unfinished)
