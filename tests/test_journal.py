"""journal.decide: what becomes of each finished run, without a database."""

from __future__ import annotations

from datetime import timedelta

from autotrader_desktop.broker.paper import PaperBroker
from autotrader_desktop.decision import Decision
from autotrader_desktop.enums import InstanceStatus, Outcome
from autotrader_desktop.journal import Holding, RunResult, decide
from tests.helpers import T0

RUNNING = Holding(1_000.0, 0, InstanceStatus.RUNNING)


def run(instance_id: int, decision: Decision | None = None, **kwargs) -> RunResult:
    kwargs.setdefault("scheduled_at", T0)
    return RunResult(
        instance_id, "NVDA", started_at=T0, duration_ms=1.0, decision=decision, **kwargs
    )


def outcomes(entries) -> list[tuple[int, Outcome, str | None]]:
    return [(e.run.instance_id, e.outcome, e.reason) for e in entries]


def test_each_kind_of_run_gets_its_outcome():
    holdings = {1: RUNNING, 2: RUNNING, 3: RUNNING, 4: Holding(5.0, 0, InstanceStatus.STOPPED)}
    entries = decide(
        [
            run(1, Decision("buy", 2)),
            run(2, Decision("hold", 0)),
            run(3, error="ValueError: no"),
            run(4, Decision("buy", 1)),
        ],
        holdings,
        set(),
        {"NVDA": 100.0},
        PaperBroker(commission=1.0),
    )
    assert outcomes(entries) == [
        (1, Outcome.EXECUTED, None),
        (2, Outcome.HOLD, None),
        (3, Outcome.FAILED, "ValueError: no"),
        (4, Outcome.REJECTED, "instance was stopped while it ran"),
    ]
    assert entries[0].holding == Holding(799.0, 2, InstanceStatus.RUNNING)
    assert entries[1].holding == RUNNING and entries[0].price == 100.0


def test_a_fill_changes_what_the_next_run_of_the_instance_holds():
    later = T0 + timedelta(minutes=1)
    entries = decide(
        [run(1, Decision("buy", 6)), run(1, Decision("buy", 6), scheduled_at=later)],
        {1: RUNNING},
        set(),
        {"NVDA": 100.0},
        PaperBroker(),
    )
    assert [e.outcome for e in entries] == [Outcome.EXECUTED, Outcome.REJECTED]
    assert "insufficient cash" in (entries[1].reason or "")
    assert entries[1].holding == Holding(400.0, 6, InstanceStatus.RUNNING)


def test_deleted_instances_and_journaled_runs_are_left_out():
    entries = decide(
        [run(1, Decision("buy", 1)), run(2, Decision("buy", 1))],
        {1: RUNNING},  # 2 was deleted meanwhile
        {(1, T0)},  # and 1's run is journaled already
        {"NVDA": 100.0},
        PaperBroker(),
    )
    assert entries == []


def test_no_price_rejects_the_order():
    entries = decide([run(1, Decision("sell", 1))], {1: RUNNING}, set(), {}, PaperBroker())
    assert outcomes(entries) == [(1, Outcome.REJECTED, "no price for NVDA yet")]
