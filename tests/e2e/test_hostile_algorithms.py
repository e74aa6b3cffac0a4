"""Hostile algorithms, each beside an innocent one, in a real `headless` engine.

Every poison runs in its algorithm's host process: the innocent instance keeps trading, the
poisonous one is `failed` with what happened (or, if what it did is harmless to others,
keeps running), nothing it prints reaches the engine's log, and SIGTERM still ends the
engine within 10 s.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import pytest

from autotrader_desktop import cli
from tests.helpers import (
    check_accounts,
    instance_rows,
    kill,
    popen_python,
    query,
    returning,
    scalar,
    subprocess_env,
    wait_until,
    write_algorithm,
)

pytestmark = pytest.mark.slow

INNOCENT = returning("'buy', 1")
QUIT_WITHIN_S = 10.0


def _algorithm(init: str = "pass", run: str = "return 'hold', 0", top: str = "") -> str:
    return f"""
import os, re, sys, time, threading
{top}

class Algorithm:
    def __init__(self, ticker, initial_capital):
        {init}

    def run(self, current_time, algo_id):
        {run}
"""


@dataclass
class Poison:
    source: str
    error: str | None  # None: the instance is not failed (what it does harms nobody)
    env: dict[str, str] = field(default_factory=dict)
    # Text that must be in the poisonous instance's captured output.
    output: str | None = None


POISONS = {
    "surrogate print": Poison(
        _algorithm(run="print('rocket \\ud83d'); return 'buy', 1"),
        None,
        output="rocket \\ud83d",
    ),
    "exception whose str raises": Poison(
        _algorithm(
            top="class Bad(Exception):\n    def __str__(self):\n        raise ValueError('no')",
            run="raise Bad()",
        ),
        "Bad: <message could not be shown: its str() raised ValueError>",
    ),
    "catastrophic regex": Poison(
        _algorithm(run='re.match(r"(a+)+$", "a" * 34 + "b"); return "buy", 1'),
        "did not finish within the 2 s time limit (during run()); its process was killed",
        env={"AUTOTRADER_RUN_TIME_LIMIT": "2"},
    ),
    "os._exit": Poison(
        _algorithm(run="os._exit(0)"),
        "the algorithm's process exited (exit code 0) during run()",
    ),
    "segfault": Poison(
        _algorithm(run="import ctypes; ctypes.string_at(0)"),
        "the algorithm's process was killed by SIGSEGV during run()",
    ),
    "SIGTERM to itself": Poison(
        _algorithm(run="import signal; os.kill(os.getpid(), signal.SIGTERM)"),
        "the algorithm's process was killed by SIGTERM during run()",
    ),
    "interrupt_main": Poison(
        _algorithm(run="import _thread; _thread.interrupt_main(); return 'hold', 0"),
        None,
    ),
    "never-ending executor": Poison(
        _algorithm(
            top="from concurrent.futures import ThreadPoolExecutor\n"
            "POOL = ThreadPoolExecutor(2)\n"
            "def poll():\n"
            "    while True:\n"
            "        time.sleep(0.01)",
            init="POOL.submit(poll)",
        ),
        None,
    ),
    "atexit and a blocking __del__": Poison(
        _algorithm(
            top="import atexit\n"
            "atexit.register(lambda: time.sleep(3600))\n"
            "class Sticky:\n"
            "    def __del__(self):\n"
            "        time.sleep(3600)\n"
            "KEEP = Sticky()",
        ),
        None,
    ),
    "chdir at import": Poison(_algorithm(top="os.chdir('/')"), None),
    "prints from its own threads": Poison(
        _algorithm(
            top="def chatter():\n"
            "    while True:\n"
            "        print('chatter ' * 20)\n"
            "        os.write(2, b'from C\\n')",
            init="threading.Thread(target=chatter, daemon=True).start()",
        ),
        None,
        output="chatter chatter",
    ),
    "2 GB of memory": Poison(
        _algorithm(run="hoard = bytearray(2 * 1024 ** 3); return 'buy', 1"),
        "MemoryError",
        env={"AUTOTRADER_HOST_MEMORY_LIMIT_MB": "512"},
    ),
}


@pytest.mark.parametrize("name", list(POISONS))
def test_an_innocent_instance_keeps_trading_beside_a_poisonous_one(tmp_path, name):
    poison = POISONS[name]
    # A relative --data-dir: an algorithm's chdir must not move the engine's files.
    workdir = tmp_path / "cwd"
    data_dir, algorithm_dir = workdir / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir(parents=True)
    write_algorithm(algorithm_dir, "innocent", INNOCENT)
    write_algorithm(algorithm_dir, "poison", INNOCENT)  # what discovery sees at `add`
    options = ["--data-dir", str(data_dir), "--algorithm-dir", str(algorithm_dir)]
    assert cli.main([*options, "add", "NVDA", "innocent", "10000"]) == 0
    assert cli.main([*options, "add", "AMD", "poison", "10000"]) == 0
    write_algorithm(algorithm_dir, "poison", poison.source)  # ...and what runs

    env = subprocess_env(data_dir, algorithm_dir, **poison.env)
    del env["AUTOTRADER_DATA_DIR"]
    log = tmp_path / "headless.log"
    process = popen_python(
        ["-m", "autotrader_desktop", "--data-dir", "data", "headless", "--every", "1"],
        env,
        log,
        cwd=workdir,
    )
    try:

        def innocent_runs() -> int:
            return scalar(data_dir, "SELECT COUNT(*) FROM runs WHERE instance_id = 1")

        wait_until(
            lambda: (
                process.poll() is not None
                or scalar(data_dir, "SELECT COUNT(*) FROM runs WHERE instance_id = 2") >= 1
            ),
            timeout=60,
            message="the poisonous instance's first run",
        )
        wanted = max(innocent_runs() + 2, 3)
        wait_until(
            lambda: process.poll() is not None or innocent_runs() >= wanted,
            timeout=60,
            message="two more runs of the innocent instance",
        )
        assert process.poll() is None, log.read_text(errors="replace")
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=QUIT_WITHIN_S) == 0
        assert time.monotonic() - asked < QUIT_WITHIN_S
    finally:
        kill(process)

    innocent, poisonous = instance_rows(data_dir)
    assert (innocent["status"], innocent["error"]) == ("running", None)
    assert innocent["trade_count"] >= 3
    outcomes = {
        row["outcome"] for row in query(data_dir, "SELECT outcome FROM runs WHERE instance_id = 1")
    }
    assert outcomes == {"executed"}
    if poison.error is None:
        assert (poisonous["status"], poisonous["error"]) == ("running", None)
    else:
        assert poisonous["status"] == "failed"
        assert poison.error in poisonous["error"], poisonous["error"]
    captured = [
        row["text"]
        for row in query(data_dir, "SELECT text FROM output_lines WHERE instance_id = 2")
    ]
    if poison.output is not None:
        assert any(poison.output in text for text in captured), captured[:5]
    assert not query(data_dir, "SELECT text FROM output_lines WHERE instance_id = 1")
    text = log.read_text(errors="replace")
    assert "chatter" not in text and "rocket" not in text
    assert "Traceback" not in text, text
    check_accounts(data_dir)
