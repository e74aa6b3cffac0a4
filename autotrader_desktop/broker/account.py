"""What the outside broker last said about the account, kept in the database.

The order desk stores it after each time it asks Alpaca (`GET /v2/account`), so every
process of the data directory (the window reading the overview, a command) can show the
account's cash and equity without asking Alpaca itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from autotrader_desktop.database import db, write_transaction

KEY = "broker_account"


@dataclass(frozen=True)
class BrokerAccount:
    account_number: str
    cash: float
    equity: float


def save(account: BrokerAccount) -> None:
    with write_transaction():
        db.execute_sql(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
            (KEY, json.dumps(asdict(account))),
        )


def load() -> BrokerAccount | None:
    row = db.execute_sql("SELECT value FROM settings WHERE key = ?", (KEY,)).fetchone()
    return BrokerAccount(**json.loads(row[0])) if row else None
