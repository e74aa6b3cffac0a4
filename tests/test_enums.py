"""The closed sets of words: the database accepts exactly them, and each has a label."""

from __future__ import annotations

from datetime import timedelta

import pytest
from peewee import IntegrityError

from autotrader_desktop import settings
from autotrader_desktop.database import Instance, Run
from autotrader_desktop.enums import Broker, Feed, InstanceStatus, Outcome
from tests.helpers import T0


def insert_instance(status: str) -> Instance:
    return Instance.create(
        display_name=f"i_{status}",
        algorithm="a",
        symbol="NVDA",
        initial_capital=1.0,
        status=status,
        created_at=T0,
        cash=1.0,
    )


def insert_run(instance: Instance, minute: int, outcome: str) -> None:
    Run.create(instance=instance, scheduled_at=T0 + timedelta(minutes=minute), outcome=outcome)


def test_the_database_accepts_every_status_and_outcome_and_nothing_else(db):
    instance, *_ = [insert_instance(status) for status in InstanceStatus]
    for minute, outcome in enumerate(Outcome):
        insert_run(instance, minute, outcome)
    with pytest.raises(IntegrityError):
        insert_instance("paused")
    with pytest.raises(IntegrityError):
        insert_run(instance, 99, "skipped")


@pytest.mark.parametrize("words", [InstanceStatus, Outcome, Feed, Broker])
def test_every_member_has_a_label(words):
    labels = [member.label for member in words]
    assert all(labels) and len(set(labels)) == len(labels)


def test_a_feed_setting_is_one_of_the_feeds(db, monkeypatch):
    monkeypatch.setenv("AUTOTRADER_FEED", "alpaca-sip")
    assert settings.load().feed is Feed.ALPACA_SIP
    assert settings.load().gating_enabled
    monkeypatch.setenv("AUTOTRADER_FEED", "alpaca")
    with pytest.raises(settings.SettingError, match="sim, alpaca-iex, alpaca-sip, none"):
        settings.load()
