"""`headless --broker alpaca-paper` against the Trading API stand-in, killed mid-order.

The engine is SIGKILLed while an order it sent is in flight (accepted by the broker, answer
not yet given; or not even received), restarted, killed again, and finally halted from
another process. Whatever happened, each decision is one order at the broker, every fill is
booked once, and the books equal the broker's.
"""

from __future__ import annotations

import signal

import pytest

from tests.alpaca_trading_standin import (
    KEY_ID,
    SECRET,
    Fault,
    Plan,
    TradingApiStandIn,
    drop_before_accept,
    slow_answer,
)
from tests.helpers import (
    alpaca_books_differences,
    kill,
    popen_python,
    run_cli_subprocess,
    scalar,
    subprocess_env,
    wait_until,
    write_algorithm,
)

pytestmark = pytest.mark.slow

TRADER = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.step = 0

    def run(self, current_time, algo_id):
        self.step += 1
        return ("sell", 1) if self.step % 3 == 0 else ("buy", 2)
"""


@pytest.fixture
def standin():
    server = TradingApiStandIn().start()
    yield server
    server.stop()


def orders_in_database(data_dir) -> int:
    return scalar(data_dir, "SELECT COUNT(*) FROM orders")


def unfinished(data_dir) -> int:
    return scalar(
        data_dir,
        "SELECT COUNT(*) FROM orders WHERE status NOT IN"
        " ('filled', 'canceled', 'expired', 'rejected', 'replaced', 'not_sent')",
    )


def test_sigkill_with_orders_in_flight_then_restart_trades_exactly_once(tmp_path, standin):
    data_dir, algo_dir = tmp_path / "data", tmp_path / "algorithm"
    algo_dir.mkdir()
    write_algorithm(algo_dir, "trader", TRADER)
    env = subprocess_env(
        data_dir,
        algo_dir,
        APCA_API_KEY_ID=KEY_ID,
        APCA_API_SECRET_KEY=SECRET,
        AUTOTRADER_BROKER="alpaca-paper",
        AUTOTRADER_TRADING_URL=standin.rest_url,
        AUTOTRADER_TRADING_STREAM_URL=standin.stream_url,
        AUTOTRADER_MARKET_HOURS_GATING="off",  # the test runs at any hour
    )
    for symbol in ("NVDA", "AAPL"):
        added = run_cli_subprocess(["add", symbol, "trader", "20000"], env)
        assert added.returncode == 0, added.stderr
    logs = []

    def start():
        log = tmp_path / f"headless-{len(logs)}.log"
        logs.append(log)
        return popen_python(["-m", "autotrader_desktop", "headless", "--every", "1"], env, log)

    # Killed while an accepted order's answer is held back (shorter than the client's
    # timeout: the engine is still waiting), right after an order was lost on the way, and
    # while a request that will never be accepted hangs.
    never_accepted = Fault("POST", "/v2/orders", drop=True, delay=5.0)
    for fault in (slow_answer(5.0), drop_before_accept(), never_accepted):
        engine = start()
        try:
            standin.plan(Plan(parts=[(1, 0.5, None), (1, 1.0, None)]))
            standin.fault(fault)
            wait_until(lambda: not standin.faults, timeout=60, message="an order meeting the fault")
            engine.send_signal(signal.SIGKILL)
            engine.wait(timeout=30)
        finally:
            kill(engine)
    engine = start()
    try:
        at_broker = len(standin.all_orders())
        wait_until(
            lambda: len(standin.all_orders()) >= at_broker + 4,
            timeout=60,
            message="trading after the restarts",
        )
        halted = run_cli_subprocess(["halt"], env)
        assert halted.returncode == 0, halted.stderr
        wait_until(
            lambda: unfinished(data_dir) == 0 and standin.open_orders() == 0,
            timeout=60,
            message="every order final",
        )
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=30) == 0
    finally:
        kill(engine)
    assert alpaca_books_differences(standin, data_dir) == []
    # Each fault met an order (waited for above); dropped ones never reach the broker, so how
    # many orders it holds from before the restart depends on timing.
    assert len(standin.all_orders()) >= at_broker + 4
    assert scalar(data_dir, "SELECT COUNT(*) FROM runs WHERE outcome = 'ordered'") == 0
    for log in logs:
        assert SECRET not in log.read_text()
    final_log = logs[-1].read_text()
    assert "Traceback" not in final_log, final_log
