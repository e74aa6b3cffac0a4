"""Per-instance capture of what an algorithm prints and logs, inside its host.

Everything written to `sys.stdout` / `sys.stderr` or logged belongs to an instance: the one
whose run is in progress on the host's main thread, or, for a thread the algorithm started,
the instance whose run started that thread (threads inherit it from the thread that starts
them). Output a thread writes while its instance is not running waits for that instance's
next run. Writes that bypass Python's streams (C extensions, `os.write(1, ...)`, child
processes) reach file descriptors 1 and 2, which point at a pipe that is read here and
credited to the run in progress.

Each run keeps at most MAX_LINES_PER_RUN lines of MAX_LINE characters; beyond that, lines
are only counted, so a chatty thread costs the host no memory.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from typing import Any

MAX_LINE = 4000
MAX_LINES_PER_RUN = 200
_OWNER = "_autotrader_instance"

Line = tuple[float, str, str]  # (epoch seconds, stream, text)


class _Buffer:
    __slots__ = ("dropped", "lines", "partial")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.partial: dict[str, str] = {}
        self.dropped = 0

    def add(self, stream: str, text: str) -> None:
        if len(self.lines) >= MAX_LINES_PER_RUN:
            self.dropped += 1
            return
        self.lines.append((time.time(), stream, text[:MAX_LINE]))

    def write(self, stream: str, text: str) -> None:
        *complete, rest = (self.partial.get(stream, "") + text).split("\n")
        for line in complete:
            self.add(stream, line)
        # An endless line without a newline is cut into MAX_LINE pieces, not hoarded.
        while len(rest) > MAX_LINE:
            self.add(stream, rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.partial[stream] = rest


class Capture:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[int | None, _Buffer] = {}
        self.current: int | None = None  # the instance whose run is in progress
        self._fd_pipe: int | None = None

    # --- set-up ------------------------------------------------------------------------

    def install(self) -> None:
        """Take over sys.stdout/sys.stderr, fds 1 and 2, logging and thread start."""
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self._fd_pipe = read_end
        sys.stdout = _Stream(self, "stdout")
        sys.stderr = _Stream(self, "stderr")
        root = logging.getLogger()
        root.handlers[:] = [_Handler(self)]
        root.setLevel(logging.INFO)
        _inherit_owner_on_thread_start(self)
        threading.Thread(target=self._read_fds, name="fd-capture", daemon=True).start()

    def _read_fds(self) -> None:
        assert self._fd_pipe is not None
        while True:
            select.select([self._fd_pipe], [], [], 1.0)
            self._drain_fds()

    def _drain_fds(self) -> None:
        """Move what C code and child processes wrote to fds 1/2 into the current run."""
        while True:
            try:
                data = os.read(self._fd_pipe, 65536)  # type: ignore[arg-type]
            except BlockingIOError:
                return
            if not data:
                return
            self.write(self.current, "stdout", data.decode("utf-8", "replace"))

    # --- writing -----------------------------------------------------------------------

    def owner(self) -> int | None:
        thread = threading.current_thread()
        if thread is threading.main_thread():
            return self.current
        return getattr(thread, _OWNER, self.current)

    def write(self, instance: int | None, stream: str, text: str) -> None:
        with self._lock:
            buffer = self._buffers.get(instance)
            if buffer is None:
                buffer = self._buffers[instance] = _Buffer()
            buffer.write(stream, text)

    # --- runs --------------------------------------------------------------------------

    def begin(self, instance: int) -> None:
        """From now on the main thread's output belongs to `instance`."""
        self.current = instance

    def end(self) -> list[Line]:
        """The lines of the run that just ended (and of its threads since its last run)."""
        self._drain_fds()
        instance, self.current = self.current, None
        with self._lock:
            buffer = self._buffers.pop(instance, None)
            orphans = self._buffers.pop(None, None)  # written while no run was in progress
        lines: list[Line] = []
        for part in (orphans, buffer):
            if part is None:
                continue
            for stream, rest in part.partial.items():
                if rest:
                    part.add(stream, rest)
            lines.extend(part.lines)
            if part.dropped:
                lines.append((time.time(), "stderr", f"[{part.dropped} more lines not kept]"))
        return lines


class _Stream:
    """sys.stdout / sys.stderr inside a host."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, capture: Capture, stream: str) -> None:
        self._capture = capture
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._capture.write(self._capture.owner(), self._stream, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self._stream == "stdout" else 2

    def writable(self) -> bool:
        return True


class _Handler(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a message whose arguments cannot be formatted
            text = f"{record.levelname} {record.name}: <message could not be formatted>"
        self._capture.write(self._capture.owner(), "log", text + "\n")


def _inherit_owner_on_thread_start(capture: Capture) -> None:
    """A thread belongs to the instance of the thread that starts it."""
    start = threading.Thread.start

    def owned_start(self: threading.Thread) -> None:
        owner = capture.owner()
        if owner is not None:
            setattr(self, _OWNER, owner)
        start(self)

    threading.Thread.start = owned_start  # type: ignore[method-assign]
