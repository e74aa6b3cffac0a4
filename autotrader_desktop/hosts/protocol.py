"""What the engine and an algorithm host say to each other.

Two pipes carry length-prefixed JSON messages (`multiprocessing.connection` framing). JSON,
never pickle, from host to engine: a host runs arbitrary code, and nothing it sends may run
code in the engine. Engine to host, in order:

1. `{"hello": ...}`: database, working directory, memory limit, market-data source, the
   snapshot's files and conventions. The host answers `{"ready": true}` once it is set up
   (before any user code).
2. one `{"batch": n, "scheduled_us", "now_us", "time_limit", "runs": [[id, symbol,
   capital], ...]}` per cycle. The host loads the module on its first batch, then runs each
   instance in order and answers with `{"batch": n, "done": bool, "results": [...]}`
   messages: normally one per batch; a batch taking longer than FLUSH_AFTER_S is answered
   in parts, so one slow instance does not hold back the orders of those before it.
   While a run asks the data API for bars that are not stored yet, the host sends
   `{"history": [symbol, start, end, seconds]}` and waits for `{"history_done": bool}`:
   the engine's market data fetches them.

A shared progress word (a small file both map) says which run of which batch is in flight
and in which phase, without a message per run: when a host dies or overstays its limit, the
engine reads it to know whose run it was.
"""

from __future__ import annotations

import enum
import json
import struct
import sys
from typing import Any

from autotrader_desktop.paths import is_frozen

# The packaged app's CLI dispatches this first argument to hosts.process.main().
FROZEN_HOST_ARG = "_algorithm-host"
# A host answers a batch in parts when it has been running this long since its last answer.
FLUSH_AFTER_S = 0.05
# ... or when this much captured output is waiting, so that no message grows without bound.
FLUSH_OUTPUT_CHARS = 1_000_000
# Anything bigger from a host is a fault of the host, not a message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

PROGRESS = struct.Struct("<Q")


class Phase(enum.IntEnum):
    """What the run in flight was doing; the engine's messages name it."""

    IMPORT = 0
    INIT = 1
    RUN = 2

    @property
    def label(self) -> str:
        return ("while importing the module", "in __init__()", "during run()")[self]


def progress_word(batch: int, position: int, phase: Phase) -> int:
    """`position` is 1 + the index of the run in flight in its batch (0: none yet)."""
    return (batch << 32) | (position << 2) | phase


def read_progress(word: int) -> tuple[int, int, Phase]:
    return word >> 32, (word >> 2) & 0x3FFFFFFF, Phase(word & 3)


def encode(message: dict[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates in user text travel as escapes instead of failing here.
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode(data: bytes) -> dict[str, Any]:
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def host_command() -> list[str]:
    """The argv that starts a host (its pipes follow as arguments)."""
    if is_frozen():
        return [sys.executable, FROZEN_HOST_ARG]
    return [sys.executable, "-m", "autotrader_desktop.hosts.process"]
