"""The engine's log lines a user reads: the closed market said once, no news on a start."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from autotrader_desktop import logging_config
from tests.helpers import add_instance, returning, write_algorithm

HOLD = returning("'hold', 0")

SATURDAY = datetime(2024, 3, 16, 12, 0, 2, tzinfo=UTC)
MONDAY_OPEN = datetime(2024, 3, 18, 13, 31, 2, tzinfo=UTC)  # 09:31 in New York (EDT)
MONDAY_CLOSED = datetime(2024, 3, 18, 20, 1, 2, tzinfo=UTC)


def closed_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("market closed")]


def scheduled_cycle(engine) -> None:
    """What the minute schedule calls."""
    asyncio.run(engine._scheduled_cycle(every=None))


def test_a_closed_market_is_said_once_per_closed_period(make_engine, clock, algo_dir, caplog):
    write_algorithm(algo_dir, "hold", HOLD)
    engine = make_engine(market_hours_gating=True)
    instance = add_instance(engine, "NVDA", "hold")
    caplog.set_level(logging.INFO, logger="autotrader_desktop")

    for minute in range(3):
        clock.set(SATURDAY.replace(minute=minute))
        scheduled_cycle(engine)
    assert closed_lines(caplog) == ["market closed; next open Mon 18 Mar 13:30 UTC"]
    assert instance.runs.count() == 0

    clock.set(MONDAY_OPEN)
    scheduled_cycle(engine)
    assert instance.runs.count() == 1

    clock.set(MONDAY_CLOSED)
    scheduled_cycle(engine)
    scheduled_cycle(engine)
    assert closed_lines(caplog) == [
        "market closed; next open Mon 18 Mar 13:30 UTC",
        "market closed; next open Tue 19 Mar 13:30 UTC",
    ]


def test_without_gating_nothing_is_said(make_engine, clock, caplog):
    engine = make_engine(market_hours_gating=False)
    caplog.set_level(logging.INFO, logger="autotrader_desktop")
    clock.set(SATURDAY)
    scheduled_cycle(engine)
    assert closed_lines(caplog) == []


def restart_lines(caplog) -> list[tuple[str, str]]:
    return [(r.name, r.getMessage()) for r in caplog.records if "restarted" in r.getMessage()]


def test_a_start_with_nothing_to_retry_is_routine(make_engine, caplog):
    """Logged where logging_config holds it back unless -v (tests/e2e/test_headless.py)."""
    caplog.set_level(logging.INFO, logger="autotrader_desktop")
    # Whatever level an earlier in-process CLI run's logging_config.configure() left it at.
    caplog.set_level(logging.INFO, logger="autotrader_desktop.engine.routine")
    engine = make_engine()  # opened: a start is a restart for the snapshot rule
    assert engine.restart() == 0
    routine = (
        "autotrader_desktop.engine.routine",
        "engine restarted: module cache cleared, 0 failed instance(s) retried",
    )
    assert restart_lines(caplog) == [routine, routine]
    assert "autotrader_desktop.engine.routine" in logging_config.ROUTINE


def test_a_restart_that_retries_failed_instances_says_so(engine, algo_dir, caplog):
    write_algorithm(algo_dir, "hold", HOLD)
    instance = add_instance(engine, "NVDA", "hold")
    type(instance).update(status="failed", error="boom").execute()
    caplog.set_level(logging.INFO, logger="autotrader_desktop")
    assert engine.restart() == 1
    assert restart_lines(caplog) == [
        (
            "autotrader_desktop.engine",
            "engine restarted: module cache cleared, 1 failed instance(s) retried",
        )
    ]
