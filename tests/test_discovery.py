"""Algorithm discovery (docs/behaviour.md#discovery): fresh scans, reasons for excluded
files, the worker, the cache."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from autotrader_desktop import discovery
from autotrader_desktop.algorithm_loader import MODULE_PREFIX
from autotrader_desktop.discovery import AlgorithmFile, AlgorithmFolderError, scan
from autotrader_desktop.enums import Conventions
from tests.helpers import EXAMPLES, run_cli_subprocess, subprocess_env, write_algorithm

GOOD = textwrap.dedent(
    """
    class Algorithm:
        def __init__(self, ticker, initial_capital):
            self.ticker = ticker

        def run(self, current_time, algo_id):
            return "hold", 0
    """
)


def with_good(prefix: str) -> str:
    """`prefix` (dedented), then a valid Algorithm class."""
    return textwrap.dedent(prefix) + GOOD


def reasons(files: list[AlgorithmFile]) -> dict[str, str | None]:
    return {f.name: f.error for f in files}


def record_worker_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, count worker starts; each recorded worker fails at once."""
    starts: list[int] = []

    def failing_worker() -> list[str]:
        starts.append(1)
        return [sys.executable, "-c", "raise SystemExit('worker disabled by the test')"]

    monkeypatch.setattr(discovery, "worker_command", failing_worker)
    return starts


def test_lists_available_files_sorted_with_paths(db, algo_dir):
    write_algorithm(algo_dir, "zeta", GOOD)
    write_algorithm(algo_dir, "alpha", GOOD)
    write_algorithm(algo_dir, "alpha-2", GOOD)

    files = scan(algo_dir)

    assert files == [
        AlgorithmFile("alpha", algo_dir / "alpha.py", True, None, Conventions.MODERN),
        AlgorithmFile("alpha-2", algo_dir / "alpha-2.py", True, None, Conventions.MODERN),
        AlgorithmFile("zeta", algo_dir / "zeta.py", True, None, Conventions.MODERN),
    ]


def test_file_added_between_scans_appears(db, algo_dir):
    write_algorithm(algo_dir, "first", GOOD)
    assert [f.name for f in scan(algo_dir)] == ["first"]

    write_algorithm(algo_dir, "second", GOOD)

    assert [(f.name, f.available) for f in scan(algo_dir)] == [("first", True), ("second", True)]


def test_deleted_file_disappears(db, algo_dir):
    write_algorithm(algo_dir, "keep", GOOD)
    doomed = write_algorithm(algo_dir, "doomed", GOOD)
    assert [f.name for f in scan(algo_dir)] == ["doomed", "keep"]

    doomed.unlink()

    assert [f.name for f in scan(algo_dir)] == ["keep"]


def test_renamed_file_shows_under_new_name_only_and_keeps_its_verdict(db, algo_dir, monkeypatch):
    path = write_algorithm(algo_dir, "old_name", with_good("import no_such_module_xyz\n"))
    [before] = scan(algo_dir)
    starts = record_worker_starts(monkeypatch)

    path.rename(algo_dir / "new_name.py")
    files = scan(algo_dir)

    # The verdict is keyed by content and its reason names no path: still true, no worker.
    assert files == [AlgorithmFile("new_name", algo_dir / "new_name.py", False, before.error)]
    assert starts == []


def test_syntax_error_is_excluded_with_its_line(db, algo_dir):
    write_algorithm(
        algo_dir,
        "broken",
        """
        class Algorithm:
            def run(self, current_time, algo_id)
                return "hold", 0
        """,
    )

    [file] = scan(algo_dir)

    assert not file.available
    assert file.error == "SyntaxError: expected ':' (line 3)"


def test_file_without_algorithm_class_is_excluded_without_being_run(db, algo_dir, tmp_path):
    marker = tmp_path / "ran"
    write_algorithm(
        algo_dir,
        "helper_script",
        f"""
        open({str(marker)!r}, "w").close()

        class Strategy:
            pass
        """,
    )

    [file] = scan(algo_dir)

    assert (file.available, file.error) == (False, "no top-level class named Algorithm")
    assert not marker.exists()


