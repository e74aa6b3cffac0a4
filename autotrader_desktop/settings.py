"""User settings: stored in the database, overridable by environment variables and options.

Precedence, highest first: command-line option, environment variable, stored setting,
default. `Settings` is the resolved view; `save` writes a stored setting.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from autotrader_desktop.database import Setting
from autotrader_desktop.enums import Broker, Feed
from autotrader_desktop.errors import UserError
from autotrader_desktop.feed import sources

log = logging.getLogger(__name__)

# Read once when the engine starts: changing one takes a restart of the app.
READ_AT_START = (
    "feed",
    "stream_url",
    "history_url",
    "algorithm_dir",
    "simulator_seed",
    "broker",
    "trading_url",
    "trading_stream_url",
    # The feed's outlier guard is built with it (feed/market_data.py).
    "price_band_pct",
)
# Given to each algorithm host when it starts: a change reaches the hosts started after it
# (Restart engine ends them all), not those running (engine.Engine._settings_to_hosts).
READ_AT_HOST_START = ("host_memory_limit_mb",)
TRADING_URLS = {
    Broker.ALPACA_PAPER: "https://paper-api.alpaca.markets",
    Broker.ALPACA_LIVE: "https://api.alpaca.markets",
}


@dataclass(frozen=True)
class Settings:
    feed: Feed = Feed.SIM
    stream_url: str | None = None
    history_url: str | None = None
    algorithm_dir: str | None = None
    starting_balance: float = 100_000.0
    commission: float = 0.0
    slippage_bps: float = 0.0
    run_time_limit: float = 20.0
    # None: on for an Alpaca feed or broker, off for the simulator with the paper broker.
    market_hours_gating: bool | None = None
    simulator_seed: int = 42
    # Address space of each algorithm host (one process per algorithm), in MB.
    host_memory_limit_mb: int = 1024
    broker: Broker = Broker.PAPER
    trading_url: str | None = None
    trading_stream_url: str | None = None
    # The most one order may be worth at the last price; 0: no cap.
    max_order_value: float = 0.0
    # Whether the engine a window started keeps trading after that window closes. Off:
    # closing the window is how a desktop user stops the app, and a process still trading
    # unseen (with a live broker, real money) would be a surprise; `headless` is there for
    # trading without a window.
    keep_trading_in_background: bool = False
    # How far (in %) a price may stray from the last believed one before it is held back as
    # a possible outlier (see feed/guard.py).
    price_band_pct: float = 10.0
    # Lines of captured output each instance keeps; older ones are rotated out.
    output_lines_kept: int = 2_000

    @property
    def gating_enabled(self) -> bool:
        if self.market_hours_gating is None:
            # Alpaca queues a market order sent while the market is closed until it opens:
            # a decision would fill hours after it was made, at a price nobody saw.
            return self.feed.is_alpaca or self.broker.is_alpaca
        return self.market_hours_gating

    @property
    def live(self) -> bool:
        return self.broker == Broker.ALPACA_LIVE

    @property
    def resolved_trading_url(self) -> str:
        """The Trading API's base URL: the setting, else Alpaca's for paper or live."""
        return (self.trading_url or TRADING_URLS.get(self.broker, "")).rstrip("/")

    @property
    def resolved_trading_stream_url(self) -> str:
        """The trade_updates stream: the setting, else the trading URL's host at /stream."""
        if self.trading_stream_url:
            return self.trading_stream_url
        scheme, _, rest = self.resolved_trading_url.partition("://")
        host = rest.split("/", 1)[0]
        return f"{'ws' if scheme == 'http' else 'wss'}://{host}/stream"


ENV_VARS = {
    "feed": "AUTOTRADER_FEED",
    "stream_url": "AUTOTRADER_STREAM_URL",
    "history_url": "AUTOTRADER_HISTORY_URL",
    "algorithm_dir": "AUTOTRADER_ALGORITHM_DIR",
    "starting_balance": "AUTOTRADER_STARTING_BALANCE",
    "commission": "AUTOTRADER_COMMISSION",
    "slippage_bps": "AUTOTRADER_SLIPPAGE_BPS",
    "run_time_limit": "AUTOTRADER_RUN_TIME_LIMIT",
    "market_hours_gating": "AUTOTRADER_MARKET_HOURS_GATING",
    "simulator_seed": "AUTOTRADER_SIMULATOR_SEED",
    "host_memory_limit_mb": "AUTOTRADER_HOST_MEMORY_LIMIT_MB",
    "broker": "AUTOTRADER_BROKER",
    "trading_url": "AUTOTRADER_TRADING_URL",
    "trading_stream_url": "AUTOTRADER_TRADING_STREAM_URL",
    "max_order_value": "AUTOTRADER_MAX_ORDER_VALUE",
    "keep_trading_in_background": "AUTOTRADER_KEEP_TRADING_IN_BACKGROUND",
    "price_band_pct": "AUTOTRADER_PRICE_BAND_PCT",
    "output_lines_kept": "AUTOTRADER_OUTPUT_LINES_KEPT",
}


# A host needs ~50 MB of address space to start; above 1 TB a limit means nothing.
HOST_MEMORY_LIMIT_RANGE_MB = (256, 1_048_576)

