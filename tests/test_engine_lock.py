"""The engine lock: exclusive, names its holder, private, asked about without creating
anything (tests/e2e/test_one_engine_per_data_dir.py drives it through real processes)."""

from __future__ import annotations

import os

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
