"""Entry script of the packaged app (build_app.spec): the same `main` as `autotrader-desktop`.

Before it, two things only a frozen app needs:

- `multiprocessing.freeze_support()`, so that algorithms may use multiprocessing with the
  spawn or forkserver start methods (in the app's own process it returns at once);
- the system's CA certificates for TLS (the Alpaca feed and history): the bundled OpenSSL
  looks for them where the build machine keeps them (Debian: /usr/lib/ssl), and other
  distributions keep them elsewhere.
"""

import multiprocessing
import os
import sys

from autotrader_desktop.cli import main

# Where distributions keep their CA bundle: Debian, Ubuntu, Arch; Fedora, RHEL; openSUSE;
# Alpine and others.
CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def use_system_ca_certificates(environ=os.environ, candidates=CA_BUNDLES) -> None:
    """Point OpenSSL at this system's CA bundle when its built-in locations have none."""
    if "SSL_CERT_FILE" in environ or "SSL_CERT_DIR" in environ:
        return  # the user's choice
    import ssl

    found = ssl.get_default_verify_paths()  # cafile/capath: None when they do not exist
    if found.cafile or found.capath:
        return
    for bundle in candidates:
        if os.path.isfile(bundle):
            environ["SSL_CERT_FILE"] = bundle  # also for the processes the app starts
            return


if __name__ == "__main__":
    multiprocessing.freeze_support()
    if sys.argv[1:2] != ["_discovery-worker"]:  # the worker, started often, needs no TLS
        use_system_ca_certificates()
    sys.exit(main())
