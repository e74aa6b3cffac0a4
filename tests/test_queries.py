"""The read models' rows: value and P&L derived once, and kept right when repriced."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.queries import InstanceRow


def row(**changes) -> InstanceRow:
    fields = {
        "id": 1,
        "display_name": "test_algo_NVDA_1",
        "symbol": "NVDA",
        "algorithm": "test_algo",
        "status": InstanceStatus.RUNNING,
        "code_version": "ab" * 32,
        "drift": None,
        "initial_capital": 1_000.0,
        "cash": 400.0,
        "shares": 5,
        "last_price": 100.0,
        "trades": 1,
        "last_decision": "buy 5",
        "last_run_at": None,
        "error": None,
    }
    return InstanceRow(**(fields | changes))


def test_value_and_pnl_are_derived_from_cash_shares_and_price():
    shown = row()
    assert (shown.value, shown.pnl, shown.pnl_pct) == (900.0, -100.0, -10.0)
    assert row(initial_capital=0.0).pnl_pct == 0.0


def test_a_repriced_row_is_the_row_built_at_that_price_and_the_old_one_is_unchanged():
    before = row()
    after = before.priced(130.0)
    assert after == row(last_price=130.0) == replace(before, last_price=130.0)
    assert (after.value, after.pnl, after.pnl_pct) == (1_050.0, 50.0, 5.0)
    assert (before.last_price, before.value) == (100.0, 900.0)
    assert before.priced(None) is before and before.priced(100.0) is before


def test_the_overview_gives_unchanged_rows_again_and_rebuilds_changed_ones(engine, market):
    from autotrader_desktop import queries
    from tests.helpers import add_instance, give_position

    kept = add_instance(engine, "NVDA", "buyer", 1_000)
    traded = add_instance(engine, "AMD", "buyer", 1_000)
    give_position(kept, 3, 100.0)
    market.prices.update(NVDA=100.0, AMD=50.0)
    read = queries.Overviews()
    first = {row.id: row for row in read(engine).rows}

    give_position(traded, 2, 50.0)
    market.prices.update(NVDA=110.0)  # live prices are the table's: rows keep stored ones
    again = read(engine)
    second = {row.id: row for row in again.rows}
    assert second[kept.id] is first[kept.id]
    assert second[traded.id] is not first[traded.id] and second[traded.id].shares == 2
    assert second[kept.id].last_price == 100.0
    # The account is at live prices: NVDA's 3 shares at 110, AMD's 2 at 50.
    assert again.account.value == pytest.approx(98_000 + (700 + 3 * 110) + (900 + 2 * 50))


def test_an_overview_row_carries_each_stored_column_in_its_own_field(engine):
    from datetime import UTC, datetime

    from autotrader_desktop import queries
    from autotrader_desktop.database import Instance
    from autotrader_desktop.enums import Conventions
    from tests.helpers import add_instance

    instance = add_instance(engine, "NVDA", "buyer", 1_000)
    ran = datetime(2026, 12, 2, 9, 21, 2, tzinfo=UTC)
    Instance.update(
        status="failed",
        code_version="cd" * 32,
        cash=400.0,
        shares=6,
        last_price=101.5,
        trade_count=7,
        last_decision="buy 6",
        last_run_at=ran,
        error="boom",
        conventions="legacy",
        warning="differs at the broker",
    ).where(Instance.id == instance.id).execute()
    [shown] = queries.Overviews()(engine).rows
    assert (shown.id, shown.display_name, shown.symbol, shown.algorithm) == (
        instance.id,
        instance.display_name,
        "NVDA",
        "buyer",
    )
    assert (shown.status, shown.code_version, shown.drift) == (
        InstanceStatus.FAILED,
        "cd" * 32,
        None,
    )
    assert (shown.initial_capital, shown.cash, shown.shares, shown.last_price) == (
        1_000.0,
        400.0,
        6,
        101.5,
    )
    assert (shown.trades, shown.last_decision, shown.last_run_at) == (7, "buy 6", ran)
    assert (shown.error, shown.conventions, shown.warning) == (
        "boom",
        Conventions.LEGACY,
        "differs at the broker",
    )
