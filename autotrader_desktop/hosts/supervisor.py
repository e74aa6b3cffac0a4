"""The engine's side of algorithm hosts: start them, feed them batches, time them, replace them.

One host process per algorithm, loading that algorithm's snapshot (see module_cache). A
cycle hands each host one batch (every instance of its algorithm due this cycle) on a
thread of its own, so hosts of different algorithms run in parallel and a slow one delays
only its own instances. While a batch runs, the host's progress word says which run is in
flight; when the host dies, hangs or a run overstays the time limit, the process (and
anything it started) is killed, that run is failed with what happened, and the batch's
remaining runs go to a fresh host loaded from the same snapshot. Instances that had an
Algorithm object in the old process start over with a fresh one, and their output says so.

See docs/hosts.md for the whole design.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import mmap
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotrader_desktop.api import HistoryFetcher
from autotrader_desktop.clock import Clock
from autotrader_desktop.decision import validate
from autotrader_desktop.feed import sources
from autotrader_desktop.hosts import protocol
from autotrader_desktop.hosts.protocol import Phase
from autotrader_desktop.journal import RunResult
from autotrader_desktop.paths import worker_env
from autotrader_desktop.safe_text import safe_text
from autotrader_desktop.snapshot import Snapshot

if TYPE_CHECKING:
    from autotrader_desktop.orchestrator import InstanceToRun

log = logging.getLogger(__name__)

# Starting a host (a fresh interpreter importing the data API) is not charged to any run;
# this limit only catches a host that cannot start at all.
STARTUP_TIMEOUT_S = 60.0
# A host that closed its pipe gets this long to finish dying before it is killed, so that
# its own cause of death (a signal, an exit code) is what the user reads.
DYING_GRACE_S = 1.0
# How often a waiting batch checks its host's progress and the time limit.
POLL_S = 0.05
MAX_ERROR_CHARS = 1000
MAX_TRACEBACK_CHARS = 20_000
MAX_LINE_CHARS = 4000
STREAMS = ("stdout", "stderr", "log")


class HostsClosed(Exception):
    """The hosts were ended (quit, restart) while a batch ran; its rest is not run."""


@dataclass
class HostSettings:
    database: Path
    work_root: Path  # each algorithm's host works in work_root/<algorithm>
    memory_limit_mb: int
    time_limit: float
    clock: Clock
    # Fetches bars an algorithm asks for that are not stored yet (the engine's market data).
    history: HistoryFetcher | None = None


class _Launcher:
    """Starts host processes from one long-lived thread. On Linux a host asks the kernel to
    kill it when its parent goes (PR_SET_PDEATHSIG), which fires when the *thread* that
    started it ends; cycle threads come and go, this one lives as long as the process."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[dict[str, Any], queue.SimpleQueue]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._serve, name="host-launcher", daemon=True).start()

    def _serve(self) -> None:
        while True:
            kwargs, reply = self._requests.get()
            try:
                reply.put((subprocess.Popen(**kwargs), None))
            except BaseException as exc:
                reply.put((None, exc))

    def launch(self, **kwargs: Any) -> subprocess.Popen:
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self._requests.put((kwargs, reply))
        process, error = reply.get()
        if error is not None:
            raise error
        return process


_launcher: _Launcher | None = None
_launcher_lock = threading.Lock()


def _launch(**kwargs: Any) -> subprocess.Popen:
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = _Launcher()
    return _launcher.launch(**kwargs)


