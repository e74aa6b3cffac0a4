"""The `autotrader-desktop` command line (no command: the desktop window)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import difflib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from autotrader_desktop import (
    __version__,
    accounting,
    database,
    instances,
    logging_config,
    paths,
    queries,
    settings,
)
from autotrader_desktop.database import DB_FILENAME, Instance, Transaction
from autotrader_desktop.enums import Broker, Feed
from autotrader_desktop.errors import UserError
from autotrader_desktop.feed import sources

if TYPE_CHECKING:
    from autotrader_desktop.broker import Broker as OrderBroker
    from autotrader_desktop.engine import Engine
    from autotrader_desktop.service import Service

log = logging.getLogger("autotrader_desktop")

# What a shell reports for a process ended by SIGPIPE (128 + 13), the Unix way.
BROKEN_PIPE_STATUS = 141


class _Parser(argparse.ArgumentParser):
    """argparse, with "did you mean ...?" for a mistyped command or choice."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=1)
            if close:
                raise argparse.ArgumentError(
                    action, f"invalid choice: {value!r}; did you mean {close[0]!r}?"
                )
        super()._check_value(action, value)


def _global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """The options of every command. Accepted after the command too (`after_command`):
    then without defaults, so they never hide one given before it, and without help, so
    each command's help does not repeat them."""
    default = argparse.SUPPRESS if after_command else None

    def option(*names: str, help: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", default)
        parser.add_argument(*names, help=argparse.SUPPRESS if after_command else help, **kwargs)

    option("--data-dir", metavar="DIR", help="where the database lives (env AUTOTRADER_DATA_DIR)")
    option(
        "--algorithm-dir",
        metavar="DIR",
        help="the folder of algorithm files (env AUTOTRADER_ALGORITHM_DIR)",
    )
    option(
        "--feed",
        choices=list(Feed),
        help="market data: the embedded simulator (default) or Alpaca (env AUTOTRADER_FEED)",
    )
    option(
        "--stream-url",
        metavar="URL",
        help="WebSocket URL of an Alpaca-protocol feed (env AUTOTRADER_STREAM_URL)",
    )
    option(
        "--history-url",
        metavar="URL",
        help="base URL of an Alpaca-style historical bars API (env AUTOTRADER_HISTORY_URL)",
    )
    option(
        "--broker",
        choices=list(Broker),
        help="where orders go: the built-in paper broker (default), or an Alpaca paper or "
        "live account (env AUTOTRADER_BROKER)",
    )
    option(
        "--trading-url",
        metavar="URL",
        help="base URL of Alpaca's Trading API (default: Alpaca's paper or live endpoint; "
        "env AUTOTRADER_TRADING_URL)",
    )
    option(
        "--trading-stream-url",
        metavar="URL",
        help="WebSocket URL of the trade_updates stream (default: the trading URL's /stream; "
        "env AUTOTRADER_TRADING_STREAM_URL)",
    )
    option(
        "--confirm-live",
        action="store_true",
        default=argparse.SUPPRESS if after_command else False,
        help="confirm that the alpaca-live broker trades real money",
    )
    option(
        "-v",
        "--verbose",
        action="store_true",
        help="log everything, including the scheduler's and the simulator's routine lines",
    )


GLOBAL_OPTIONS_NOTE = "Global options (see autotrader-desktop --help) may also come after it."


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autotrader-desktop",
        description="Run your own Python trading algorithms every minute and paper-trade them. "
        "Without a command, opens the desktop window.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, after_command=False)
    common = _Parser(add_help=False)
    _global_options(common, after_command=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=GLOBAL_OPTIONS_NOTE,
            parents=[common],
        )

    def json_option(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument("--json", action="store_true", help=f"print {what} as JSON")

    def instance_id(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("id", type=_instance_id, metavar="ID", help="the instance (see `list`)")

    headless = command("headless", "run the engine and feed without a window until Ctrl-C")
    headless.add_argument(
        "--every",
        type=_interval,
        metavar="SECONDS",
        help=f"run a cycle every SECONDS ({MIN_EVERY_S:g} to {MAX_EVERY_S:,}) instead of at "
        ":02 each minute",
    )
    headless.add_argument(
        "--log-file",
        type=Path,
        metavar="FILE",
        help="write the log, and any other output, to FILE instead of the terminal; FILE is "
        f"renamed to FILE.1 at {logging_config.LOG_FILE_BYTES // 2**20} MB and "
        f"{logging_config.LOG_FILE_BACKUPS} older files are kept (a window's engine logs to "
        "engine.log in the data directory)",
    )
    headless.add_argument(
        "--for-window",
        type=int,
        metavar="PID",
        help="started by the window in process PID: stop when it ends, however it ends, "
        "unless Keep trading after closing is on (the window passes this itself)",
    )
    json_option(
        command("algorithms", "scan the algorithm folder: every file, available or why not"),
        "the files (name, path, available, error)",
    )
    add = command("add", "start an instance of an algorithm on a symbol")
    add.add_argument("symbol", metavar="SYMBOL", help="the stock, e.g. NVDA or BRK.B")
    add.add_argument(
        "algorithm", metavar="ALGORITHM", help="an available algorithm (see `algorithms`)"
    )
    add.add_argument(
        "capital",
        metavar="CAPITAL",
        help="the money it trades with, in dollars and cents (at most the available cash)",
    )
    json_option(add, "the new instance")
    json_option(command("list", "list instances with their positions and P&L"), "the instances")
    instance_id(command("stop", "stop an instance, selling its open position"))
    delete = command(
        "delete",
        "delete a stopped or failed instance and its history; asks first, and without a "
        "terminal to ask on, needs --yes",
    )
    instance_id(delete)
    delete.add_argument("--yes", action="store_true", help="delete without asking")
    trades = command("trades", "an instance's transactions, newest first")
    instance_id(trades)
    formats = trades.add_mutually_exclusive_group()
    formats.add_argument(
        "--csv", action="store_true", help="print CSV (the fields of get_transactions)"
    )
    formats.add_argument(
        "--json", action="store_true", help="print JSON (the fields of get_transactions)"
    )
    apac = command(
        "import-apac",
        "import a web AutoTrader installation: its instances, trades, algorithm files and key",
    )
    apac.add_argument("directory", metavar="DIR", help="the web AutoTrader's folder")
    json_option(apac, "what was imported")
    command("cycle", "run cycles now, in this process, then exit").add_argument(
        "--count", type=_positive_int, default=1, metavar="N", help="how many cycles (default 1)"
    )
    command("halt", "stop all trading: cancel open orders and pause every instance")
    command("resume", "resume trading after `halt`")
    return parser


# `headless --every`: faster than a cycle a second is no schedule, slower than daily none
# a trader would notice.
MIN_EVERY_S = 1.0
MAX_EVERY_S = 86_400
WINDOW_WATCH_S = 1.0  # how soon an engine notices that the window that started it ended
# Instance ids are SQLite rowids: 1 to 2**63 - 1.
MAX_ID = 2**63 - 1


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not MIN_EVERY_S <= value <= MAX_EVERY_S:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a number of seconds from {MIN_EVERY_S:g} to {MAX_EVERY_S:,} (a day)"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _instance_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an instance id; ids are whole numbers from 1, "
            "see `autotrader-desktop list`"
        )
    return value


# The commands that may start a new data directory (the window, and the commands that run
# the engine or add to it); the others need one that exists, so that a mistyped --data-dir
# is reported instead of silently becoming a new, empty one.
CREATING_COMMANDS = {None, "add", "headless", "cycle", "import-apac"}


class Context:
    """What every command needs: the database, the resolved settings, the algorithm folder."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = paths.data_dir(args.data_dir)
        # What this run is about to create (the data directory, and any missing parent of
        # it): a failed command removes it again.
        self.created = _outermost_missing(self.data_dir)
        if args.command not in CREATING_COMMANDS and not (self.data_dir / DB_FILENAME).is_file():
            if self.created:
                what = "it does not exist"
            elif not self.data_dir.is_dir():
                what = "it is not a directory"
            else:
                what = "it holds no AutoTrader Desktop database"
            raise UserError(
                f"cannot use {self.data_dir} as the data directory: {what}; check --data-dir "
                "or AUTOTRADER_DATA_DIR (`add`, `headless`, `import-apac` and the window start "
                "a new one)"
            )
        try:
            database.open_database(self.data_dir)
        except RuntimeError as exc:
            raise UserError(str(exc)) from None
        except DatabaseError as exc:
            raise UserError(f"cannot open the database in {self.data_dir}: {exc}") from None
        except OSError as exc:
            raise UserError(
                f"cannot use {self.data_dir} as the data directory ({exc.strerror or exc}); "
                "choose another with --data-dir or AUTOTRADER_DATA_DIR"
            ) from None
        options = {
            "feed": args.feed,
            "stream_url": args.stream_url,
            "history_url": args.history_url,
            "algorithm_dir": args.algorithm_dir,
            "broker": args.broker,
            "trading_url": args.trading_url,
            "trading_stream_url": args.trading_stream_url,
        }
        self.settings = settings.load(options)
        # The settings fixed by a command-line option, and the option (e.g. --feed).
        self.options = {
            name: f"--{name.replace('_', '-')}" for name, value in options.items() if value
        }
        self.confirm_live = bool(args.confirm_live)
        self.algorithm_dir = paths.algorithm_dir(self.settings.algorithm_dir)
        sources.use(sources.for_feed(self.settings.feed, self.settings.simulator_seed))
        self._broker: OrderBroker | None = None

    def discard_if_unused(self) -> None:
        """After a failed command: remove the data directory this run created, unless
        something of the user's is in it already (then it is kept as it is)."""
        if self.created is None or database.db.is_closed() or Instance.select().exists():
            return
        database.close_database()
        shutil.rmtree(self.created, ignore_errors=True)

    def engine_options(self) -> list[str]:
        """The global options for an engine process of the same data directory, feed and
        broker (live trading only once the user confirmed it here)."""
        options = ["--data-dir", str(self.data_dir.resolve())]
        for name in (
            *("algorithm_dir", "feed", "stream_url", "history_url"),
            *("broker", "trading_url", "trading_stream_url"),
        ):
            value = getattr(self.args, name, None)
            if value is not None:
                options += [f"--{name.replace('_', '-')}", str(value)]
        if self.confirm_live:
            options.append("--confirm-live")
        if getattr(self.args, "verbose", False):
            options.append("--verbose")
        return options

    def require_algorithm_dir(self) -> None:
        """Refuse to run with a mistyped folder: every instance would fail on a missing file."""
        folder = self.algorithm_dir
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise UserError(
                f"the algorithm folder {folder} {what}; choose a folder with --algorithm-dir, "
                "AUTOTRADER_ALGORITHM_DIR or Settings"
            )

    def scan(self) -> list:
        from autotrader_desktop import discovery

        self.require_algorithm_dir()
        try:
            return discovery.scan(self.algorithm_dir)
        except discovery.AlgorithmFolderError as exc:
            raise UserError(str(exc)) from None

    def broker(self, trades: bool = True) -> OrderBroker:
        """The chosen broker; live trading only with --confirm-live (`trades=False`: a
        command that sends no order of its own, like `add` or `halt`)."""
        if self._broker is None:
            from autotrader_desktop import broker
            from autotrader_desktop.clock import SystemClock

            self._broker = broker.create(self.settings, SystemClock())
        if trades and self.settings.live and not self.confirm_live:
            raise UserError(
                "--broker alpaca-live trades real money in your Alpaca live account; "
                "add --confirm-live to confirm"
            )
        return self._broker

    def engine(self) -> Engine:
        from autotrader_desktop.engine import Engine

        self.require_algorithm_dir()
        # The broker first: it refuses live trading without --confirm-live, and a missing key.
        return Engine(
            self.settings, self.algorithm_dir, data_dir=self.data_dir, broker=self.broker()
        )

    def service(self, trades: bool = True) -> Service:
        """The one way in, for a command: prices on request from the feed's history API."""
        from autotrader_desktop.clock import SystemClock
        from autotrader_desktop.feed.market_data import MarketData
        from autotrader_desktop.service import Service

        clock = SystemClock()
        market = MarketData(clock, self.settings)
        return Service(
            self.settings, self.algorithm_dir, clock, self.broker(trades), market.latest_prices
        )


def _outermost_missing(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist; None if `path` exists."""
    missing = None
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            break
        missing = candidate
    return missing


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_algorithms(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.scan()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": f.name,
                        "path": str(f.path),
                        "available": f.available,
                        "error": f.error,
                    }
                    for f in found
                ],
                indent=2,
            )
        )
        return 0
    if not found:
        print(f"no algorithm files in {ctx.algorithm_dir}")
        return 0
    _print_table(
        ["ALGORITHM", "STATUS", "REASON"],
        [(f.name, "available" if f.available else "excluded", f.error or "") for f in found],
    )
    return 0


def cmd_add(ctx: Context, args: argparse.Namespace) -> int:
    from autotrader_desktop import discovery

    ctx.require_algorithm_dir()
    try:
        instance = ctx.service(trades=False).create_instance(
            args.symbol, args.algorithm, args.capital
        )
    except discovery.AlgorithmFolderError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(queries.instance_info(instance), indent=2))
    else:
        print(f"{instance.id}\t{instance.display_name}")
    return 0


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    rows = [queries.instance_info(i) for i in Instance.select().order_by(Instance.id)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(
        [
            "ID",
            "NAME",
            "SYMBOL",
            "ALGORITHM",
            "STATUS",
            "VERSION",
            "CAPITAL",
            "CASH",
            "SHARES",
            "VALUE",
            "P&L",
            "TRADES",
            "ERROR",
        ],
        [
            (
                r["id"],
                r["display_name"],
                r["ticker"],
                r["algorithm_type"],
                r["status"],
                r["code_version"] or "-",
                f"{r['initial_capital']:,.2f}",
                f"{r['cash']:,.2f}",
                r["shares"],
                f"{r['value']:,.2f}",
                f"{r['pnl']:+,.2f}",
                r["trades"],
                r["error"] or (f"warning: {r['warning']}" if r["warning"] else ""),
            )
            for r in rows
        ],
    )
    account = accounting.account(ctx.settings.starting_balance)
    print(f"\navailable cash {account.available_cash:,.2f}   account value {account.value:,.2f}")
    return 0


def cmd_stop(ctx: Context, args: argparse.Namespace) -> int:
    stopped = ctx.service().stop_instance(args.id)
    print(f"stopped {stopped.id} {stopped.display_name}; cash {stopped.cash:,.2f}")
    return 0


def cmd_halt(ctx: Context, args: argparse.Namespace) -> int:
    canceled = ctx.service(trades=False).halt_trading()
    print(f"trading halted: {canceled} open order(s) canceled; every instance is paused")
    print("resume with `autotrader-desktop resume`")
    return 0


def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    ctx.service(trades=False).resume_trading()
    print("trading resumed: instances run at the next cycle")
    return 0


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    instance = instances.get(args.id)
    instances.check_deletable(instance)  # before asking: a "yes" must not meet a refusal
    if not args.yes:
        if not sys.stdin.isatty():
            # A script's `echo n |` (or anything else on stdin) is not a person's answer.
            raise UserError(
                f"not deleting {instance.display_name}: there is no terminal to confirm "
                f"on; to delete without asking, run `delete {instance.id} --yes`"
            )
        count = Transaction.select().where(Transaction.instance == instance.id).count()
        try:
            answer = input(f"Delete {instance.display_name} and its {count} trades? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    deleted = ctx.service(trades=False).delete_instance(args.id)
    print(f"deleted {deleted.id} {deleted.display_name}")
    return 0


def cmd_trades(ctx: Context, args: argparse.Namespace) -> int:
    from autotrader_desktop.api import get_transactions

    instances.get(args.id)
    rows = get_transactions(args.id)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        fields = ["id", "algorithm_id", "type", "shares", "price", "timestamp"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        print(f"instance {args.id} has no trades yet")
    else:
        _print_table(
            ["ID", "TYPE", "SHARES", "PRICE", "TIME"],
            [
                (r["id"], r["type"], r["shares"], f"{r['price']:,.2f}", _local_time(r["timestamp"]))
                for r in rows
            ],
        )
    return 0


def _local_time(timestamp: str) -> str:
    """An ISO-8601 UTC timestamp as local time to the second, with its zone's name."""
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()
    return f"{when:%Y-%m-%d %H:%M:%S %Z}"


def cmd_import_apac(ctx: Context, args: argparse.Namespace) -> int:
    report = ctx.service().import_apac(Path(args.directory).expanduser())
    if args.json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def cmd_cycle(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    engine.open()
    try:
        if engine.halted:
            print("trading is halted: no cycle runs; resume with `autotrader-desktop resume`")
            return 0
        for _ in range(args.count):
            report = engine.cycle()
            print(
                f"cycle {report.scheduled_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"{report.summary or 'no running instances'} ({report.duration_s:.2f} s)"
            )
    finally:
        engine.close()
    return 0


def cmd_headless(ctx: Context, args: argparse.Namespace) -> int:
    ctx.require_algorithm_dir()

    async def main() -> None:
        from autotrader_desktop.engine_channel import ChannelServer

        engine = ctx.engine()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Windows has no loop signal handlers; Ctrl-C still raises KeyboardInterrupt there.
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await engine.start(every=args.every)
        channel = ChannelServer(engine, engine.lock)
        try:
            await channel.start()
            when = f"every {args.every:g} s" if args.every else "at :02 each minute"
            log.info(
                "headless engine running in process %d (cycles %s); Ctrl-C to stop",
                os.getpid(),
                when,
            )
            if args.for_window is not None:
                watch = asyncio.ensure_future(_stop_with_window(engine, args.for_window, stop))
            await stop.wait()
        finally:
            if args.for_window is not None:
                watch.cancel()
            await channel.stop()
            await engine.stop()
            log.info("engine stopped")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


async def _stop_with_window(engine: Engine, window_pid: int, stop: asyncio.Event) -> None:
    """Set `stop` once the window that started this engine has ended (it is our parent:
    when it ends, we get another one), unless the user keeps trading without a window. A
    window that closes normally stops its engine itself; this is for one that crashed or
    was killed, whose engine would otherwise trade on unseen."""
    while os.getppid() == window_pid:
        await asyncio.sleep(WINDOW_WATCH_S)
    if engine.settings.keep_trading_in_background:
        log.info("the window (process %d) ended; keeping on trading as set", window_pid)
        return
    log.warning("the window that started this engine (process %d) ended: stopping", window_pid)
    stop.set()


COMMANDS = {
    "algorithms": cmd_algorithms,
    "add": cmd_add,
    "list": cmd_list,
    "stop": cmd_stop,
    "delete": cmd_delete,
    "trades": cmd_trades,
    "cycle": cmd_cycle,
    "import-apac": cmd_import_apac,
    "headless": cmd_headless,
    "halt": cmd_halt,
    "resume": cmd_resume,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader is gone (`list | head -1`): stop quietly, as Unix tools do. What is
        # left in stdout's buffer goes to /dev/null, so Python's flush at exit is quiet too.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


def _run(argv: list[str]) -> int:
    if argv[:1] == ["_discovery-worker"]:  # the frozen app's discovery worker
        from autotrader_desktop import discovery_worker

        return discovery_worker.main()
    if argv[:1] == ["_algorithm-host"]:  # the frozen app's algorithm hosts
        from autotrader_desktop.hosts import process

        return process.main(argv[1:])
    args = build_parser().parse_args(argv)
    log_file = getattr(args, "log_file", None)
    try:
        logging_config.configure(verbose=args.verbose, log_file=log_file)
    except OSError as exc:
        print(
            f"error: cannot write the log file {log_file}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    ctx = None
    try:
        if args.command is None:
            from autotrader_desktop.ui import platform_check

            platform_check.check()
        ctx = Context(args)
        if args.command is None:
            from autotrader_desktop.ui.app import run_gui

            return run_gui(ctx)
        return COMMANDS[args.command](ctx, args)
    except UserError as exc:
        if ctx is not None:
            ctx.discard_if_unused()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        database.close_database()


if __name__ == "__main__":
    sys.exit(main())
