"""`import-apac DIR`: migrate a web AutoTrader installation into the open data directory.

What moves (docs/legacy.md):
- `system_databse/system.db`: every instance (display name, algorithm, symbol, capital,
  status, created and stopped times) with its trades; cash and shares follow from them.
- `algorithm/*.py` into the algorithm folder. A file whose name is taken by a different
  file is imported as `<name>_apac.py` and that algorithm's instances run it: nothing is
  ever overwritten.
- `.env`: ALPACA_API_KEY / ALPACA_SECRET into the OS keyring and the feed setting (from
  ALPACA_FEED) when a safe keyring exists; otherwise the report says how to set them.

`read()` reads and checks everything before anything changes: a damaged or foreign file is
refused with the reason and nothing is written. `Service.import_apac` then applies it
(files, then instances and trades in one transaction, then the key and the feed setting).
Running it again imports nothing twice (an instance whose display name exists is skipped;
identical files are left alone).
Imported instances trade on Alpaca's prices (ALPACA_FEED, IEX by default): a data
directory whose instances trade on another source refuses the import.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autotrader_desktop import accounting, credentials
from autotrader_desktop.broker import Fill
from autotrader_desktop.database import Instance
from autotrader_desktop.enums import Feed, InstanceStatus
from autotrader_desktop.errors import UserError
from autotrader_desktop.feed import sources
from autotrader_desktop.instances import InstanceError, normalize_symbol

SYSTEM_DB = Path("system_databse") / "system.db"
ALGORITHM_FOLDER = "algorithm"
ENV_FILE = ".env"
RENAMED_SUFFIX = "_apac"
MAX_ENV_BYTES = 64 * 1024
MAX_ALGORITHM_BYTES = 10 * 1024 * 1024
_INSTANCE_COLUMNS = (
    "id",
    "display_name",
    "algorithm_type",
    "ticker",
    "initial_capital",
    "status",
    "created_at",
    "stopped_at",
)
_TRADE_COLUMNS = ("id", "algorithm_id", "type", "shares", "price", "timestamp")


class ApacImportError(UserError):
    """The directory cannot be imported; nothing was changed. The message says why."""


@dataclass
class _Trade:
    type: str
    shares: int
    price: float
    timestamp: datetime


@dataclass
class _Instance:
    display_name: str
    algorithm: str
    symbol: str
    capital: float
    status: InstanceStatus
    created_at: datetime
    stopped_at: datetime | None
    trades: list[_Trade] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import did, for the person who ran it."""

    instances: list[str] = field(default_factory=list)  # imported display names
    already: list[str] = field(default_factory=list)  # skipped: imported before
    trades: int = 0
    files: list[str] = field(default_factory=list)  # copied as they were
    same_files: list[str] = field(default_factory=list)  # already there, identical
    renamed: dict[str, str] = field(default_factory=dict)  # name taken -> imported as
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"instances imported: {len(self.instances)}"
            + (f" ({', '.join(self.instances)})" if self.instances else ""),
            f"trades imported: {self.trades}",
        ]
        if self.already:
            out.append(f"already imported, skipped: {', '.join(self.already)}")
        if self.files:
            out.append(f"algorithm files copied: {', '.join(self.files)}")
        if self.same_files:
            out.append(f"algorithm files already there: {', '.join(self.same_files)}")
        for old, new in self.renamed.items():
            out.append(
                f"{old}.py differs from the file of that name in the algorithm folder: "
                f"imported as {new}.py, and the imported instances of {old} run it"
            )
        return out + self.notes


# --- reading and checking ---------------------------------------------------------------