class _Process:
    """A running host process and its channels."""

    def __init__(self, snapshot: Snapshot, settings: HostSettings) -> None:
        workdir = settings.work_root / snapshot.name
        workdir.mkdir(parents=True, exist_ok=True)
        to_host_r, to_host_w = os.pipe()
        from_host_r, from_host_w = os.pipe()
        self._progress_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        self._progress_file.write(bytes(protocol.PROGRESS.size))
        self._progress_file.flush()
        progress_fd = self._progress_file.fileno()
        try:
            self.popen = _launch(
                args=[
                    *protocol.host_command(),
                    str(os.getpid()),
                    str(to_host_r),
                    str(from_host_w),
                    str(progress_fd),
                ],
                pass_fds=(to_host_r, from_host_w, progress_fd),
                cwd=workdir,
                env=worker_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Its own session: signals to its process group never reach the engine, and
                # killing the group ends whatever the algorithm started too.
                start_new_session=True,
            )
        finally:
            os.close(to_host_r)
            os.close(from_host_w)
        self.inbox = Connection(to_host_w, readable=False)
        self.outbox = Connection(from_host_r, writable=False)
        self.progress = mmap.mmap(progress_fd, protocol.PROGRESS.size)
        self.started = time.monotonic()
        self.ran_any = False  # has it reported a run yet

    @property
    def pid(self) -> int:
        return self.popen.pid

    def word(self) -> int:
        return protocol.PROGRESS.unpack_from(self.progress, 0)[0]

    def send(self, message: dict[str, Any]) -> None:
        self.inbox.send_bytes(protocol.encode(message))

    def receive(self) -> dict[str, Any]:
        return protocol.decode(self.outbox.recv_bytes(protocol.MAX_MESSAGE_BYTES))

    def kill(self, grace: float = 0.0) -> int:
        """End the host and everything in its process group; returns its exit status.

        `grace`: a host whose pipe has closed is usually exiting on its own; waiting that
        long for it tells a segfault from our kill."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.popen.kill()
        status = self.popen.wait()
        for channel in (self.inbox, self.outbox):
            channel.close()
        self.progress.close()
        self._progress_file.close()
        return status


def _status_text(status: int | None) -> str:
    if status is None:
        return "stopped answering"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited (exit code {status})"


class _Died(Exception):
    """The host process ended or broke the protocol; `cause` says how, for the user."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class _TimedOut(Exception):
    """The run in flight overstayed the time limit."""


