"""The one way in: every change of state goes through `Service`.

Creating, stopping and deleting instances, retrying failed ones on a restart, saving
settings, booking what a cycle's runs decided and importing a web AutoTrader installation:
the engine, the command line and (through the engine) the window all call these methods and
nothing else writes those rows. A
broker's trades are booked by `record_runs` (a cycle's decisions) and `stop_instance`
(selling the open position), both through `accounting.book_trade`; an outside broker's
fills, as it reports them, through broker/orders.py (the same `book_trade`).

Methods block (database, discovery): call them off any GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from autotrader_desktop import accounting, discovery, instances, journal, settings
from autotrader_desktop.broker import Broker, halt
from autotrader_desktop.broker.paper import PaperBroker
from autotrader_desktop.clock import Clock
from autotrader_desktop.database import Instance, write_transaction
from autotrader_desktop.enums import InstanceStatus, Outcome
from autotrader_desktop.journal import RecordedRun, RunResult
from autotrader_desktop.legacy import apac_import
from autotrader_desktop.settings import Settings

# The latest price of each symbol, those that need the network asked for at once.
PricesOf = Callable[[Iterable[str]], dict[str, float | None]]


class Service:
    def __init__(
        self,
        settings: Settings,
        algorithm_dir: Path,
        clock: Clock,
        broker: Broker,
        prices_of: PricesOf,
    ) -> None:
        self.settings = settings
        self.algorithm_dir = algorithm_dir
        self.clock = clock
        self.broker = broker
        self.prices_of = prices_of

    # --- instances --------------------------------------------------------------------

    def scan(self) -> list[discovery.AlgorithmFile]:
        """A fresh discovery scan of the algorithm folder."""
        return discovery.scan(self.algorithm_dir)

    def create_instance(self, symbol: str, algorithm: str, capital: str | float) -> Instance:
        """Validate (symbol, a freshly scanned available algorithm, capital within the
        available cash) and write one `running` instance; nothing is written on error.
        An outside broker is asked whether it trades the symbol, and its account's cash is
        the cash there is."""
        return instances.create(
            symbol,
            algorithm,
            capital,
            algorithms=self.scan(),
            starting_balance=self.settings.starting_balance,
            clock=self.clock,
            broker_cash=self.broker.account_cash(),
            check_symbol=self.broker.check_symbol,
        )

    def stop_instance(self, instance_id: int) -> Instance:
        """Stop a running or failed instance, selling any open position through the broker
        (an outside broker's instance is stopped once its sell filled)."""
        closed = self.broker.close_position(instance_id, self.price_of)
        return closed or instances.stop(instance_id, self.price_of, self.broker, self.clock)

    def delete_instance(self, instance_id: int) -> Instance:
        """Delete a stopped or failed instance and its history (its P&L stays booked)."""
        return instances.delete(instance_id)

    def retry_failed(self) -> int:
        """A restart's fresh try: failed instances run again. Returns how many."""
        with write_transaction():
            return (
                Instance.update(status=InstanceStatus.RUNNING, error=None)
                .where(Instance.status == InstanceStatus.FAILED)
                .execute()
            )

    # --- trading ----------------------------------------------------------------------

    def price_of(self, symbol: str) -> float | None:
        return self.prices_of([symbol])[symbol]

    def record_runs(
        self, results: Sequence[RunResult], prices: Mapping[str, float | None] | None = None
    ) -> list[RecordedRun]:
        """Execute and journal a batch of finished runs (the broker's fills are booked; an
        outside broker's orders are recorded, then sent).

        `prices`: each run's symbol's latest price; asked for here when not given, all at
        once and before the write lock (nothing waits on the network holding it).
        """
        if prices is None:
            prices = self.prices_of({result.symbol for result in results})
        recorded = journal.record(
            results, self.broker, prices, self.clock.now, self.settings.output_lines_kept
        )
        if any(run.outcome == Outcome.ORDERED for run in recorded):
            self.broker.dispatch()
        return recorded

    def halt_trading(self) -> int:
        """Stop all trading: every instance pauses (no cycles) and the broker's open orders
        are canceled, until `resume_trading`. Returns how many orders were canceled."""
        return self.broker.halt()

    def resume_trading(self) -> None:
        with write_transaction():
            halt.set_halted(False)

    def account(self) -> accounting.Account:
        return accounting.account(self.settings.starting_balance, self.price_of)

    # --- migrating ----------------------------------------------------------------------

    def import_apac(self, directory: Path) -> apac_import.ImportReport:
        """Import a web AutoTrader installation (docs/legacy.md): checked whole first, then
        its new algorithm files, its instances and trades (one transaction), its key."""
        installation = apac_import.read(directory, self.algorithm_dir)
        apac_import.write_files(installation, self.algorithm_dir)
        with write_transaction():
            apac_import.store_instances(installation)
        if apac_import.store_key(installation):
            self.save_settings({"feed": installation.source})
        return installation.report

    # --- settings ---------------------------------------------------------------------

    def save_settings(self, changes: dict[str, Any]) -> Settings:
        """Store changed settings (all or none; the starting balance never below the
        capital committed to instances) and take the trading
        ones now: costs, run time limit, starting balance, gating. Returns the settings
        stored now, as `settings.load()` resolves them."""
        with write_transaction():  # one bad value: none is saved
            if "starting_balance" in changes:
                accounting.check_starting_balance(changes["starting_balance"])
            for name, value in changes.items():
                settings.save(name, value)
        stored = settings.load()
        self.apply_settings(stored)
        return stored

    def apply_settings(self, new: Settings) -> None:
        """Take new trading settings; those read at start (the feed, its URLs, the algorithm
        folder, ...) are kept: they take a new engine."""
        kept = {name: getattr(self.settings, name) for name in settings.READ_AT_START}
        self.settings = replace(new, **kept)
        if isinstance(self.broker, PaperBroker):
            self.broker.commission = new.commission
            self.broker.slippage_bps = new.slippage_bps
        self.broker.max_order_value = new.max_order_value
