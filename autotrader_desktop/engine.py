"""The running core: module cache, algorithm hosts, orchestrator, market data, the schedule.

Used the same way by the window, `headless` and `cycle`. Starting an engine is a restart
in the sense of the snapshot rule: nothing is cached yet, and failed instances get a fresh
try. `restart()` does the same without ending the process.

An open engine holds its data directory's lock (engine_lock): one engine per directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from autotrader_desktop import accounting, api, database, discovery
from autotrader_desktop.broker import Broker, halt
from autotrader_desktop.broker import create as create_broker
from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.database import Instance
from autotrader_desktop.engine_lock import EngineLock
from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.feed import sources
from autotrader_desktop.feed.market_data import MarketData, MarketDataPort
from autotrader_desktop.hosts.supervisor import Hosts, HostSettings
from autotrader_desktop.legacy.apac_import import ImportReport
from autotrader_desktop.module_cache import Drift, ModuleCache
from autotrader_desktop.orchestrator import CycleEvents, CycleReport, Orchestrator
from autotrader_desktop.service import Service
from autotrader_desktop.settings import Settings

log = logging.getLogger(__name__)
# Lines a user does not need by default (logging_config holds this logger back).
routine_log = logging.getLogger(f"{__name__}.routine")

CYCLE_SECOND = 2
# In the data directory: one working directory per algorithm, its host's current directory.
WORK_DIR = "work"
MISFIRE_GRACE_S = 30


def market_is_open(at: datetime) -> bool:
    from autotrader_desktop.feed.market_hours import is_open  # the calendar loads slowly

    return is_open(at)


def market_next_open(at: datetime) -> datetime:
    from autotrader_desktop.feed.market_hours import next_open

    return next_open(at)


class Engine:
    def __init__(
        self,
        settings: Settings,
        algorithm_dir: Path,
        clock: Clock | None = None,
        market_data: MarketDataPort | None = None,
        data_dir: Path | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.lock = EngineLock(data_dir or database.data_dir())
        self.algorithm_dir = algorithm_dir
        self.clock = clock or SystemClock()
        self.market_data: MarketDataPort = market_data or MarketData(self.clock, settings)
        self.broker = broker or create_broker(settings, self.clock)
        self.service = Service(
            settings, algorithm_dir, self.clock, self.broker, self.market_data.latest_prices
        )
        # Absolute: each host works in a directory of its own.
        database_file = (database.data_dir() / database.DB_FILENAME).resolve()
        self.hosts = Hosts(
            HostSettings(
                database=database_file,
                work_root=database_file.parent / WORK_DIR,
                memory_limit_mb=settings.host_memory_limit_mb,
                time_limit=settings.run_time_limit,
                clock=self.clock,
                # Bars an algorithm asks for that are not stored yet are fetched here.
                history=self.market_data.ensure_history,
            )
        )
        self.orchestrator = Orchestrator(
            ModuleCache(algorithm_dir), self.hosts, self.service, self.clock
        )
        self.scheduler: AsyncIOScheduler | None = None
        self._subscribed: Counter[str] = Counter()
        self._cycle_lock = threading.Lock()
        # Whether the closed market was already reported: once per closed period.
        self._closed_reported = False

    @property
    def events(self) -> CycleEvents:
        return self.orchestrator.events

    @property
    def symbols(self) -> list[str]:
        """The running instances' symbols: those the feed is subscribed to."""
        return sorted(self._subscribed)

    @property
    def cache(self) -> ModuleCache:
        return self.orchestrator.cache

    # --- life cycle -------------------------------------------------------------------

    def open(self) -> None:
        """Lock the data directory and start the engine's in-process parts (no event loop
        needed). Raises EngineAlreadyRunning if another engine holds the directory, and
        SourceMismatch for a feed whose prices would mix with those the data directory's
        instances were kept at."""
        sources.check(self.market_data.source)
        sources.use(self.market_data.source)
        if not self.lock.held:
            self.lock.acquire()
        api.set_clock(self.clock)
        self.restart()
        self.broker.open()

    async def start(self, every: float | None = None) -> None:
        """Open, connect the feed, restore subscriptions and start the minute schedule."""
        self.open()
        await self.broker.connect()
        await self.market_data.start()
        await asyncio.to_thread(self.sync_subscriptions)
        trigger = (
            IntervalTrigger(seconds=every)
            if every
            else CronTrigger(second=CYCLE_SECOND, timezone="UTC")
        )
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self._scheduled_cycle,
            trigger,
            id="cycle",
            misfire_grace_time=MISFIRE_GRACE_S,
            coalesce=True,
            max_instances=1,
            kwargs={"every": every},
        )
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await self.market_data.stop()
        await self.broker.disconnect()
        self.close()

    def close(self) -> None:
        """End every algorithm host and forget every snapshot, as the end of the process would."""
        self.broker.close()
        self.orchestrator.restart()
        self.lock.release()

    def restart(self) -> int:
        """End every host and clear the module cache; failed instances get a fresh try.

        A cycle in progress ends first (ending the hosts ends its batches; what they had not
        finished is not run). Returns how many failed instances were retried.
        """
        self.hosts.close()
        with self._cycle_lock:
            self.orchestrator.restart()
            retried = self.service.retry_failed()
        # A start or restart with nothing to retry is not news: shown only with -v.
        (log if retried else routine_log).info(
            "engine restarted: module cache cleared, %d failed instance(s) retried", retried
        )
        return retried

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def save_settings(self, changes: dict[str, Any]) -> Settings:
        """Store changed settings and take the trading ones now (see Service)."""
        stored = self.service.save_settings(changes)
        self._settings_to_hosts()
        return stored

    def apply_settings(self, settings: Settings) -> None:
        """Take new trading settings now: costs, run time limit, starting balance, gating.

        The feed, its URLs and the algorithm folder are kept: they take a new engine.
        """
        self.service.apply_settings(settings)
        self._settings_to_hosts()

    def _settings_to_hosts(self) -> None:
        self.hosts.settings.time_limit = self.settings.run_time_limit
        # Hosts started from now on (after a crash, or Restart engine) get the new limit.
        self.hosts.settings.memory_limit_mb = self.settings.host_memory_limit_mb

    # --- cycles -----------------------------------------------------------------------

    def next_cycle_at(self) -> datetime | None:
        job = self.scheduler.get_job("cycle") if self.scheduler else None
        return job.next_run_time if job else None

    async def _scheduled_cycle(self, every: float | None) -> None:
        now = self.clock.now()
        if self.settings.gating_enabled and not market_is_open(now):
            if not self._closed_reported:
                log.info(
                    "market closed; next open %s UTC", f"{market_next_open(now):%a %d %b %H:%M}"
                )
                self._closed_reported = True
            return
        self._closed_reported = False
        scheduled = now if every else now.replace(second=CYCLE_SECOND, microsecond=0)
        try:
            await self.run_cycle(scheduled)
        except asyncio.CancelledError:
            # The engine is stopping mid-cycle. The cycle thread is a daemon, its hosts are
            # ended and each batch is one transaction, so nothing half-done survives; end
            # quietly, or
            # APScheduler would log this as the job failing.
            log.info("cycle for %s interrupted: the engine is stopping", scheduled)
        except Exception:
            log.exception("cycle for %s failed", scheduled)

    async def run_cycle(self, scheduled_at: datetime | None = None) -> CycleReport:
        """Run a cycle on its own thread and wait for it without blocking the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CycleReport] = loop.create_future()

        def deliver(outcome: CycleReport | BaseException) -> None:
            if future.done():
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        def work() -> None:
            outcome: CycleReport | BaseException
            try:
                outcome = self.cycle(scheduled_at)
            except BaseException as exc:
                outcome = exc
            # RuntimeError: the loop closed while the cycle ran (quitting).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, outcome)

        # A daemon thread, not the loop's default executor: a hung cycle never blocks exit.
        threading.Thread(target=work, name="cycle", daemon=True).start()
        return await future

    def cycle(self, scheduled_at: datetime | None = None) -> CycleReport:
        """Run every running instance once now (blocking)."""
        with self._cycle_lock:
            scheduled_at = scheduled_at or self.clock.now()
            if halt.is_halted():
                log.info("trading is halted: cycle %s skipped", scheduled_at.isoformat())
                return CycleReport(scheduled_at)
            self.broker.dispatch()  # an outside broker reconciles its open orders each cycle
            self.sync_subscriptions()
            # Instances whose symbol's history is still being fetched run once it is in.
            ready = self.market_data.start_preparing(sorted(self._subscribed))
            self.events.cycle_started.emit(scheduled_at)
            report = self.orchestrator.run_cycle(scheduled_at, ready)
        log.info(
            "cycle %s: %s in %.3f s", scheduled_at.isoformat(), report.summary, report.duration_s
        )
        self.events.cycle_finished.emit(report)
        return report

    def sync_subscriptions(self) -> None:
        """Subscribe to each running instance's symbol once per instance (reference-counted)."""
        wanted = Counter(
            instance.symbol
            for instance in Instance.select(Instance.symbol).where(
                Instance.status == InstanceStatus.RUNNING
            )
        )
        for symbol in wanted | self._subscribed:
            for _ in range(wanted[symbol] - self._subscribed[symbol]):
                self.market_data.subscribe(symbol)
            for _ in range(self._subscribed[symbol] - wanted[symbol]):
                self.market_data.unsubscribe(symbol)
        self._subscribed = wanted

    # --- what the user does -----------------------------------------------------------

    def scan(self) -> list[discovery.AlgorithmFile]:
        return self.service.scan()

    def create_instance(self, symbol: str, algorithm: str, capital: str | float) -> Instance:
        instance = self.service.create_instance(symbol, algorithm, capital)
        self.sync_subscriptions()
        return instance

    def stop_instance(self, instance_id: int) -> Instance:
        instance = self.service.stop_instance(instance_id)
        self.sync_subscriptions()
        return instance

    def delete_instance(self, instance_id: int) -> Instance:
        return self.service.delete_instance(instance_id)

    def halt_trading(self) -> int:
        return self.service.halt_trading()

    def resume_trading(self) -> None:
        self.service.resume_trading()

    @property
    def halted(self) -> bool:
        return halt.is_halted()

    def import_apac(self, directory: Path) -> ImportReport:
        """Import a web AutoTrader installation (see Service.import_apac)."""
        report = self.service.import_apac(directory)
        self.sync_subscriptions()
        return report

    def account(self) -> accounting.Account:
        return self.service.account()

    def latest_price(self, symbol: str) -> float | None:
        return self.market_data.latest_price(symbol)

    def drift(self, algorithm: str) -> Drift | None:
        return self.cache.drift(algorithm)