class Host:
    """One algorithm's host, as the engine sees it: at most one process at a time."""

    def __init__(self, snapshot: Snapshot, settings: HostSettings) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self._process: _Process | None = None
        self._lock = threading.Lock()  # guards _process against close() from other threads
        # One batch at a time: a cycle can end (all its results in) while the thread of its
        # batch still waits for the closing message, and the next cycle's batch must wait.
        self._running = threading.Lock()
        self._closed = False
        self._batch = 0
        # Instances with an Algorithm object in the current process, and notes for the next
        # run of those whose object was lost with a process.
        self._objects: set[int] = set()
        self._notes: dict[int, str] = {}

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process else None

    # --- life cycle ---------------------------------------------------------------------

    def _start(self) -> _Process:
        with self._lock:
            if self._closed:
                raise HostsClosed
            process = self._process = _Process(self.snapshot, self.settings)
        files = [
            {
                "name": file.name,
                "path": str(file.path),
                "source": base64.b64encode(file.source).decode("ascii"),
            }
            for file in self.snapshot.files
        ]
        hello = {
            "files": files,
            "conventions": self.snapshot.conventions.value,
            "source": sources.current(),
            "database": str(self.settings.database),
            "workdir": str(self.settings.work_root / self.snapshot.name),
            "memory_limit_mb": self.settings.memory_limit_mb,
        }
        try:
            process.send({"hello": hello})
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not process.outbox.poll(POLL_S):
                self._check_open()
                if process.popen.poll() is not None or time.monotonic() > deadline:
                    raise _Died(_status_text(process.popen.poll()) + " while starting")
            if process.receive() != {"ready": True}:
                raise _Died("sent an unexpected first message")
        except (_Died, EOFError, OSError, ValueError) as exc:
            if self._closed:  # ended meanwhile (quit, restart): not the host's fault
                raise HostsClosed from None
            status = self._end_process(DYING_GRACE_S)
            cause = exc.cause if isinstance(exc, _Died) else _status_text(status)
            raise _Died(f"the algorithm's process could not start: it {cause}") from None
        log.info("algorithm host for %s started (process %d)", self.snapshot.name, process.pid)
        return process

    def _check_open(self) -> None:
        if self._closed:
            raise HostsClosed

    def _end_process(self, grace: float = 0.0) -> int | None:
        with self._lock:
            process, self._process = self._process, None
        return process.kill(grace) if process else None

    def close(self) -> None:
        """End the host now, whatever it is doing; a batch waiting on it raises HostsClosed."""
        self._closed = True
        self._end_process()

    # --- batches ------------------------------------------------------------------------

    def run(
        self,
        scheduled_at: datetime,
        runs: list[InstanceToRun],
        deliver: Callable[[list[RunResult]], None],
    ) -> bool:
        """Run every instance of `runs` once for `scheduled_at`, delivering results as they
        come (blocking). Returns False when the module failed to load (each run failed).

        Raises HostsClosed if the host is closed meanwhile.
        """
        with self._running:
            return self._run(scheduled_at, runs, deliver)

    def _run(
        self,
        scheduled_at: datetime,
        runs: list[InstanceToRun],
        deliver: Callable[[list[RunResult]], None],
    ) -> bool:
        remaining = list(runs)
        loaded = True
        while remaining:
            self._check_open()
            process = self._process
            if process is not None and process.popen.poll() is not None:
                self._replaced(f"it {_status_text(self._end_process())} between runs", None)
                process = None
            if process is None:
                try:
                    process = self._start()
                except _Died as exc:
                    deliver([self._failure(run, scheduled_at, exc.cause) for run in remaining])
                    return False
            remaining, loaded = self._batch_on(process, scheduled_at, remaining, deliver)
        return loaded

    def _batch_on(
        self,
        process: _Process,
        scheduled_at: datetime,
        runs: list[InstanceToRun],
        deliver: Callable[[list[RunResult]], None],
    ) -> tuple[list[InstanceToRun], bool]:
        """One batch on `process`: ([], loaded) when it completes; else the runs still to do
        on a new process (the one in flight has been failed)."""
        self._batch += 1
        number = self._batch
        sent_at = self.settings.clock.now()
        reported: set[int] = set()
        loaded = True
        try:
            process.send(
                {
                    "batch": number,
                    "scheduled_us": _microseconds(scheduled_at),
                    "now_us": _microseconds(sent_at),
                    "time_limit": self.settings.time_limit,
                    "runs": [[r.id, r.symbol, r.initial_capital] for r in runs],
                }
            )
            word, since = process.word(), time.monotonic()
            while True:
                if process.outbox.poll(POLL_S):
                    message = process.receive()
                    if "history" in message:
                        process.send({"history_done": self._fetch(message["history"])})
                        continue
                    results: list[RunResult] = []
                    try:
                        for reply in message["results"]:
                            result, load_error = self._result(
                                runs, reply, sent_at, scheduled_at, reported
                            )
                            results.append(result)
                            loaded = loaded and not load_error
                    finally:
                        deliver(results)
                    process.ran_any = True
                    if message["done"]:
                        if len(reported) != len(runs):
                            raise ValueError("a batch ended without a reply for every run")
                        return [], loaded
                self._check_open()
                if process.popen.poll() is not None:
                    raise _Died(_status_text(process.popen.returncode))
                now = time.monotonic()
                if process.word() != word:
                    word, since = process.word(), now
                elif now - since > self.settings.time_limit:
                    raise _TimedOut
        except HostsClosed:
            raise
        except Exception as exc:
            if self._closed:
                raise HostsClosed from None
            return self._after_fault(process, runs, reported, scheduled_at, exc, deliver)

    def _after_fault(
        self,
        process: _Process,
        runs: list[InstanceToRun],
        reported: set[int],
        scheduled_at: datetime,
        exc: Exception,
        deliver: Callable[[list[RunResult]], None],
    ) -> tuple[list[InstanceToRun], bool]:
        batch, position, phase = protocol.read_progress(process.word())
        status = self._end_process(0.0 if isinstance(exc, _TimedOut) else DYING_GRACE_S)
        index = position - 1 if batch == self._batch and position else None
        if index is not None and index in reported:
            index = None  # it died between runs
        if isinstance(exc, _TimedOut):
            what = "run" if phase is Phase.RUN else "algorithm"
            cause = (
                f"TimeoutError: {what} did not finish within the {self.settings.time_limit:g} s "
                f"time limit ({phase.label}); its process was killed"
            )
        elif isinstance(exc, _Died):
            cause = f"the algorithm's process {exc.cause} {phase.label}"
        elif isinstance(exc, EOFError | OSError):
            cause = f"the algorithm's process {_status_text(status)} {phase.label}"
        else:  # a reply we cannot read: the host is not to be trusted any more
            cause = f"the algorithm's process sent a message that could not be read ({exc})"
        left = [run for i, run in enumerate(runs) if i not in reported]
        if index is None:
            if not process.ran_any:  # a fresh process died before running anything
                deliver([self._failure(run, scheduled_at, cause) for run in left])
                return [], False
            self._replaced(cause, None)
            return left, True
        culprit = runs[index]
        log.warning("%s: instance %d: %s", self.snapshot.name, culprit.id, cause)
        if phase is Phase.IMPORT:  # every instance of the batch needs the module
            deliver([self._failure(run, scheduled_at, cause) for run in left])
            return [], False
        deliver([self._failure(culprit, scheduled_at, cause)])
        self._replaced(f"{cause}, instance {culprit.id}", culprit.id)
        return [run for run in left if run is not culprit], True

    def _fetch(self, request: list[Any]) -> bool:
        """A host's request for bars that are not stored yet: (symbol, start, end, seconds)."""
        fetch = self.settings.history
        symbol, start, end, seconds = request
        if fetch is None:
            return False
        deadline = time.monotonic() + min(float(seconds), self.settings.time_limit)
        return bool(fetch(str(symbol), int(start), int(end), deadline))

    def _replaced(self, cause: str, culprit: int | None) -> None:
        """The process is gone: every other instance with an object in it starts over."""
        log.warning("algorithm host for %s replaced: %s", self.snapshot.name, cause)
        note = (
            f"[engine] the algorithm's process was replaced ({cause}); this instance goes on "
            "with a fresh Algorithm object: what it kept on self was lost"
        )
        for instance_id in self._objects - {culprit}:
            self._notes[instance_id] = note
        self._objects = set()

    # --- results ------------------------------------------------------------------------

    def _failure(self, run: InstanceToRun, scheduled_at: datetime, cause: str) -> RunResult:
        cause = safe_text(cause, MAX_ERROR_CHARS)
        result = RunResult(
            run.id,
            run.symbol,
            scheduled_at,
            self.settings.clock.now(),
            0.0,
            code_version=self.snapshot.code_version,
            error=cause,
            traceback=cause,
            conventions=self.snapshot.conventions,
        )
        self._objects.discard(run.id)
        return result

    def _result(
        self,
        runs: list[InstanceToRun],
        reply: dict[str, Any],
        sent_at: datetime,
        scheduled_at: datetime,
        reported: set[int],
    ) -> tuple[RunResult, bool]:
        """A host's reply as a RunResult and whether it is a failed import; every string
        made safe, every type checked."""
        index = reply["i"]
        if not isinstance(index, int) or not 0 <= index < len(runs) or index in reported:
            raise ValueError(f"a reply for run {index!r}")
        run = runs[index]
        reported.add(index)
        result = RunResult(
            run.id,
            run.symbol,
            scheduled_at,
            sent_at + timedelta(seconds=float(reply["offset_s"])),
            float(reply["ms"]),
            code_version=self.snapshot.code_version,
            conventions=self.snapshot.conventions,
        )
        note = self._notes.pop(run.id, None)
        if note is not None:
            result.output.append((self.settings.clock.now(), "stderr", note))
        for stamp, stream, text in reply["output"]:
            result.output.append(
                (
                    datetime.fromtimestamp(float(stamp), UTC),
                    stream if stream in STREAMS else "stdout",
                    safe_text(str(text), MAX_LINE_CHARS),
                )
            )
        if "error" in reply:
            result.error = safe_text(str(reply["error"]), MAX_ERROR_CHARS)
            result.traceback = safe_text(
                str(reply.get("traceback") or result.error), MAX_TRACEBACK_CHARS
            )
            if reply.get("phase") == Phase.RUN:
                self._objects.add(run.id)  # __init__ went through; run() raised
        else:
            result.decision = validate([reply["action"], reply["shares"]])
            self._objects.add(run.id)
        return result, bool(reply.get("load_error"))


def _microseconds(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


class Hosts:
    """Every algorithm's host, by algorithm name."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()

    def host_for(self, snapshot: Snapshot) -> Host:
        """The host of this snapshot; a host of an older snapshot of the name is ended."""
        with self._lock:
            host = self._hosts.get(snapshot.name)
            if host is not None and host.snapshot is not snapshot:
                host.close()
                host = None
            if host is None:
                host = self._hosts[snapshot.name] = Host(snapshot, self.settings)
            return host

    def discard(self, host: Host) -> None:
        with self._lock:
            if self._hosts.get(host.snapshot.name) is host:
                del self._hosts[host.snapshot.name]
        host.close()

    def pids(self) -> dict[str, int]:
        """The process id of each running host, by algorithm."""
        with self._lock:
            hosts = dict(self._hosts)
        return {name: pid for name, host in hosts.items() if (pid := host.pid) is not None}

    def close(self) -> None:
        """End every host now (quit, restart): no user code runs after this returns."""
        with self._lock:
            hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            host.close()
