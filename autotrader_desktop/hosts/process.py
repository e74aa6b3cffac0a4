"""Inside an algorithm host: load one algorithm's snapshot and run its instances' batches.

Started by the engine's supervisor (`protocol.host_command()` plus three file descriptors:
the inbox pipe, the outbox pipe and the progress file). Everything user code can reach is
this process: its working directory, its memory limit, fds 1 and 2 (captured per instance),
a read-only database connection for the data API. The engine kills and replaces the host
when it dies, hangs or overstays a run's time limit; nothing here needs to survive that.
"""

from __future__ import annotations

import base64
import contextlib
import mmap
import os
import signal
import sys
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

from autotrader_desktop import algorithm_loader, api, database
from autotrader_desktop.decision import validate
from autotrader_desktop.enums import Conventions
from autotrader_desktop.feed import sources
from autotrader_desktop.hosts import protocol
from autotrader_desktop.hosts.capture import Capture
from autotrader_desktop.hosts.protocol import Phase
from autotrader_desktop.snapshot import Snapshot, SourceFile

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Frames of these files are host plumbing; tracebacks shown to users leave them out.
_HOST_FILES = {__file__, algorithm_loader.__file__}
MAX_MESSAGE_CHARS = 1000
NICENESS = 5  # added to the engine's (docs/hosts.md)


def from_us(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)


class OffsetClock:
    """The engine's clock, followed from this process: its time when the batch was sent,
    moving on with ours (a fake clock in tests, the system clock otherwise)."""

    def __init__(self, engine_now_us: int) -> None:
        self._offset = from_us(engine_now_us) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


def describe(exc: BaseException) -> tuple[str, str]:
    """A one-line message and a traceback without host frames, whatever `exc` does."""
    name = type(exc).__name__
    try:
        if isinstance(exc, SystemExit):
            message = f"algorithm called sys.exit({exc.code!r})"
        elif isinstance(exc, SyntaxError) and exc.lineno:
            message = f"SyntaxError: {exc.msg} (line {exc.lineno})"
        else:
            lines = str(exc).strip().splitlines()
            message = f"{name}: {lines[0]}" if lines else name
    except BaseException as inner:  # a __str__ (or __repr__) that raises
        message = f"{name}: <message could not be shown: its str() raised {type(inner).__name__}>"
    if isinstance(exc, MemoryError):
        message += " (the algorithm's process reached its memory limit)"
    try:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename not in _HOST_FILES
        ]
        text = "".join(traceback.format_list(frames)) + message + "\n"
    except BaseException:
        text = message + "\n"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message, "Traceback (most recent call last):\n" + text


class EngineLink:
    """The host's two pipes to the engine. Besides answering batches, a run may ask the
    engine to fetch bars that are not stored yet (market data lives in the engine)."""

    def __init__(self, inbox: Connection, outbox: Connection) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self._lock = threading.Lock()  # an algorithm's threads may ask at the same time

    def fetch_history(self, symbol: str, start: int, end: int, deadline: float) -> bool:
        seconds = max(0.0, deadline - time.monotonic())
        with self._lock:
            self.outbox.send_bytes(protocol.encode({"history": [symbol, start, end, seconds]}))
            return bool(protocol.decode(self.inbox.recv_bytes())["history_done"])


