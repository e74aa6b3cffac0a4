"""Deterministic synthetic prices: a pure function of (symbol, time, seed).

Trades happen on a fixed grid of ticks (TICKS_PER_SECOND per symbol). A tick's price is a
symbol-specific base price times exp(sum of smooth value-noise layers at several time scales),
so any moment can be computed directly, without replaying history: the same symbol shows the
same history in every process and after every restart, and tests can predict it.
Minute bars are the OHLCV aggregate of the ticks inside [t, t + 60 s).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np

TICKS_PER_SECOND = 4
TICK_MS = 1000 // TICKS_PER_SECOND
TICKS_PER_MINUTE = 60 * TICKS_PER_SECOND
DEFAULT_SEED = 42

# (period in ticks, amplitude of log-price): monthly drift down to sub-second jitter.
_LAYERS = (
    (30 * 86_400 * TICKS_PER_SECOND, 0.12),
    (86_400 * TICKS_PER_SECOND, 0.025),
    (3_600 * TICKS_PER_SECOND, 0.008),
    (600 * TICKS_PER_SECOND, 0.004),
    (60 * TICKS_PER_SECOND, 0.0015),
    (5 * TICKS_PER_SECOND, 0.0004),
)
_TICK_NOISE = 0.00015


def _symbol_key(symbol: str, seed: int) -> np.uint64:
    digest = hashlib.blake2b(f"{symbol}\0{seed}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _unit(key: np.uint64, salt: int, index: np.ndarray) -> np.ndarray:
    """Deterministic values in [-1, 1) for integer indices."""
    with np.errstate(over="ignore"):
        x = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key + np.uint64(salt)
    return (_mix(x) >> np.uint64(11)).astype(np.float64) / float(1 << 52) - 1.0


def base_price(symbol: str, seed: int = DEFAULT_SEED) -> float:
    """The symbol's typical price level, between 10 and 510."""
    unit = float(_unit(_symbol_key(symbol, seed), 7, np.array([0]))[0])
    return round(10.0 + 250.0 * (unit + 1.0), 2)


def tick_prices(symbol: str, ticks: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Trade prices (rounded to cents) at integer tick indices (epoch ms // TICK_MS)."""
    key = _symbol_key(symbol, seed)
    ticks = ticks.astype(np.int64)
    log_price = np.zeros(ticks.shape, dtype=np.float64)
    for salt, (period, amplitude) in enumerate(_LAYERS, start=11):
        lattice = ticks // period
        frac = (ticks - lattice * period) / period
        smooth = frac * frac * (3.0 - 2.0 * frac)
        left = _unit(key, salt, lattice)
        right = _unit(key, salt, lattice + 1)
        log_price += amplitude * (left + (right - left) * smooth)
    log_price += _TICK_NOISE * _unit(key, 97, ticks)
    return np.round(base_price(symbol, seed) * np.exp(log_price), 2)


def tick_sizes(symbol: str, ticks: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Shares traded at each tick: 1..400, busier around the US open and close."""
    key = _symbol_key(symbol, seed)
    unit = (_unit(key, 131, ticks.astype(np.int64)) + 1.0) / 2.0
    seconds_of_day = (ticks // TICKS_PER_SECOND) % 86_400
    # 14:30 and 21:00 UTC are the regular-session open and close.
    busy = 1.0 + 1.5 * np.exp(-(((seconds_of_day - 52_200) / 1_800.0) ** 2))
    busy += 1.0 * np.exp(-(((seconds_of_day - 75_600) / 1_800.0) ** 2))
    return np.maximum(1, (unit * unit * 200 * busy).astype(np.int64))


def minute_bars(
    symbol: str, start: int, end: int, seed: int = DEFAULT_SEED
) -> list[tuple[int, float, float, float, float, float]]:
    """Bars (t, o, h, l, c, v) for every minute start t (epoch s) with start <= t < end."""
    first_minute = -(-start // 60) * 60
    minutes = np.arange(first_minute, end, 60, dtype=np.int64)
    if minutes.size == 0:
        return []
    ticks = minutes[0] * TICKS_PER_SECOND + np.arange(minutes.size * TICKS_PER_MINUTE)
    prices = tick_prices(symbol, ticks, seed).reshape(minutes.size, TICKS_PER_MINUTE)
    sizes = tick_sizes(symbol, ticks, seed).reshape(minutes.size, TICKS_PER_MINUTE)
    return list(
        zip(
            minutes.tolist(),
            prices[:, 0].tolist(),
            prices.max(axis=1).tolist(),
            prices.min(axis=1).tolist(),
            prices[:, -1].tolist(),
            sizes.sum(axis=1).astype(np.float64).tolist(),
            strict=True,
        )
    )


def price_at(symbol: str, when: datetime, seed: int = DEFAULT_SEED) -> float:
    """Price of the last trade at or before `when`."""
    tick = int(when.timestamp() * 1000) // TICK_MS
    return float(tick_prices(symbol, np.array([tick]), seed)[0])
