"""Feed test tools: a protocol server that misbehaves on command, and condition waits.

The tests drive coroutines with `run()` (asyncio.run with a time limit) and never sleep
to wait for something: they wait on `Pulse`, which whoever changes something notifies.
"""

from __future__ import annotations

import keyring
import pytest

KEY, SECRET = "test-key", "test-secret-value"


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch) -> dict[tuple[str, str], str]:
    """The OS keyring, replaced by a dict: tests never read or write the user's real one."""
    store: dict[tuple[str, str], str] = {}

    def set_password(service: str, name: str, value: str) -> None:
        store[service, name] = value

    monkeypatch.setattr(keyring, "get_password", lambda service, name: store.get((service, name)))
    monkeypatch.setattr(keyring, "set_password", set_password)
    return store
