"""The Alpaca API key and secret: from the environment, else from the OS keyring.

APCA_API_KEY_ID / APCA_API_SECRET_KEY (Alpaca's own variable names) override what is stored.
Alpaca gives a paper account and a live account different keys, so the keyring holds two
pairs: the paper pair (also used for market data) and the live pair (`live=True`).
The secret is never written to the database, a file or a log line; `Credentials` keeps it
out of its repr so that it cannot leak through logging or a traceback either.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import keyring

log = logging.getLogger(__name__)

SERVICE = "AutoTrader Desktop"
KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"


class CredentialsError(RuntimeError):
    """The key and secret cannot be found or stored; the message says what to do."""


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret_key: str = field(repr=False)


def _names(live: bool) -> tuple[str, str]:
    prefix = "live:" if live else ""
    return prefix + KEY_ENV, prefix + SECRET_ENV


def load(live: bool = False) -> Credentials | None:
    """The environment's key pair if both variables are set, else the keyring's, else None."""
    key_id, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    if key_id and secret:
        return Credentials(key_id, secret)
    key_name, secret_name = _names(live)
    try:
        key_id = keyring.get_password(SERVICE, key_name)
        secret = keyring.get_password(SERVICE, secret_name)
    except Exception as exc:  # backends raise more than KeyringError (D-Bus, locked store)
        # Only the exception type: some backends put request details in the message.
        log.warning("the OS keyring is not available (%s)", type(exc).__name__)
        return None
    return Credentials(key_id, secret) if key_id and secret else None


def keyring_available() -> bool:
    """Whether the system has an OS keyring: keyring falls back to a backend that refuses
    everything when it finds none (a headless box, a desktop without a secret service),
    and the null backend is how a user turns it off."""
    from keyring.backends import fail, null

    return not isinstance(keyring.get_keyring(), fail.Keyring | null.Keyring)


def save(credentials: Credentials, live: bool = False) -> None:
    """Store the key pair in the OS keyring (the Settings dialog does this)."""
    key_name, secret_name = _names(live)
    try:
        keyring.set_password(SERVICE, key_name, credentials.key_id)
        keyring.set_password(SERVICE, secret_name, credentials.secret_key)
    except Exception as exc:  # as in load()
        raise CredentialsError(
            f"could not store the API key in the OS keyring ({type(exc).__name__}); "
            f"set {KEY_ENV} and {SECRET_ENV} in the environment instead"
        ) from None


def missing_message(live: bool = False) -> str:
    which = "live-trading " if live else ""
    return (
        f"no Alpaca {which}API key: enter it in Settings (stored in the OS keyring) "
        f"or set {KEY_ENV} and {SECRET_ENV}"
    )
