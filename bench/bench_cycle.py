"""A cycle of N running test_algo instances vs the bare cost of the same run() calls.

The bar (docs/behaviour.md#quality-bars): 1,000 instances in <= 2 s and <= 1.5x the bare
cost of the same 1,000 run() calls in a plain loop through the same data API; resident
memory <= 250 MB; cost per cycle linear in instances. The floor is measured in this run, on
this machine."""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from autotrader_desktop import algorithm_loader, api, database, snapshot
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.database import Instance
from autotrader_desktop.engine import Engine
from autotrader_desktop.feed import price_path
from autotrader_desktop.feed.bars import store
from autotrader_desktop.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "SPY"]
START = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)
REPEATS = 5


class FixedPrices:
    """Market data reduced to a price lookup: the benchmark measures the engine, not a feed."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, symbol: str) -> None: ...
    def unsubscribe(self, symbol: str) -> None: ...
    def prepare(self, symbols: list[str]) -> None: ...
    def ensure_history(self, symbol: str, start: int, end: int, deadline: float) -> bool:
        return False

    source = "sim/42"

    def latest_price(self, symbol: str) -> float:
        return 100.0


def seed_database(count: int, algorithm: str) -> None:
    now = int(START.timestamp())
    for symbol in SYMBOLS:
        rows = price_path.minute_bars(symbol, now - 300 * 60, now - 59)
        store([(symbol, *r) for r in rows])
    with database.db.atomic():
        Instance.insert_many(
            [
                {
                    "display_name": f"bench_{i}",
                    "algorithm": algorithm,
                    "symbol": SYMBOLS[i % len(SYMBOLS)],
                    "initial_capital": 10_000.0,
                    "status": "running",
                    "created_at": START,
                    "cash": 10_000.0,
                }
                for i in range(count)
            ]
        ).execute()


def bare_loop(count: int, clock: FakeClock, algorithm: str) -> float:
    """The same run() calls, same objects' class, same data API, in a plain loop."""
    folder = REPO / "algorithm"
    module = algorithm_loader.load(snapshot.take(algorithm, folder, snapshot.disk_reader(folder)))
    algorithms = [
        (i + 1, module.Algorithm(SYMBOLS[i % len(SYMBOLS)], 10_000.0)) for i in range(count)
    ]
    times = []
    for _ in range(REPEATS):
        clock.advance(60)
        now = clock.now()
        start = time.perf_counter()
        for algo_id, algorithm in algorithms:
            algorithm.run(now, algo_id)
        times.append(time.perf_counter() - start)
    algorithm_loader.unload(module)
    return statistics.median(times)


def engine_cycles(count: int, clock: FakeClock) -> float:
    engine = Engine(Settings(workers=8), REPO / "algorithm", clock, FixedPrices())
    engine.open()
    try:
        clock.advance(60)
        engine.cycle()  # first run: loads the module and creates the objects
        times = []
        for _ in range(REPEATS):
            clock.advance(60)
            report = engine.cycle()
            assert report.runs == count, report
            times.append(report.duration_s)
        return statistics.median(times)
    finally:
        engine.close()


def measure(count: int, algorithm: str = "test_algo") -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        database.open_database(Path(folder))
        clock = FakeClock(START)
        api.set_clock(clock)
        seed_database(count, algorithm)
        floor = bare_loop(count, clock, algorithm)
        cycle = engine_cycles(count, clock)
        database.close_database()
    return floor, cycle


def main() -> int:
    print("bench_cycle: test_algo instances, median of", REPEATS, "cycles")
    print(f"{'instances':>9}  {'bare loop':>10}  {'cycle':>8}  {'ratio':>6}  {'per instance':>12}")
    results = {}
    for count in (250, 500, 1000):
        floor, cycle = measure(count)
        results[count] = (floor, cycle)
        print(
            f"{count:>9}  {floor * 1000:>8.1f}ms  {cycle * 1000:>6.1f}ms  {cycle / floor:>6.2f}"
            f"  {cycle / count * 1e6:>10.0f}us"
        )
    floor, cycle = results[1000]
    sma_floor, sma_cycle = measure(1000, "sma_crossover")
    print(
        f"for comparison, 1,000 sma_crossover instances (51 bars a run): cycle "
        f"{sma_cycle * 1000:.1f} ms, bare loop {sma_floor * 1000:.1f} ms, "
        f"ratio {sma_cycle / sma_floor:.2f}"
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = cycle <= 2.0 and cycle <= 1.5 * floor and rss_mb <= 250
    print(
        f"1,000 instances: cycle {cycle:.3f} s (target <= 2 s), {cycle / floor:.2f}x the bare "
        f"loop {floor:.3f} s (target <= 1.5x); peak RSS {rss_mb:.0f} MB (target <= 250 MB)"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
