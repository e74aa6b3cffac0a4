"""Blocking work off the GUI thread, results back on it.

Database reads bigger than a row or two, discovery scans, engine restarts and exports run
on a small thread pool; their results (or exceptions) are delivered to callbacks on the
GUI thread through a queued signal, so the window never waits for them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

Callback = Callable[[Any], None]


class Background(QObject):
    _finished = Signal(object, object, object)  # future, on_done, on_error

    def __init__(self, parent: QObject | None = None, workers: int = 3) -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="ui-background")
        self._in_flight = 0
        self._closed = False
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callback | None = None,
        on_error: Callback | None = None,
    ) -> Future:
        """Run `fn(*args)` on a worker; then `on_done(result)` or `on_error(exc)` here.

        Without `on_error`, an exception is re-raised on the GUI thread, where the
        application's error dialog shows it.
        """
        self._in_flight += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(lambda f: self._finished.emit(f, on_done, on_error))
        return future

    def idle(self) -> bool:
        """No job is running or waiting to be delivered (tests wait on this)."""
        return self._in_flight == 0

    def shutdown(self) -> None:
        """Drop queued jobs and wait for running ones (call once, when the window closes)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    @Slot(object, object, object)
    def _deliver(self, future: Future, on_done: Callback | None, on_error: Callback | None) -> None:
        self._in_flight -= 1
        if self._closed or future.cancelled():
            return
        error = future.exception()
        if error is None:
            if on_done is not None:
                on_done(future.result())
        elif on_error is not None:
            on_error(error)
        else:
            raise error


class Refresh:
    """A background read that is asked for often (every batch of runs, every timer tick).

    At most one runs at a time; requests made meanwhile collapse into one more run with the
    latest arguments, so a burst of requests costs two reads, not a queue of them.
    """

    def __init__(self, background: Background, fn: Callable[..., Any], on_done: Callback) -> None:
        self._background = background
        self._fn = fn
        self._on_done = on_done
        self._busy = False
        self._again: tuple[Any, ...] | None = None

    def request(self, *args: Any) -> None:
        if self._busy:
            self._again = args
            return
        self._busy = True
        self._background.submit(self._fn, *args, on_done=self._done, on_error=self._failed)

    def _done(self, result: Any) -> None:
        self._settle()
        self._on_done(result)

    def _failed(self, error: BaseException) -> None:
        self._settle()
        raise error

    def _settle(self) -> None:
        self._busy = False
        if self._again is not None:
            args, self._again = self._again, None
            self.request(*args)
