"""The engine lock: exclusive, names its holder, private, asked about without creating
anything (tests/e2e/test_one_engine_per_data_dir.py drives it through real processes)."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest

from autotrader_desktop.engine_lock import EngineAlreadyRunning, EngineLock, running_engine


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    first = EngineLock(tmp_path / "data")
    info = first.acquire()
    assert info.pid == os.getpid()
    assert running_engine(tmp_path / "data") == info
    with pytest.raises(EngineAlreadyRunning, match=f"process {os.getpid()}, running since"):
        EngineLock(tmp_path / "data").acquire()
    first.release()
    assert running_engine(tmp_path / "data") is None
    second = EngineLock(tmp_path / "data")
    assert second.acquire().pid == os.getpid()
    second.release()


def test_asking_about_a_directory_creates_nothing(tmp_path):
    assert running_engine(tmp_path / "nothing here") is None
    assert not (tmp_path / "nothing here").exists()


def test_lock_file_is_private(tmp_path):
    lock = EngineLock(tmp_path / "data")
    lock.acquire()
    try:
        assert (tmp_path / "data" / "engine.lock").stat().st_mode & 0o077 == 0
    finally:
        lock.release()


def test_second_engine_in_one_process_is_refused(make_engine):
    make_engine()
    with pytest.raises(EngineAlreadyRunning):
        make_engine()


def test_refusal_names_an_engine_that_has_only_just_locked(tmp_path):
    # Two engines started together: the loser may look between the winner's flock and its
    # write of who it is; it waits for the name instead of saying "a process starting".
    data = tmp_path / "data"
    data.mkdir()
    handle = os.open(data / "engine.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX)
    holder = b'{"pid": 4242, "started_at": "2026-12-02T08:00:00+00:00", "channel": null}'
    late_write = threading.Timer(0.1, os.pwrite, (handle, holder, 0))
    late_write.start()
    try:
        with pytest.raises(EngineAlreadyRunning, match="process 4242, running since"):
            EngineLock(data).acquire()
    finally:
        late_write.join()
        os.close(handle)
