"""One cycle: run every running instance once, execute what each decides, journal it.

Instances are re-read from the database every cycle, so instances added or stopped by
another process are picked up. Each run goes to the worker pool: look the algorithm up in
the module cache (loading the file on first use), create the instance's `Algorithm` object
(on its first run, kept until restart; for every run under legacy conventions), call
`run(current_time, algo_id)` with the time as its conventions say, validate the result. The
time limit covers all of that. Finished runs are recorded in batches as they come in, so a
slow algorithm delays nobody else's order; one that overstays its limit is abandoned and
fails alone.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Instance, Run
from autotrader_desktop.decision import validate
from autotrader_desktop.enums import InstanceStatus, Outcome
from autotrader_desktop.events import event
from autotrader_desktop.feed import sources
from autotrader_desktop.journal import RunResult
from autotrader_desktop.module_cache import ModuleCache
from autotrader_desktop.output_capture import OutputCapture
from autotrader_desktop.service import Service
from autotrader_desktop.worker_pool import Job, WorkerPool

# Frames of these files are engine plumbing; tracebacks shown to users leave them out.
_ENGINE_FILES = {
    str(Path(__file__).with_name(name))
    for name in ("orchestrator.py", "module_cache.py", "algorithm_loader.py", "worker_pool.py")
}
# How often the cycle thread records finished runs and checks for slow or overdue ones.
_POLL_S = 0.05
# A run taking longer than this lets another run start beside it (see WorkerPool).
SLOW_RUN_S = 0.05


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

    runs_recorded = event(list)  # list[RecordedRun]: one batch, once it is journaled
    cycle_finished = event(CycleReport)


def _describe(exc: BaseException) -> tuple[str, str]:
    """A one-line message and a traceback without engine frames."""
    if isinstance(exc, SystemExit):
        message = f"algorithm called sys.exit({exc.code!r})"
    else:
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        if isinstance(exc, SyntaxError) and exc.lineno:
            message = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename not in _ENGINE_FILES]
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(exc))
    return message, "Traceback (most recent call last):\n" + text


class _Finished:
    """A cycle's finished jobs. The cycle thread wakes when all are in or its wait times out,
    not on every job: waking per job made the cycle thread fight the workers for the GIL."""

    def __init__(self, expected: int) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._left = expected
        self._lock = threading.Lock()
        self.all_in = threading.Event()
        if expected == 0:
            self.all_in.set()

    def put(self, job: Job) -> None:
        self._jobs.put(job)
        self.forget()

    def forget(self) -> None:
        """One job fewer to wait for (finished, or abandoned)."""
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self.all_in.set()

    def drain(self) -> list[Job]:
        finished = []
        while True:
            try:
                finished.append(self._jobs.get_nowait())
            except queue.Empty:
                return finished


class Orchestrator:
    def __init__(
        self,
        cache: ModuleCache,
        service: Service,
        pool: WorkerPool,
        capture: OutputCapture,
        clock: Clock,
        time_limit: float,
    ) -> None:
        self.cache = cache
        self.service = service
        self.pool = pool
        self.capture = capture
        self.clock = clock
        self.time_limit = time_limit
        # instance id -> its Algorithm object, kept from its first run until restart
        self.algorithms: dict[int, Any] = {}  # user code: anything with run()
        self.events = CycleEvents()

    def restart(self) -> None:
        """Forget modules and Algorithm objects: the next runs load current files."""
        self.cache.clear()
        self.algorithms = {}

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

    def _run_one(self, instance: InstanceToRun, scheduled_at: datetime) -> RunResult:
        """Runs on a worker thread."""
        started_at = self.clock.now()
        start = time.perf_counter()
        result = RunResult(instance.id, instance.symbol, scheduled_at, started_at, 0.0)
        self.capture.begin()
        try:
            loaded = self.cache.get(instance.algorithm)
            result.code_version = loaded.code_version
            result.conventions = conventions = loaded.conventions
            algorithm = self.algorithms.get(instance.id)
            if algorithm is None:
                algorithm = loaded.cls(instance.symbol, instance.initial_capital)
                if not conventions.fresh_object_per_run:
                    self.algorithms[instance.id] = algorithm
            current_time = conventions.current_time(scheduled_at)
            result.decision = validate(algorithm.run(current_time, instance.id))
        except BaseException as exc:
            result.error, result.traceback = _describe(exc)
        finally:
            result.output = self.capture.end()
            result.duration_ms = (time.perf_counter() - start) * 1000
        return result

    def _timed_out(self, job: Job) -> RunResult:
        instance, scheduled_at = job.args
        message = f"TimeoutError: run did not finish within the {self.time_limit:g} s time limit"
        cached = self.cache.loaded_modules.get(instance.algorithm)
        return RunResult(
            instance.id,
            instance.symbol,
            scheduled_at,
            self.clock.now(),
            self.time_limit * 1000,
            code_version=cached.code_version if cached else None,
            error=message,
            traceback=message,
        )

    def run_cycle(self, scheduled_at: datetime) -> CycleReport:
        """Run every running instance once for `scheduled_at` (blocking; not on the GUI thread)."""
        start = time.perf_counter()
        report = CycleReport(scheduled_at)
        self.capture.install()
        to_run = self.running_instances(scheduled_at)
        finished = _Finished(len(to_run))
        pending = {
            self.pool.submit(self._run_one, instance, scheduled_at, outbox=finished)
            for instance in to_run
        }
        prices: dict[str, float | None] = {}

        def price_of(symbol: str) -> float | None:
            if symbol not in prices:
                prices[symbol] = self.service.price_of(symbol)
            return prices[symbol]

        while pending:
            finished.all_in.wait(self._wait_time(pending))
            done = finished.drain()
            pending.difference_update(done)
            self.pool.relieve(pending, SLOW_RUN_S)
            batch = [job.result for job in done]
            now = time.monotonic()
            for job in list(pending):
                overdue = job.started_at is not None and now - job.started_at >= self.time_limit
                if overdue and self.pool.abandon(job, TimeoutError()):
                    finished.forget()
                    pending.discard(job)
                    self.algorithms.pop(job.args[0].id, None)
                    batch.append(self._timed_out(job))
            if not batch:
                continue
            prices.clear()
            recorded = self.service.record_runs(batch, price_of)
            for outcome in recorded:
                report.outcomes[outcome.outcome] = report.outcomes.get(outcome.outcome, 0) + 1
            self.events.runs_recorded.emit(recorded)
        report.duration_s = time.perf_counter() - start
        return report

    def _wait_time(self, pending: set[Job]) -> float:
        """Until the next batch, or sooner if a time limit runs out before it."""
        started = [job.started_at for job in pending if job.started_at is not None]
        if not started:
            return _POLL_S
        return min(_POLL_S, max(0.0, min(started) + self.time_limit - time.monotonic()))
