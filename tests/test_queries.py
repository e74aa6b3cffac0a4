"""The read models' rows: value and P&L derived once, and kept right when repriced."""

from __future__ import annotations

from dataclasses import replace

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
