"""Core events: a failing listener is logged and skipped; the emitter and others go on."""

from __future__ import annotations

import logging

from autotrader_desktop.events import event
from tests.helpers import add_instance, cycle, returning, write_algorithm


class Announcer:
    said = event(int)


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    announcer, heard = Announcer(), []

    def broken(value: int) -> None:
        raise ValueError(f"cannot take {value}")

    announcer.said.connect(broken)
    announcer.said.connect(heard.append)
    with caplog.at_level(logging.ERROR, logger="autotrader_desktop.events"):
        announcer.said.emit(1)
        announcer.said.emit(2)
    assert heard == [1, 2]
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 2 and "cannot take 1" in str(failures[0].exc_info[1])


def test_a_cycle_survives_a_failing_listener(engine, algo_dir):
    write_algorithm(algo_dir, "buyer", returning("'buy', 1"))
    add_instance(engine, "NVDA", "buyer")
    reports = []
    engine.events.runs_recorded.connect(lambda runs: 1 / 0)
    engine.events.cycle_finished.connect(reports.append)
    report = cycle(engine)
    assert reports == [report] and report.summary == "1 executed"
