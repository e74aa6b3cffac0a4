"""Per-instance capture of what algorithms print and log.

Algorithms run on worker threads, so capture is by thread: a run declares "this thread now
works for instance N" and everything written to sys.stdout / sys.stderr or logged from that
thread until the run ends is collected for N. Output from any other thread passes through.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

MAX_LINE = 4000
MAX_LINES_PER_RUN = 200


@dataclass
class _Buffer:
    lines: list[tuple[datetime, str, str]] = field(default_factory=list)
    partial: dict[str, str] = field(default_factory=dict)
    dropped: int = 0

    def add(self, stream: str, text: str) -> None:
        if len(self.lines) >= MAX_LINES_PER_RUN:
            self.dropped += 1
            return
        self.lines.append((datetime.now(UTC), stream, text[:MAX_LINE]))


class _RoutingStream:
    def __init__(self, original: TextIO, stream: str, capture: OutputCapture) -> None:
        self.original = original
        self._stream = stream
        self._capture = capture

    def write(self, text: str) -> int:
        buffer = self._capture._current()
        if buffer is None:
            return self.original.write(text)
        pending = buffer.partial.get(self._stream, "") + text
        *complete, rest = pending.split("\n")
        for line in complete:
            buffer.add(self._stream, line)
        buffer.partial[self._stream] = rest
        return len(text)

    def flush(self) -> None:
        if self._capture._current() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _CaptureHandler(logging.Handler):
    def __init__(self, capture: OutputCapture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buffer = self._capture._current()
        if buffer is not None:
            buffer.add("log", self.format(record))


class OutputCapture:
    def __init__(self) -> None:
        self._local = threading.local()
        self._handler = _CaptureHandler(self)

    def install(self) -> None:
        """Route sys.stdout/sys.stderr through the capture.

        Idempotent, and called before every cycle: whoever replaced the streams since
        (an embedding host, a test runner) gets wrapped too instead of silently winning.
        """
        if not isinstance(sys.stdout, _RoutingStream):
            sys.stdout = _RoutingStream(sys.stdout, "stdout", self)
        if not isinstance(sys.stderr, _RoutingStream):
            sys.stderr = _RoutingStream(sys.stderr, "stderr", self)
        root = logging.getLogger()
        if self._handler not in root.handlers:
            root.addHandler(self._handler)

    def uninstall(self) -> None:
        if isinstance(sys.stdout, _RoutingStream):
            sys.stdout = sys.stdout.original
        if isinstance(sys.stderr, _RoutingStream):
            sys.stderr = sys.stderr.original
        logging.getLogger().removeHandler(self._handler)

    def _current(self) -> _Buffer | None:
        return getattr(self._local, "buffer", None)

    def begin(self) -> None:
        """From now on, this thread's output belongs to the run that called begin()."""
        self._local.buffer = _Buffer()

    def end(self) -> list[tuple[datetime, str, str]]:
        """Stop capturing on this thread; return (time, stream, text) lines, oldest first."""
        buffer = self._current()
        self._local.buffer = None
        if buffer is None:
            return []
        for stream, rest in buffer.partial.items():
            if rest:
                buffer.add(stream, rest)
        if buffer.dropped:
            buffer.lines.append(
                (datetime.now(UTC), "stderr", f"[{buffer.dropped} more lines not kept]")
            )
        return buffer.lines
