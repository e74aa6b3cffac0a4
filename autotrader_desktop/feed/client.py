"""The stream client: one WebSocket session after another until told to stop.

Built on `websockets.asyncio.client.connect` used as an iterator, which reconnects by itself
when connecting fails and keeps the connection alive with pings. What it lacks, added here:
- the Alpaca session: wait for `connected`, authenticate, (re)subscribe every symbol;
- backoff after a session that *was* accepted and then failed (error 406 connection limit,
  a drop, no `connected` within the timeout): websockets restarts its backoff after every
  successful handshake, so both paths here draw their delays from one shared `Backoff`,
  which is reset only after a session stayed up `healthy_after` seconds;
- errors 402/404 ("auth failed") and 409 ("insufficient subscription") end retrying: the
  same key would fail again;
- a status for the UI, and frames that cannot be used logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidStatus

from autotrader_desktop.credentials import Credentials
from autotrader_desktop.enums import FeedState
from autotrader_desktop.feed.protocol import (
    ERROR_CODES,
    Frame,
    ProtocolError,
    auth_message,
    parse_frame,
    subscription_message,
)

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the auth frame (key and secret) included, to whoever
# listens: a root logger at DEBUG (`-v`, or an algorithm's logging.basicConfig) would write
# the secret to the log. The connections get a logger of their own whose level is set here,
# whatever the root logger's; websockets' own loggers get the same floor.
_WEBSOCKET_LOG = logging.getLogger("autotrader_desktop.feed.websocket")
for _logger in (_WEBSOCKET_LOG, logging.getLogger("websockets")):
    _logger.setLevel(logging.INFO)

MAX_FRAME_BYTES = 8 * 2**20  # a frame is a batch of messages; a snapshot burst stays far below
HANDSHAKE_TIMEOUT_S = 10.0  # Alpaca drops clients that have not authenticated within 10 s
HEALTHY_AFTER_S = 30.0


# Server error codes that retrying with the same credentials cannot fix.
FATAL_CODES = {
    402: FeedState.AUTH_FAILED,
    404: FeedState.AUTH_FAILED,
    409: FeedState.INSUFFICIENT_SUBSCRIPTION,
}
# Codes after which the server closes the connection (reconnect, with backoff).
SESSION_ENDING_CODES = {406, 407, 408}


class Backoff:
    """Exponential backoff with jitter: attempt n waits a uniform delay in [d/2, d],
    d = min(cap, base * 2**n) ("equal jitter": always growing, never synchronised)."""

    def __init__(
        self, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self._attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self._attempts, 62))
        self._attempts += 1
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        self._attempts = 0


@dataclass(frozen=True)
class FeedStatus:
    state: FeedState
    detail: str = ""
    retry_at: float | None = None  # time.monotonic() of the next attempt, when reconnecting

    def text(self, now: float | None = None) -> str:
        """'reconnecting in 4 s (connection limit exceeded)', 'auth failed (402 ...)', ..."""
        label = self.state.label
        if self.state == FeedState.RECONNECTING and self.retry_at is not None:
            remaining = math.ceil(self.retry_at - (now or time.monotonic()))
            # At 0 s websockets is already trying again.
            label = f"reconnecting in {remaining} s" if remaining > 0 else label
        return f"{label} ({self.detail})" if self.detail else label


class _Fatal(Exception):
    def __init__(self, state: FeedState, detail: str) -> None:
        super().__init__(detail)
        self.state = state


class _SessionEnded(Exception):
    """The server said it is closing the session (e.g. 406); reconnect after a backoff."""


class FeedClient:
    """Keeps a stream session up and delivers its frames to `on_frame` (trades, bars)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        on_frame: Callable[[Frame], None],
        *,
        on_status: Callable[[FeedStatus], None] | None = None,
        backoff: Backoff | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
        healthy_after: float = HEALTHY_AFTER_S,
        max_size: int = MAX_FRAME_BYTES,
        ping_interval: float = 20.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._on_frame = on_frame
        self._on_status = on_status
        self.backoff = backoff or Backoff()
        self.handshake_timeout = handshake_timeout
        self.healthy_after = healthy_after
        self._connect_options: dict[str, Any] = {
            "max_size": max_size,
            "ping_interval": ping_interval,
            "ping_timeout": ping_interval,
            "open_timeout": handshake_timeout,
            "close_timeout": close_timeout,
            "logger": _WEBSOCKET_LOG,
        }
        self.status = FeedStatus(FeedState.OFF)
        self.symbols: set[str] = set()
        self._ws: ClientConnection | None = None  # set while authenticated
        self._sends: set[asyncio.Task[None]] = set()
        self._failure = ""  # why the last connection attempt failed
        self._complaints = _RateLimitedLog()

    # --- subscriptions (call on the loop's thread) ------------------------------------------

    def subscribe(self, symbols: list[str]) -> None:
        new = sorted(set(symbols) - self.symbols)
        self.symbols.update(new)
        if new:
            self._send(subscription_message("subscribe", new))

    def unsubscribe(self, symbols: list[str]) -> None:
        gone = sorted(set(symbols) & self.symbols)
        self.symbols.difference_update(gone)
        if gone:
            self._send(subscription_message("unsubscribe", gone))

    def _send(self, message: str) -> None:
        # Not connected: nothing to do, the next session subscribes to self.symbols.
        if self._ws is None:
            return
        task = asyncio.get_running_loop().create_task(self._send_now(self._ws, message))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    @staticmethod
    async def _send_now(ws: ClientConnection, message: str) -> None:
        # ConnectionClosed: the session is ending; the next one resubscribes everything.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(message)

    # --- the session loop -------------------------------------------------------------------

    def _set_status(
        self, state: FeedState, detail: str = "", retry_at: float | None = None
    ) -> None:
        self.status = FeedStatus(state, detail, retry_at)
        if self._on_status is not None:
            try:
                self._on_status(self.status)
            except Exception:
                log.exception("feed status listener failed")

    def _retry_or_raise(self, exc: Exception) -> Exception | None:
        """websockets' process_exception, plus: HTTP 429 (too many requests) is retried."""
        self._failure = _describe(exc)
        if isinstance(exc, InvalidStatus) and exc.response.status_code == 429:
            return None
        return process_exception(exc)

    def _reconnect_delays(self) -> Generator[float]:
        """websockets asks this for the delay after each failed connection attempt."""
        while True:
            yield self._wait_before_retry(self._failure)

    def _wait_before_retry(self, reason: str) -> float:
        delay = self.backoff.next_delay()
        log.warning("market data stream: %s; reconnecting in %.2f s", reason, delay)
        self._set_status(FeedState.RECONNECTING, reason, time.monotonic() + delay)
        return delay

    async def run(self) -> None:
        """Connect and stay connected until cancelled or the server rejects our credentials."""
        self._set_status(FeedState.CONNECTING)
        connector = connect(
            self.url,
            process_exception=self._retry_or_raise,
            reconnect_delays=self._reconnect_delays,
            **self._connect_options,
        )
        try:
            # connect()'s iterator is an async generator (typed as a plain iterator):
            # aclosing ends its retry loop as soon as we stop, even when cancelled.
            sessions_iterator = cast("AsyncGenerator[ClientConnection, None]", aiter(connector))
            async with aclosing(sessions_iterator) as sessions:
                async for ws in sessions:
                    reason = await self._session(ws)
                    await asyncio.sleep(self._wait_before_retry(reason))
                    self._set_status(FeedState.CONNECTING)
        except _Fatal as exc:
            log.error("market data stream: %s (%s); not retrying", exc.state, exc)
            self._set_status(exc.state, str(exc))
        except Exception as exc:
            log.error("market data stream: cannot connect to %s: %s", self.url, _describe(exc))
            self._set_status(FeedState.FAILED, _describe(exc))
        except asyncio.CancelledError:
            self._set_status(FeedState.STOPPED)
            raise
        finally:
            for task in self._sends:
                task.cancel()

    async def _session(self, ws: ClientConnection) -> str:
        """Run one accepted connection until it ends; returns why it ended."""
        loop = asyncio.get_running_loop()
        authenticated_at: float | None = None
        try:
            async with asyncio.timeout(self.handshake_timeout):
                await self._expect(ws, "connected")
                await ws.send(auth_message(self._credentials.key_id, self._credentials.secret_key))
                await self._expect(ws, "authenticated")
            authenticated_at = loop.time()
            self._ws = ws
            if self.symbols:
                await ws.send(subscription_message("subscribe", sorted(self.symbols)))
            self._set_status(FeedState.CONNECTED)
            async for raw in ws:
                self._handle(raw)
            return "the server closed the connection"
        except TimeoutError:
            return f"no 'connected'/'authenticated' answer within {self.handshake_timeout:g} s"
        except ConnectionClosed as exc:
            return f"connection lost ({_describe(exc)})"
        except _SessionEnded as exc:
            return str(exc)
        finally:
            self._ws = None
            lasted = loop.time() - authenticated_at if authenticated_at is not None else 0.0
            if lasted >= self.healthy_after:
                self.backoff.reset()
            await ws.close()

    async def _expect(self, ws: ClientConnection, greeting: str) -> None:
        """Read frames until the server says `greeting` ("connected", "authenticated")."""
        while greeting not in self._handle(await ws.recv()):
            pass

    def _handle(self, raw: str | bytes) -> list[str]:
        """Process one frame; returns its "success" messages. Raises on session errors."""
        try:
            frame = parse_frame(raw)
        except ProtocolError as exc:
            self._complaints.warn("market data stream: skipped a frame: %s", exc)
            return []
        for problem in frame.problems:
            self._complaints.warn("market data stream: skipped a message: %s", problem)
        if frame.trades or frame.bars:
            try:
                self._on_frame(frame)
            except Exception:  # a bug downstream must not end the stream
                log.exception("market data stream: processing a frame failed")
        successes = []
        for notice in frame.notices:
            if notice.kind == "success":
                successes.append(notice.message)
            elif notice.kind == "subscription":
                log.info("market data stream: subscribed %s", notice.message or "nothing")
            else:
                self._server_error(notice.code or 0, notice.message)
        return successes

    def _server_error(self, code: int, message: str) -> None:
        detail = f"{code} {message or ERROR_CODES.get(code, 'error')}"
        if code in FATAL_CODES:
            raise _Fatal(FATAL_CODES[code], detail)
        if code in SESSION_ENDING_CODES:
            raise _SessionEnded(f"server error {detail}")
        log.warning("market data stream: server error %s", detail)


class _RateLimitedLog:
    """At most `limit` warnings a minute, so that a misbehaving server cannot flood the log."""

    def __init__(self, limit: int = 20, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._window_start = -math.inf
        self._count = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.window:
            if self._count > self.limit:
                suppressed = self._count - self.limit
                log.warning("market data stream: %d more warnings suppressed", suppressed)
            self._window_start, self._count = now, 0
        self._count += 1
        if self._count <= self.limit:
            log.warning(message, *args)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} during the WebSocket handshake"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
