"""Whether the system has an OS keyring at all (the Settings dialog says so when not)."""

from __future__ import annotations

import os

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from autotrader_desktop import credentials
from tests.helpers import returning, run_cli_subprocess, subprocess_env, write_algorithm


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


def plaintext_backend(module: str = "keyrings.alt.file") -> type[KeyringBackend]:
    """A backend named like keyrings.alt's plain-text one, holding a stored key pair."""
    stored = {
        (credentials.SERVICE, credentials.KEY_ENV): "stored-key",
        (credentials.SERVICE, credentials.SECRET_ENV): "stored-secret",
    }
    written: dict = {}

    def set_password(self, service, username, password):
        written[service, username] = password

    return type(
        "PlaintextKeyring",
        (KeyringBackend,),
        {
            "__module__": module,
            # Not viable: every KeyringBackend subclass is a candidate when keyring picks
            # its default backend, and this one must never be picked in other tests.
            "priority": -1,
            "written": written,
            "get_password": lambda self, service, username: stored.get((service, username)),
            "set_password": set_password,
            "delete_password": lambda self, service, username: None,
        },
    )


@pytest.mark.parametrize("module", ["keyrings.alt.file", "keyrings.alt.pyfs"])
def test_a_plain_text_keyring_is_refused(monkeypatch, caplog, module):
    backend = plaintext_backend(module)()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    assert credentials.keyring_available() is False
    with pytest.raises(credentials.CredentialsError, match="stores passwords in plain text"):
        credentials.save(credentials.Credentials("key", "secret"))
    assert backend.written == {}
    assert credentials.load() is None  # what it holds is not used either
    assert f"the keyring backend {module}.PlaintextKeyring stores passwords in plain text" in (
        caplog.text
    )
    assert "stored-secret" not in caplog.text


def test_a_chain_with_a_plain_text_link_is_refused(monkeypatch):
    class Chain(SecretService):
        backends = [SecretService(), plaintext_backend()()]

    monkeypatch.setattr(keyring, "get_keyring", Chain)
    assert credentials.keyring_problem() is not None
    assert credentials.keyring_available() is False


def test_the_app_refuses_a_configured_plain_text_keyring(tmp_path):
    """PYTHON_KEYRING_BACKEND pointing at keyrings.alt's PlaintextKeyring (a stand-in
    package here): the app neither reads the key from it nor says the secret."""
    package = tmp_path / "site" / "keyrings" / "alt"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "file.py").write_text(
        "from keyring.backend import KeyringBackend\n"
        "class PlaintextKeyring(KeyringBackend):\n"
        "    priority = 1\n"
        "    def get_password(self, service, username):\n"
        "        return 'plain-' + username\n"
        "    def set_password(self, service, username, password):\n"
        "        raise AssertionError('written')\n"
        "    def delete_password(self, service, username):\n"
        "        pass\n"
    )
    data, folder = tmp_path / "data", tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "holder", returning("'hold', 0"))
    env = subprocess_env(data, folder, AUTOTRADER_FEED="alpaca-iex")
    assert run_cli_subprocess(["add", "NVDA", "holder", "100"], env).returncode == 0
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    result = run_cli_subprocess(["--feed", "alpaca-iex", "cycle"], env)
    assert result.returncode == 0, result.stderr
    assert (
        "the keyring backend keyrings.alt.file.PlaintextKeyring stores passwords in plain text"
        in result.stderr
    )
    assert "no Alpaca API key" in result.stderr
    assert "plain-APCA_API_SECRET_KEY" not in result.stderr + result.stdout
