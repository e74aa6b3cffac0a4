"""Feed test tools: a protocol server that misbehaves on command, and condition waits.

The tests drive coroutines with `run()` (asyncio.run with a time limit) and never sleep
to wait for something: they wait on `Pulse`, which whoever changes something notifies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import keyring
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from autotrader_desktop.feed.simulator import Simulator

KEY, SECRET = "test-key", "test-secret-value"


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch) -> dict[tuple[str, str], str]:
    """The OS keyring, replaced by a dict: tests never read or write the user's real one."""
    store: dict[tuple[str, str], str] = {}

    def set_password(service: str, name: str, value: str) -> None:
        store[service, name] = value

    monkeypatch.setattr(keyring, "get_password", lambda service, name: store.get((service, name)))
    monkeypatch.setattr(keyring, "set_password", set_password)
    return store


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
