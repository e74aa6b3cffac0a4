"""One cycle: run every running instance once, execute what each decides, journal it.

Instances are re-read from the database every cycle, so instances added or stopped by
another process are picked up. The cycle takes each algorithm's snapshot from the module
cache (reading the files on first use) and hands all of that algorithm's instances to its
host as one batch (see hosts/), every host on a thread of its own. Results are recorded in
batches as they come in, so a slow algorithm delays nobody else's order; a run that
overstays its time limit, or kills its host, fails alone. Instances whose symbol's history
is still being fetched are held back and go to their host in a later batch once the fetch
ends, so a hanging history request delays only them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Instance, Run
from autotrader_desktop.enums import InstanceStatus, Outcome
from autotrader_desktop.events import event
from autotrader_desktop.feed import sources
from autotrader_desktop.hosts.supervisor import Host, Hosts, HostsClosed
from autotrader_desktop.journal import RunResult
from autotrader_desktop.module_cache import ModuleCache, SnapshotUnavailable
from autotrader_desktop.service import Service
from autotrader_desktop.snapshot import Snapshot

# How often the cycle thread records the runs finished so far.
_POLL_S = 0.05


@dataclass(frozen=True)
class InstanceToRun:
    id: int
    symbol: str
    algorithm: str
    initial_capital: float


@dataclass
class CycleReport:
    scheduled_at: datetime
    outcomes: dict[Outcome, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def runs(self) -> int:
        return sum(self.outcomes.values())

    @property
    def summary(self) -> str:
        """How many runs had each outcome, e.g. "3 executed, 997 hold" ("" for none)."""
        return ", ".join(f"{n} {outcome.label}" for outcome, n in sorted(self.outcomes.items()))


class CycleEvents:
    """What cycles announce, on the cycle thread (the rules: autotrader_desktop/events.py)."""

    cycle_started = event(datetime)  # its scheduled time, as its instances start running
    runs_recorded = event(list)  # list[RecordedRun]: one batch, once it is journaled
    cycle_finished = event(CycleReport)


class _Finished:
    """A cycle's finished runs. The cycle thread wakes when all are in or its wait times out,
    not on every batch of results."""

    def __init__(self, expected: int) -> None:
        self._results: queue.SimpleQueue[RunResult] = queue.SimpleQueue()
        self._left = expected
        self._lock = threading.Lock()
        self.all_in = threading.Event()
        if expected == 0:
            self.all_in.set()

    def put(self, results: list[RunResult]) -> None:
        for result in results:
            self._results.put(result)
        self.forget(len(results))

    def forget(self, count: int) -> None:
        """`count` runs fewer to wait for (finished, or never to be run)."""
        with self._lock:
            self._left -= count
            if self._left <= 0:
                self.all_in.set()

    def drain(self) -> list[RunResult]:
        finished = []
        while True:
            try:
                finished.append(self._results.get_nowait())
            except queue.Empty:
                return finished


def _by_readiness(
    runs: list[InstanceToRun], ready: Mapping[str, Future[Any]]
) -> tuple[list[InstanceToRun], list[InstanceToRun]]:
    """(the runs that can go now, those whose symbol's history is still being fetched);
    each symbol's future is asked once, so a symbol's runs never split between the two."""
    fetching = {
        symbol
        for symbol in {run.symbol for run in runs}
        if (future := ready.get(symbol)) is not None and not future.done()
    }
    now = [run for run in runs if run.symbol not in fetching]
    return now, [run for run in runs if run.symbol in fetching]


class Orchestrator:
    def __init__(
        self,
        cache: ModuleCache,
        hosts: Hosts,
        service: Service,
        clock: Clock,
    ) -> None:
        self.cache = cache
        self.hosts = hosts
        self.service = service
        self.clock = clock
        self.events = CycleEvents()

    def restart(self) -> None:
        """End every host and forget every snapshot: the next runs load current files."""
        self.hosts.close()
        self.cache.clear()

    def running_instances(self, scheduled_at: datetime) -> list[InstanceToRun]:
        already = Run.select(Run.instance).where(Run.scheduled_at == scheduled_at)
        query = (
            Instance.select(
                Instance.id, Instance.symbol, Instance.algorithm, Instance.initial_capital
            )
            .where(
                (Instance.status == InstanceStatus.RUNNING)
                & Instance.id.not_in(already)
                # Never at another source's prices (an import may add such instances while
                # this engine runs; feed/sources.py). None: written without one by another
                # program, taken to be this data directory's.
                & ((Instance.source == sources.current()) | Instance.source.is_null())
            )
            .order_by(Instance.id)
            .tuples()
        )
        return [InstanceToRun(*row) for row in cast(Iterable[tuple[Any, ...]], query)]

    def _unreadable(
        self, runs: list[InstanceToRun], scheduled_at: datetime, error: SnapshotUnavailable
    ) -> list[RunResult]:
        message, details = str(error), error.details
        now = self.clock.now()
        return [
            RunResult(r.id, r.symbol, scheduled_at, now, 0.0, error=message, traceback=details)
            for r in runs
        ]

    def _on_host(
        self,
        host: Host,
        snapshot: Snapshot,
        runs: list[InstanceToRun],
        scheduled_at: datetime,
        finished: _Finished,
        ready: Mapping[str, Future[Any]],
    ) -> None:
        """One algorithm's runs (on a thread of its own): a batch of those whose symbols are
        ready, then another each time a symbol whose history was being fetched is."""
        delivered = 0

        def deliver(results: list[RunResult]) -> None:
            nonlocal delivered
            delivered += len(results)
            finished.put(results)

        waiting = list(runs)
        loaded = True
        try:
            while waiting:
                batch, waiting = _by_readiness(waiting, ready)
                if batch:
                    loaded = host.run(scheduled_at, batch, deliver) and loaded
                else:
                    wait({ready[r.symbol] for r in waiting}, return_when=FIRST_COMPLETED)
            if not loaded:
                # The rule protects code that loaded: the next instance reads the file again.
                self.cache.forget(snapshot)
                self.hosts.discard(host)
        except HostsClosed:
            pass  # quitting or restarting: the rest of this cycle is not run
        finally:
            finished.forget(len(runs) - delivered)

    def run_cycle(self, scheduled_at: datetime, ready: Mapping[str, Future[Any]]) -> CycleReport:
        """Run every running instance once for `scheduled_at` (blocking; not on the GUI thread).

        `ready`: per symbol, done once its history is prepared (feed/market_data.py). The
        instances of a symbol without one, or with a done one, run at once; the others as
        soon as theirs is done. Returns once every instance's run is recorded.
        """
        start = time.perf_counter()
        report = CycleReport(scheduled_at)
        to_run = self.running_instances(scheduled_at)
        finished = _Finished(len(to_run))
        by_algorithm: dict[str, list[InstanceToRun]] = {}
        for instance in to_run:
            by_algorithm.setdefault(instance.algorithm, []).append(instance)
        for name, runs in by_algorithm.items():
            try:
                snapshot = self.cache.get(name)
            except SnapshotUnavailable as exc:
                finished.put(self._unreadable(runs, scheduled_at, exc))
                continue
            # The host is taken now: a restart meanwhile ends it, and with it the held-back
            # batches (as it ends a running one).
            threading.Thread(
                target=self._on_host,
                args=(self.hosts.host_for(snapshot), snapshot, runs, scheduled_at, finished, ready),
                name=f"host-{name}",
                daemon=True,
            ).start()
        while True:
            all_in = finished.all_in.wait(_POLL_S)
            batch = finished.drain()
            if batch:
                recorded = self.service.record_runs(batch)
                for outcome in recorded:
                    report.outcomes[outcome.outcome] = report.outcomes.get(outcome.outcome, 0) + 1
                self.events.runs_recorded.emit(recorded)
            elif all_in:
                break
        report.duration_s = time.perf_counter() - start
        return report
