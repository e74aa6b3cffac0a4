"""A window's engine: attach to the one running on the data directory, or start one.

The engine is always a process of its own, exactly what `headless` runs (the same entry
point: `python -m autotrader_desktop headless`, or the frozen app's own executable with
`headless`). A window first asks the data directory's lock who runs there
(engine_lock.running_engine); if an engine runs, the window attaches to it and never stops
it. If none runs, the window starts one with its own options, waits for its channel, and
attaches: that engine was "started by this window", and the window stops it when it
closes unless the user keeps trading in the background (the setting
`keep_trading_in_background`).

Blocking: call it off the GUI thread. Imports no Qt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from autotrader_desktop.engine_channel import EngineClient, EngineUnavailable
from autotrader_desktop.engine_lock import EngineAlreadyRunning, EngineInfo, running_engine
from autotrader_desktop.settings import Settings

log = logging.getLogger(__name__)

ENGINE_LOG = "engine.log"
START_TIMEOUT_S = 60.0  # the first start imports the stack and may fetch history
STOP_TIMEOUT_S = 10.0  # SIGTERM ends hosts within 5 s; then SIGKILL
POLL_S = 0.05


def _last_line(path: Path | None) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").strip().splitlines() if path else []
        return lines[-1] if lines else "no output"
    return "no output"


def engine_command(options: list[str]) -> list[str]:
    """The command line of `headless` with these global options, for this installation."""
    if getattr(sys, "frozen", False):  # the bundle: the executable is the app itself
        return [sys.executable, "headless", *options]
    return [sys.executable, "-m", "autotrader_desktop", "headless", *options]


class EngineLink:
    """One window's engine: which process, whether this window started it, the client."""

    def __init__(
        self, data_dir: Path, options: list[str], settings: Settings, algorithm_dir: Path
    ) -> None:
        """`options`: the window's global command-line options, for the engine it starts."""
        self.data_dir = data_dir
        self.options = options
        self.client = EngineClient(settings, algorithm_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def info(self) -> EngineInfo | None:
        return self.client.info

    def describe(self) -> str:
        """For the status bar."""
        info = self.client.info
        if info is None:
            return "engine: not running"
        if not self.client.connected:
            return f"engine stopped (process {info.pid} ended)"
        if self.started_here:
            return f"engine: process {info.pid}, started by this window"
        return f"attached to the engine in process {info.pid}"

    def attach_or_start(self) -> EngineInfo:
        """Attach to the data directory's engine, starting one first if none runs."""
        if self.process is not None and self.process.poll() is not None:
            self.process = None  # the one this window started has ended (now reaped)
        info = running_engine(self.data_dir)
        if info is None:
            info = self._start()
        else:
            self.process = None
            info = self._wait_for_channel(info, None)
        self.client.connect(info)
        log.info("%s", self.describe())
        return info

    @property
    def log_path(self) -> Path:
        return self.data_dir / ENGINE_LOG

    def command(self) -> list[str]:
        """The command line of the engine this window starts: its options, its log file,
        and this window's process (the engine stops if the window ends without stopping it)."""
        return engine_command(
            [*self.options, "--log-file", str(self.log_path), "--for-window", str(os.getpid())]
        )

    def _start(self) -> EngineInfo:
        command = self.command()
        log_path = self.log_path
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The engine rotates its log itself (logging_config); this catches what it writes
        # before its logging is set up, such as a failed import.
        with open(log_path, "ab") as out:
            # A session of its own: Ctrl-C in the window's terminal is the window's to handle.
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("started the engine: process %d (its log: %s)", self.process.pid, log_path)
        return self._wait_for_channel(None, log_path)

    def _wait_for_channel(self, info: EngineInfo | None, log_path: Path | None) -> EngineInfo:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                info = running_engine(self.data_dir)
            except EngineAlreadyRunning:
                info = None  # locked, not yet saying who: starting
            if info is not None and info.channel:
                if self.process is not None and info.pid != self.process.pid:
                    # Another window started one at the same moment; ours refused: use theirs.
                    self.process.wait(STOP_TIMEOUT_S)
                    self.process = None
                return info
            if self.process is not None and self.process.poll() is not None:
                self.process = None
                raise EngineUnavailable(
                    f"the engine did not start: {_last_line(log_path)} (its log: {log_path})"
                )
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"no engine came up on {self.data_dir} within {START_TIMEOUT_S:g} s"
                )
            time.sleep(POLL_S)

    def detach(self) -> None:
        """Disconnect; the engine goes on."""
        self.client.close()

    def stop(self) -> None:
        """Stop the engine this window started (SIGTERM; SIGKILL after STOP_TIMEOUT_S)."""
        self.client.close()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the engine (process %d) ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait(STOP_TIMEOUT_S)
        log.info("stopped the engine (process %d)", process.pid)
