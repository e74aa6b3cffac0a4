"""What the log shows a user by default, and what `--verbose` adds back.

By default the log says what a user can act on or wants to know (an engine started or
stopped, a failure, a feed reconnecting, the market closed); the routine lines of the
libraries below, which repeat every cycle or every request, only with `-v`.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Logger -> the level it is held at by default.
ROUTINE = {
    # APScheduler: "Running job ..." and "Job ... executed successfully", every cycle.
    "apscheduler": logging.WARNING,
    # The embedded simulator's websockets server: "server listening", "connection open",
    # "HTTP response sent (200 OK)" for every history request.
    "autotrader_desktop.feed.simulator": logging.WARNING,
    # The engine's "engine restarted ... 0 failed instance(s) retried" on every start.
    "autotrader_desktop.engine.routine": logging.WARNING,
}


def configure(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    for name, level in ROUTINE.items():
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else level)