def test_algorithm_bound_but_not_a_class_is_excluded(db, algo_dir):
    write_algorithm(algo_dir, "not_a_class", "Algorithm = 42\n")

    [file] = scan(algo_dir)

    assert (file.available, file.error) == (False, "no top-level class named Algorithm")


def test_algorithm_class_bound_by_import_or_assignment_is_available(db, algo_dir):
    write_algorithm(algo_dir, "imported", "from fractions import Fraction as Algorithm\n")
    write_algorithm(
        algo_dir,
        "assigned",
        """
        class MyStrategy:
            pass

        Algorithm = MyStrategy
        """,
    )
    write_algorithm(
        algo_dir,
        "conditional",
        """
        try:
            import numpy
        except ImportError:
            numpy = None
        else:
            class Algorithm:
                pass
        """,
    )

    assert reasons(scan(algo_dir)) == {"assigned": None, "conditional": None, "imported": None}


def test_import_error_is_excluded_with_reason_and_line(db, algo_dir):
    write_algorithm(
        algo_dir,
        "missing_module",
        with_good(
            """
            import math

            import no_such_module_xyz
            """
        ),
    )
    write_algorithm(
        algo_dir,
        "raises_in_helper",
        with_good(
            """
            def load_settings():
                raise ValueError("threshold must be positive\\nsecond line")

            SETTINGS = load_settings()
            """
        ),
    )

    assert reasons(scan(algo_dir)) == {
        "missing_module": "ModuleNotFoundError: No module named 'no_such_module_xyz' (line 4)",
        # The deepest line of the user's file, and only the message's first line.
        "raises_in_helper": "ValueError: threshold must be positive (line 3)",
    }


def test_private_hidden_non_python_and_subfolder_files_are_ignored(db, algo_dir):
    write_algorithm(algo_dir, "visible", GOOD)
    write_algorithm(algo_dir, "_private", GOOD)
    write_algorithm(algo_dir, ".hidden", GOOD)
    (algo_dir / "notes.txt").write_text("class Algorithm: pass\n")
    (algo_dir / "sub").mkdir()
    write_algorithm(algo_dir / "sub", "nested", GOOD)
    (algo_dir / "folder.py").mkdir()

    assert [f.name for f in scan(algo_dir)] == ["visible"]


def test_system_exit_at_import_is_excluded(db, algo_dir):
    write_algorithm(algo_dir, "quits", with_good('import sys\nsys.exit("no data yet")\n'))
    write_algorithm(algo_dir, "zz_after", GOOD)

    assert reasons(scan(algo_dir)) == {
        "quits": "SystemExit: no data yet (line 2)",
        "zz_after": None,
    }


def test_os_exit_at_import_is_excluded_and_the_rest_still_checked(db, algo_dir):
    write_algorithm(algo_dir, "a_before", GOOD)
    write_algorithm(algo_dir, "b_kills_process", with_good("import os\nos._exit(3)\n"))
    write_algorithm(algo_dir, "c_after", GOOD)
    write_algorithm(algo_dir, "d_broken_after", with_good("1 / 0\n"))

    assert reasons(scan(algo_dir)) == {
        "a_before": None,
        "b_kills_process": "import ended the process (exit code 3)",
        "c_after": None,
        "d_broken_after": "ZeroDivisionError: division by zero (line 1)",
    }


def test_hanging_import_is_excluded_and_the_rest_still_checked(db, algo_dir, monkeypatch):
    write_algorithm(algo_dir, "a_before", GOOD)
    write_algorithm(algo_dir, "b_hangs", with_good("import threading\nthreading.Event().wait()\n"))
    write_algorithm(algo_dir, "c_after", GOOD)

    files = scan(algo_dir, import_timeout=2)

    assert reasons(files) == {
        "a_before": None,
        "b_hangs": "import did not finish within 2 s",
        "c_after": None,
    }
    # Cached like every verdict: the next scan costs no time-out (and starts no worker).
    starts = record_worker_starts(monkeypatch)
    assert reasons(scan(algo_dir, import_timeout=2)) == reasons(files)
    assert starts == []


