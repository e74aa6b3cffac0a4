"""The stream client against a server that misbehaves on command."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import socket
from datetime import UTC, datetime

import pytest

from autotrader_desktop.credentials import Credentials
from autotrader_desktop.enums import FeedState
from autotrader_desktop.feed.client import Backoff, FeedClient, FeedStatus
from autotrader_desktop.feed.protocol import Frame
from autotrader_desktop.feed.simulator import Simulator
from tests.helpers import KEY, SECRET, ScriptedServer, run

STAMP = "2024-03-13T15:31:02.123456789Z"


def trade(symbol: str = "AAPL", price: float = 171.25, **fields) -> dict:
    return {"T": "t", "S": symbol, "p": price, "s": 100, "t": STAMP, **fields}


class RecordingBackoff(Backoff):
    """Backoff that remembers the delays it handed out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delays: list[float] = []

    def next_delay(self) -> float:
        delay = super().next_delay()
        self.delays.append(delay)
        return delay


class Harness:
    """A FeedClient running against a ScriptedServer, recording what it delivers."""

    def __init__(self, server: ScriptedServer, url: str | None = None, **options) -> None:
        self.server = server
        self.frames: list[Frame] = []
        self.statuses: list[FeedStatus] = []
        # No jitter: delays are base * 2**n exactly, so the tests can name them.
        options.setdefault("backoff", RecordingBackoff(0.02, 0.16, rng=lambda: 1.0))
        self.backoff = options["backoff"]
        self.client = FeedClient(
            url or server.url,
            Credentials(KEY, SECRET),
            self._on_frame,
            on_status=self._on_status,
            **options,
        )

    def _on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.server.changed.notify()

    def _on_status(self, status: FeedStatus) -> None:
        self.statuses.append(status)
        self.server.changed.notify()

    @property
    def prices(self) -> list[float]:
        return [t.price for frame in self.frames for t in frame.trades]

    async def __aenter__(self) -> Harness:
        self.task = asyncio.get_running_loop().create_task(self.client.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        await self.server.changed.wait_for(predicate, timeout)


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_authenticates_subscribes_and_delivers(caplog):
    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server) as harness:
            harness.client.subscribe(["MSFT", "AAPL"])
            await server.wait_connected()
            await harness.wait_for(lambda: server.subscribed == {"AAPL", "MSFT"})
            assert server.received[0] == {"action": "auth", "key": KEY, "secret": SECRET}
            assert harness.client.status.state == FeedState.CONNECTED
            await server.send([trade(price=1.5), trade("MSFT", 2.5)])
            await harness.wait_for(lambda: harness.prices == [1.5, 2.5])
            harness.client.unsubscribe(["MSFT", "NVDA"])
            await harness.wait_for(lambda: server.subscribed == {"AAPL"})
            harness.client.subscribe(["NVDA", "AAPL"])
            await harness.wait_for(lambda: server.subscribed == {"AAPL", "NVDA"})
            assert server.received[-1]["trades"] == ["NVDA"]  # only what is new
        assert harness.statuses[-1].state == FeedState.STOPPED

    run(scenario())
    assert SECRET not in caplog.text


def test_the_auth_frame_is_never_logged_even_with_the_root_logger_at_debug(caplog):
    """websockets logs every frame at DEBUG; an algorithm (or `-v`) can set the root logger
    there. The secret must not reach any log line whatever the root logger's level."""
    root = logging.getLogger()
    caplog.set_level(logging.DEBUG)  # the root logger, and everything that propagates to it
    assert root.isEnabledFor(logging.DEBUG)

    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server) as harness:
            harness.client.subscribe(["AAPL"])
            await server.wait_connected()
            await harness.wait_for(lambda: server.subscribed == {"AAPL"})
            await server.send([trade(price=1.5)])
            await harness.wait_for(lambda: harness.prices == [1.5])

    run(scenario())
    assert "subscribed" in caplog.text  # the log was listening
    assert SECRET not in caplog.text and KEY not in caplog.text


