"""Algorithm hosts seen from the engine: crashes and hangs fail only the instance that hit
them, siblings go on with fresh objects, output is credited per instance (threads too),
hosts are lean and read-only, and ending the engine ends them whatever they do."""

from __future__ import annotations

import os
import sys
import threading
import time

from autotrader_desktop.database import Instance, OutputLine, Run
from autotrader_desktop.enums import InstanceStatus
from autotrader_desktop.hosts.process import NICENESS
from tests.helpers import add_instance, cycle, returning, wait_until, write_algorithm

BUYER = returning("'buy', 1")


def status(instance):
    return Instance.get_by_id(instance.id)


def output(instance) -> list[str]:
    query = OutputLine.select().where(OutputLine.instance == instance.id).order_by(OutputLine.id)
    return [line.text for line in query]


def runs_of(instance) -> list[str]:
    return [r.outcome for r in Run.select().where(Run.instance == instance.id)]


def alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SEGFAULT_AT_IMPORT = """
import ctypes
ctypes.string_at(0)

class Algorithm:
    pass
"""


def test_a_crash_at_import_fails_the_instances_that_needed_the_module(engine, algo_dir):
    write_algorithm(algo_dir, "crashy", SEGFAULT_AT_IMPORT)
    write_algorithm(algo_dir, "good", BUYER)
    bad = [add_instance(engine, "NVDA", "crashy") for _ in range(2)]
    good = add_instance(engine, "NVDA", "good")
    assert cycle(engine).outcomes == {"failed": 2, "executed": 1}
    for instance in bad:
        assert status(instance).error == (
            "the algorithm's process was killed by SIGSEGV while importing the module"
        )
    assert status(good).shares == 1
    # A module that never loaded is not kept: the next instance reads the file again.
    assert "crashy" not in engine.cache.snapshots


SEGFAULT_IN_INIT = """
import ctypes

class Algorithm:
    def __init__(self, symbol, capital):
        if symbol == "BAD":
            ctypes.string_at(0)

    def run(self, current_time, algo_id):
        return "buy", 1
"""


def test_a_crash_in_init_fails_only_that_instance(engine, algo_dir):
    write_algorithm(algo_dir, "picky", SEGFAULT_IN_INIT)
    before = add_instance(engine, "NVDA", "picky")
    bad = add_instance(engine, "BAD", "picky")
    after = add_instance(engine, "AMD", "picky")
    assert cycle(engine).outcomes == {"failed": 1, "executed": 2}
    assert status(bad).error == "the algorithm's process was killed by SIGSEGV in __init__()"
    for instance in (before, after):
        assert runs_of(instance) == ["executed"] and status(instance).shares == 1
    assert cycle(engine).outcomes == {"executed": 2}  # the failed one is not run again


HANGS_FOR_ONE = """
class Algorithm:
    def __init__(self, symbol, capital):
        self.symbol = symbol
        self.runs = 0

    def run(self, current_time, algo_id):
        self.runs += 1
        print("run", self.runs)
        while self.symbol == "HANG":
            pass
        return "hold", 0
"""


def test_a_hung_run_fails_alone_and_its_siblings_go_on_with_fresh_objects(make_engine, algo_dir):
    engine = make_engine(run_time_limit=1.0)
    write_algorithm(algo_dir, "stuck", HANGS_FOR_ONE)
    first = add_instance(engine, "NVDA", "stuck")
    cycle(engine)  # `first` has an object with state (runs == 1) in the host
    hung = add_instance(engine, "HANG", "stuck")
    last = add_instance(engine, "AMD", "stuck")
    assert cycle(engine).outcomes == {"failed": 1, "hold": 2}
    assert status(hung).error == (
        "TimeoutError: run did not finish within the 1 s time limit (during run()); "
        "its process was killed"
    )
    # `first` ran in the killed process before the hang: its state went with it, and its
    # output says so; it goes on in the new host, as does `last`.
    assert output(first)[-2].startswith("[engine] the algorithm's process was replaced")
    assert "what it kept on self was lost" in output(first)[-2]
    assert output(first)[-1] == "run 1"
    assert output(last)[-1] == "run 1"
    assert cycle(engine).outcomes == {"hold": 2}
    assert output(first)[-1] == "run 2"


CHATTY_THREADS = """
import threading, time

class Algorithm:
    def __init__(self, symbol, capital):
        self.symbol = symbol
        threading.Thread(target=self.chatter, daemon=True).start()

    def chatter(self):
        while True:
            print("tick", self.symbol)
            time.sleep(0.005)

    def run(self, current_time, algo_id):
        time.sleep(0.05)
        return "hold", 0
"""


def test_output_of_an_algorithms_threads_is_credited_to_its_instance(engine, algo_dir):
    write_algorithm(algo_dir, "chatty", CHATTY_THREADS)
    nvda = add_instance(engine, "NVDA", "chatty")
    amd = add_instance(engine, "AMD", "chatty")
    for _ in range(3):
        cycle(engine)
    assert set(output(nvda)) == {"tick NVDA"}
    assert set(output(amd)) == {"tick AMD"}