def _time(text: object, what: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{what} {text!r} is not a time")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a time like 2024-03-15T20:02:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _read_system_db(path: Path) -> list[_Instance]:
    if not path.is_file():
        raise ApacImportError(
            f"{path.parent.parent} is not a web AutoTrader installation: no {SYSTEM_DB} in it"
        )
    try:
        # Read-only and immutable: the import never changes the old installation.
        with closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        ) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise ApacImportError(f"{path} is damaged ({check}); nothing was imported")
            for table, wanted in (
                ("algorithm_instances", _INSTANCE_COLUMNS),
                ("transactions", _TRADE_COLUMNS),
            ):
                missing = sorted(set(wanted) - _columns(conn, table))
                if missing:
                    raise ApacImportError(
                        f"{path} is not a web AutoTrader system.db: table {table} lacks "
                        f"{', '.join(missing)}; nothing was imported"
                    )
            instances = conn.execute(
                f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM algorithm_instances ORDER BY id"
            ).fetchall()
            trades = conn.execute(
                f"SELECT {', '.join(_TRADE_COLUMNS)} FROM transactions ORDER BY timestamp, id"
            ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ApacImportError(
            f"{path} is damaged or not an SQLite database ({exc}); nothing was imported"
        ) from None
    try:
        return _check(instances, trades)
    except (ValueError, InstanceError) as exc:
        raise ApacImportError(f"{path}: {exc}; nothing was imported") from None


def _check(instance_rows: list[tuple], trade_rows: list[tuple]) -> list[_Instance]:
    found: dict[int, _Instance] = {}
    for old_id, name, algorithm, ticker, capital, status, created, stopped in instance_rows:
        what = f"instance {old_id}"
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what} has no display name")
        if not isinstance(algorithm, str) or not algorithm.isidentifier():
            raise ValueError(f"{what} has algorithm {algorithm!r}, not a file name")
        if not isinstance(capital, int | float) or not math.isfinite(capital) or capital <= 0:
            raise ValueError(f"{what} has capital {capital!r}")
        if status not in (InstanceStatus.RUNNING, InstanceStatus.STOPPED):
            raise ValueError(f"{what} has status {status!r}")
        found[old_id] = _Instance(
            name.strip(),
            algorithm,
            normalize_symbol(str(ticker)),
            float(capital),
            InstanceStatus(status),
            _time(created, f"{what}: created_at"),
            None if stopped is None else _time(stopped, f"{what}: stopped_at"),
        )
    for trade_id, old_id, kind, shares, price, stamp in trade_rows:
        what = f"trade {trade_id}"
        if old_id not in found:
            raise ValueError(f"{what} belongs to no instance ({old_id!r})")
        if kind not in ("buy", "sell"):
            raise ValueError(f"{what} has type {kind!r}")
        if isinstance(shares, bool) or not isinstance(shares, int) or shares <= 0:
            raise ValueError(f"{what} has {shares!r} shares")
        if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise ValueError(f"{what} has price {price!r}")
        found[old_id].trades.append(_Trade(kind, shares, float(price), _time(stamp, what)))
    for old_id, instance in found.items():
        held = 0
        for trade in instance.trades:
            held += trade.shares if trade.type == "buy" else -trade.shares
            if held < 0:
                raise ValueError(f"instance {old_id} sells more shares than it holds")
    return list(found.values())


def _read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (`export`, quotes and comments allowed) of a .env file."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if len(data) > MAX_ENV_BYTES or b"\0" in data:
        raise ApacImportError(f"{path} is not a .env file; nothing was imported")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApacImportError(f"{path} is not a text .env file; nothing was imported") from None
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def _feed(env: dict[str, str]) -> Feed:
    name = env.get("ALPACA_FEED", "iex").strip().lower()
    if name not in ("iex", "sip"):
        raise ApacImportError(f"ALPACA_FEED={name!r} in .env: expected iex or sip")
    return Feed.ALPACA_SIP if name == "sip" else Feed.ALPACA_IEX


def _unsafe_keyring() -> str | None:
    """Why the OS keyring must not get the secret, or None if it may."""
    import keyring

    backend = keyring.get_keyring()
    kind = f"{type(backend).__module__}.{type(backend).__name__}"
    if "fail" in kind.lower() or "null" in kind.lower():
        return "no OS keyring is available"
    if "plaintext" in kind.lower() or "keyrings.alt" in kind:
        return f"the keyring backend {type(backend).__name__} stores secrets unencrypted"
    return None


# --- importing --------------------------------------------------------------------------


def _plan_files(source: Path, target: Path) -> tuple[dict[str, bytes], ImportReport]:
    """name -> bytes to write, and the report of what happens to each old file."""
    report = ImportReport()
    writes: dict[str, bytes] = {}
    if not source.is_dir():
        return writes, report
    for path in sorted(source.glob("*.py")):
        name = path.stem
        if name.startswith((".", "__")) or not name.isidentifier():
            continue
        data = path.read_bytes()
        if len(data) > MAX_ALGORITHM_BYTES:
            raise ApacImportError(f"{path} is larger than 10 MB; nothing was imported")
        for candidate in (
            name,
            f"{name}{RENAMED_SUFFIX}",
            *(f"{name}{RENAMED_SUFFIX}{n}" for n in range(2, 100)),
        ):
            existing = target / f"{candidate}.py"
            if not existing.exists():
                writes[candidate] = data
                report.files.append(f"{candidate}.py")
                break
            if existing.read_bytes() == data:
                report.same_files.append(f"{candidate}.py")
                break
        else:
            raise ApacImportError(f"too many versions of {name}.py in {target}")
        if candidate != name:
            report.renamed[name] = candidate
    return writes, report