def test_dropped_connection_reconnects_and_resubscribes_everything(caplog):
    async def scenario() -> Harness:
        async with ScriptedServer() as server, Harness(server) as harness:
            harness.client.subscribe(["AAPL", "MSFT"])
            await server.wait_connected()
            await server.send([trade(price=1.0)])
            await harness.wait_for(lambda: harness.prices == [1.0])
            server.drop()
            await server.wait_connected(count=2)
            await harness.wait_for(lambda: server.subscribed == {"AAPL", "MSFT"})
            await server.send([trade(price=2.0)])
            await harness.wait_for(lambda: harness.prices == [1.0, 2.0])
            assert len(server.handshakes) == 2
            assert gaps(server.handshakes)[0] >= harness.backoff.delays[0] == 0.02
        return harness

    harness = run(scenario())
    states = [status.state for status in harness.statuses]
    assert states[:5] == [
        "connecting",
        FeedState.CONNECTED,
        FeedState.RECONNECTING,
        "connecting",
        FeedState.CONNECTED,
    ]
    assert "connection lost" in caplog.text and "reconnecting in 0.02 s" in caplog.text


def test_repeated_406_backs_off_exponentially(caplog):
    async def scenario() -> tuple[Harness, list[float]]:
        async with ScriptedServer() as server, Harness(server) as harness:
            server.script = ["406"] * 5
            await server.wait_connected(count=6)
            return harness, gaps(server.handshakes)

    harness, measured = run(scenario())
    # websockets restarts its own backoff after every accepted handshake; ours did not.
    assert harness.backoff.delays == [0.02, 0.04, 0.08, 0.16, 0.16]
    for delay, gap in zip(harness.backoff.delays, measured, strict=True):
        assert gap >= delay
    assert caplog.text.count("server error 406") == 5


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (402, FeedState.AUTH_FAILED),
        (404, FeedState.AUTH_FAILED),
        (409, FeedState.INSUFFICIENT_SUBSCRIPTION),
    ],
)
def test_auth_failures_stop_retrying(caplog, code, state):
    async def scenario() -> tuple[Harness, int]:
        async with ScriptedServer() as server, Harness(server) as harness:
            server.script = [str(code)]
            await harness.task  # run() ends by itself
            return harness, len(server.handshakes)

    harness, connections = run(scenario())
    assert connections == 1
    assert harness.client.status.state == state
    assert harness.client.status.text() == f"{state} ({code} no)"
    assert "not retrying" in caplog.text


def test_wrong_credentials_fail_auth():
    async def scenario() -> FeedStatus:
        async with ScriptedServer() as server:
            client = FeedClient(server.url, Credentials(KEY, "wrong"), lambda frame: None)
            await client.run()
            return client.status

    assert run(scenario()).state == FeedState.AUTH_FAILED


def test_server_that_never_says_connected_is_retried(caplog):
    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server, handshake_timeout=0.2) as harness:
            server.script = ["silent"]
            await server.wait_connected(count=2)
            assert harness.backoff.delays == [0.02]

    run(scenario())
    assert "no 'connected'/'authenticated' answer within 0.2 s" in caplog.text


def test_garbage_frames_are_logged_and_skipped(caplog):
    async def scenario() -> Harness:
        async with ScriptedServer() as server, Harness(server) as harness:
            await server.wait_connected()
            await server.send("this is not json")
            await server.send(json.dumps(trade()))  # an object instead of an array
            await server.send([{"T": "zz", "S": "AAPL"}])  # unknown type
            await server.send([trade(p="171.25"), trade(s=True), trade(t=12)])  # wrong types
            await server.send([{"T": "error", "code": 405, "msg": "symbol limit exceeded"}])
            await server.send([trade(price=3.0)])
            await harness.wait_for(lambda: harness.prices == [3.0])
            assert len(server.handshakes) == 1  # all of it survived on one connection
            assert harness.client.status.state == FeedState.CONNECTED
        return harness

    run(scenario())
    assert "skipped a frame: frame is not JSON" in caplog.text
    assert "skipped a frame: frame is not a JSON array" in caplog.text
    assert "unknown message type 'zz'" in caplog.text
    assert caplog.text.count("trade with a bad") == 3
    assert "server error 405 symbol limit exceeded" in caplog.text


