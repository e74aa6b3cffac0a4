"""The one event mechanism of the core: psygnal signals, with one rule for threads and
one for failing listeners.

- Threads: an event is emitted on the thread where the thing happened: the engine's on its
  cycle thread (`CycleEvents`), market data's on the event loop that started it
  (`MarketEvents`). Listeners run there, synchronously: they must be quick and must not
  touch Qt. The window listens only through `ui/bridge.py`, which turns each event into a
  queued Qt signal, so its slots run on the GUI thread.
- Failing listeners: an exception in a listener is logged with its traceback and that
  listener is skipped for this emission; the emitter and the other listeners go on. A
  cycle never fails because someone listening to it did.

Events carry plain data (reports, run records, statuses, bars) so that they can be carried
to another process as they are.
"""

from __future__ import annotations

import logging
from typing import Any

from psygnal import Signal, SignalInstance

log = logging.getLogger(__name__)


class _GuardedSignalInstance(SignalInstance):
    """A psygnal signal whose listeners cannot break its emitter or each other."""

    # psygnal calls this for each emission in its default ("immediate") reemission mode;
    # it is psygnal's own loop with each call guarded (tests/test_events.py holds it to it).
    def _run_emit_loop_immediate(self) -> None:
        args = self._emit_queue.popleft()
        for caller in list(self._slots):
            if caller._is_alive():
                try:
                    caller.cb(args)
                except Exception:
                    log.exception("a listener of %s failed", self.name)


def event(*types: Any) -> Signal:
    """A core event carrying values of `types` (declare it as a class attribute)."""
    return Signal(*types, signal_instance_class=_GuardedSignalInstance)
