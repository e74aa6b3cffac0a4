"""The bundle's launcher (tools/launcher.py)."""

from __future__ import annotations

from tests.helpers import load_tool


def test_launcher_points_openssl_at_the_system_ca_bundle_only_when_needed(monkeypatch, tmp_path):
    import ssl

    launcher = load_tool("launcher")
    bundle = tmp_path / "ca-bundle.crt"
    bundle.write_text("")
    candidates = (str(tmp_path / "absent.pem"), str(bundle))
    none = ssl.DefaultVerifyPaths(None, None, "SSL_CERT_FILE", "/x/cert.pem", "SSL_CERT_DIR", "/x")
    some = ssl.DefaultVerifyPaths("/etc/ca.pem", None, "SSL_CERT_FILE", "", "SSL_CERT_DIR", "")

    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: none)
    environ: dict[str, str] = {}
    launcher.use_system_ca_certificates(environ, candidates)
    assert environ == {"SSL_CERT_FILE": str(bundle)}
    chosen = {"SSL_CERT_DIR": "/mine"}
    launcher.use_system_ca_certificates(chosen, candidates)
    assert chosen == {"SSL_CERT_DIR": "/mine"}
    nowhere: dict[str, str] = {}
    launcher.use_system_ca_certificates(nowhere, (str(tmp_path / "absent.pem"),))
    assert nowhere == {}

    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: some)
    found: dict[str, str] = {}
    launcher.use_system_ca_certificates(found, candidates)
    assert found == {}
