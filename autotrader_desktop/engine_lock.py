"""One engine per data directory: an exclusive lock on `engine.lock` in the directory.

The engine (what `headless` and `cycle` run, and what the window starts) takes the lock
before it trades and holds it until it ends. The lock is an OS file lock (`flock`) on an
open file, so the kernel releases it when the process ends in any way, SIGKILL included:
a lock left behind by a killed engine is simply free, and the next engine takes it over.
The file's content says who holds it (process id, start time, the engine's channel), so
a refused engine, or a window looking for one to attach to, can name it.

Other processes (the command line's `list`, `add`, `stop` ...) never take the lock; they
work beside a running engine through the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from autotrader_desktop.errors import UserError

log = logging.getLogger(__name__)

LOCK_FILENAME = "engine.lock"
STARTING_POLLS = 100
STARTING_POLL_S = 0.01


@dataclass(frozen=True)
class EngineInfo:
    """Who holds a data directory's lock."""

    pid: int
    started_at: datetime
    channel: str | None = None  # where the engine listens for windows (engine_channel)

    def describe(self) -> str:
        local = self.started_at.astimezone()
        return f"process {self.pid}, running since {local:%Y-%m-%d %H:%M:%S}"

    def to_json(self) -> str:
        return json.dumps(
            {"pid": self.pid, "started_at": self.started_at.isoformat(), "channel": self.channel}
        )

    @classmethod
    def from_json(cls, text: str) -> EngineInfo | None:
        try:
            data = json.loads(text)
            started_at = datetime.fromisoformat(data["started_at"])
            return cls(int(data["pid"]), started_at, data["channel"])
        except (ValueError, KeyError, TypeError):
            return None  # empty (an engine between taking the lock and writing) or foreign


class EngineAlreadyRunning(UserError):
    """Another engine holds the data directory."""

    def __init__(self, data_dir: Path, holder: EngineInfo | None) -> None:
        who = holder.describe() if holder else "a process that is just starting"
        super().__init__(
            f"an engine is already running on {data_dir} ({who}); only one engine may trade "
            "a data directory. Use that one (the window attaches to it; `list`, `add`, "
            "`stop` work beside it), stop it first, or choose another --data-dir"
        )
        self.holder = holder


def _read(handle: int) -> EngineInfo | None:
    os.lseek(handle, 0, os.SEEK_SET)
    return EngineInfo.from_json(os.read(handle, 4096).decode("utf-8", "replace"))


def _holder(handle: int) -> EngineInfo | None:
    """Who holds the lock on `handle`, giving an engine that has just locked time to say so."""
    for _ in range(STARTING_POLLS):
        info = _read(handle)
        if info is not None:
            return info
        time.sleep(STARTING_POLL_S)
    return None


class EngineLock:
    """The exclusive lock of one data directory, held from `acquire()` to `release()`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILENAME
        self._handle: int | None = None
        self.info: EngineInfo | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, started_at: datetime | None = None) -> EngineInfo:
        """Take the lock or raise EngineAlreadyRunning naming the holder (this lock object
        too, if it already holds the lock: an engine opens once)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            os.close(handle)
            raise EngineAlreadyRunning(self.data_dir, holder) from None
        previous = _read(handle)
        if previous is not None:
            # The lock was free, so that engine is gone (a clean stop empties the file).
            log.warning(
                "the engine lock of %s was left by %s, which ended without releasing it; "
                "taking it over",
                self.data_dir,
                previous.describe(),
            )
        self._handle = handle
        self.info = EngineInfo(os.getpid(), started_at or datetime.now(UTC))
        self._write(self.info)
        return self.info

    def publish_channel(self, channel: str) -> None:
        """Record where the engine listens, for windows to find it."""
        if self.info is None:
            raise RuntimeError("publish_channel() before acquire()")
        self.info = EngineInfo(self.info.pid, self.info.started_at, channel)
        self._write(self.info)

    def _write(self, info: EngineInfo) -> None:
        assert self._handle is not None
        data = info.to_json().encode()
        # Overwrite, then cut: a reader never sees the file empty while the lock is held.
        os.pwrite(self._handle, data, 0)
        os.ftruncate(self._handle, len(data))

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle, self.info = self._handle, None, None
        with contextlib.suppress(OSError):
            os.ftruncate(handle, 0)  # a clean end: nothing to take over
        os.close(handle)  # closing the only descriptor releases the flock


def running_engine(data_dir: Path) -> EngineInfo | None:
    """The engine holding `data_dir`, or None when no engine runs there.

    Never creates anything: a read-only question (a missing directory has no engine).
    Raises EngineAlreadyRunning if the lock is held by a process that never says who it is.
    """
    try:
        handle = os.open(data_dir / LOCK_FILENAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        # An engine writes who it is right after locking, and empties the file right before
        # unlocking: an empty file under a lock is one starting or stopping; give it time.
        for _ in range(STARTING_POLLS):
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read(handle)
                if info is not None:
                    return info
                time.sleep(STARTING_POLL_S)
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
                return None
        raise EngineAlreadyRunning(data_dir, None)
    finally:
        os.close(handle)
