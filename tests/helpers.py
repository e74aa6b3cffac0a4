"""Everything tests share that is not a fixture (fixtures live in the conftest.py files).

Waiting on conditions, subprocesses, reading the database from outside, writing
algorithms, fakes of the engine's collaborators, the scripted feed server, window waits.
No test module imports another; what two of them need is here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Future
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import keyring.backend
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from autotrader_desktop.clock import Clock
from autotrader_desktop.database import DB_FILENAME, Instance, Transaction
from autotrader_desktop.enums import FeedState
from autotrader_desktop.feed.bars import store
from autotrader_desktop.feed.client import FeedStatus
from autotrader_desktop.feed.market_data import MarketDataPort, MarketEvents
from autotrader_desktop.feed.protocol import MinuteBar
from autotrader_desktop.feed.simulator import Simulator

if TYPE_CHECKING:
    from autotrader_desktop.ui.main_window import MainWindow

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The tables that hold what a user did and what the engine did; a rejected command must
# leave all of them exactly as they were (discovery's verdict cache may change).
USER_TABLES = ("algorithm_instances", "transactions", "runs", "output_lines", "settings")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def subprocess_env(data_dir: Path, algorithm_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a child process using these directories."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTOTRADER_", "APCA_", "PYTEST_"))
    }
    env.update(
        AUTOTRADER_DATA_DIR=str(data_dir),
        AUTOTRADER_ALGORITHM_DIR=str(algorithm_dir),
        QT_QPA_PLATFORM="offscreen",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_python(
    args: Sequence[str], env: dict[str, str], timeout: float = 60.0, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`python args...` with this interpreter; killed if it outlives `timeout`."""
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


def run_cli_subprocess(
    args: Sequence[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "autotrader_desktop", *args], env, timeout)


