"""NYSE regular trading hours, holidays and early closes included.

The session schedule comes from exchange_calendars' "XNYS" calendar (maintained upstream,
not a hand-written holiday list). It is read once into two sorted arrays of open and
close times, and queries are binary searches on them: the library's own query methods
are slower and, with pandas 3.1, emit deprecation warnings on every call.
A session is open on [open, close): 16:00 ET (13:00 on an early close) is already closed.
"""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, datetime

import numpy as np

_lock = threading.Lock()
_schedule: tuple[np.ndarray, np.ndarray] | None = None


def _sessions() -> tuple[np.ndarray, np.ndarray]:
    """(opens, closes) as epoch seconds, one entry per session, oldest first."""
    global _schedule
    with _lock:
        if _schedule is None:
            import exchange_calendars  # slow to import (pandas): only when first needed

            with warnings.catch_warnings():
                # exchange_calendars 4.x on pandas 3.1 warns about its own use of
                # Series.values while building the calendar; nothing we can act on.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                calendar = exchange_calendars.get_calendar("XNYS")
            schedule = calendar.schedule

            def epoch(column: str) -> np.ndarray:
                utc = schedule[column].dt.tz_convert(None).to_numpy()
                return utc.astype("datetime64[s]").astype(np.int64)

            _schedule = (epoch("open"), epoch("close"))
        return _schedule


def _epoch(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no timezone; pass an aware datetime")
    return int(at.timestamp())


def _from_epoch(seconds: np.int64) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def is_open(at: datetime) -> bool:
    """Whether NYSE's regular session is open at `at` (an aware datetime)."""
    opens, closes = _sessions()
    when = _epoch(at)
    index = int(np.searchsorted(opens, when, side="right")) - 1
    return bool(index >= 0 and when < closes[index])


def next_open(at: datetime) -> datetime:
    """The first session open strictly after `at`, in UTC."""
    opens, _ = _sessions()
    index = int(np.searchsorted(opens, _epoch(at), side="right"))
    if index == len(opens):
        raise ValueError(f"{at.isoformat()} is beyond the NYSE calendar's last session")
    return _from_epoch(opens[index])


def next_close(at: datetime) -> datetime:
    """The first session close strictly after `at`, in UTC (today's, while open)."""
    _, closes = _sessions()
    index = int(np.searchsorted(closes, _epoch(at), side="right"))
    if index == len(closes):
        raise ValueError(f"{at.isoformat()} is beyond the NYSE calendar's last session")
    return _from_epoch(closes[index])


def in_session(minutes: np.ndarray) -> np.ndarray:
    """For each minute start (epoch seconds), whether that minute is inside a regular
    session: its bar is a regular-session bar (9:30 up to 15:59 New York on a full day)."""
    opens, closes = _sessions()
    minutes = np.asarray(minutes, dtype=np.int64)
    index = np.searchsorted(opens, minutes, side="right") - 1
    inside = index >= 0
    inside[inside] = minutes[inside] < closes[index[inside]]
    return inside


def sessions_back(newest: int, minutes: int, *, limit: int) -> int:
    """The open (epoch seconds) of the oldest session needed for `minutes` regular-session
    minutes at or before minute `newest`, going back at most `limit` sessions."""
    opens, closes = _sessions()
    index = int(np.searchsorted(opens, newest, side="right")) - 1
    count = 0
    start = newest
    for i in range(index, max(-1, index - limit), -1):
        start = int(opens[i])
        count += (min(int(closes[i]), newest + 60) - start) // 60
        if count >= minutes:
            break
    return start
