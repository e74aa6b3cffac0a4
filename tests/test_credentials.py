"""Whether the system has an OS keyring at all (the Settings dialog says so when not)."""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from autotrader_desktop import credentials


class SecretService(KeyringBackend):
    """Stands in for a desktop's keyring."""

    priority = 5

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        pass

    def delete_password(self, service, username):
        pass


@pytest.mark.parametrize(
    ("backend", "available"),
    [(fail.Keyring, False), (null.Keyring, False), (SecretService, True)],
    ids=["none found", "turned off", "desktop keyring"],
)
def test_keyring_available(monkeypatch, backend, available):
    monkeypatch.setattr(keyring, "get_keyring", backend)
    assert credentials.keyring_available() is available