def test_prints_at_import_do_not_disturb_discovery(db, algo_dir):
    write_algorithm(
        algo_dir,
        "chatty",
        with_good(
            """
            import os
            import sys

            print("hello from import " * 1000)
            print('{"name": "chatty", "available": false, "error": "forged"}')
            print("to the original stdout", file=sys.__stdout__, flush=True)
            os.write(1, b"straight to fd 1\\n")
            print("to stderr", file=sys.stderr)
            # stdin is empty, not the worker's job pipe
            assert sys.stdin.read() == ""
            """
        ),
    )
    write_algorithm(algo_dir, "quiet", GOOD)

    assert reasons(scan(algo_dir)) == {"chatty": None, "quiet": None}


def test_legacy_imports_are_available(db, algo_dir):
    write_algorithm(
        algo_dir,
        "legacy",
        with_good(
            """
            from database.db_manager import get_data_for_algorithm
            from system_databse.system_db_manager import get_transactions
            import database.db_manager
            """
        ),
    )

    assert reasons(scan(algo_dir)) == {"legacy": None}


def test_repository_examples_are_all_available(db):
    files = scan(EXAMPLES)

    assert {"sma_crossover", "test_algo", "mean_reversion"} <= {f.name for f in files}
    assert {f.name: f.error for f in files if not f.available} == {}


def test_app_process_modules_are_untouched(db, algo_dir, tmp_path):
    # A first scan loads what discovery itself needs, so the second one must add nothing.
    warm_up = tmp_path / "warm_up"
    warm_up.mkdir()
    write_algorithm(warm_up, "plain", GOOD)
    scan(warm_up)
    assert "tabnanny" not in sys.modules
    write_algorithm(algo_dir, "user_code", with_good("import tabnanny\nimport json\n"))
    legacy = with_good("from system_databse.system_db_manager import get_transactions\n")
    write_algorithm(algo_dir, "legacy", legacy)
    write_algorithm(algo_dir, "fails", with_good("import tabnanny\nraise RuntimeError('x')\n"))
    before = dict(sys.modules)

    files = scan(algo_dir)

    assert [f.available for f in files] == [False, True, True]
    assert sorted(set(sys.modules) - set(before)) == []
    assert [name for name, module in before.items() if sys.modules.get(name) is not module] == []
    assert not [name for name in sys.modules if name.startswith(MODULE_PREFIX)]


def test_unchanged_folder_rescans_without_the_worker(db, algo_dir, monkeypatch):
    write_algorithm(algo_dir, "good", GOOD)
    write_algorithm(algo_dir, "bad_import", with_good("import no_such_module_xyz\n"))
    write_algorithm(algo_dir, "bad_syntax", "class Algorithm(:\n")
    first = scan(algo_dir)
    assert [f.available for f in first] == [False, False, True]
    starts = record_worker_starts(monkeypatch)

    second = scan(algo_dir)

    assert second == first
    assert starts == []


def test_edited_file_is_checked_again(db, algo_dir, monkeypatch):
    path = write_algorithm(algo_dir, "evolving", GOOD)
    assert reasons(scan(algo_dir)) == {"evolving": None}

    path.write_text("import no_such_module_xyz\n" + path.read_text())
    assert reasons(scan(algo_dir)) == {
        "evolving": "ModuleNotFoundError: No module named 'no_such_module_xyz' (line 1)"
    }

    # Back to content seen before: its cached verdict is reused, no worker needed.
    write_algorithm(algo_dir, "evolving", GOOD)
    starts = record_worker_starts(monkeypatch)
    assert reasons(scan(algo_dir)) == {"evolving": None}
    assert starts == []


