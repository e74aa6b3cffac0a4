"""The elastic worker pool: slow jobs lend their slot, hung ones are abandoned and replaced."""

from __future__ import annotations

import queue
import threading

import pytest

from autotrader_desktop.worker_pool import WorkerPool

TIMEOUT = 10


def test_runs_jobs_and_reports_exceptions_including_system_exit():
    pool = WorkerPool(size=2)
    done: queue.SimpleQueue = queue.SimpleQueue()
    ok = pool.submit(lambda x: x * 2, 21, outbox=done)
    bad = pool.submit(lambda: (_ for _ in ()).throw(SystemExit(3)), outbox=done)
    finished = {done.get(timeout=TIMEOUT), done.get(timeout=TIMEOUT)}
    assert finished == {ok, bad}
    assert ok.result == 42 and isinstance(bad.exception, SystemExit)
    pool.shutdown()


def test_a_slow_job_lends_its_slot_so_others_proceed():
    pool = WorkerPool(size=3, concurrency=1)
    done: queue.SimpleQueue = queue.SimpleQueue()
    release = threading.Event()
    slow = pool.submit(release.wait, TIMEOUT, outbox=done)
    fast = pool.submit(lambda: "fast", outbox=done)
    # With its one slot taken by the slow job, the fast one cannot start...
    assert _wait_until(lambda: slow.started_at is not None)
    assert fast.started_at is None
    # ...until the slow job is found slow and lends a slot.
    pool.relieve({slow, fast}, slow_after=0.0)
    assert done.get(timeout=TIMEOUT) is fast
    release.set()
    assert done.get(timeout=TIMEOUT) is slow
    # Capacity is back to one slot, and still works.
    assert pool.submit(lambda: 1, outbox=done) is done.get(timeout=TIMEOUT)
    pool.shutdown()


def test_an_abandoned_job_is_replaced_and_its_late_result_dropped():
    pool = WorkerPool(size=1, concurrency=1)
    done: queue.SimpleQueue = queue.SimpleQueue()
    release = threading.Event()
    hung = pool.submit(release.wait, TIMEOUT, outbox=done)
    assert _wait_until(lambda: hung.started_at is not None)
    assert pool.abandon(hung, TimeoutError())
    assert isinstance(hung.exception, TimeoutError)
    after = pool.submit(lambda: "after", outbox=done)
    assert done.get(timeout=TIMEOUT) is after
    release.set()
    assert not pool.abandon(hung, TimeoutError())  # finished jobs are not abandoned twice
    with pytest.raises(queue.Empty):
        done.get(timeout=0.2)  # the hung job's late return is never delivered
    pool.shutdown()


def test_worker_threads_are_daemons():
    pool = WorkerPool(size=2, name="daemon-check")
    workers = [t for t in threading.enumerate() if t.name.startswith("daemon-check")]
    assert len(workers) == 2 and all(t.daemon for t in workers)
    pool.shutdown()


def _wait_until(condition, timeout=TIMEOUT) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if condition():
            return True
        event.wait(0.005)
    return False
