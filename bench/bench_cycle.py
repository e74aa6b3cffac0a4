"""A cycle of N running test_algo instances, with algorithm hosts, vs the bare run() calls.

The goal: 1,000 instances in <= 0.5 s a cycle, cost linear in instances, the whole app
(engine + hosts) <= 250 MB resident. The floor printed beside each cycle is the same run()
calls in a plain loop in one process, through the same data API: what the cycle would cost
with no engine, no processes and no journal. Measured in this run, on this machine
(docs/behaviour.md#quality-bars, docs/benchmarks.md).

Also measured: what CPU-heavy algorithms gain from several hosts (one per algorithm, run in
parallel) on this machine's cores, and what a host costs in memory.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future
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
CYCLE_GOAL_S = 0.5
RSS_GOAL_MB = 250

# About 20 ms of pure Python per run: an algorithm that computes rather than looks up.
HEAVY = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        total = sum(i * i for i in range(200_000))
        return "hold", total % 2
"""


class FixedPrices:
    """Market data reduced to a price lookup: the benchmark measures the engine, not a feed."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, symbol: str) -> None: ...
    def unsubscribe(self, symbol: str) -> None: ...
    def start_preparing(self, symbols: list[str]) -> dict[str, Future[bool]]:
        return {}

    def ensure_history(self, symbol: str, start: int, end: int, deadline: float) -> bool:
        return False

    source = "sim/42"

    def latest_price(self, symbol: str) -> float:
        return 100.0

    def latest_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        return dict.fromkeys(symbols, 100.0)


def seed_database(algorithms: dict[str, int]) -> None:
    """Bars for every symbol, and `count` running instances of each algorithm."""
    now = int(START.timestamp())
    for symbol in SYMBOLS:
        rows = price_path.minute_bars(symbol, now - 300 * 60, now - 59)
        store([(symbol, *r) for r in rows])
    rows = [
        {
            "display_name": f"bench_{algorithm}_{i}",
            "algorithm": algorithm,
            "symbol": SYMBOLS[i % len(SYMBOLS)],
            "initial_capital": 10_000.0,
            "status": "running",
            "created_at": START,
            "cash": 10_000.0,
        }
        for algorithm, count in algorithms.items()
        for i in range(count)
    ]
    with database.db.atomic():
        for start in range(0, len(rows), 100):
            Instance.insert_many(rows[start : start + 100]).execute()


def bare_loop(count: int, clock: FakeClock, folder: Path, algorithm: str) -> float:
    """The same run() calls, same class, same data API, in a plain loop in this process."""
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


def _vm_hwm_mb(pid: int) -> float | None:
    """Peak resident memory of a process (Linux), in MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def engine_cycles(expected: int, clock: FakeClock, folder: Path) -> tuple[float, dict[str, float]]:
    """Median cycle time, and each host's peak RSS (MB), after a first (loading) cycle."""
    engine = Engine(Settings(), folder, clock, FixedPrices())
    engine.open()
    try:
        clock.advance(60)
        engine.cycle()  # first run: starts the hosts, loads the modules, creates the objects
        times = []
        for _ in range(REPEATS):
            clock.advance(60)
            report = engine.cycle()
            assert report.runs == expected, report
            times.append(report.duration_s)
        hosts = {name: _vm_hwm_mb(pid) or 0.0 for name, pid in engine.hosts.pids().items()}
        return statistics.median(times), hosts
    finally:
        engine.close()


def measure(algorithms: dict[str, int], bare: str | None = None):
    """(bare loop or None, cycle, host peaks) for instances of `algorithms` in a fresh world."""
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "algorithm"
        folder.mkdir()
        (folder / "test_algo.py").write_bytes((REPO / "algorithm" / "test_algo.py").read_bytes())
        for name in ("heavy_a", "heavy_b"):
            (folder / f"{name}.py").write_text(HEAVY)
        database.open_database(Path(root) / "data")
        clock = FakeClock(START)
        api.set_clock(clock)
        seed_database(algorithms)
        floor = bare_loop(algorithms[bare], clock, folder, bare) if bare else None
        cycle, hosts = engine_cycles(sum(algorithms.values()), clock, folder)
        database.close_database()
    return floor, cycle, hosts


def main() -> int:
    print(f"bench_cycle: test_algo instances in one host, median of {REPEATS} cycles")
    print(f"{'instances':>9}  {'bare loop':>10}  {'cycle':>8}  {'ratio':>6}  {'per instance':>12}")
    results = {}
    for count in (250, 500, 1000):
        floor, cycle, hosts = measure({"test_algo": count}, bare="test_algo")
        results[count] = (floor, cycle, hosts)
        print(
            f"{count:>9}  {floor * 1000:>8.1f}ms  {cycle * 1000:>6.1f}ms  {cycle / floor:>6.2f}"
            f"  {cycle / count * 1e6:>10.0f}us"
        )
    floor, cycle, hosts = results[1000]
    per_250 = results[250][1] / 250
    linear = cycle / 1000 <= 1.5 * per_250
    engine_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    host_mb = hosts.get("test_algo", 0.0)
    app_mb = engine_mb + host_mb

    heavy = 40
    _, one_host, _ = measure({"heavy_a": heavy})
    _, two_hosts, _ = measure({"heavy_a": heavy // 2, "heavy_b": heavy // 2})
    print(
        f"CPU-heavy algorithm (~20 ms of Python a run), {heavy} instances on "
        f"{os.cpu_count()} cores: one algorithm (one host) {one_host:.2f} s a cycle; the same "
        f"code as two algorithms (two hosts in parallel) {two_hosts:.2f} s: "
        f"{one_host / two_hosts:.2f}x"
    )
    print(
        f"memory: engine peak {engine_mb:.0f} MB (this process, benchmark included), "
        f"test_algo host peak {host_mb:.0f} MB with 1,000 instances; app {app_mb:.0f} MB"
    )
    ok = cycle <= CYCLE_GOAL_S and linear and app_mb <= RSS_GOAL_MB
    print(
        f"1,000 instances: cycle {cycle:.3f} s (goal <= {CYCLE_GOAL_S} s), "
        f"{cycle / floor:.2f}x the bare loop {floor:.3f} s; per instance "
        f"{cycle / 1000 * 1e6:.0f} us vs {per_250 * 1e6:.0f} us at 250 (linear: "
        f"{'yes' if linear else 'NO'}); engine + host {app_mb:.0f} MB (goal <= {RSS_GOAL_MB} MB)"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
