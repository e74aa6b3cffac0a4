"""The engine's channel, from a window's end: a real `headless` engine, an EngineClient."""

from __future__ import annotations

import itertools
import signal
import stat
import threading
from datetime import datetime
from pathlib import Path

import pytest

from autotrader_desktop import cli
from autotrader_desktop.engine_channel import EngineClient, EngineUnavailable
from autotrader_desktop.engine_lock import running_engine
from autotrader_desktop.errors import UserError
from autotrader_desktop.settings import Settings
from tests.helpers import (
    instance_rows,
    kill,
    popen_python,
    returning,
    scalar,
    subprocess_env,
    wait_until,
    write_algorithm,
)

EXIT_TIMEOUT_S = 30


@pytest.fixture
def engine_process(tmp_path):
    data_dir, algorithm_dir = tmp_path / "data", tmp_path / "algorithm"
    algorithm_dir.mkdir()
    write_algorithm(algorithm_dir, "buyer", returning("'buy', 1"))
    options = ["--data-dir", str(data_dir), "--algorithm-dir", str(algorithm_dir)]
    assert cli.main([*options, "add", "NVDA", "buyer", "10000"]) == 0
    log = tmp_path / "engine.log"
    process = popen_python(
        ["-m", "autotrader_desktop", "headless", "--every", "1"],
        subprocess_env(data_dir, algorithm_dir),
        log,
    )
    info = wait_until(
        lambda: (
            process.poll() is None
            and (found := running_engine(data_dir)) is not None
            and found.channel
            and found
        ),
        message="the engine's channel",
    )
    yield process, info, data_dir, log
    kill(process)


@pytest.fixture
def client(engine_process):
    client = EngineClient(Settings(), Path())
    client.connect(engine_process[1])
    yield client
    client.close()


def test_the_channel_is_private_to_the_user(engine_process):
    _, info, _, _ = engine_process
    assert stat.S_IMODE((__import__("os").stat(info.channel)).st_mode) == 0o600


def test_hello_names_the_engine(engine_process, client):
    process, info, _, _ = engine_process
    assert info.pid == process.pid
    assert client.settings.feed == "sim"
    assert client.algorithm_dir.name == "algorithm"


def test_actions_reach_the_engine(engine_process, client):
    data_dir = engine_process[2]
    assert [f.name for f in client.scan() if f.available] == ["buyer"]
    created = client.create_instance("amd", "buyer", "2500")
    assert (created.ticker, created.initial_capital, created.status) == ("AMD", 2500, "running")
    # The engine subscribes at once and trades it at its next cycle.
    wait_until(
        lambda: scalar(
            data_dir, "SELECT trade_count FROM algorithm_instances WHERE id = ?", (created.id,)
        ),
        message="a trade of the instance created through the channel",
    )
    wait_until(lambda: client.latest_price("AMD"), message="AMD's live price pushed")
    stopped = client.stop_instance(created.id)
    assert stopped.status == "stopped" and stopped.shares == 0
    deleted = client.delete_instance(created.id)
    assert deleted.id == created.id
    assert [row["ticker"] for row in instance_rows(data_dir)] == ["NVDA"]
    assert client.restart() == 0
    assert client.save_settings({"commission": 1.25}).commission == 1.25


def test_a_user_error_comes_back_as_one(client):
    with pytest.raises(UserError, match="no instance with id 99"):
        client.stop_instance(99)
    with pytest.raises(UserError, match="symbol"):
        client.create_instance("", "buyer", "100")


def test_events_arrive(client):
    cycles, batches, heard = threading.Event(), [], []
    client.events.cycle_started.connect(lambda at: heard.append(("started", at)))
    client.events.cycle_finished.connect(lambda report: heard.append(("finished", report)))
    client.events.cycle_finished.connect(lambda report: cycles.set())
    client.events.runs_recorded.connect(batches.append)
    assert cycles.wait(EXIT_TIMEOUT_S)

    def whole_cycle() -> tuple[datetime, datetime] | None:
        """A start heard, then its end (one may have been under way on connecting)."""
        pairs = itertools.pairwise(list(heard))
        return next(
            (
                (at, end.scheduled_at)
                for (a, at), (b, end) in pairs
                if (a, b) == ("started", "finished")
            ),
            None,
        )

    started, finished = wait_until(whole_cycle, message="a whole cycle")
    assert started == finished
    wait_until(lambda: batches, message="a batch of recorded runs")
    assert batches[0][0].outcome == "executed"
    wait_until(lambda: client.next_cycle_at() is not None, message="the next cycle's time")
    wait_until(lambda: client.market_data.status is not None, message="the feed's state")


def test_the_window_hears_at_once_when_the_engine_dies(engine_process, client):
    process = engine_process[0]
    lost = threading.Event()
    client.events.engine_lost.connect(lambda gone: lost.set())
    process.send_signal(signal.SIGKILL)
    assert lost.wait(EXIT_TIMEOUT_S)
    assert not client.connected
    with pytest.raises(EngineUnavailable, match="no engine is running"):
        client.restart()


def test_an_import_is_done_by_the_engine(client, tmp_path):
    with pytest.raises(UserError, match="nothing here"):
        client.import_apac(tmp_path / "nothing here")
