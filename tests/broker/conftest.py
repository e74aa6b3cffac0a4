"""An engine trading through the Alpaca broker against the Trading API stand-in."""

from __future__ import annotations

import asyncio
import threading

import pytest

from autotrader_desktop.enums import Broker
from tests.alpaca_trading_standin import TradingApiStandIn
from tests.helpers import alpaca_broker


@pytest.fixture
def standin():
    server = TradingApiStandIn().start()
    yield server
    server.stop()


class _Loop:
    """An event loop on a thread of its own, for the broker's stream."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def alpaca_engine(db, clock, algo_dir, market, standin):
    """make(reconcile_every=..., timeout=..., stream=True) -> an open Engine on the stand-in."""
    from autotrader_desktop.engine import Engine
    from autotrader_desktop.settings import Settings

    made = []

    def make(reconcile_every: float = 0.3, timeout: float = 2.0, stream: bool = True):
        broker = alpaca_broker(standin, clock, reconcile_every, timeout)
        settings = Settings(broker=Broker.ALPACA_PAPER, run_time_limit=5.0)
        engine = Engine(settings, algo_dir, clock, market, broker=broker)
        engine.open()
        loop = _Loop() if stream else None
        if loop is not None:
            loop.run(broker.connect())
        made.append((engine, loop))
        return engine

    yield make
    for engine, loop in made:
        if loop is not None:
            loop.run(engine.broker.disconnect())
            loop.close()
        engine.close()
