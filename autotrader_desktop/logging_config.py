"""What the log shows a user by default, what `--verbose` adds back, and where it goes.

By default the log says what a user can act on or wants to know (an engine started or
stopped, a failure, a feed reconnecting, the market closed); the routine lines of the
libraries below, which repeat every cycle or every request, only with `-v`.

The log goes to stderr, or with `headless --log-file FILE` (how a window starts its
engine, with the data directory's engine.log) to FILE, rotated by size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

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

# A log file is renamed to FILE.1 (FILE.1 to FILE.2, ...) once it would pass LOG_FILE_BYTES;
# the oldest beyond LOG_FILE_BACKUPS is deleted. 5 MB holds days of a quiet engine's lines
# and a few hours of a verbose one; at most 20 MB in all.
LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 3


class _LogFile(RotatingFileHandler):
    """A rotated log file that also receives this process's stdout and stderr (fds 1 and 2):
    what bypasses logging (a traceback, `error: ...` on the way out, a host that dies
    before it captures its own output) lands in the current file too, never in a renamed
    or deleted one."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
        self._take_stdio()

    def doRollover(self) -> None:
        super().doRollover()
        self._take_stdio()

    def _take_stdio(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()  # what is buffered belongs before the switch
        assert self.stream is not None  # not delayed: opened at once and by each rollover
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)


def configure(verbose: bool = False, log_file: Path | None = None) -> None:
    """`log_file`: log there (rotated; stdout and stderr follow) instead of to stderr.
    Raises OSError if it cannot be opened."""
    if log_file is None:
        logging.basicConfig(level=logging.INFO, format=FORMAT)
    else:
        logging.basicConfig(
            level=logging.INFO, format=FORMAT, handlers=[_LogFile(log_file)], force=True
        )
    for name, level in ROUTINE.items():
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else level)
