"""The desktop app: a Qt application on a qasync event loop, and the window.

The window is a client: the engine runs in a process of its own (engine_process). The
main coroutine shows the window, attaches to the data directory's engine or starts one,
and waits until the user quits: closing the window, Ctrl+Q, Ctrl+C in the terminal, or
anything that makes the application quit (`aboutToQuit`). Then it stops the window's
updates and, if this window started the engine and the user does not keep it trading in
the background, stops the engine; the loop ends after it, and the CLI closes the database.

Unexpected exceptions (in Qt slots, threads, or unawaited tasks) are shown in a dialog
with the traceback to copy; the app keeps running.

With the alpaca-live broker, the app first asks, naming the Alpaca account, whether to
trade real money (unless --confirm-live was given); "No" quits before anything starts.
The engine it starts then gets --confirm-live.

AUTOTRADER_SMOKE=1: say when the window is shown, then quit with exit status 0 as soon as
it is attached to an engine (the packaged app's smoke test).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import qasync
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from autotrader_desktop.engine_process import EngineLink
from autotrader_desktop.errors import UserError
from autotrader_desktop.ui import theme
from autotrader_desktop.ui.errors import ErrorReporter
from autotrader_desktop.ui.main_window import TITLE, MainWindow, default_store

if TYPE_CHECKING:
    from autotrader_desktop.cli import Context

log = logging.getLogger(__name__)

T = TypeVar("T")

SMOKE_ENV = "AUTOTRADER_SMOKE"
# Python runs signal handlers only between bytecodes: wake it now and then so Ctrl+C works.
SIGNAL_WAKE_MS = 250
GIL_SWITCH_S = 0.001


def run_gui(ctx: Context) -> int:
    """Open the window and run until it is closed; returns the exit status.

    The caller has checked that the window can open here (ui.platform_check).
    """
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(TITLE)
    app.setApplicationDisplayName(TITLE)
    app.setDesktopFileName("autotrader-desktop")
    app.setWindowIcon(theme.app_icon())
    # The main coroutine decides when the loop ends: after the engine has stopped.
    app.setQuitOnLastWindowClosed(False)
    reporter = ErrorReporter()
    reporter.install()
    # Garbage collection only on the GUI thread, on a timer: Qt objects collected by a
    # background thread (cycles, feed, reads) would be destroyed there and crash Qt.
    collector = GarbageCollector(interval=1.0)
    # The background reads' Python shares the GIL with the GUI thread: a thread waiting
    # for it waits up to this long, so the window waits at most 1 ms, not Python's 5 ms.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        return run_on_qt_loop(_main(ctx, app, reporter, smoke=os.environ.get(SMOKE_ENV) == "1"))
    finally:
        collector.timer.stop()
        sys.setswitchinterval(switch_interval)
        gc.enable()
        reporter.uninstall()


def run_on_qt_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a qasync event loop (Qt's event loop) until it returns.

    asyncio.Runner with qasync's loop is what asyncio.run(..., loop_factory=QEventLoop)
    does on Python >= 3.12, and it exists on 3.11. Not qasync.run(): on 3.11 that installs
    a global event loop policy, so any other thread's asyncio.run() (the embedded market
    simulator's) would get a Qt event loop too, and fail.
    """
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(main)


async def confirm_live(ctx: Context) -> bool:
    """Ask whether to trade real money, naming the Alpaca live account (read from Alpaca)."""
    from autotrader_desktop.broker.alpaca import AlpacaBroker
    from autotrader_desktop.broker.alpaca_api import Doubt, Refused

    broker = ctx.broker(trades=False)
    assert isinstance(broker, AlpacaBroker)
    try:
        account = await asyncio.to_thread(broker.api.account)
        equity = float(account.equity or 0)
        named = f"Alpaca live account {account.account_number} (equity {equity:,.2f})"
    except (Doubt, Refused) as exc:
        named = f"your Alpaca live account (its details could not be read: {exc})"
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        f"{TITLE} — live trading",
        f"Trade with REAL MONEY in {named}?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
    )
    box.setInformativeText(
        "Every decision of every running instance becomes a real order at Alpaca. "
        "No starts nothing and quits."
    )
    box.setDefaultButton(QMessageBox.StandardButton.No)
    answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def finished(_: int) -> None:
        if not answered.done():
            answered.set_result(box.clickedButton() is box.button(QMessageBox.StandardButton.Yes))

    box.finished.connect(finished)
    box.open()
    return await answered


async def _main(ctx: Context, app: QApplication, reporter: ErrorReporter, smoke: bool) -> int:
    asyncio.get_running_loop().set_exception_handler(reporter.loop_exception_handler)
    ctx.require_algorithm_dir()  # an engine without its folder would fail every instance
    if ctx.settings.live and not ctx.confirm_live:
        if not await confirm_live(ctx):
            log.info("live trading not confirmed: quitting")
            return 1
        ctx.confirm_live = True
    link = EngineLink(ctx.data_dir, ctx.engine_options(), ctx.settings, ctx.algorithm_dir)
    window = MainWindow(link.client, default_store(), link=link, options=ctx.options)
    quit_requested = asyncio.Event()
    window.close_requested.connect(quit_requested.set)
    app.aboutToQuit.connect(quit_requested.set)
    # Ctrl+C in a terminal, or SIGTERM (a session logging out, `kill`): quit as a close
    # does, so the engine this window started stops too instead of trading unseen.
    previous_handlers = {
        signum: signal.signal(signum, lambda *_: quit_requested.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(SIGNAL_WAKE_MS)

    window.show()
    window.start()
    window.engine_status.set_starting()
    if smoke:  # the window is up before its engine is: start-up time is this line's
        await asyncio.sleep(0)
        print(f"smoke: window shown ({window.isVisible()}); attaching to an engine", flush=True)
    attached = False
    try:
        try:
            info = await asyncio.to_thread(link.attach_or_start)
        except UserError as exc:
            # The window still shows the instances and history, and offers to start one.
            window.engine_failed(exc)
        except Exception:
            reporter.excepthook(*sys.exc_info())
            window.engine_failed(UserError("it could not be started"))
        else:
            attached = True
            window.engine_attached(info)
        # Everything imported and built so far lives as long as the app: keep it out of
        # the collector's generations, or each full collection on the GUI thread walks it
        # (70-120 ms stalls measured; 1-2 ms frozen; bench_gui_responsiveness.py).
        gc.freeze()
        if smoke:
            state = f"engine started ({link.describe()})" if attached else "engine FAILED to start"
            print(f"smoke: window shown ({window.isVisible()}), {state}", flush=True)
            quit_requested.set()
        await quit_requested.wait()
    finally:
        wake.stop()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        window.shutdown()
        await asyncio.to_thread(_leave_engine, link)
    return 0 if attached or not smoke else 1


def _leave_engine(link: EngineLink) -> None:
    """Stop the engine this window started, unless the user keeps it trading; an engine
    the window attached to goes on."""
    if link.started_here and not link.client.settings.keep_trading_in_background:
        link.stop()
        log.info("engine stopped, window closed")
        return
    if link.client.connected and link.info is not None:
        pid = link.info.pid
        if link.started_here:
            log.info("window closed; the engine (process %d) keeps trading in the background", pid)
        else:
            log.info("window closed; the engine (process %d) goes on", pid)
    link.detach()
