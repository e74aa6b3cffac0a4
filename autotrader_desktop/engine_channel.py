"""The local channel between the engine and the windows attached to it.

A Unix socket, created by the engine with mode 0600 (only its user can connect), at
`engine.sock` in the data directory (or, if that path is too long for a socket, in a
private temporary directory); its path is published in the engine lock file, where a
window finds it. Messages are JSON objects, one per line, both ways:

- window -> engine, a request: `{"id": 7, "op": "stop_instance", "args": {"instance_id": 3}}`
- engine -> window, its reply: `{"id": 7, "result": {...}}` or `{"id": 7, "error": "...",
  "user_error": true}` (a user error: the message says what to do)
- engine -> every window, events, unasked:
  - `{"event": "market", "prices": {sym: price}, "bars": {sym: [t, o, h, l, c, v]},
    "data_times": {sym: epoch s}, "feed": {"state": ..., "detail": ..., "retry_at": ...},
    "next_cycle_at": iso | null}` four times a second (prices, bars and data times: only
    those that changed since the last one);
  - `{"event": "cycle_started", "scheduled_at": iso}` as a cycle's instances start running;
  - `{"event": "cycle", "scheduled_at": iso, "outcomes": {...}, "duration_s": s}` when a
    cycle is done;
  - `{"event": "runs", "runs": [[instance_id, outcome, reason], ...]}` for each batch of
    recorded runs.

The requests are the engine's actions (the service's changes of state, through the
engine): `hello`, `scan`, `create_instance`, `stop_instance`, `delete_instance`, `restart`,
`save_settings`, `drift`, `import_apac`, `halt_trading`, `resume_trading`. The state
itself is read from the database by the window.

`ChannelServer` runs on the engine's event loop; `EngineClient` is the window's end: a
plain socket with a reader thread, so nothing of it runs on the GUI thread except the
listeners it calls (which the window turns into queued signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from autotrader_desktop import queries, settings
from autotrader_desktop.clock import Clock, SystemClock
from autotrader_desktop.discovery import AlgorithmFile
from autotrader_desktop.engine_lock import EngineInfo, EngineLock
from autotrader_desktop.enums import FeedState
from autotrader_desktop.errors import UserError
from autotrader_desktop.events import event
from autotrader_desktop.feed.client import FeedStatus
from autotrader_desktop.feed.market_data import LiveMarket
from autotrader_desktop.feed.protocol import MinuteBar
from autotrader_desktop.journal import RecordedRun
from autotrader_desktop.legacy.apac_import import ImportReport
from autotrader_desktop.module_cache import Drift
from autotrader_desktop.orchestrator import CycleEvents, CycleReport
from autotrader_desktop.settings import Settings

if TYPE_CHECKING:
    from autotrader_desktop.engine import Engine

log = logging.getLogger(__name__)

SOCKET_FILENAME = "engine.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
MAX_MESSAGE = 4 * 1024 * 1024  # bytes per line; a longer one ends the connection
MAX_BACKLOG = 16 * 1024 * 1024  # bytes queued for a window that does not read: dropped
PUBLISH_S = 0.25
# The requests that change state (logged: they are the user's actions).
CHANGES = {
    *("create_instance", "stop_instance", "delete_instance"),
    *("restart", "save_settings", "import_apac", "halt_trading", "resume_trading"),
}
REQUEST_TIMEOUT_S = 300.0  # a scan of a large folder, a stop that fetches a price
CHANNEL_WORKERS = 4  # windows' requests answered at once


class EngineUnavailable(UserError):
    """The engine is gone (or never answered): the action did not reach it."""


def _json_line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def _socket_path(data_dir: Path) -> Path:
    path = data_dir.resolve() / SOCKET_FILENAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    return Path(tempfile.mkdtemp(prefix="autotrader-engine-")) / SOCKET_FILENAME  # mode 0700


# --- the engine's end ---------------------------------------------------------------------


class ChannelServer:
    """Serves the engine's actions and pushes its live data to every connected window."""

    def __init__(self, engine: Engine, lock: EngineLock) -> None:
        self._engine = engine
        self._lock = lock
        self._server: asyncio.Server | None = None
        self._executor = ThreadPoolExecutor(CHANNEL_WORKERS, thread_name_prefix="engine-channel")
        self._writers: set[asyncio.StreamWriter] = set()
        self._publisher: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.path: Path | None = None
        self._sent: dict[str, dict[str, Any]] = {"prices": {}, "bars": {}, "data_times": {}}
        self._ops: dict[str, Callable[..., Any]] = {
            "hello": self._hello,
            "scan": lambda: [
                {"name": f.name, "path": str(f.path), "available": f.available, "error": f.error}
                for f in engine.scan()
            ],
            "create_instance": lambda symbol, algorithm, capital: queries.instance_info(
                engine.create_instance(symbol, algorithm, capital)
            ),
            "stop_instance": lambda instance_id: queries.instance_info(
                engine.stop_instance(int(instance_id))
            ),
            "delete_instance": lambda instance_id: queries.instance_info(
                engine.delete_instance(int(instance_id))
            ),
            "restart": engine.restart,
            "save_settings": lambda changes: dataclasses.asdict(engine.save_settings(changes)),
            "drift": lambda algorithm: _drift_name(engine.drift(algorithm)),
            "halt_trading": engine.halt_trading,
            "resume_trading": engine.resume_trading,
            "import_apac": lambda directory: dataclasses.asdict(
                engine.import_apac(Path(directory))
            ),
        }

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path = _socket_path(self._lock.data_dir)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by an engine that was killed (we hold the lock now)
        previous = os.umask(0o177)  # the socket is created 0600: no window between bind and chmod
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_MESSAGE
            )
        finally:
            os.umask(previous)
        self._engine.events.cycle_started.connect(self._cycle_started)
        self._engine.events.cycle_finished.connect(self._cycle_done)
        self._engine.events.runs_recorded.connect(self._runs_recorded)
        self._publisher = asyncio.create_task(self._publish())
        self._lock.publish_channel(str(self.path))
        log.info("engine channel: listening on %s", self.path)

    async def stop(self) -> None:
        self._engine.events.cycle_started.disconnect(self._cycle_started, missing_ok=True)
        self._engine.events.cycle_finished.disconnect(self._cycle_done, missing_ok=True)
        self._engine.events.runs_recorded.disconnect(self._runs_recorded, missing_ok=True)
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            if self.path.parent.name.startswith("autotrader-engine-"):
                shutil.rmtree(self.path.parent, ignore_errors=True)

    def _hello(self) -> dict[str, Any]:
        info = self._lock.info
        return {
            "pid": os.getpid(),
            "started_at": info.started_at.isoformat() if info else None,
            "settings": dataclasses.asdict(self._engine.settings),
            "algorithm_dir": str(self._engine.algorithm_dir),
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        tasks: set[asyncio.Task] = set()
        try:
            while line := await reader.readline():
                task = asyncio.create_task(self._answer(writer, line))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (ConnectionError, ValueError) as exc:  # ValueError: a line over MAX_MESSAGE
            log.warning("engine channel: dropping a window's connection: %s", exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        request_id = None
        try:
            request = json.loads(line)
            request_id = request["id"]
            op, args = request["op"], request.get("args", {})
            if op in CHANGES:
                log.info("engine channel: a window asks to %s %s", op, args or "")
            # Not the loop's default executor: history fetches queue there, and a window's
            # action (or its hello, with a 10 s patience) must not wait behind them.
            call = functools.partial(self._ops[op], **args)
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
            reply: dict[str, Any] = {"id": request_id, "result": result}
        except UserError as exc:
            reply = {"id": request_id, "error": str(exc), "user_error": True}
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"id": request_id, "error": f"bad request: {type(exc).__name__}: {exc}"}
        except Exception as exc:
            log.exception("engine channel: %s failed", line[:200])
            reply = {"id": request_id, "error": f"{type(exc).__name__}: {exc}"}
        self._send(writer, reply)

    def _send(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        if writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("engine channel: a window stopped reading; disconnecting it")
            writer.close()
            return
        writer.write(_json_line(message))

    def _broadcast(self, message: dict[str, Any]) -> None:
        for writer in list(self._writers):
            self._send(writer, message)

    def _from_thread(self, message: dict[str, Any]) -> None:
        """Broadcast from the cycle thread (the loop may be closing: then nobody listens)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._broadcast, message)

    def _cycle_started(self, scheduled_at: datetime) -> None:
        self._from_thread({"event": "cycle_started", "scheduled_at": scheduled_at.isoformat()})

    def _cycle_done(self, report: CycleReport) -> None:
        self._from_thread(
            {
                "event": "cycle",
                "scheduled_at": report.scheduled_at.isoformat(),
                "outcomes": report.outcomes,
                "duration_s": report.duration_s,
            }
        )

    def _runs_recorded(self, recorded: list[RecordedRun]) -> None:
        runs = [[r.instance_id, r.outcome, r.reason] for r in recorded]
        self._from_thread({"event": "runs", "runs": runs})

    async def _publish(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_S)
            if self._writers:
                self._broadcast(self.market_event())

    def market_event(self) -> dict[str, Any]:
        """What changed in the live market data since the last event."""
        market = self._engine.market_data
        symbols = self._engine.symbols
        now: dict[str, dict[str, Any]] = {
            "prices": {s: market.latest_price(s) for s in symbols},  # on the loop: no network
            "bars": {},
            "data_times": {},
        }
        for symbol in symbols:
            bar = market.in_progress_bar(symbol)
            if bar is not None:
                now["bars"][symbol] = [bar.t, bar.o, bar.h, bar.l, bar.c, bar.v]
            age = market.data_age(symbol)
            if age is not None:
                now["data_times"][symbol] = round(self._engine.clock.now().timestamp() - age, 3)
        event: dict[str, Any] = {"event": "market"}
        for key, values in now.items():
            sent = self._sent[key]
            event[key] = {s: v for s, v in values.items() if v is not None and sent.get(s) != v}
            sent.update(event[key])
        status = market.status
        event["feed"] = {
            "state": status.state,
            "detail": status.detail,
            "retry_at": status.retry_at,
        }
        next_cycle = self._engine.next_cycle_at()
        event["next_cycle_at"] = next_cycle.isoformat() if next_cycle else None
        return event


def _drift_name(drift: Drift | None) -> str | None:
    return drift.name if drift is not None else None


# --- the window's end ---------------------------------------------------------------------


class ClientEvents(CycleEvents):
    """The engine's cycle events as a window hears them, and one of the window's own."""

    engine_lost = event(EngineInfo)  # the engine process ended (its channel closed)


class WindowEngine(Protocol):
    """What the window needs of an engine: EngineClient in the app; the engine itself (an
    Engine in the same process, whose events never include `engine_lost`) in the window's
    tests."""

    settings: Settings
    algorithm_dir: Path
    clock: Clock

    @property
    def market_data(self) -> LiveMarket: ...

    @property
    def events(self) -> CycleEvents: ...

    def scan(self) -> list[AlgorithmFile]: ...

    def create_instance(self, symbol: str, algorithm: str, capital: str | float) -> Any: ...

    def stop_instance(self, instance_id: int) -> Any: ...

    def delete_instance(self, instance_id: int) -> Any: ...

    def restart(self) -> int: ...

    def save_settings(self, changes: dict[str, Any]) -> Settings: ...

    def latest_price(self, symbol: str) -> float | None: ...

    def drift(self, algorithm: str) -> Drift | None: ...

    def import_apac(self, directory: Path) -> ImportReport: ...

    def halt_trading(self) -> int: ...

    def resume_trading(self) -> None: ...

    def next_cycle_at(self) -> datetime | None: ...


class RemoteMarket(LiveMarket):
    """The live market data a window shows, as the engine last pushed it."""

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}
        self.bars: dict[str, MinuteBar] = {}
        self.data_times: dict[str, float] = {}
        self.status = FeedStatus(FeedState.CONNECTING, "waiting for the engine")
        self._clock = SystemClock()

    def update(self, event: dict[str, Any]) -> None:
        self.prices.update(event.get("prices") or {})
        for symbol, bar in (event.get("bars") or {}).items():
            self.bars[symbol] = MinuteBar(symbol, *bar)
        self.data_times.update(event.get("data_times") or {})
        feed = event.get("feed")
        if feed:
            # retry_at is time.monotonic(): one clock for every process of the machine.
            self.status = FeedStatus(FeedState(feed["state"]), feed["detail"], feed["retry_at"])

    def latest_price(self, symbol: str) -> float | None:
        return self.prices.get(symbol)

    def in_progress_bar(self, symbol: str) -> MinuteBar | None:
        return self.bars.get(symbol)

    def data_age(self, symbol: str) -> float | None:
        newest = self.data_times.get(symbol)
        return None if newest is None else self._clock.now().timestamp() - newest


class EngineClient:
    """A window's handle on the engine in another process: its actions, its live data.

    It offers what the window needs of an engine (see queries.EngineView and the window's
    use): the actions block until the engine answers (call them off the GUI thread) and
    raise what the engine raised (a UserError stays a UserError), or EngineUnavailable
    if the engine is gone. Its `events` (the engine's cycle events, re-emitted, and
    `engine_lost`) are emitted on the client's reader thread.
    """

    def __init__(self, own_settings: Settings, algorithm_dir: Path) -> None:
        """`own_settings`, `algorithm_dir`: the window's, until the engine says its own."""
        self.clock: Clock = SystemClock()
        self.market_data = RemoteMarket()
        self.events = ClientEvents()
        self.info: EngineInfo | None = None
        self.settings = own_settings
        self.algorithm_dir = algorithm_dir
        self._socket: socket.socket | None = None
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._next_cycle_at: datetime | None = None

    @property
    def connected(self) -> bool:
        return self._socket is not None

    def connect(self, info: EngineInfo, timeout: float = 10.0) -> None:
        """Connect to the engine `info` names (its channel) and say hello."""
        if info.channel is None:
            raise EngineUnavailable(f"the engine ({info.describe()}) has no channel yet")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(info.channel)
        except OSError as exc:
            sock.close()
            raise EngineUnavailable(
                f"cannot reach the engine ({info.describe()}) at {info.channel}: {exc}"
            ) from None
        sock.settimeout(None)
        self.info, self._socket = info, sock
        threading.Thread(
            target=self._read, args=(sock, info), name="engine-channel", daemon=True
        ).start()
        hello = self.request("hello", timeout=timeout)
        self.settings = settings.from_json(hello["settings"])
        self.algorithm_dir = Path(hello["algorithm_dir"])

    def close(self) -> None:
        """Disconnect (the engine goes on; `engine_lost` is not emitted)."""
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def request(self, op: str, timeout: float = REQUEST_TIMEOUT_S, **args: Any) -> Any:
        sock = self._socket
        if sock is None:
            raise EngineUnavailable("no engine is running; start it from the status bar")
        request_id = next(self._ids)
        future: Future = Future()
        self._pending[request_id] = future
        try:
            with self._send_lock:
                sock.sendall(_json_line({"id": request_id, "op": op, "args": args}))
        except OSError:
            self._pending.pop(request_id, None)
            raise EngineUnavailable(f"the engine stopped before it got the {op} request") from None
        try:
            return future.result(timeout)
        except TimeoutError:
            raise EngineUnavailable(f"the engine did not answer {op} in {timeout:g} s") from None
        finally:
            self._pending.pop(request_id, None)

    def _read(self, sock: socket.socket, info: EngineInfo) -> None:
        with contextlib.suppress(OSError), sock.makefile("rb") as lines:
            for line in lines:
                self._dispatch(json.loads(line))
        for future in list(self._pending.values()):
            future.set_exception(EngineUnavailable(f"the engine ({info.describe()}) stopped"))
        if self._socket is sock:  # not closed by us: the engine is gone
            self._socket = None
            sock.close()
            self.market_data.status = FeedStatus(FeedState.STOPPED, "no engine running")
            self.events.engine_lost.emit(info)

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event is None:
            future = self._pending.get(message.get("id", -1))
            if future is None or future.done():
                return
            if "error" not in message:
                future.set_result(message.get("result"))
            elif message.get("user_error"):
                future.set_exception(UserError(message["error"]))
            else:
                future.set_exception(RuntimeError(f"the engine failed: {message['error']}"))
        elif event == "market":
            self.market_data.update(message)
            at = message.get("next_cycle_at")
            self._next_cycle_at = datetime.fromisoformat(at) if at else None
        elif event == "cycle_started":
            self.events.cycle_started.emit(datetime.fromisoformat(message["scheduled_at"]))
        elif event == "cycle":
            report = CycleReport(
                datetime.fromisoformat(message["scheduled_at"]),
                message["outcomes"],
                message["duration_s"],
            )
            self.events.cycle_finished.emit(report)
        elif event == "runs":
            runs = [RecordedRun(i, outcome, reason, None) for i, outcome, reason in message["runs"]]
            self.events.runs_recorded.emit(runs)

    # --- what the window does with an engine --------------------------------------------

    def scan(self) -> list[AlgorithmFile]:
        return [
            AlgorithmFile(f["name"], Path(f["path"]), f["available"], f["error"])
            for f in self.request("scan")
        ]

    def create_instance(self, symbol: str, algorithm: str, capital: str | float) -> Any:
        info = self.request("create_instance", symbol=symbol, algorithm=algorithm, capital=capital)
        return queries.InstanceInfo(**info)

    def stop_instance(self, instance_id: int) -> Any:
        return queries.InstanceInfo(**self.request("stop_instance", instance_id=instance_id))

    def delete_instance(self, instance_id: int) -> Any:
        return queries.InstanceInfo(**self.request("delete_instance", instance_id=instance_id))

    def restart(self) -> int:
        return self.request("restart")

    def save_settings(self, changes: dict[str, Any]) -> Settings:
        self.settings = settings.from_json(self.request("save_settings", changes=changes))
        return self.settings

    def drift(self, algorithm: str) -> Drift | None:
        """None while no engine runs: nothing is cached, so nothing can drift."""
        try:
            name = self.request("drift", algorithm=algorithm)
        except EngineUnavailable:
            return None
        return Drift[name] if name else None

    def import_apac(self, directory: Path) -> ImportReport:
        return ImportReport(**self.request("import_apac", directory=str(directory)))

    def halt_trading(self) -> int:
        """Stop all trading (see Service.halt_trading); returns the open orders canceled."""
        return self.request("halt_trading")

    def resume_trading(self) -> None:
        self.request("resume_trading")

    def latest_price(self, symbol: str) -> float | None:
        return self.market_data.latest_price(symbol)

    def next_cycle_at(self) -> datetime | None:
        return self._next_cycle_at if self.connected else None