INTROSPECTS = """
import os, sys

class Algorithm:
    def __init__(self, symbol, capital):
        pass

    def run(self, current_time, algo_id):
        heavy = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("PySide6", "shiboken6", "qasync", "pyqtgraph", "numpy")
        )
        print("heavy:", heavy)
        print("cwd:", os.getcwd())
        print("niceness:", os.nice(0))
        from autotrader_desktop import database
        database.db.execute_sql("DELETE FROM bars")
        return "hold", 0
"""


def test_a_host_is_lean_works_in_its_own_folder_yields_the_cpu_and_cannot_write_the_database(
    engine, algo_dir, data_dir
):
    write_algorithm(algo_dir, "nosy", INTROSPECTS)
    instance = add_instance(engine, "NVDA", "nosy")
    cycle(engine)
    assert output(instance)[:3] == [
        "heavy: []",
        f"cwd: {(data_dir / 'work' / 'nosy').resolve()}",
        f"niceness: {min(os.nice(0) + NICENESS, 19)}",
    ]
    failed = status(instance)
    assert failed.status == InstanceStatus.FAILED
    assert "readonly database" in failed.error


DIES_LATER = """
import os, threading, time

class Algorithm:
    def __init__(self, symbol, capital):
        self.runs = 0

    def run(self, current_time, algo_id):
        self.runs += 1
        if self.runs == 1:
            threading.Timer(0.2, os._exit, (3,)).start()
        return "hold", self.runs
"""


def test_a_host_that_dies_between_cycles_is_replaced_without_failing_anyone(engine, algo_dir):
    write_algorithm(algo_dir, "fragile", DIES_LATER)
    instance = add_instance(engine, "NVDA", "fragile")
    cycle(engine)
    pid = engine.hosts.pids()["fragile"]
    wait_until(lambda: not alive(pid), message="the host to exit on its own")
    assert cycle(engine).outcomes == {"hold": 1}
    assert status(instance).status == InstanceStatus.RUNNING
    # A fresh object (runs counts from 1 again), and the output says why.
    assert [r.decision for r in Run.select().order_by(Run.id)] == ["hold 1", "hold 1"]
    assert "exited (exit code 3) between runs" in output(instance)[-1]
    assert engine.hosts.pids()["fragile"] != pid


GIL_HOG = """
import re

class Algorithm:
    def __init__(self, symbol, capital):
        pass

    def run(self, current_time, algo_id):
        re.match(r"(a+)+$", "a" * 40 + "b")  # hours, in C, holding the GIL
        return "hold", 0
"""


def test_restart_ends_a_host_stuck_in_c_at_once(make_engine, algo_dir):
    engine = make_engine(run_time_limit=600)
    write_algorithm(algo_dir, "hog", GIL_HOG)
    write_algorithm(algo_dir, "good", BUYER)
    hog = add_instance(engine, "NVDA", "hog")
    good = add_instance(engine, "NVDA", "good")
    engine.clock.advance(60)
    reports = []
    cycling = threading.Thread(target=lambda: reports.append(engine.cycle()), daemon=True)
    cycling.start()
    wait_until(lambda: runs_of(good) and "hog" in engine.hosts.pids(), message="the hog running")
    pid = engine.hosts.pids()["hog"]
    asked = time.monotonic()
    engine.restart()
    took = time.monotonic() - asked
    cycling.join(timeout=5)
    assert took < 5 and not cycling.is_alive()
    assert not alive(pid)
    # An interrupted run is not a failure: it did not happen.
    assert reports[0].outcomes == {"executed": 1}
    assert runs_of(hog) == [] and status(hog).status == InstanceStatus.RUNNING
    assert engine.hosts.pids() == {}


def test_the_engine_process_never_loads_an_algorithm(engine, algo_dir):
    write_algorithm(algo_dir, "good", BUYER)
    add_instance(engine, "NVDA", "good")
    cycle(engine)
    assert not [name for name in sys.modules if name.startswith("autotrader_algorithms")]
    assert engine.hosts.pids()["good"] != os.getpid()


ASKS_FOR_HISTORY = """
from autotrader_desktop.api import get_data_for_algorithm

class Algorithm:
    def __init__(self, symbol, capital):
        self.symbol = symbol

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.symbol, "last_n_bars", n=3)
        print(len(bars), bars[-1]["ohlcv"]["c"])
        return "hold", 0
"""


def test_bars_a_run_lacks_are_fetched_by_the_engine_for_its_host(make_engine, algo_dir, market):
    from autotrader_desktop.feed.bars import store

    asked = []

    def ensure_history(symbol: str, start: int, end: int, deadline: float) -> bool:
        asked.append((symbol, os.getpid()))
        store([(symbol, t, 1.0, 2.0, 0.5, 1.5, 100) for t in range(start // 60 * 60, end + 1, 60)])
        return True

    market.ensure_history = ensure_history
    engine = make_engine()
    write_algorithm(algo_dir, "reader", ASKS_FOR_HISTORY)
    instance = add_instance(engine, "NVDA", "reader")
    assert cycle(engine).outcomes == {"hold": 1}
    # Asked from the host, fetched in the engine's process (where market data lives).
    assert asked and set(asked) == {("NVDA", os.getpid())}
    assert output(instance) == ["3 1.5"]
