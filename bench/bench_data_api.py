"""get_data_for_algorithm(n=200) with 1,000,000 bars stored vs a raw sqlite3 query.

The bar (docs/behaviour.md#quality-bars): median <= 2x a raw `sqlite3` query returning the
same dicts, measured in the same run on the same database file."""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from autotrader_desktop import api, database
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.feed import sources

SYMBOLS = 20
BARS_PER_SYMBOL = 50_000  # 20 x 50,000 = 1,000,000 bars
NOW = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)
CALLS = 2_000


def seed(path: Path) -> list[str]:
    symbols = [f"S{i:03d}" for i in range(SYMBOLS)]
    last = int(NOW.timestamp()) // 60 * 60 - 60
    conn = sqlite3.connect(path)
    with conn:
        for symbol in symbols:
            conn.executemany(
                "INSERT INTO bars (source, symbol, t, o, h, l, c, v)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (sources.current(), symbol, last - 60 * i, 10.0, 11.0, 9.0, 10.5, 1000.0)
                    for i in range(BARS_PER_SYMBOL)
                ),
            )
    conn.close()
    return symbols


def raw_query(conn: sqlite3.Connection, symbol: str, before: int) -> list[dict]:
    rows = conn.execute(
        "SELECT t, o, h, l, c, v FROM bars WHERE source = ? AND symbol = ? AND t <= ?"
        " ORDER BY t DESC LIMIT 200",
        (sources.current(), symbol, before),
    ).fetchall()
    rows.reverse()
    return [
        {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
            "ohlcv": {"o": o, "h": h, "l": low, "c": c, "v": v},
        }
        for t, o, h, low, c, v in rows
    ]


def timed(fn, symbols: list[str]) -> float:
    samples = []
    for i in range(CALLS):
        start = time.perf_counter()
        fn(symbols[i % len(symbols)])
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = database.open_database(Path(folder))
        symbols = seed(path)
        api.set_clock(FakeClock(NOW))
        before = int(NOW.timestamp()) // 60 * 60 - 60
        raw = sqlite3.connect(path)
        assert raw_query(raw, symbols[0], before) == api.get_data_for_algorithm(
            symbols[0], "last_n_bars", n=200
        )
        floor = timed(lambda s: raw_query(raw, s, before), symbols)
        ours = timed(lambda s: api.get_data_for_algorithm(s, "last_n_bars", n=200), symbols)
        raw.close()
        database.close_database()
    ratio = ours / floor
    print(f"bench_data_api: {SYMBOLS * BARS_PER_SYMBOL:,} bars stored, n=200, median of {CALLS}")
    print(
        f"raw sqlite3 {floor * 1e6:.0f} us, get_data_for_algorithm {ours * 1e6:.0f} us, "
        f"ratio {ratio:.2f} (target <= 2.0)"
    )
    print("PASS" if ratio <= 2.0 else "FAIL")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