@dataclass
class Installation:
    """A web AutoTrader installation, read and checked, ready to apply."""

    instances: list[_Instance]
    files: dict[str, bytes]  # algorithm folder file stem -> content to write
    report: ImportReport  # what happens to the files, so far
    env: dict[str, str]
    feed: Feed

    @property
    def source(self) -> str:
        return str(self.feed)


def read(directory: Path, algorithm_dir: Path) -> Installation:
    """Read and check the installation in `directory`; nothing is written.

    Raises ApacImportError (damaged, foreign) or sources.SourceMismatch (this data
    directory's instances trade on another source).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ApacImportError(f"{directory} is not a folder")
    instances = _read_system_db(directory / SYSTEM_DB)
    env = _read_env(directory / ENV_FILE)
    feed = _feed(env)
    sources.check(str(feed))
    files, report = _plan_files(directory / ALGORITHM_FOLDER, algorithm_dir)
    return Installation(instances, files, report, env, feed)


def write_files(installation: Installation, algorithm_dir: Path) -> None:
    """Each new file whole or not at all: written beside, then renamed into place."""
    algorithm_dir.mkdir(parents=True, exist_ok=True)
    for name, data in installation.files.items():
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=algorithm_dir)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, algorithm_dir / f"{name}.py")


def store_instances(installation: Installation) -> None:
    """The instances not imported before, each with its trades booked one by one (cash and
    shares follow from them). Call inside a write transaction."""
    report = installation.report
    sources.check(installation.source)
    taken = {row.display_name for row in Instance.select(Instance.display_name)}
    for old in installation.instances:
        if old.display_name in taken:
            report.already.append(old.display_name)
            continue
        instance = Instance.create(
            display_name=old.display_name,
            algorithm=report.renamed.get(old.algorithm, old.algorithm),
            symbol=old.symbol,
            initial_capital=old.capital,
            status=old.status,
            created_at=old.created_at,
            stopped_at=old.stopped_at,
            cash=old.capital,
            shares=0,
            source=installation.source,
        )
        cash, shares = old.capital, 0
        for trade in old.trades:
            sign = 1 if trade.type == "buy" else -1
            cash -= sign * trade.shares * trade.price
            shares += sign * trade.shares
            fill = Fill(trade.type, trade.shares, trade.price, 0.0, cash, shares)
            accounting.book_trade(instance.id, fill, trade.timestamp)
        report.instances.append(old.display_name)
        report.trades += len(old.trades)
        if old.status == InstanceStatus.STOPPED and shares:
            report.notes.append(
                f"{old.display_name} was stopped holding {shares} shares (the web "
                "AutoTrader did not sell on stop); imported as it was"
            )


def store_key(installation: Installation) -> bool:
    """The .env's Alpaca key into the OS keyring, if there is one and a safe keyring;
    True if stored (the caller then sets the feed). The report says what happened."""
    env, feed, report = installation.env, installation.feed, installation.report
    if env.get("ALPACA_PAPER", "true").strip().lower() not in ("1", "true", "yes", "on"):
        report.notes.append(
            "ALPACA_PAPER is off in .env (live trading there); here orders go to the paper "
            "broker until you choose otherwise"
        )
    key, secret = env.get("ALPACA_API_KEY", ""), env.get("ALPACA_SECRET", "")
    if not (key and secret):
        if env:
            report.notes.append("no ALPACA_API_KEY/ALPACA_SECRET in .env: no key imported")
        return False
    reason = _unsafe_keyring()
    if reason is None:
        try:
            credentials.save(credentials.Credentials(key, secret))
        except credentials.CredentialsError as exc:
            reason = str(exc)
    if reason is not None:
        report.notes.append(
            f"the Alpaca key was NOT stored: {reason}. Set {credentials.KEY_ENV} and "
            f"{credentials.SECRET_ENV} in the environment (the values of ALPACA_API_KEY "
            f"and ALPACA_SECRET in .env) and start with --feed {feed}"
        )
        return False
    report.notes.append(f"Alpaca key stored in the OS keyring; feed set to {feed.label}")
    return True
