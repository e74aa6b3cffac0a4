"""NYSE hours from the exchange calendar: regular days, a holiday, an early close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from autotrader_desktop.feed.market_hours import is_open, next_close, next_open

NEW_YORK = ZoneInfo("America/New_York")


def et(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def open_minutes(day: datetime) -> int:
    return sum(is_open(day + timedelta(minutes=m)) for m in range(24 * 60))


def test_gating_across_independence_day_and_the_early_close_before_it():
    assert open_minutes(et(2024, 7, 2)) == 390  # 09:30-16:00
    assert open_minutes(et(2024, 7, 3)) == 210  # early close: 09:30-13:00
    assert open_minutes(et(2024, 7, 4)) == 0  # holiday
    assert open_minutes(et(2024, 7, 5)) == 390
    assert open_minutes(et(2024, 7, 6)) == 0  # Saturday


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (et(2024, 7, 3, 9, 29, 59), False),
        (et(2024, 7, 3, 9, 30), True),
        (et(2024, 7, 3, 12, 59, 59), True),
        (et(2024, 7, 3, 13, 0), False),  # the early close is already closed
        (et(2024, 7, 4, 11, 0), False),
        (et(2024, 7, 5, 15, 59), True),
        (et(2024, 7, 5, 16, 0), False),
        (datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC), True),
        (datetime(2024, 3, 11, 13, 45, tzinfo=UTC), True),  # DST began the day before
    ],
)
def test_is_open(at, expected):
    assert is_open(at) is expected


def test_next_open_and_close_skip_the_holiday():
    assert next_close(et(2024, 7, 3, 10)) == et(2024, 7, 3, 13)
    assert next_open(et(2024, 7, 3, 13)) == et(2024, 7, 5, 9, 30)
    assert next_close(et(2024, 7, 3, 13)) == et(2024, 7, 5, 16)
    assert next_open(et(2024, 7, 5, 9, 30)) == et(2024, 7, 8, 9, 30)
    assert next_open(et(2024, 7, 3, 10)).tzinfo is UTC


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="no timezone"):
        is_open(datetime(2024, 7, 3, 10))
