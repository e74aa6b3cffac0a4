"""Alpaca's `trade_updates` stream: order events as they happen, one session after another.

A session: connect, `{"action": "authenticate", "data": {"key_id", "secret_key"}}`, wait for
`{"stream": "authorization", "data": {"status": "authorized"}}`, send `{"action": "listen",
"data": {"streams": ["trade_updates"]}}`, wait for `{"stream": "listening"}`, then receive
`{"stream": "trade_updates", "data": {"event", "order", ...}}`. Alpaca's paper endpoint sends
binary frames, the live one text; both are UTF-8 JSON. Events missed while disconnected are
not replayed, so every (re)connection calls `on_listening`, which reconciles by REST.

The auth frame carries the secret: it is never logged, and websockets' own frame logging is
kept off by giving it a logger above DEBUG.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from autotrader_desktop.broker.alpaca_api import TradeUpdate
from autotrader_desktop.credentials import Credentials
from autotrader_desktop.feed.client import Backoff

log = logging.getLogger(__name__)
_quiet = logging.getLogger(__name__ + ".websocket")
_quiet.setLevel(logging.INFO)  # frame dumps (DEBUG) would include the auth frame

HANDSHAKE_TIMEOUT_S = 10.0
HEALTHY_AFTER_S = 30.0
MAX_FRAME_BYTES = 2**20


class StreamState(StrEnum):
    """Where the trade_updates session is (its value is what a person reads)."""

    CONNECTING = "connecting"
    LISTENING = "listening"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth failed"
    STOPPED = "stopped"


class AuthFailed(Exception):
    pass


def decode(frame: str | bytes) -> Any:
    return json.loads(frame.decode("utf-8") if isinstance(frame, bytes) else frame)


class TradeUpdatesStream:
    def __init__(
        self,
        url: str,
        credentials: Credentials,
        on_update: Callable[[TradeUpdate], None],
        on_listening: Callable[[], None],
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._on_update = on_update
        self._on_listening = on_listening
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.state = StreamState.STOPPED
        self.sessions = 0  # sessions that reached `listening` (tests and the status bar)

    async def run(self) -> None:
        """Sessions until cancelled; handlers run on a worker thread (they write the database)."""
        loop = asyncio.get_running_loop()
        while True:
            self.state = StreamState.CONNECTING if self.sessions == 0 else StreamState.RECONNECTING
            started = loop.time()
            try:
                await self._session()
            except asyncio.CancelledError:
                self.state = StreamState.STOPPED
                raise
            except AuthFailed:
                self.state = StreamState.AUTH_FAILED
                log.error(
                    "Alpaca refused the API key on the trade_updates stream; fills are "
                    "reconciled by REST until it is accepted"
                )
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, ValueError) as exc:
                log.warning("trade_updates stream lost (%s); reconnecting", type(exc).__name__)
            if loop.time() - started >= HEALTHY_AFTER_S:
                self._backoff.reset()
            if self.state != StreamState.AUTH_FAILED:
                self.state = StreamState.RECONNECTING
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        async with connect(
            self.url,
            open_timeout=HANDSHAKE_TIMEOUT_S,
            max_size=MAX_FRAME_BYTES,
            logger=_quiet,
        ) as ws:
            await self._handshake(ws)
            self.state = StreamState.LISTENING
            self.sessions += 1
            log.info("trade_updates stream listening")
            await asyncio.to_thread(self._on_listening)
            async for frame in ws:
                await self._receive(frame)

    async def _handshake(self, ws: ClientConnection) -> None:
        key = self._credentials
        await ws.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": key.key_id, "secret_key": key.secret_key},
                }
            )
        )
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            while True:
                message = decode(await ws.recv())
                if message.get("stream") == "authorization":
                    if (message.get("data") or {}).get("status") != "authorized":
                        raise AuthFailed()
                    break
            await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            while True:
                message = decode(await ws.recv())
                if message.get("stream") == "listening":
                    return

    async def _receive(self, frame: str | bytes) -> None:
        try:
            message = decode(frame)
            if message.get("stream") != "trade_updates":
                return
            update = TradeUpdate(**message["data"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("unusable trade_updates frame skipped (%s)", type(exc).__name__)
            return
        await asyncio.to_thread(self._on_update, update)