def popen_python(
    args: Sequence[str], env: dict[str, str], log: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start `python args...` with stdout and stderr going to the file `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=kwargs.pop("cwd", REPO),
            **kwargs,
        )


def kill(process: subprocess.Popen) -> None:
    """Make sure a child is gone (for `finally` blocks)."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def write_script(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# --- reading the database from outside the app -----------------------------------------


def connect(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / DB_FILENAME, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def query(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    with closing(connect(data_dir)) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    with closing(connect(data_dir)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def count(data_dir: Path, table: str) -> int:
    return scalar(data_dir, f"SELECT COUNT(*) FROM {table}")


def dump(data_dir: Path, tables: Sequence[str] = USER_TABLES) -> dict[str, list[tuple]]:
    """Every row of `tables`, for before/after comparisons."""
    with closing(connect(data_dir)) as conn:
        return {
            table: [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in tables
        }


def instance_rows(data_dir: Path) -> list[sqlite3.Row]:
    return query(data_dir, "SELECT * FROM algorithm_instances ORDER BY id")


def check_accounts(data_dir: Path, *, trades_need_runs: bool = True) -> None:
    """The books balance: every instance's cash, shares and trade count follow from its
    transactions, and trades and executed runs point at each other one to one."""
    with closing(connect(data_dir)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for inst in conn.execute("SELECT * FROM algorithm_instances"):
            trades = conn.execute(
                "SELECT type, shares, price, commission FROM transactions WHERE algorithm_id = ?",
                (inst["id"],),
            ).fetchall()
            cash = inst["initial_capital"]
            shares = 0
            for t in trades:
                if t["type"] == "buy":
                    cash -= t["shares"] * t["price"] + t["commission"]
                    shares += t["shares"]
                else:
                    cash += t["shares"] * t["price"] - t["commission"]
                    shares -= t["shares"]
            name = inst["display_name"]
            assert abs(inst["cash"] - cash) < 1e-6, f"{name}: cash {inst['cash']} != {cash}"
            assert inst["shares"] == shares, f"{name}: shares {inst['shares']} != {shares}"
            assert inst["trade_count"] == len(trades), f"{name}: trade count"
        executed_without_trade = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE outcome = 'executed' AND transaction_id IS NULL"
        ).fetchone()[0]
        assert executed_without_trade == 0
        trade_on_non_executed = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE outcome != 'executed' AND transaction_id IS NOT NULL"
        ).fetchone()[0]
        assert trade_on_non_executed == 0
        if trades_need_runs:
            orphans = conn.execute(
                "SELECT COUNT(*) FROM transactions t"
                " WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.transaction_id = t.id)"
            ).fetchone()[0]
            assert orphans == 0, f"{orphans} transactions without a journal row"
        shared = conn.execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM runs"
            " WHERE transaction_id IS NOT NULL GROUP BY transaction_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert shared == 0, "a transaction is claimed by two runs"
        twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs GROUP BY instance_id, scheduled_at"
            " HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert twice == 0, "a run was recorded twice"


_RETURNING = """
import numpy as np

class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return {value}
"""


def returning(value: str) -> str:
    """Source of an algorithm whose run() returns `value` (a Python expression) every time."""
    return _RETURNING.format(value=value)


_SCRIPTED = """
ORDERS = {orders!r}

class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.step = 0

    def run(self, current_time, algo_id):
        order = ORDERS[min(self.step, len(ORDERS) - 1)]
        self.step += 1
        return order
"""


def scripted(algo_dir: Path, name: str, *orders: tuple[str, int]) -> Path:
    """An algorithm returning `orders` one run after another, then the last one forever."""
    return write_algorithm(algo_dir, name, _SCRIPTED.format(orders=list(orders)))


# --- algorithms, instances, cycles ------------------------------------------------------

EXAMPLES = REPO / "algorithm"
# A Wednesday, 15:31:02 UTC: a cycle's scheduled second, inside US market hours.
T0 = datetime(2024, 3, 13, 15, 31, 2, tzinfo=UTC)


def write_algorithm(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


class FakeMarket(MarketDataPort):
    """Market data with prices set by the test; records subscriptions. Its in-progress bar
    is built from the prices it was asked for, as the feed's aggregator builds it from
    trades."""

    source = "sim/42"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.prices: dict[str, float] = {}
        self.subscriptions: Counter[str] = Counter()
        self.status = FeedStatus(FeedState.CONNECTED)
        self.events = MarketEvents()
        self._live: dict[str, MinuteBar] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @property
    def symbols(self) -> set[str]:
        return {s for s, n in self.subscriptions.items() if n > 0}

    def subscribe(self, symbol: str) -> None:
        self.subscriptions[symbol] += 1

    def unsubscribe(self, symbol: str) -> None:
        self.subscriptions[symbol] -= 1

    def start_preparing(self, symbols: list[str]) -> dict[str, Future[bool]]:
        return {}

    def ensure_history(self, symbol: str, start: int, end: int, deadline: float) -> bool:
        return False

    def latest_price(self, symbol: str) -> float | None:
        return self.prices.get(symbol, 100.0)

    def in_progress_bar(self, symbol: str) -> MinuteBar | None:
        price = self.prices.get(symbol, 100.0)
        minute = int(self.clock.now().timestamp()) // 60 * 60
        bar = self._live.get(symbol)
        if bar is None or bar.t != minute:
            bar = MinuteBar(symbol, minute, price, price, price, price, 0.0)
        else:
            bar = bar._replace(h=max(bar.h, price), l=min(bar.l, price), c=price)
        self._live[symbol] = bar
        return bar

    def data_age(self, symbol: str) -> float | None:
        return None

    def latest_prices(self, symbols: Iterable[str]) -> dict[str, float | None]:
        return {symbol: self.latest_price(symbol) for symbol in symbols}


class Scanned:
    """Stands in for a discovery verdict, so engine tests need no worker process."""

    def __init__(self, name: str, available: bool = True, error: str | None = None) -> None:
        self.name, self.available, self.error = name, available, error


def add_instance(engine, symbol: str, algorithm: str, capital: float = 10_000.0):
    """Create an instance as the CLI/dialog would, treating `algorithm` as available."""
    from autotrader_desktop import instances

    instance = instances.create(
        symbol,
        algorithm,
        capital,
        algorithms=[Scanned(algorithm)],
        starting_balance=engine.settings.starting_balance,
        clock=engine.clock,
    )
    engine.sync_subscriptions()
    return instance


def cycle(engine):
    """The next minute's cycle (one scheduled time runs each instance only once)."""
    engine.clock.advance(60)
    return engine.cycle()


# --- the feed: a scripted stream server, coroutine runs -----------------------------------

KEY, SECRET = "test-key", "test-secret-value"


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """Run a test coroutine on a fresh event loop, failing it if it takes too long."""

    async def limited() -> Any:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(limited())


class Pulse:
    """Wakes waiters whenever something changed; they re-check their condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._event.wait()


class ScriptedServer:
    """Speaks the Alpaca stream protocol, misbehaving on command; serves REST history.

    Each accepted connection takes the next behaviour from `script`, then "normal":
    - "normal": connected, authenticate (402 unless KEY/SECRET), answer subscriptions;
    - "silent": accepts the WebSocket and never says `connected`;
    - "402", "404", "406", "409": answers the auth message with that error and closes.
    Frames are pushed with `send`; `drop` cuts the TCP connection without a close frame.
    REST requests go to `simulator` (deterministic history on the same clock), with HTTP 403
    unless they carry KEY/SECRET in Alpaca's headers.
    """

    def __init__(self, simulator: Simulator | None = None, max_size: int = 2**24) -> None:
        self.simulator = simulator
        self.max_size = max_size
        self.script: list[str] = []
        self.handshakes: list[float] = []  # loop time of each accepted WebSocket
        self.received: list[dict[str, Any]] = []  # what clients sent, parsed
        self.subscribed: set[str] = set()
        self.connection: ServerConnection | None = None  # the authenticated one
        self.changed = Pulse()
        self.url = self.history_url = ""

    async def __aenter__(self) -> ScriptedServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._rest if self.simulator else None,
            max_size=self.max_size,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v2/iex"
        self.history_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _rest(self, connection: ServerConnection, request: Request) -> Response | None:
        if not request.path.startswith("/v2/stocks/"):
            return None
        assert self.simulator is not None
        keys = (request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY"))
        if keys != (KEY, SECRET):
            status, payload = 403, {"message": "forbidden."}
        else:
            status, payload = await asyncio.to_thread(self.simulator.rest, request.path)
        body = json.dumps(payload).encode()
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return Response(status, "OK" if status == 200 else "Error", headers, body)

    async def _handle(self, ws: ServerConnection) -> None:
        self.handshakes.append(asyncio.get_running_loop().time())
        behaviour = self.script.pop(0) if self.script else "normal"
        self.changed.notify()
        try:
            if behaviour == "silent":
                await ws.wait_closed()
                return
            await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
            auth = self._record(await ws.recv())
            if behaviour == "normal" and (auth.get("key"), auth.get("secret")) != (KEY, SECRET):
                behaviour = "402"
            if behaviour != "normal":
                await ws.send(json.dumps([{"T": "error", "code": int(behaviour), "msg": "no"}]))
                await ws.close()
                return
            await ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
            self.connection = ws
            self.changed.notify()
            async for raw in ws:
                message = self._record(raw)
                symbols = set(message.get("trades", []))
                if message.get("action") == "subscribe":
                    self.subscribed |= symbols
                else:
                    self.subscribed -= symbols
                reply = {"T": "subscription", "trades": sorted(self.subscribed)}
                await ws.send(json.dumps([reply]))
                self.changed.notify()
        except ConnectionClosed:
            pass
        finally:
            if self.connection is ws:
                self.connection = None
                self.subscribed = set()
            self.changed.notify()

    def _record(self, raw: str | bytes) -> dict[str, Any]:
        message = json.loads(raw)
        self.received.append(message)
        return message

    async def wait_connected(self, count: int = 1) -> ServerConnection:
        """Wait for the `count`-th connection overall to be authenticated and current."""
        await self.changed.wait_for(
            lambda: self.connection is not None and len(self.handshakes) >= count
        )
        assert self.connection is not None
        return self.connection

    async def send(self, frame: list[dict[str, Any]] | str) -> None:
        """Send a frame (a list of messages, or raw text) on the current connection."""
        assert self.connection is not None, "no authenticated client"
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    def drop(self) -> None:
        """Cut the current connection mid-stream: no close frame, like a network failure."""
        assert self.connection is not None, "no authenticated client"
        self.connection.transport.abort()


class HeadlessOn:
    """`headless --every 1` with `server` as its Alpaca IEX feed, for `async with`; its
    output is read as it comes, and each line wakes `server.changed`."""

    def __init__(self, server: ScriptedServer, env: dict[str, str]) -> None:
        self.server, self.env = server, env
        self.lines: list[str] = []

    async def __aenter__(self) -> HeadlessOn:
        urls = ["--stream-url", self.server.url, "--history-url", self.server.history_url]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *["-m", "autotrader_desktop", "--feed", "alpaca-iex", *urls],
            *["headless", "--every", "1"],
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.process.terminate()
        await self.process.wait()
        await self._reader

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode())
            self.server.changed.notify()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def cycles(self) -> int:
        return sum("autotrader_desktop.engine: cycle " in line for line in self.lines)

    async def two_cycles(self) -> None:
        """Wait until two more cycles have run: whatever streamed in before is in the books."""
        seen = self.cycles()
        await self.server.changed.wait_for(lambda: self.cycles() >= seen + 2, timeout=30)


# --- the window --------------------------------------------------------------------------

BUYER = """
class Algorithm:
    def __init__(self, ticker, capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        print("buying one", self.ticker)
        return "buy", 1
"""

BROKEN_AT_RUN = """
class Algorithm:
    def __init__(self, ticker, capital):
        pass

    def run(self, current_time, algo_id):
        raise ValueError("no idea what to do")
"""


def settle(qtbot, window: MainWindow) -> None:
    """Wait until every background read the window asked for has been delivered."""
    qtbot.waitUntil(window.background.idle, timeout=30_000)


def refreshed(qtbot, window: MainWindow) -> None:
    """Ask for a refresh and wait until it has been shown."""
    window.refresh()
    settle(qtbot, window)


def store_bars(symbol: str, start: int, closes: list[float]) -> None:
    """Minute bars from `start` (epoch seconds), one per close, opening at the previous close."""
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        rows.append(
            MinuteBar(
                symbol,
                start + 60 * i,
                previous,
                max(previous, close) + 0.5,
                min(previous, close) - 0.5,
                close,
                1000.0 + i,
            )
        )
        previous = close
    store(rows)


def give_position(instance: Instance, shares: int, price: float) -> None:
    """Book a buy for `instance` as the broker would."""
    Transaction.create(instance=instance.id, type="buy", shares=shares, price=price, timestamp=T0)
    Instance.update(
        cash=Instance.cash - shares * price,
        shares=Instance.shares + shares,
        trade_count=Instance.trade_count + 1,
        last_price=price,
    ).where(Instance.id == instance.id).execute()


# --- packaging: tools/ modules -----------------------------------------------------------


def load_tool(name: str) -> ModuleType:
    """A module from tools/ (not a package: build_app.spec puts tools/ on sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


stdlib_modules = load_tool("stdlib_modules")


# --- a web AutoTrader installation (import-apac) ---------------------------------------

# The web AutoTrader's system.db schema, as its setup script created it.
OLD_SCHEMA = """
CREATE TABLE algorithm_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    display_name TEXT NOT NULL,
    algorithm_type TEXT NOT NULL,
    ticker TEXT NOT NULL,
    initial_capital REAL NOT NULL CHECK(initial_capital > 0),
    status TEXT NOT NULL DEFAULT 'running' CHECK(status IN ('running', 'stopped')),
    created_at TEXT NOT NULL,
    stopped_at TEXT
);
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id INTEGER NOT NULL,
    type TEXT NOT NULL CHECK(type IN ('buy', 'sell')),
    shares INTEGER NOT NULL CHECK(shares > 0),
    price REAL NOT NULL CHECK(price > 0),
    timestamp TEXT NOT NULL,
    FOREIGN KEY (algorithm_id) REFERENCES algorithm_instances(id)
);
CREATE TABLE system_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO system_config VALUES ('pin', '2020');
"""

OLD_SMA = """
from database.db_manager import get_data_for_algorithm

class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        return ('hold', 0)
"""

OLD_SCALPER = OLD_SMA.replace("('hold', 0)", "('buy', 1)")


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An encrypted-store stand-in that keeps secrets in memory."""

    priority = 10

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.secrets.get((service, username))

    def set_password(self, service, username, password):
        self.secrets[(service, username)] = password

    def delete_password(self, service, username):
        self.secrets.pop((service, username), None)


def build_installation(root: Path) -> Path:
    """Two instances (one stopped), four trades, two algorithm files and a .env."""
    (root / "system_databse").mkdir(parents=True)
    with closing(sqlite3.connect(root / "system_databse" / "system.db")) as conn, conn:
        conn.executescript(OLD_SCHEMA)
        conn.executemany(
            "INSERT INTO algorithm_instances (display_name, algorithm_type, ticker,"
            " initial_capital, status, created_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("NVDA_sma_crossover_20250102_143022", "sma_crossover", "NVDA", 5000.0,
                 "running", "2025-01-02T14:30:22Z", None),
                ("AAPL_scalper_20250103_150000", "scalper", "AAPL", 2000.0,
                 "stopped", "2025-01-03T15:00:00Z", "2025-01-06T16:00:00Z"),
            ],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO transactions (algorithm_id, type, shares, price, timestamp)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (1, "buy", 10, 140.5, "2025-01-02T15:16:02Z"),
                (1, "sell", 4, 150.25, "2025-01-03T14:31:02Z"),
                (2, "buy", 5, 240.0, "2025-01-03T15:01:02Z"),
                (2, "sell", 5, 245.0, "2025-01-06T15:59:02Z"),
            ],
        )
    (root / "algorithm").mkdir()
    (root / "algorithm" / "sma_crossover.py").write_text(OLD_SMA)
    (root / "algorithm" / "scalper.py").write_text(OLD_SCALPER)
    (root / ".env").write_text(
        "# web AutoTrader\nALPACA_API_KEY=PKTEST123\nALPACA_SECRET='s3cr3t value'\n"
        "ALPACA_PAPER=true\nexport ALPACA_FEED=iex\n"
    )
    return root


def alpaca_broker(standin: Any, clock, reconcile_every: float = 0.3, timeout: float = 2.0) -> Any:
    """An AlpacaBroker on the Trading API stand-in (quick reconciliation, short timeout)."""
    from autotrader_desktop.broker.alpaca import AlpacaBroker
    from autotrader_desktop.broker.alpaca_api import TradingApi
    from autotrader_desktop.credentials import Credentials
    from tests.alpaca_trading_standin import KEY_ID, SECRET

    key = Credentials(KEY_ID, SECRET)
    return AlpacaBroker(
        TradingApi(standin.rest_url, key, timeout=timeout),
        standin.stream_url,
        key,
        clock,
        reconcile_every=reconcile_every,
    )


def alpaca_books_differences(standin: Any, data_dir: Path) -> list[str]:
    """Where the app's books differ from the Alpaca stand-in's (empty: they agree).

    Orders: every order at the broker is in the database with the same id, status and
    filled quantity, its trades add up to what the broker executed, and no order recorded as
    at the broker is missing there. Positions per symbol, and the cash the instances spent,
    equal the broker's. No client_order_id was ever posted twice.
    """
    from decimal import Decimal

    differences = []
    with closing(connect(data_dir)) as conn:
        ours = {row["client_order_id"]: row for row in conn.execute("SELECT * FROM orders")}
        booked = {
            row[0]: (row[1], row[2])
            for row in conn.execute(
                "SELECT order_id, SUM(shares), SUM(shares * price) FROM transactions"
                " WHERE order_id IS NOT NULL GROUP BY order_id"
            )
        }
        for order in standin.all_orders():
            cid = order["client_order_id"]
            row = ours.get(cid)
            if row is None:
                differences.append(f"{cid}: at the broker, not in the database")
                continue
            for name, theirs, mine in (
                ("id", order["id"], row["broker_order_id"]),
                ("status", order["status"], row["status"]),
                ("filled_qty", int(order["filled_qty"]), row["filled_qty"]),
            ):
                if theirs != mine:
                    differences.append(f"{cid}: {name} {theirs!r} at the broker, {mine!r} here")
            executions = standin.executions(order["id"])
            qty = sum(q for q, _ in executions)
            notional = float(sum((q * p for q, p in executions), Decimal(0)))
            shares, value = booked.get(row["id"], (0, 0.0))
            if shares != qty or abs(value - notional) > 1e-6:
                differences.append(
                    f"{cid}: broker executed {qty} for {notional:.4f}, booked {shares} for "
                    f"{value:.4f}"
                )
        at_broker = {order["client_order_id"] for order in standin.all_orders()}
        for cid, row in ours.items():
            if row["broker_order_id"] and cid not in at_broker:
                differences.append(f"{cid}: recorded as at the broker, unknown there")
            if row["status"] == "rejected" and cid in at_broker and not row["broker_order_id"]:
                differences.append(f"{cid}: rejected here, but the broker has it")
        held = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT ticker, SUM(shares) FROM algorithm_instances GROUP BY ticker"
            )
        }
        for symbol in set(held) | set(standin.positions):
            if held.get(symbol, 0) != standin.positions.get(symbol, 0):
                differences.append(
                    f"{symbol}: broker holds {standin.positions.get(symbol, 0)}, "
                    f"instances hold {held.get(symbol, 0)}"
                )
        (spent,) = conn.execute(
            "SELECT COALESCE(SUM(initial_capital - cash), 0) FROM algorithm_instances"
        ).fetchone()
        broker_spent = float(standin.starting_cash - standin.cash)
        if abs(spent - broker_spent) > 1e-6:
            differences.append(f"cash: instances spent {spent:.4f}, the broker {broker_spent:.4f}")
    if standin.duplicate_posts:
        differences.append(f"{standin.duplicate_posts} order(s) posted twice")
    return differences