class Runner:
    """One algorithm's module and its instances' Algorithm objects."""

    def __init__(
        self, hello: dict[str, Any], capture: Capture, progress: mmap.mmap, engine: EngineLink
    ) -> None:
        files = tuple(
            SourceFile(f["name"], Path(f["path"]), base64.b64decode(f["source"]))
            for f in hello["files"]
        )
        self.snapshot = Snapshot(files, Conventions(hello["conventions"]))
        self.engine = engine
        self.capture = capture
        self.progress = progress
        self.cls: type | None = None
        self.load_failure: tuple[str, str] | None = None
        self.objects: dict[int, Any] = {}  # user code: anything with run()

    def _at(self, batch: int, index: int, phase: Phase) -> None:
        word = protocol.progress_word(batch, index + 1, phase)
        protocol.PROGRESS.pack_into(self.progress, 0, word)

    def _load(self) -> type:
        return algorithm_loader.algorithm_class(algorithm_loader.load(self.snapshot))

    def run_batch(self, message: dict[str, Any]) -> None:
        batch = message["batch"]
        outbox = self.engine.outbox
        api.set_clock(OffsetClock(message["now_us"]))
        api.set_history(self.engine.fetch_history, message["time_limit"])
        current_time = self.snapshot.conventions.current_time(from_us(message["scheduled_us"]))
        results: list[dict[str, Any]] = []
        waiting_chars = 0
        began = flushed = time.perf_counter()
        last = len(message["runs"]) - 1
        for index, (instance_id, symbol, capital) in enumerate(message["runs"]):
            start = time.perf_counter()
            self.capture.begin(instance_id)
            result = self._run(batch, index, instance_id, symbol, capital, current_time)
            result["output"] = self.capture.end()
            result["i"] = index
            result["offset_s"] = start - began
            result["ms"] = (time.perf_counter() - start) * 1000
            results.append(result)
            waiting_chars += sum(len(text) for _, _, text in result["output"])
            now = time.perf_counter()
            if index < last and (
                now - flushed >= protocol.FLUSH_AFTER_S
                or waiting_chars >= protocol.FLUSH_OUTPUT_CHARS
            ):
                outbox.send_bytes(
                    protocol.encode({"batch": batch, "done": False, "results": results})
                )
                results, waiting_chars, flushed = [], 0, now
        outbox.send_bytes(protocol.encode({"batch": batch, "done": True, "results": results}))

    def _run(
        self,
        batch: int,
        index: int,
        instance_id: int,
        symbol: str,
        capital: float,
        current_time: datetime | str,
    ) -> dict[str, Any]:
        if self.load_failure is not None:  # every instance of the batch hits a failed import
            error, trace = self.load_failure
            return {"error": error, "traceback": trace, "load_error": True}
        phase = Phase.IMPORT
        try:
            if self.cls is None:
                self._at(batch, index, phase)
                self.cls = self._load()
            fresh = self.snapshot.conventions.fresh_object_per_run
            algorithm = None if fresh else self.objects.get(instance_id)
            if algorithm is None:
                phase = Phase.INIT
                self._at(batch, index, phase)
                algorithm = self.cls(symbol, capital)
                if not fresh:
                    self.objects[instance_id] = algorithm
            phase = Phase.RUN
            self._at(batch, index, phase)
            decision = validate(algorithm.run(current_time, instance_id))
        except BaseException as exc:  # user code may raise anything, SystemExit included
            error, trace = describe(exc)
            if phase is Phase.IMPORT:
                self.load_failure = (error, trace)
                return {"error": error, "traceback": trace, "load_error": True}
            return {"error": error, "traceback": trace, "phase": int(phase)}
        return {"action": decision.action, "shares": decision.shares}


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this host if the engine dies, even mid-way through a C call."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the engine ended before we got here
        os._exit(0)


def _limit_memory(megabytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows
        return
    limit = megabytes * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _yield_cpu() -> None:
    """Run user code at a lower CPU priority than the engine and the window: when the
    cores are busy, a CPU-heavy algorithm slows itself, not the window or the orders."""
    with contextlib.suppress(OSError, AttributeError):  # os.nice: not on Windows
        os.nice(NICENESS)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run a host on the pipes named by the last three arguments; never returns."""
    args = sys.argv[1:] if argv is None else argv
    parent, inbox_fd, outbox_fd, progress_fd = map(int, args[-4:])
    for fd in (inbox_fd, outbox_fd, progress_fd):
        os.set_inheritable(fd, False)  # processes the algorithm starts must not hold them
    # Ctrl-C in a terminal is for the engine, which ends its hosts itself; ignored here,
    # it also makes _thread.interrupt_main() a no-op.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    inbox = Connection(inbox_fd, writable=False)
    outbox = Connection(outbox_fd, readable=False)
    progress = mmap.mmap(progress_fd, protocol.PROGRESS.size)
    hello = protocol.decode(inbox.recv_bytes())["hello"]
    _limit_memory(hello["memory_limit_mb"])
    _yield_cpu()
    os.chdir(hello["workdir"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # user code that reads stdin gets end-of-file
    os.close(devnull)
    capture = Capture()
    capture.install()
    database.open_read_only(Path(hello["database"]))
    sources.use(hello["source"])
    runner = Runner(hello, capture, progress, EngineLink(inbox, outbox))
    outbox.send_bytes(protocol.encode({"ready": True}))
    while True:
        try:
            data = inbox.recv_bytes()
        except (EOFError, OSError):  # the engine closed the pipe or is gone
            os._exit(0)
        runner.run_batch(protocol.decode(data))


if __name__ == "__main__":
    main()
