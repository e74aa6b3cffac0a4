"""The snapshot rule (docs/behaviour.md#snapshot-rule): a running instance keeps the code
loaded for it until restart, also when its algorithm's host process is replaced."""

from __future__ import annotations

import os
import sys

from autotrader_desktop.database import Instance, OutputLine, Run
from autotrader_desktop.module_cache import Drift
from tests.helpers import add_instance, cycle, write_algorithm

# Returns ("hold", VERSION) so the journal shows which code ran; counts its imports in a file.
VERSIONED = """
from pathlib import Path

_marker = Path(__file__).with_suffix(".imports")
_marker.write_text(_marker.read_text() + "x" if _marker.exists() else "x")

class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        return "hold", {version}
"""


def write_versioned(folder, name, version):
    return write_algorithm(folder, name, VERSIONED.format(version=version))


def decisions(scheduled_at=None):
    query = Run.select().order_by(Run.id)
    if scheduled_at is not None:
        query = query.where(Run.scheduled_at == scheduled_at)
    return {run.instance_id: run.decision for run in query}


def imports(folder, name):
    marker = folder / f"{name}.imports"
    return len(marker.read_text()) if marker.exists() else 0


def test_module_is_not_loaded_at_creation(engine, algo_dir):
    write_versioned(algo_dir, "alpha", 1)
    add_instance(engine, "NVDA", "alpha")
    assert engine.cache.snapshots == {}
    assert imports(algo_dir, "alpha") == 0
    cycle(engine)
    assert set(engine.cache.snapshots) == {"alpha"}
    assert imports(algo_dir, "alpha") == 1


IDENTITIES = """
import os

class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.runs = 0
        print("init", ticker, initial_capital)

    def run(self, current_time, algo_id):
        self.runs += 1
        print(os.getpid(), id(Algorithm), id(self))
        return "hold", self.runs
"""


def output(instance_id):
    query = OutputLine.select().where(OutputLine.instance == instance_id).order_by(OutputLine.id)
    return [line.text for line in query]


def test_instances_of_one_algorithm_share_one_module_in_one_host(engine, algo_dir):
    write_versioned(algo_dir, "alpha", 1)
    write_algorithm(algo_dir, "who", IDENTITIES)
    first = add_instance(engine, "NVDA", "who")
    second = add_instance(engine, "NVDA", "who")
    add_instance(engine, "NVDA", "alpha")
    add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    cycle(engine)
    assert imports(algo_dir, "alpha") == 1
    pid, cls, obj = zip(*(line.split() for line in output(first.id)[1:]), strict=True)
    pid2, cls2, obj2 = zip(*(line.split() for line in output(second.id)[1:]), strict=True)
    # One process, one class for both instances; an object per instance, kept.
    assert len(set(pid + pid2)) == 1 and len(set(cls + cls2)) == 1
    assert len(set(obj)) == 1 and len(set(obj2)) == 1 and obj != obj2
    # ... and that process is not the engine's, which never imports user code.
    assert int(pid[0]) != os.getpid() and int(pid[0]) == engine.hosts.pids()["who"]
    assert not [name for name in sys.modules if name.startswith("autotrader_algorithms")]


def test_algorithm_object_is_created_once_per_instance(engine, algo_dir):
    write_algorithm(algo_dir, "who", IDENTITIES)
    instance = add_instance(engine, "NVDA", "who", 1234.5)
    for _ in range(3):
        cycle(engine)
    assert [r.decision for r in Run.select().order_by(Run.id)] == ["hold 1", "hold 2", "hold 3"]
    assert output(instance.id)[0] == "init NVDA 1234.5"
    assert sum(text.startswith("init") for text in output(instance.id)) == 1


CRASHES_ON_DEMAND = VERSIONED.replace(
    '        return "hold", {version}',
    '        if Path(__file__).with_name(f"crash_{{algo_id}}").exists():\n'
    "            import os\n"
    "            os._exit(1)\n"
    '        return "hold", {version}',
)


def test_a_replaced_host_loads_the_snapshot_not_the_file(engine, algo_dir):
    write_algorithm(algo_dir, "alpha", CRASHES_ON_DEMAND.format(version=1))
    crasher = add_instance(engine, "NVDA", "alpha")
    survivor = add_instance(engine, "AAPL", "alpha")
    cycle(engine)
    version_1 = Instance.get_by_id(survivor.id).code_version
    first_host = engine.hosts.pids()["alpha"]
    write_algorithm(algo_dir, "alpha", CRASHES_ON_DEMAND.format(version=2))
    (algo_dir / f"crash_{crasher.id}").touch()
    report = cycle(engine)
    assert report.outcomes == {"failed": 1, "hold": 1}
    assert "the algorithm's process exited (exit code 1) during run()" in (
        Instance.get_by_id(crasher.id).error
    )
    # The survivor went on in a new process, with the code it had: version 1, not the file.
    assert engine.hosts.pids()["alpha"] != first_host
    assert decisions(engine.clock.now())[survivor.id] == "hold 1"
    assert Instance.get_by_id(survivor.id).code_version == version_1
    assert imports(algo_dir, "alpha") == 2  # the snapshot was executed again, not the file
    assert any("what it kept on self was lost" in text for text in output(survivor.id))
    assert engine.drift("alpha") is Drift.EDITED


