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

# Backends that would write the secret in plain text (keyrings.alt, which some
# distributions install, has two), whatever priority they claim; any backend whose name
# says "plaintext" is refused too.
PLAINTEXT_BACKENDS = {"keyrings.alt.file.PlaintextKeyring", "keyrings.alt.pyfs.PlaintextKeyring"}


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
    problem = keyring_problem()
    if problem is not None:
        log.warning("%s", problem)
        return None
    key_name, secret_name = _names(live)
    try:
        key_id = keyring.get_password(SERVICE, key_name)
        secret = keyring.get_password(SERVICE, secret_name)
    except Exception as exc:  # backends raise more than KeyringError (D-Bus, locked store)
        # Only the exception type: some backends put request details in the message.
        log.warning("the OS keyring is not available (%s)", type(exc).__name__)
        return None
    return Credentials(key_id, secret) if key_id and secret else None


def keyring_problem() -> str | None:
    """Why the configured keyring must not hold the key and secret (it stores them in
    plain text, where anyone with the user's files can read them), or None.

    A chain of backends is refused if any link is one.
    """
    backend = keyring.get_keyring()
    for link in getattr(backend, "backends", None) or [backend]:
        name = f"{type(link).__module__}.{type(link).__qualname__}"
        if name in PLAINTEXT_BACKENDS or "plaintext" in name.lower():
            return (
                f"the keyring backend {name} stores passwords in plain text, so the API key "
                "is neither stored in it nor read from it; use the desktop's keyring "
                "(Secret Service, KWallet, macOS Keychain, Windows Credential Locker) or "
                f"set {KEY_ENV} and {SECRET_ENV}"
            )
    return None


def keyring_available() -> bool:
    """Whether the system has an OS keyring that may hold the key: keyring falls back to a
    backend that refuses everything when it finds none (a headless box, a desktop without
    a secret service), the null backend is how a user turns it off, and plain-text
    backends are refused (keyring_problem)."""
    from keyring.backends import fail, null

    if isinstance(keyring.get_keyring(), fail.Keyring | null.Keyring):
        return False
    return keyring_problem() is None


def save(credentials: Credentials, live: bool = False) -> None:
    """Store the key pair in the OS keyring (the Settings dialog does this)."""
    problem = keyring_problem()
    if problem is not None:
        raise CredentialsError(problem)
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