URL_FORMS = {
    "stream_url": (("ws", "wss"), "wss://stream.data.alpaca.markets/v2/iex"),
    "history_url": (("http", "https"), "https://data.alpaca.markets"),
    "trading_url": (("http", "https"), "https://paper-api.alpaca.markets"),
    "trading_stream_url": (("ws", "wss"), "wss://paper-api.alpaca.markets/stream"),
}

# Inclusive (low, high) bounds of the numeric settings. They keep every amount the engine
# computes finite and in SQLite's range, and every fill price positive; docs/limits.md
# says why each bound is where it is.
RANGES: dict[str, tuple[float, float]] = {
    "starting_balance": (0.01, 1e12),
    "commission": (0.0, 1_000_000.0),
    # Slippage of 100 % or more would pay sellers nothing or less: a negative price.
    "slippage_bps": (0.0, 9_999.0),
    "run_time_limit": (0.1, 3_600.0),
    "simulator_seed": (0, 2**63 - 1),
    "host_memory_limit_mb": HOST_MEMORY_LIMIT_RANGE_MB,
    # 0: no cap. Above the largest balance a cap caps nothing.
    "max_order_value": (0.0, 1e12),
    # 1 % is tighter than a volatile stock's minute; 1,000 % lets a price grow 11-fold.
    "price_band_pct": (1.0, 1_000.0),
    "output_lines_kept": (100, 1_000_000),
}
WHOLE_NUMBERS = ("simulator_seed", "host_memory_limit_mb", "output_lines_kept")


class SettingError(UserError):
    """A setting value that cannot be used; the message names the setting and what is valid."""


def _check_url(name: str, raw: Any) -> str:
    """A URL with one of the setting's schemes and a host, parsed (not prefix-checked)."""
    schemes, example = URL_FORMS[name]
    text = str(raw).strip()
    expected = f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL like {example}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError as exc:
        raise SettingError(f"{expected} (got {raw!r}: {exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname or " " in parts.netloc:
        raise SettingError(f"{expected} (got {raw!r})")
    return text


def _number(name: str, raw: Any) -> float | int:
    whole = name in WHOLE_NUMBERS
    try:
        # bool is refused: True is not a balance.
        if isinstance(raw, bool):
            raise ValueError
        value: float | int = float(raw) if not whole else int(str(raw).strip())
    except (TypeError, ValueError, OverflowError):
        kind = "a whole number" if whole else "a number"
        raise SettingError(f"{name} must be {kind} (got {raw!r})") from None
    low, high = RANGES[name]
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingError(
            f"{name} must be between {_readable(low)} and {_readable(high)} (got {raw!r})"
        )
    return value


def _readable(bound: float) -> str:
    return f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:g}"


def parse(name: str, raw: Any) -> Any:
    """Validate and convert a raw value (from a string or JSON) for setting `name`; the
    message of a SettingError starts with the setting's name."""
    if name == "feed":
        try:
            return Feed(raw)
        except ValueError:
            raise SettingError(f"feed must be one of {', '.join(Feed)} (got {raw!r})") from None
    if name == "broker":
        try:
            return Broker(raw)
        except ValueError:
            raise SettingError(f"broker must be one of {', '.join(Broker)} (got {raw!r})") from None
    if name in URL_FORMS:
        return None if raw in (None, "") else _check_url(name, raw)
    if name == "algorithm_dir":
        return None if raw in (None, "") else str(raw)
    if name in ("market_hours_gating", "keep_trading_in_background"):
        if isinstance(raw, bool) or (raw is None and name == "market_hours_gating"):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        if text in ("", "auto") and name == "market_hours_gating":
            return None
        choices = "on, off or auto" if name == "market_hours_gating" else "on or off"
        raise SettingError(f"{name} must be {choices} (got {raw!r})")
    return _number(name, raw)


def load(overrides: dict[str, Any] | None = None) -> Settings:
    """Resolve every setting: overrides (command line) > environment > database > default."""
    values: dict[str, Any] = {}
    stored = {row.key: json.loads(row.value) for row in Setting.select()}
    for field in fields(Settings):
        name = field.name
        if overrides and overrides.get(name) is not None:
            values[name] = parse(name, overrides[name])
        elif os.environ.get(ENV_VARS[name]):
            try:
                values[name] = parse(name, os.environ[ENV_VARS[name]])
            except SettingError as exc:
                raise SettingError(f"{ENV_VARS[name]}: {exc}") from None
        elif name in stored:
            try:
                values[name] = parse(name, stored[name])
            except SettingError as exc:
                # Stored by an earlier version with looser bounds: the app must still start
                # (its Settings dialog is where the user fixes it).
                log.warning("stored setting ignored, its default is used: %s", exc)
    return Settings(**values)


def from_json(values: dict[str, Any]) -> Settings:
    """Settings from their JSON form (as the engine's channel carries them)."""
    return Settings(**{name: parse(name, value) for name, value in values.items()})


def save(name: str, value: Any) -> None:
    if name not in ENV_VARS:
        raise SettingError(f"unknown setting {name!r}")
    value = parse(name, value)
    if name in ("feed", "simulator_seed"):
        # A data directory with instances keeps the prices they were traded at.
        stored = load()
        feed = value if name == "feed" else stored.feed
        seed = value if name == "simulator_seed" else stored.simulator_seed
        sources.check(sources.of_feed(feed, seed))
    Setting.insert(key=name, value=json.dumps(value)).on_conflict_replace().execute()