def test_edit_after_load_changes_nothing_for_old_and_new_instances(engine, algo_dir, clock):
    path = write_versioned(algo_dir, "alpha", 1)
    old = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    version_1 = Instance.get_by_id(old.id).code_version
    write_versioned(algo_dir, "alpha", 2)
    new = add_instance(engine, "AAPL", "alpha")
    cycle(engine)
    assert decisions(clock.now()) == {old.id: "hold 1", new.id: "hold 1"}
    assert Instance.get_by_id(new.id).code_version == version_1
    assert engine.drift("alpha") is Drift.EDITED
    assert path.exists()


def test_new_file_is_loaded_fresh_on_its_first_run(engine, algo_dir):
    write_versioned(algo_dir, "alpha", 1)
    add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    write_versioned(algo_dir, "beta", 7)
    beta = add_instance(engine, "NVDA", "beta")
    report = cycle(engine)
    assert report.outcomes == {"hold": 2}
    assert decisions()[beta.id] == "hold 7"
    assert set(engine.cache.snapshots) == {"alpha", "beta"}


def test_deleted_file_keeps_running_from_memory(engine, algo_dir):
    path = write_versioned(algo_dir, "alpha", 1)
    instance = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    path.unlink()
    report = cycle(engine)
    assert report.outcomes == {"hold": 1}
    assert Instance.get_by_id(instance.id).status == "running"
    assert engine.drift("alpha") is Drift.DELETED
    # A new instance of the cached name runs the cached code too.
    later = add_instance(engine, "MSFT", "alpha")
    cycle(engine)
    assert decisions()[later.id] == "hold 1"


def test_renamed_file_keeps_old_name_running_and_new_name_loads_fresh(engine, algo_dir):
    path = write_versioned(algo_dir, "alpha", 1)
    old = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    path.rename(algo_dir / "gamma.py")
    write_versioned(algo_dir, "gamma", 3)  # the renamed file, then edited
    new = add_instance(engine, "NVDA", "gamma")
    cycle(engine)
    latest = decisions()
    assert latest[old.id] == "hold 1"
    assert latest[new.id] == "hold 3"


def test_restart_loads_current_files(engine, algo_dir, clock):
    write_versioned(algo_dir, "alpha", 1)
    instance = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    before = Instance.get_by_id(instance.id).code_version
    write_versioned(algo_dir, "alpha", 2)
    old_host = engine.hosts.pids()["alpha"]
    engine.restart()
    assert engine.cache.snapshots == {}
    assert engine.hosts.pids() == {}
    cycle(engine)
    assert engine.hosts.pids()["alpha"] != old_host
    assert decisions()[instance.id] == "hold 2"
    after = Instance.get_by_id(instance.id).code_version
    assert after != before
    assert engine.drift("alpha") is Drift.SAME
    assert imports(algo_dir, "alpha") == 2


def test_new_engine_is_a_process_restart(make_engine, algo_dir):
    write_versioned(algo_dir, "alpha", 1)
    first = make_engine()
    instance = add_instance(first, "NVDA", "alpha")
    cycle(first)
    first.close()
    write_versioned(algo_dir, "alpha", 2)
    second = make_engine()
    cycle(second)
    assert decisions()[instance.id] == "hold 2"


def test_restart_while_file_deleted_fails_the_instance(engine, algo_dir):
    path = write_versioned(algo_dir, "alpha", 1)
    instance = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    path.unlink()
    engine.restart()
    cycle(engine)
    failed = Instance.get_by_id(instance.id)
    assert failed.status == "failed"
    assert "alpha.py not found" in failed.error


def test_code_version_is_sha256_of_the_source_that_ran(engine, algo_dir):
    import hashlib

    path = write_versioned(algo_dir, "alpha", 1)
    source = path.read_bytes()
    instance = add_instance(engine, "NVDA", "alpha")
    cycle(engine)
    assert Instance.get_by_id(instance.id).code_version == hashlib.sha256(source).hexdigest()
    assert Run.get(Run.instance == instance.id).code_version == hashlib.sha256(source).hexdigest()
