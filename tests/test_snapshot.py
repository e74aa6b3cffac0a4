"""Sibling imports: the imported files are part of the importer's snapshot."""

from __future__ import annotations

import hashlib
import os
import textwrap

import pytest

from autotrader_desktop.database import Instance
from autotrader_desktop.discovery import scan
from autotrader_desktop.module_cache import Drift
from tests.helpers import add_instance, cycle, returning, write_algorithm

BASE = """
    from database.db_manager import get_data_for_algorithm

    LOT = 2

    class Algorithm:
        def __init__(self, ticker, initial_capital):
            self.ticker = ticker

        def run(self, current_time, algo_id):
            return ('buy', LOT)
"""

IMPORT_FORMS = {
    "from_package": "from algorithm.base import Algorithm\n",
    "package_module": "from algorithm import base\nAlgorithm = base.Algorithm\n",
    "dotted": "import algorithm.base\nAlgorithm = algorithm.base.Algorithm\n",
    "plain": "import base\nAlgorithm = base.Algorithm\n",
    "relative": "from .base import Algorithm\n",
}


@pytest.mark.parametrize("form", sorted(IMPORT_FORMS))
def test_every_import_form_runs_the_sibling(engine, algo_dir, form):
    write_algorithm(algo_dir, "base", BASE)
    write_algorithm(algo_dir, "child", IMPORT_FORMS[form])
    instance = add_instance(engine, "NVDA", "child")
    cycle(engine)
    row = Instance.get_by_id(instance.id)
    assert (row.status, row.shares) == ("running", 2), row.error
    # The subclass inherits the legacy conventions of the file it builds on.
    assert row.conventions == "legacy"


def test_the_sibling_is_in_the_snapshot_until_restart(engine, algo_dir):
    write_algorithm(algo_dir, "base", BASE)
    child = write_algorithm(algo_dir, "child", IMPORT_FORMS["from_package"])
    instance = add_instance(engine, "NVDA", "child")
    cycle(engine)
    version = Instance.get_by_id(instance.id).code_version
    # Its bytes count: the version is not the importer's file hash alone.
    assert version != hashlib.sha256(child.read_bytes()).hexdigest()
    assert engine.drift("child") is Drift.SAME

    write_algorithm(algo_dir, "base", BASE.replace("LOT = 2", "LOT = 5"))
    assert engine.drift("child") is Drift.EDITED
    cycle(engine)
    assert Instance.get_by_id(instance.id).shares == 4  # still the snapshot's LOT = 2

    engine.restart()
    cycle(engine)
    row = Instance.get_by_id(instance.id)
    assert row.shares == 9
    assert row.code_version != version
    assert engine.drift("child") is Drift.SAME


def test_a_deleted_sibling_is_drift_and_the_snapshot_keeps_running(engine, algo_dir):
    base = write_algorithm(algo_dir, "base", BASE)
    write_algorithm(algo_dir, "child", IMPORT_FORMS["plain"])
    instance = add_instance(engine, "NVDA", "child")
    cycle(engine)
    base.unlink()
    assert engine.drift("child") is Drift.EDITED
    cycle(engine)
    assert Instance.get_by_id(instance.id).shares == 4


def test_a_helper_file_starting_with_underscore_is_importable_but_not_listed(engine, db, algo_dir):
    write_algorithm(algo_dir, "_helpers", "def lot():\n    return 3\n")
    write_algorithm(algo_dir, "user", "from _helpers import lot\n" + returning("'buy', lot()"))
    assert [(f.name, f.available) for f in scan(algo_dir)] == [("user", True)]
    instance = add_instance(engine, "NVDA", "user")
    cycle(engine)
    assert Instance.get_by_id(instance.id).shares == 3


def test_a_huge_or_endless_helper_is_refused_unread(engine, db, algo_dir):
    # A helper the listing never shows (it starts with "_") is read when imported: at most
    # 1 MB of it, and a FIFO (or /dev/zero behind a symlink) never hangs or fills memory.
    write_algorithm(algo_dir, "_huge", "X = 1\n" + "# padding\n" * (2 * 2**20 // 10))
    (algo_dir / "_endless.py").symlink_to("/dev/zero")
    os.mkfifo(algo_dir / "fifo")
    (algo_dir / "_pipe.py").symlink_to("fifo")
    for helper in ("_huge", "_endless", "_pipe"):
        write_algorithm(algo_dir, f"uses{helper}", f"import {helper}\n" + returning("'hold', 0"))
    found = {f.name: f.error for f in scan(algo_dir)}
    assert found["uses_huge"] == (
        "_huge.py is too large to be an algorithm file (2.0 MB; at most 1 MB is read)"
    )
    assert found["uses_endless"] == "_endless.py is not a regular file"
    assert found["uses_pipe"] == "_pipe.py is not a regular file"

    # The engine reads the files again on first use (they may have changed since the
    # listing): the instance fails with the same reason, nothing else is affected.
    write_algorithm(algo_dir, "_huge", "X = 1\n")
    write_algorithm(algo_dir, "good", returning("'buy', 1"))
    late, good = add_instance(engine, "NVDA", "uses_huge"), add_instance(engine, "NVDA", "good")
    write_algorithm(algo_dir, "_huge", "X = 1\n" + "# padding\n" * (2 * 2**20 // 10))
    assert cycle(engine).outcomes == {"failed": 1, "executed": 1}
    assert "_huge.py is too large to be an algorithm file" in Instance.get_by_id(late.id).error
    assert Instance.get_by_id(good.id).shares == 1


def test_discovery_names_a_missing_sibling_as_the_reason(db, algo_dir):
    write_algorithm(algo_dir, "child", "from algorithm.gone import Algorithm\n")
    write_algorithm(algo_dir, "grandchild", "from algorithm.middle import Algorithm\n")
    write_algorithm(algo_dir, "middle", "from algorithm.gone import Algorithm\n")
    found = {f.name: f for f in scan(algo_dir)}
    assert not found["child"].available
    assert found["child"].error == (
        "imports algorithm.gone, but gone.py is not in the algorithm folder"
    )
    assert found["grandchild"].error == (
        "imports algorithm.gone (in middle.py), but gone.py is not in the algorithm folder"
    )


def test_discovery_checks_the_importer_with_the_sibling_it_imports(db, algo_dir):
    write_algorithm(algo_dir, "base", BASE)
    write_algorithm(algo_dir, "child", IMPORT_FORMS["from_package"])
    assert [f.available for f in scan(algo_dir)] == [True, True]
    # A broken sibling makes its importer unavailable too, with the sibling's error.
    broken = textwrap.dedent(BASE) + "raise RuntimeError('base is broken')\n"
    write_algorithm(algo_dir, "base", broken)
    found = {f.name: f for f in scan(algo_dir)}
    assert not found["child"].available
    assert "RuntimeError: base is broken" in found["child"].error
    assert found["child"].conventions is None
