"""A bounded, elastic pool of daemon threads that can give up on a job.

`concurrent.futures.ThreadPoolExecutor` cannot do what algorithm runs need: its threads are
joined at interpreter exit (one hung `run()` would keep the app from quitting) and a job
that never returns occupies its worker forever. Here a job that overstays its time limit is
abandoned: its thread is left to finish on its own (its result is discarded) and a fresh
worker takes its place, so the pool keeps its size and the process can always exit.

Elastic: algorithm runs are mostly pure Python, and under the GIL extra runnable threads
only add contention and thread hand-offs. So a worker needs a *slot* to run jobs, there are
`concurrency` slots, and a worker keeps its slot from one job to the next. `relieve()`
lends one more slot for each job running longer than a threshold: a slow or stuck
algorithm never holds the others back, up to `size` threads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Outbox(Protocol):
    def put(self, job: Job) -> None: ...


class Job:
    """One call on the pool. Exactly one of `result` / `exception` is set once `done`."""

    __slots__ = (
        "_lock",
        "args",
        "done",
        "exception",
        "fn",
        "lent",
        "outbox",
        "result",
        "started_at",
    )

    def __init__(self, fn: Callable[..., Any], args: tuple, outbox: Outbox) -> None:
        self.fn = fn
        self.args = args
        self.outbox = outbox
        self.started_at: float | None = None
        self.lent = False  # this job's slot was handed to another worker while it ran
        self.done = False
        self.result: Any = None
        self.exception: BaseException | None = None
        self._lock = threading.Lock()

    def _finish(self, result: Any, exception: BaseException | None) -> bool:
        with self._lock:
            if self.done:
                return False
            self.done, self.result, self.exception = True, result, exception
            return True

    def _lend(self) -> bool:
        """Mark the job's slot as handed on, unless it finished or was lent already."""
        with self._lock:
            if self.done or self.lent:
                return False
            self.lent = True
            return True


class WorkerPool:
    def __init__(self, size: int, concurrency: int = 1, name: str = "algorithm-worker") -> None:
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._slots = threading.Semaphore(min(concurrency, size))
        self._name = name
        self._lock = threading.Lock()
        self._workers = 0
        self._closed = False
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            self._workers += 1
            number = self._workers
        threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()

    def _work(self) -> None:
        self._slots.acquire()
        while (job := self._inbox.get()) is not None:
            job.started_at = time.monotonic()
            outcome: tuple[Any, BaseException | None]
            try:
                outcome = (job.fn(*job.args), None)
            except BaseException as exc:
                outcome = (None, exc)
            if not job._finish(*outcome):
                return  # abandoned: a replacement already took this thread's place
            job.outbox.put(job)
            if job.lent:  # another worker has our slot now; wait for a free one
                self._slots.acquire()
        self._slots.release()

    def submit(self, fn: Callable[..., Any], *args: Any, outbox: Outbox) -> Job:
        """Queue `fn(*args)`; the finished job is put on `outbox`."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        job = Job(fn, args, outbox)
        self._inbox.put(job)
        return job

    def relieve(self, jobs: set[Job], slow_after: float) -> None:
        """Lend a slot for every job among `jobs` running longer than `slow_after` seconds."""
        now = time.monotonic()
        for job in jobs:
            started = job.started_at
            if started is not None and now - started > slow_after and job._lend():
                self._slots.release()

    def abandon(self, job: Job, exception: BaseException) -> bool:
        """Give up on a running job: it finishes with `exception`; its thread is replaced."""
        # Hand the slot on first: if the job finishes meanwhile, its worker sees `lent` and
        # waits for a slot of its own, so the count stays right either way.
        if job._lend():
            self._slots.release()
        if not job._finish(None, exception):
            return False
        self._spawn()
        return True

    def shutdown(self) -> None:
        """Let idle workers exit. Busy or hung ones are daemons and never block exit."""
        self._closed = True
        with self._lock:
            count = self._workers
        for _ in range(count):
            self._inbox.put(None)
            self._slots.release()  # workers waiting for a slot must reach their sentinel
