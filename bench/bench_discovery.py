"""Rescanning an unchanged folder of 500 algorithm files vs the bare cost of reading them.

The bar (docs/behaviour.md#discovery): 500 unchanged files rescan in <= 150 ms. The floor is
what any content-hash cache must pay, measured in this run on the same files: list the
folder, read every file, SHA-256 it. The rest of a warm scan is the cache lookup and
building the result."""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autotrader_desktop import database, discovery

FILES = 500
REPEATS = 15
TARGET_MS = 150.0

TEMPLATE = '''"""Variant {i} of an SMA crossover."""

from autotrader_desktop.api import get_data_for_algorithm, get_position

FAST, SLOW = {fast}, {slow}


def _mean(values):
    return sum(values) / len(values)


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=SLOW + 1)
        if len(bars) < SLOW + 1:
            return "hold", 0
        closes = [bar["ohlcv"]["c"] for bar in bars]
        fast, slow = _mean(closes[-FAST:]), _mean(closes[-SLOW:])
        shares = get_position(algo_id)["shares"]
        if fast > slow and shares == 0:
            return "buy", 1
        if fast < slow and shares > 0:
            return "sell", shares
        return "hold", 0
'''


def floor(folder: Path) -> None:
    """List, read and hash the same files: the least a content-hash rescan can cost."""
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(".py") and e.is_file())
    for name in names:
        hashlib.sha256((folder / name).read_bytes()).digest()


def timed_ms(action, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "algorithm"
        folder.mkdir()
        for i in range(FILES):
            source = TEMPLATE.format(i=i, fast=5 + i % 20, slow=30 + i % 40)
            (folder / f"algo_{i:03d}.py").write_text(source)
        database.open_database(Path(tmp) / "data")
        try:
            start = time.perf_counter()
            files = discovery.scan(folder)
            cold_s = time.perf_counter() - start
            unavailable = [f for f in files if not f.available]
            if len(files) != FILES or unavailable:
                print(f"unexpected scan result: {len(files)} files, e.g. {unavailable[:1]}")
                return 1
            warm = timed_ms(lambda: discovery.scan(folder), REPEATS)
            bare = timed_ms(lambda: floor(folder), REPEATS)
        finally:
            database.close_database()

    warm_ms, bare_ms = statistics.median(warm), statistics.median(bare)
    ok = warm_ms <= TARGET_MS
    print(f"discovery of {FILES} files (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"  cold scan, worker imports every file: {cold_s:8.2f} s")
    print(
        f"  warm rescan, unchanged folder:        {warm_ms:8.1f} ms"
        f"  (median of {REPEATS}; min {min(warm):.1f}, max {max(warm):.1f})"
    )
    print(f"  floor: list + read + sha256:          {bare_ms:8.1f} ms  (median of {REPEATS})")
    print(f"  warm / floor:                         {warm_ms / bare_ms:8.1f} x")
    verdict = "OK" if ok else "OVER"
    print(f"  target:                               {TARGET_MS:8.1f} ms  -> {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
