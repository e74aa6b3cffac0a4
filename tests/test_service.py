"""The one way in: every change of state goes through service.Service, once.

Creating, stopping and deleting are exercised through the command line (test_cli.py), the
engine (test_accounting.py, e2e/) and the window (ui/); here: what the service alone
promises, and that nothing else in the package writes what it writes.
"""

from __future__ import annotations

import ast

import pytest

from autotrader_desktop import accounting, queries, settings
from autotrader_desktop.database import Instance
from autotrader_desktop.errors import UserError
from autotrader_desktop.settings import SettingError
from tests.helpers import REPO, add_instance, cycle, returning, write_algorithm

PACKAGE = REPO / "autotrader_desktop"


def test_settings_are_saved_all_or_nothing(engine):
    with pytest.raises(SettingError, match="slippage_bps"):
        engine.service.save_settings({"commission": 2.5, "slippage_bps": "lots"})
    assert settings.load().commission == 0.0
    assert engine.broker.commission == 0.0

    stored = engine.save_settings({"commission": 2.5, "run_time_limit": 7})
    assert (stored.commission, settings.load().commission) == (2.5, 2.5)
    assert engine.broker.commission == 2.5
    assert engine.hosts.settings.time_limit == 7


def test_the_window_and_the_command_line_see_one_account(engine, algo_dir, market):
    write_algorithm(algo_dir, "buyer", returning("'buy', 3"))
    first = add_instance(engine, "NVDA", "buyer", 5_000)
    add_instance(engine, "AMD", "buyer", 2_000)
    market.prices.update(NVDA=100.0, AMD=50.0)
    cycle(engine)
    engine.stop_instance(first.id)
    market.prices.update(NVDA=120.0, AMD=55.0)

    shown = queries.Overviews()(engine).account
    assert shown == engine.account() == accounting.account(100_000, market.latest_price)
    # AMD: 2,000 - 150 cash + 3 x 55; NVDA stopped after buying 3 at 100, selling at 100.
    assert shown.available_cash == pytest.approx(100_000 - 2_000)
    assert shown.value == pytest.approx(100_000 - 150 + 165)


def test_a_trade_and_its_effect_are_one(engine, algo_dir, market):
    write_algorithm(algo_dir, "buyer", returning("'buy', 2"))
    instance = add_instance(engine, "NVDA", "buyer", 1_000)
    market.prices["NVDA"] = 100.0
    cycle(engine)
    engine.stop_instance(instance.id)
    row = Instance.get_by_id(instance.id)
    assert (row.cash, row.shares, row.trade_count, row.status) == (1_000.0, 0, 2, "stopped")


def calls_in(path, names: set[str]) -> list[str]:
    """Calls like `module.name(...)` (names as "module.name") in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and f"{target.id}.{node.func.attr}" in names:
                found.append(f"{path.relative_to(REPO)}: {target.id}.{node.func.attr}")
    return found


def test_only_the_service_creates_stops_and_deletes_instances():
    changes = {"instances.create", "instances.stop", "instances.delete", "settings.save"}
    callers = [
        call
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "service.py"
        for call in calls_in(path, changes)
    ]
    assert callers == []


def test_only_book_trade_writes_a_trade():
    writers = [
        str(path.relative_to(REPO))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "INSERT INTO transactions" in path.read_text()
        or "Transaction.create" in path.read_text()
        or "Transaction.insert" in path.read_text()
    ]
    assert writers == ["autotrader_desktop/accounting.py"]


def test_the_starting_balance_never_goes_below_committed_capital(engine, algo_dir):
    write_algorithm(algo_dir, "buyer", returning("'hold', 0"))
    add_instance(engine, "NVDA", "buyer", 40_000)
    failed = add_instance(engine, "AMD", "buyer", 20_000)
    Instance.update(status="failed").where(Instance.id == failed.id).execute()
    with pytest.raises(UserError, match=r"cannot be below 60,000\.00: 60,000\.00 is committed"):
        engine.service.save_settings({"commission": 2.0, "starting_balance": 59_999.99})
    assert settings.load().commission == 0.0  # neither setting
    engine.service.save_settings({"starting_balance": 60_000})
    assert engine.account().available_cash == 0.0
