"""Creating, stopping and deleting instances, with the checks a user's input needs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from autotrader_desktop import accounting
from autotrader_desktop.broker import Fill, OrderRequest, Rejection
from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Instance, db, write_transaction
from autotrader_desktop.decision import Decision
from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.errors import UserError
from autotrader_desktop.feed import sources

if TYPE_CHECKING:
    from autotrader_desktop.broker import Broker

SYMBOL_PATTERN = re.compile(r"[A-Z.]{1,10}")


class InstanceError(UserError):
    """A request that cannot be carried out; the message tells the user what to do."""


def normalize_symbol(text: str) -> str:
    symbol = (text or "").strip().upper()
    if not symbol:
        raise InstanceError("enter a symbol, e.g. NVDA")
    # At least one letter: '.' and '..' are no symbols (and would name directories in a URL).
    if not SYMBOL_PATTERN.fullmatch(symbol) or symbol.strip(".") == "":
        raise InstanceError(
            f"symbol {symbol!r} is not valid: use 1 to 10 letters A-Z or '.', with at least one "
            "letter, e.g. NVDA or BRK.B"
        )
    return symbol


def parse_capital(value: str | float) -> float:
    """The amount in dollars, refused unless whole cents: 10.555 is not silently 10.55."""
    text = str(value).replace(",", "").strip()
    try:
        capital = float(text)
    except ValueError:
        raise InstanceError(f"capital {value!r} is not a number; enter e.g. 10000") from None
    if not math.isfinite(capital) or capital <= 0:
        raise InstanceError(f"capital must be a finite amount greater than 0 (got {value!r})")
    if (Fraction(Decimal(text)) * 100).denominator != 1:
        cents = max(math.floor(capital * 100), 1)
        raise InstanceError(
            f"capital {value!r} has more than 2 decimals; enter whole cents, e.g. {cents / 100:.2f}"
        )
    return capital


def check_algorithm(name: str, algorithms: Iterable) -> None:
    """`algorithms`: a fresh discovery scan (objects with name, available, error)."""
    known = {a.name: a for a in algorithms}
    if name not in known:
        choices = ", ".join(sorted(a.name for a in known.values() if a.available)) or "none"
        raise InstanceError(f"no algorithm named {name!r}; available: {choices}")
    if not known[name].available:
        raise InstanceError(f"algorithm {name!r} is not available: {known[name].error}")


def display_name(symbol: str, algorithm: str, created_at: datetime) -> str:
    """`{SYMBOL}_{algorithm}_{YYYYMMDD_HHMMSS}` in local time, suffixed _2, _3... if taken."""
    base = f"{symbol}_{algorithm}_{created_at.astimezone():%Y%m%d_%H%M%S}"
    taken = {
        instance.display_name
        for instance in Instance.select(Instance.display_name).where(
            Instance.display_name.startswith(base)
        )
    }
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def create(
    symbol: str,
    algorithm: str,
    capital: str | float,
    *,
    algorithms: Iterable,
    starting_balance: float,
    clock: Clock,
    broker_cash: float | None = None,
    check_symbol: Callable[[str], None] | None = None,
) -> Instance:
    """Validate everything, then write one `running` row. Nothing is written on error.

    With an outside broker, `broker_cash` is its account's cash and `check_symbol` asks it
    whether the symbol can be traded.
    """
    symbol = normalize_symbol(symbol)
    check_algorithm(algorithm, algorithms)
    amount = parse_capital(capital)
    if check_symbol is not None:
        check_symbol(symbol)
    with write_transaction():
        source = sources.current()
        sources.check(source)
        cash = accounting.available_cash(starting_balance, broker_cash)
        if amount > cash + 1e-9:
            raise InstanceError(
                f"capital {amount:,.2f} is more than the available cash {cash:,.2f}"
            )
        now = clock.now()
        return Instance.create(
            display_name=display_name(symbol, algorithm, now),
            algorithm=algorithm,
            symbol=symbol,
            initial_capital=amount,
            status=InstanceStatus.RUNNING,
            created_at=now,
            cash=amount,
            shares=0,
            source=source,
        )


def get(instance_id: int) -> Instance:
    instance = Instance.get_or_none(Instance.id == instance_id)
    if instance is None:
        raise InstanceError(f"no instance with id {instance_id}; see `autotrader-desktop list`")
    return instance


def _liquidate(
    instance: Instance, price: float | None, broker: Broker | None, clock: Clock
) -> None:
    if instance.shares == 0:
        return
    assert broker is not None, "only a position-free instance stops without a broker"
    if price is None:
        raise InstanceError(
            f"no price known for {instance.symbol}, so its {instance.shares} shares cannot be "
            "sold; try again once the feed has a price"
        )
    now = clock.now()
    fill = broker.execute(
        OrderRequest(
            instance.id,
            instance.symbol,
            Decision("sell", instance.shares),
            instance.cash,
            instance.shares,
            price,
            now,
        )
    )
    if isinstance(fill, Rejection):
        raise InstanceError(f"cannot sell the open position: {fill.reason}")
    assert isinstance(fill, Fill), "an outside broker sells before the stop (close_position)"
    accounting.book_trade(instance.id, fill, now)
    instance.cash, instance.shares = fill.cash_after, fill.shares_after
    instance.trade_count += 1
    instance.last_price = price


def stop(
    instance_id: int,
    price_of: Callable[[str], float | None],
    broker: Broker | None,
    clock: Clock,
) -> Instance:
    """Stop a running (or failed) instance, selling any open position at the last price
    (`broker` None: the instance holds no shares)."""
    # The price first: it may come from the network, and nothing waits on the network while
    # the database's write lock is held.
    price = accounting.last_price(get(instance_id), price_of)
    with write_transaction():
        instance = get(instance_id)
        if instance.status == InstanceStatus.STOPPED:
            raise InstanceError(
                f"instance {instance_id} ({instance.display_name}) is already stopped"
            )
        if instance.shares and instance.source not in (None, sources.current()):
            # Its shares must be sold at the prices it was traded at.
            raise sources.SourceMismatch(
                f"instance {instance_id} ({instance.display_name}) trades on "
                f"{sources.describe(instance.source)} prices; stop it with that feed "
                f"(--feed), not {sources.describe(sources.current())}"
            )
        _liquidate(instance, price, broker, clock)
        instance.status, instance.stopped_at = InstanceStatus.STOPPED, clock.now()
        instance.save()
        return instance


def open_orders(instance_id: int) -> int:
    """How many of the instance's orders an outside broker may still fill."""
    from autotrader_desktop.broker.orders import TERMINAL  # orders books through accounting

    marks = ",".join("?" * len(TERMINAL))
    (count,) = db.execute_sql(
        f"SELECT COUNT(*) FROM orders WHERE instance_id = ? AND status NOT IN ({marks})",
        (instance_id, *TERMINAL),
    ).fetchone()
    return count


def check_deletable(instance: Instance) -> None:
    """Refuse to delete a running instance, or a failed one still holding shares."""
    if instance.status == InstanceStatus.RUNNING:
        raise InstanceError(
            f"instance {instance.id} ({instance.display_name}) is running; stop it first"
        )
    if instance.shares:
        raise InstanceError(
            f"instance {instance.id} ({instance.display_name}) failed holding "
            f"{instance.shares} shares; stop it first to sell them"
        )
    if open_orders(instance.id):
        raise InstanceError(
            f"instance {instance.id} ({instance.display_name}) has orders open at the "
            "broker; stop it first (that cancels them)"
        )


def delete(instance_id: int) -> Instance:
    """Delete a stopped or failed instance and its history.

    Its realized P&L stays in the account (see accounting).
    """
    with write_transaction():
        instance = get(instance_id)
        check_deletable(instance)
        accounting.archive_pnl(instance.cash - instance.initial_capital)
        instance.delete_instance()
        return instance
