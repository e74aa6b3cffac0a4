"""Where prices come from: a *source* names one market-data origin, and bars are stored
per source, so simulated and real minutes never meet.

- `sim/<seed>`: the embedded simulator (each seed is a different, made-up market);
- `alpaca-iex`, `alpaca-sip`: Alpaca's real prices from one of its feeds.

A process works with one source at a time (`use`, set from the settings by whatever
starts market data: the engine, a CLI command). A data directory belongs to one source
once it has instances (each records the source it was created on): its books were kept at
those prices, and valuing them at another source's prices would be wrong. Starting the
engine, creating an instance or saving the setting with another feed is refused with a
message saying to use another data directory (docs/market-data.md).
"""

from __future__ import annotations

from autotrader_desktop.database import db
from autotrader_desktop.errors import UserError

DEFAULT = "sim/42"
_current = DEFAULT


class SourceMismatch(UserError):
    """The data directory's instances trade on another source's prices."""


def of_feed(feed: str, seed: int) -> str | None:
    """The source a feed setting reads from; None for no market data ("none")."""
    if feed == "sim":
        return f"sim/{seed}"
    if feed.startswith("alpaca-"):
        return str(feed)
    return None


def for_feed(feed: str, seed: int) -> str:
    """The source a process with these settings works with; for "none", the data
    directory's own (its charts stay viewable offline)."""
    return of_feed(feed, seed) or of_data_dir() or DEFAULT


def describe(source: str) -> str:
    if source.startswith("sim/"):
        return f"the simulator (seed {source.removeprefix('sim/')})"
    return {"alpaca-iex": "Alpaca IEX", "alpaca-sip": "Alpaca SIP"}.get(source, source)


def use(source: str) -> None:
    """Make `source` the one this process stores and reads bars of."""
    global _current
    _current = source


def current() -> str:
    return _current


def of_data_dir() -> str | None:
    """The source the open data directory's instances trade on, if it has any."""
    row = db.execute_sql(
        "SELECT source FROM algorithm_instances WHERE source IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def check(source: str | None) -> None:
    """Refuse `source` for a data directory whose instances trade on another one."""
    owner = of_data_dir()
    if source is None or owner is None or owner == source:
        return
    raise SourceMismatch(
        f"this data directory's instances trade on {describe(owner)} prices; "
        f"{describe(source)} prices must not be mixed with them. Use another data "
        "directory (--data-dir or AUTOTRADER_DATA_DIR) for this feed, switch the feed back, "
        "or delete those instances first"
    )