def test_worker_that_cannot_start_leaves_files_unchecked_and_uncached(db, algo_dir, monkeypatch):
    write_algorithm(algo_dir, "good", GOOD)
    write_algorithm(algo_dir, "no_class", "x = 1\n")
    with monkeypatch.context() as patch:
        starts = record_worker_starts(patch)
        files = scan(algo_dir)
    assert starts == [1]
    assert reasons(files) == {
        "good": "not checked: the discovery worker failed to start (worker disabled by the test)",
        "no_class": "no top-level class named Algorithm",
    }

    # With a working worker, the file is checked for real: the failure was not cached.
    assert reasons(scan(algo_dir))["good"] is None


def test_missing_folder_raises_an_actionable_error(db, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(AlgorithmFolderError, match=r"does not exist.*--algorithm-dir") as error:
        scan(missing)
    assert str(missing) in str(error.value)

    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    with pytest.raises(AlgorithmFolderError, match="is a file, not a folder"):
        scan(a_file)


def test_empty_folder_scans_without_the_worker(db, algo_dir, monkeypatch):
    starts = record_worker_starts(monkeypatch)
    assert scan(algo_dir) == []
    assert starts == []


def test_worker_command_from_source_and_frozen(monkeypatch):
    assert discovery.worker_command() == [
        sys.executable,
        "-m",
        "autotrader_desktop.discovery_worker",
    ]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert discovery.worker_command() == [sys.executable, "_discovery-worker"]


def test_a_file_that_ends_the_worker_is_cached_too(db, algo_dir, monkeypatch):
    write_algorithm(algo_dir, "killer", with_good("import os, signal\nos.kill(os.getpid(), 9)\n"))
    first = reasons(scan(algo_dir))
    assert first == {"killer": "import ended the process (signal 9)"}
    starts = record_worker_starts(monkeypatch)
    assert reasons(scan(algo_dir)) == first
    assert starts == []


def test_a_big_file_is_excluded_without_being_read(db, algo_dir, monkeypatch):
    """A 50 MB file is refused after reading 1 MB: nothing parses or imports it."""
    big = algo_dir / "big.py"
    with big.open("w") as file:
        file.write(GOOD)
        file.write("# padding\n" * (5 * 2**20))
    write_algorithm(algo_dir, "small", GOOD)
    starts = record_worker_starts(monkeypatch)
    files = scan(algo_dir)
    assert reasons(files)["big"] == (
        "too large to be an algorithm file (50.0 MB; at most 1 MB is read)"
    )
    assert starts == [1]  # the worker ran for small.py only (and failed: it is disabled)
    assert reasons(files)["small"].startswith("not checked")


def test_symlink_loops_and_unreadable_files_are_their_own_exclusions(db, algo_dir):
    write_algorithm(algo_dir, "good", GOOD)
    (algo_dir / "loop.py").symlink_to("loop.py")
    (algo_dir / "dangling.py").symlink_to("gone.py")
    os.mkfifo(algo_dir / "fifo_target")
    (algo_dir / "pipe.py").symlink_to("fifo_target")
    assert reasons(scan(algo_dir)) == {
        "dangling": "cannot read the file: No such file or directory",
        "good": None,
        "loop": "cannot read the file: Too many levels of symbolic links",
        "pipe": "not a regular file",
    }


def test_the_command_line_lists_a_symlink_loop_as_one_file(tmp_path):
    data, folder = tmp_path / "data", tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "good", GOOD)
    (folder / "loop.py").symlink_to("loop.py")
    env = subprocess_env(data, folder)
    assert run_cli_subprocess(["add", "NVDA", "good", "100"], env).returncode == 0
    result = run_cli_subprocess(["algorithms", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert {f["name"]: f["available"] for f in json.loads(result.stdout)} == {
        "good": True,
        "loop": False,
    }
