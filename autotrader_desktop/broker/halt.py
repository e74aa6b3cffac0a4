"""The "Stop all trading" halt: a flag in the database that every process sees.

While it is set the engine runs no cycles (every instance is paused) and no order is sent;
it stays set across restarts until the user resumes trading.
"""

from __future__ import annotations

from autotrader_desktop.database import db

KEY = "trading_halted"


def is_halted() -> bool:
    row = db.execute_sql("SELECT value FROM settings WHERE key = ?", (KEY,)).fetchone()
    return row is not None and row[0] == "true"


def set_halted(halted: bool) -> None:
    db.execute_sql(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
        (KEY, "true" if halted else "false"),
    )