def test_a_failing_frame_handler_does_not_end_the_stream(caplog):
    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server) as harness:
            delivered = harness._on_frame

            def flaky(frame: Frame) -> None:
                if not harness.frames:
                    harness.frames.append(frame)
                    raise RuntimeError("bug")
                delivered(frame)

            harness.client._on_frame = flaky
            await server.wait_connected()
            await server.send([trade(price=1.0)])
            await server.send([trade(price=2.0)])
            await harness.wait_for(lambda: harness.prices == [1.0, 2.0])
            assert len(server.handshakes) == 1

    run(scenario())
    assert "processing a frame failed" in caplog.text


def test_a_flood_of_garbage_is_rate_limited_in_the_log(caplog):
    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server) as harness:
            await server.wait_connected()
            for _ in range(50):
                await server.send("garbage")
            await server.send([trade(price=3.0)])
            await harness.wait_for(lambda: harness.prices == [3.0])

    run(scenario())
    assert caplog.text.count("skipped a frame") == 20


def test_oversized_frame_is_survived(caplog):
    async def scenario() -> None:
        async with ScriptedServer() as server, Harness(server, max_size=4096) as harness:
            harness.client.subscribe(["AAPL"])
            await server.wait_connected()
            await server.send([trade(price=1.0)] * 100)  # ~6 KB
            await server.wait_connected(count=2)
            await harness.wait_for(lambda: server.subscribed == {"AAPL"})
            await server.send([trade(price=2.0)])
            await harness.wait_for(lambda: harness.prices == [2.0])

    run(scenario())
    assert "message too big" in caplog.text


def test_unreachable_server_backs_off_too():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> Harness:
        async with ScriptedServer() as server:
            harness = Harness(server, url=f"ws://127.0.0.1:{port}/v2/iex")
            async with harness:
                await harness.wait_for(lambda: len(harness.backoff.delays) >= 4)
                status = harness.client.status
                assert (
                    status.state == FeedState.RECONNECTING and "ConnectionRefused" in status.detail
                )
        return harness

    assert run(scenario()).backoff.delays[:4] == [0.02, 0.04, 0.08, 0.16]


def test_http_errors_during_the_handshake_are_fatal():
    async def scenario() -> FeedStatus:
        async with ScriptedServer(Simulator()) as server:
            # A REST path: the server answers HTTP 403 instead of switching protocols.
            url = f"{server.history_url.replace('http', 'ws')}/v2/stocks/X/bars"
            client = FeedClient(url, Credentials(KEY, SECRET), lambda frame: None)
            await client.run()
            return client.status

    status = run(scenario())
    assert status.state == FeedState.FAILED and "HTTP 403" in status.detail


@pytest.mark.parametrize("healthy_after", [0.0, 3600.0])
def test_backoff_resets_only_after_a_healthy_session(healthy_after):
    async def scenario() -> list[float]:
        async with ScriptedServer() as server, Harness(server, healthy_after=healthy_after) as h:
            for count in (1, 2):
                await server.wait_connected(count)
                server.drop()
            await server.wait_connected(3)
            return h.backoff.delays

    expected = [0.02, 0.02] if healthy_after == 0 else [0.02, 0.04]
    assert run(scenario()) == expected


def test_backoff_is_exponential_with_jitter_and_capped():
    backoff = Backoff(1.0, 8.0, rng=random.Random(3).random)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    assert Backoff(1.0, 60.0, rng=lambda: 0.0).next_delay() == 0.5


def test_status_text():
    now = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert FeedStatus(FeedState.RECONNECTING, "connection lost", now + 3.2).text(now) == (
        "reconnecting in 4 s (connection lost)"
    )
    assert FeedStatus(FeedState.RECONNECTING, "", now - 1).text(now) == "reconnecting"
    assert FeedStatus(FeedState.CONNECTED).text() == "connected"
