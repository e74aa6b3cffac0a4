"""Feed ingest end to end vs the raw cost of receiving and decoding the same frames.

The bar (docs/behaviour.md#quality-bars): socket -> parsed -> aggregated into bars ->
persisted at >= 50 % of the rate of a bare `recv()` + `json.loads()` loop on the same socket
and batches.

A server process (the other core) speaks the stream protocol and, once a client has
authenticated, sends the same pre-encoded frames every time: TRADES trades in batches of
BATCH (an Alpaca-style array per frame) over SYMBOLS symbols and a few simulated minutes,
with a "b" bar per symbol after each minute. The floor is a websockets client doing only
recv + json.loads; the measured path is MarketData (the app's stream client, parser, bar
aggregator and bar writer thread into SQLite), timed until the last bar is stored.
Runs alternate, best of REPEATS each.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from autotrader_desktop import database
from autotrader_desktop.clock import FakeClock
from autotrader_desktop.enums import Feed
from autotrader_desktop.feed.market_data import MarketData
from autotrader_desktop.feed.protocol import format_minute, format_timestamp, parse_timestamp
from autotrader_desktop.settings import Settings

TRADES = 400_000
BATCH = 100
SYMBOLS = 200
TRADES_PER_SECOND = 2_000  # simulated: 400k trades span 200 s, i.e. 4 minutes of bars
START_NS = 1_710_343_800 * 10**9  # 2024-03-13 15:30:00 UTC
END = "ZZEND"  # the symbol of the last trade: the client knows it has everything
REPEATS = 3
TARGET = 0.5


def make_frames() -> list[str]:
    rng = random.Random(7)
    symbols = [f"S{i:03d}" for i in range(SYMBOLS)]
    prices = {symbol: 100.0 for symbol in symbols}
    bars: dict[str, list[float]] = {}
    frames: list[str] = []
    batch: list[dict] = []
    minute = START_NS // 60_000_000_000
    step = 10**9 // TRADES_PER_SECOND
    for i in range(TRADES):
        when = START_NS + i * step
        if when // 60_000_000_000 != minute:  # the minute closed: its bars first
            stamp = format_minute(minute * 60)
            batch.extend(
                {"T": "b", "S": s, "o": o, "h": h, "l": low, "c": c, "v": v, "t": stamp}
                for s, (o, h, low, c, v) in bars.items()
            )
            bars, minute = {}, when // 60_000_000_000
        symbol = END if i == TRADES - 1 else symbols[rng.randrange(SYMBOLS)]
        price = prices[symbol] = round(prices.get(symbol, 100.0) + rng.uniform(-0.05, 0.05), 2)
        size = rng.randrange(1, 500)
        bar = bars.setdefault(symbol, [price, price, price, price, 0])
        bar[1:] = max(bar[1], price), min(bar[2], price), price, bar[4] + size
        stamp = format_timestamp(when)
        # Alpaca's shape, as its documentation shows it ("I": an odd lot).
        conditions = ["@", "I"] if size < 100 else ["@"]
        batch.append(
            {"T": "t", "i": 96921 + i, "S": symbol, "x": "D", "p": price, "s": size, "t": stamp}
            | {"c": conditions, "z": "C"}
        )
        if len(batch) >= BATCH or i == TRADES - 1:
            frames.append(json.dumps(batch, separators=(",", ":")))
            batch = []
    return frames


def serve_frames(pipe: Connection) -> None:
    """The server process: encode the frames once, then send them to every client."""
    frames = make_frames()

    async def handle(ws: ServerConnection) -> None:
        await ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        await ws.recv()  # auth: anything goes
        await ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handle, "127.0.0.1", 0, compression=None) as server:
            pipe.send((server.sockets[0].getsockname()[1], len(frames)))
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"

    asyncio.run(main())


async def floor_run(url: str) -> float:
    """Seconds to receive and json.loads every frame, handshake included."""
    start = time.perf_counter()
    async with connect(url, max_size=8 * 2**20) as ws:
        await ws.recv()
        await ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
        await ws.recv()
        while True:
            messages = json.loads(await ws.recv())
            if messages[-1].get("S") == END:
                break
    return time.perf_counter() - start


def frame_ends(frames: list[str]) -> list[datetime]:
    """The time of each frame's newest trade."""
    ends = []
    for frame in frames:
        minute, second = max(parse_timestamp(m["t"]) for m in json.loads(frame) if m["T"] == "t")
        ends.append(datetime.fromtimestamp(minute + second, UTC))
    return ends


async def ingest_run(url: str, ends: list[datetime]) -> tuple[float, int]:
    """Seconds until MarketData has parsed, aggregated and stored everything; bars stored."""
    database.db.execute_sql("DELETE FROM bars")
    # The clock follows the data, as a real one would: after each frame it reads that
    # frame's newest trade time (the feed guard believes nothing dated ahead of the clock).
    clock = FakeClock(datetime.fromtimestamp(START_NS // 10**9, UTC))
    market = MarketData(clock, Settings(feed=Feed.ALPACA_IEX, stream_url=url, history_url=url))
    # Every symbol's reference price, as the history stored on subscribing gives it.
    for i in range(SYMBOLS):
        market.guard.seed(f"S{i:03d}", 100.0)
    market.guard.seed(END, 100.0)
    done = asyncio.Event()
    frames_seen = 0

    def follow() -> None:
        nonlocal frames_seen
        clock.set(ends[min(frames_seen, len(ends) - 1)])
        frames_seen += 1
        if market.data_age(END) is not None:
            done.set()

    market.events.data_arrived.connect(follow)
    start = time.perf_counter()
    await market.start()
    await done.wait()
    await market.flush()
    elapsed = time.perf_counter() - start
    await market.stop()
    stored = database.db.execute_sql("SELECT count(*) FROM bars").fetchone()[0]
    return elapsed, stored


async def measure(url: str, ends: list[datetime]) -> tuple[list[float], list[float], int]:
    floors, ingests, stored = [], [], 0
    for _ in range(REPEATS):
        floors.append(await floor_run(url))
        seconds, stored = await ingest_run(url, ends)
        ingests.append(seconds)
    return floors, ingests, stored


def main() -> int:
    os.environ["APCA_API_KEY_ID"] = os.environ["APCA_API_SECRET_KEY"] = "bench"
    ends = frame_ends(make_frames())
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve_frames, args=(child,))
    server.start()
    try:
        port, frame_count = parent.recv()
        url = f"ws://127.0.0.1:{port}/v2/iex"
        with tempfile.TemporaryDirectory() as data_dir:
            database.open_database(Path(data_dir))
            try:
                floors, ingests, stored = asyncio.run(measure(url, ends))
            finally:
                database.close_database()
    finally:
        parent.send("stop")
        server.join(timeout=30)
    floor_rate = TRADES / min(floors)
    ingest_rate = TRADES / min(ingests)
    ratio = ingest_rate / floor_rate
    print(f"frames: {frame_count} of {BATCH} trades ({TRADES:,} trades, {SYMBOLS} symbols)")
    print(f"floor  (recv + json.loads):                {floor_rate:>12,.0f} trades/s")
    print(f"ingest (parse + aggregate + persist bars): {ingest_rate:>12,.0f} trades/s")
    print(f"ratio: {ratio:.0%} (target >= {TARGET:.0%}); bars stored: {stored}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
