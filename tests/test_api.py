"""The data API algorithms call (docs/behaviour.md#data-api)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autotrader_desktop.api import get_data_for_algorithm, get_position, get_transactions
from autotrader_desktop.database import Instance, Transaction
from autotrader_desktop.feed.bars import store
from tests.helpers import T0

MINUTE = 60
NOW_MINUTE = int(T0.timestamp()) // 60 * 60  # 15:31:00, in progress at T0 (15:31:02)


@pytest.fixture
def bars(db, clock):
    rows = [
        ("NVDA", NOW_MINUTE - i * MINUTE, 1.0 + i, 2.0 + i, 0.5, 1.5 + i, 100.0 + i)
        for i in range(0, 300)
    ]
    store(rows)


def stamp(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_last_n_bars_are_completed_and_chronological(bars):
    result = get_data_for_algorithm("nvda", "last_n_bars", n=3)
    assert [b["timestamp"] for b in result] == [
        stamp(NOW_MINUTE - 3 * MINUTE),
        stamp(NOW_MINUTE - 2 * MINUTE),
        stamp(NOW_MINUTE - MINUTE),
    ]
    assert result[-1]["ohlcv"] == {"o": 2.0, "h": 3.0, "l": 0.5, "c": 2.5, "v": 101.0}


def test_in_progress_minute_is_never_returned(bars, clock):
    clock.set(datetime.fromtimestamp(NOW_MINUTE + 59.999, UTC))
    assert get_data_for_algorithm("NVDA", "last_n_bars", n=1)[0]["timestamp"] == stamp(
        NOW_MINUTE - MINUTE
    )
    clock.set(datetime.fromtimestamp(NOW_MINUTE + 60, UTC))
    assert get_data_for_algorithm("NVDA", "last_n_bars", n=1)[0]["timestamp"] == stamp(NOW_MINUTE)


@pytest.mark.parametrize(
    "before",
    [
        datetime.fromtimestamp(NOW_MINUTE - 10 * MINUTE, UTC),
        stamp(NOW_MINUTE - 10 * MINUTE),
        stamp(NOW_MINUTE - 10 * MINUTE).replace("Z", "+00:00"),
    ],
)
def test_before_timestamp_is_inclusive(bars, before):
    result = get_data_for_algorithm("NVDA", "last_n_bars", n=2, before_timestamp=before)
    assert [b["timestamp"] for b in result] == [
        stamp(NOW_MINUTE - 11 * MINUTE),
        stamp(NOW_MINUTE - 10 * MINUTE),
    ]


def test_before_timestamp_cannot_reach_the_in_progress_minute(bars):
    result = get_data_for_algorithm("NVDA", "last_n_bars", n=1, before_timestamp=T0)
    assert result[0]["timestamp"] == stamp(NOW_MINUTE - MINUTE)


def test_time_range_is_inclusive(bars):
    start = datetime.fromtimestamp(NOW_MINUTE - 5 * MINUTE, UTC)
    result = get_data_for_algorithm(
        "NVDA", "time_range", start=start, end=start + timedelta(minutes=2)
    )
    assert len(result) == 3 and result[0]["timestamp"] == stamp(NOW_MINUTE - 5 * MINUTE)
    assert (
        len(
            get_data_for_algorithm(
                "NVDA", "time_range", start=stamp(NOW_MINUTE - 120), end=stamp(NOW_MINUTE)
            )
        )
        == 2
    )


def test_unknown_symbol_gives_no_bars(bars):
    assert get_data_for_algorithm("ZZZZ", "last_n_bars", n=5) == []


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("last_n_bars", {}, "positive int"),
        ("last_n_bars", {"n": 0}, "positive int"),
        ("last_n_bars", {"n": True}, "positive int"),
        ("last_n_bars", {"n": 1, "before_timestamp": "yesterday"}, "not an ISO-8601"),
        ("last_n_bars", {"n": 1, "before_timestamp": datetime(2024, 1, 1)}, "no timezone"),
        ("time_range", {"start": T0}, "both start and end"),
        ("ohlc", {}, "unknown requirement_type"),
    ],
)
def test_bad_arguments_say_what_is_wrong(bars, kind, kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_data_for_algorithm("NVDA", kind, **kwargs)


def test_transactions_newest_first(db, clock):
    instance = Instance.create(
        display_name="x",
        algorithm="a",
        symbol="NVDA",
        initial_capital=100,
        status="running",
        created_at=T0,
        cash=100,
    )
    Transaction.create(instance=instance, type="buy", shares=2, price=10.0, timestamp=T0)
    Transaction.create(
        instance=instance, type="sell", shares=1, price=11.5, timestamp=T0 + timedelta(minutes=1)
    )
    result = get_transactions(instance.id)
    assert [t["type"] for t in result] == ["sell", "buy"]
    assert result[0] == {
        "id": 2,
        "algorithm_id": instance.id,
        "type": "sell",
        "shares": 1,
        "price": 11.5,
        "timestamp": "2024-03-13T15:32:02Z",
    }
    assert get_position(instance.id) == {"cash": 100.0, "shares": 0, "initial_capital": 100.0}


def test_legacy_import_names_work_only_inside_algorithms(engine, algo_dir):
    import sys

    from tests.helpers import add_instance, cycle, write_algorithm

    write_algorithm(
        algo_dir,
        "legacy",
        """
        from database.db_manager import get_data_for_algorithm
        from system_databse.system_db_manager import get_transactions
        import database.db_manager
        from database import db_manager

        class Algorithm:
            def __init__(self, ticker, initial_capital):
                self.ticker = ticker

            def run(self, current_time, algo_id):
                assert db_manager.get_data_for_algorithm is get_data_for_algorithm
                assert database.db_manager.get_data_for_algorithm is get_data_for_algorithm
                get_data_for_algorithm(self.ticker, "last_n_bars", n=5)
                return ("buy", 1) if not get_transactions(algo_id) else ("hold", 0)
    """,
    )
    instance = add_instance(engine, "NVDA", "legacy")
    cycle(engine)
    cycle(engine)
    assert Instance.get_by_id(instance.id).status == "running", Instance.get_by_id(
        instance.id
    ).error
    assert Instance.get_by_id(instance.id).shares == 1
    assert "database" not in sys.modules and "system_databse" not in sys.modules
    with pytest.raises(ImportError):
        __import__("database.db_manager")
