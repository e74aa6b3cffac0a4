"""The command line (docs/behaviour.md#command-line): every command of the command line, its
output formats, and every bad input.

Commands run in-process through `cli.main([...])` against tmp directories; a few run as
real processes through `python -m autotrader_desktop` and the `autotrader-desktop` script.
A bad input must exit non-zero with an actionable message on stderr, no traceback, and
leave the database exactly as it was.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from autotrader_desktop import __version__, cli, database
from autotrader_desktop.database import DB_FILENAME
from tests.helpers import (
    REPO,
    VENV_BIN,
    check_accounts,
    count,
    dump,
    instance_rows,
    query,
    returning,
    run_cli_subprocess,
    scalar,
    subprocess_env,
    write_algorithm,
)

BUYER = """
class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        return "buy", 1
"""

# Appends its process id to counter.imports each time the module is executed, and one
# line per run (pid, instance id, Algorithm object id, runs of that object) to counter.runs.
COUNTER = """
import os
from pathlib import Path

_here = Path(__file__)
with open(_here.with_suffix(".imports"), "a") as f:
    f.write(f"{os.getpid()}\\n")


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.runs = 0

    def run(self, current_time, algo_id):
        self.runs += 1
        with open(_here.with_suffix(".runs"), "a") as f:
            f.write(f"{os.getpid()} {algo_id} {id(self)} {self.runs}\\n")
        return "hold", 0
"""

BROKEN = """
class Algorithm:
    def run(self, current_time, algo_id:
        return "hold", 0
"""

NO_CLASS = """
def run(current_time, algo_id):
    return "hold", 0
"""

DISPLAY_NAME = re.compile(r"^(?P<symbol>[A-Z.]+)_(?P<algo>\w+?)_\d{8}_\d{6}(_\d+)?$")
LIST_FIELDS = [
    "id",
    "display_name",
    "ticker",
    "algorithm_type",
    "status",
    "code_version",
    "code_sha256",
    "initial_capital",
    "cash",
    "shares",
    "value",
    "pnl",
    "trades",
    "error",
    "warning",
]


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Dirs:
    data: Path
    algorithms: Path

    def options(self) -> list[str]:
        return ["--data-dir", str(self.data), "--algorithm-dir", str(self.algorithms)]


def run(capsys, dirs: Dirs | None, *args: str) -> Result:
    """`autotrader-desktop [dirs' options] args...` in this process."""
    argv = [*(dirs.options() if dirs else []), *args]
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse errors, --version
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return Result(code, out, err)


def ok(capsys, dirs: Dirs, *args: str) -> Result:
    result = run(capsys, dirs, *args)
    assert result.code == 0, result.err
    assert result.err == ""
    return result


def new_data_dir(path: Path) -> Path:
    """A data directory as the first `add` or the window leaves it: a database, no data."""
    database.open_database(path)
    database.close_database()
    return path


@pytest.fixture
def dirs(tmp_path) -> Dirs:
    folder = tmp_path / "algorithm"
    folder.mkdir()
    write_algorithm(folder, "buyer", BUYER)
    write_algorithm(folder, "counter", COUNTER)
    write_algorithm(folder, "broken", BROKEN)
    return Dirs(new_data_dir(tmp_path / "data"), folder)


# --- a populated data directory, built once through the CLI and copied per test ---------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Dirs:
    """Instance 1: NVDA buyer, running, holding 1 share. Instance 2: AAPL buyer, stopped
    after buying and selling 1 share. Plus the three algorithm files of `dirs`."""
    root = tmp_path_factory.mktemp("template")
    folder = root / "algorithm"
    folder.mkdir()
    for name, body in (("buyer", BUYER), ("counter", COUNTER), ("broken", BROKEN)):
        write_algorithm(folder, name, body)
    made = Dirs(root / "data", folder)
    for argv in (
        ["add", "NVDA", "buyer", "10000"],
        ["add", "AAPL", "buyer", "5000"],
        ["cycle"],
        ["stop", "2"],
    ):
        assert cli.main([*made.options(), *argv]) == 0, argv
    return made


@pytest.fixture
def populated(template, tmp_path) -> Dirs:
    copy = Dirs(tmp_path / "populated" / "data", tmp_path / "populated" / "algorithm")
    shutil.copytree(template.data, copy.data)
    shutil.copytree(template.algorithms, copy.algorithms)
    rows = instance_rows(copy.data)
    assert [(r["id"], r["status"], r["shares"], r["trade_count"]) for r in rows] == [
        (1, "running", 1, 1),
        (2, "stopped", 0, 2),
    ]
    return copy


# --- algorithms -------------------------------------------------------------------------


def test_algorithms_json_lists_every_file_with_its_verdict(capsys, dirs):
    write_algorithm(dirs.algorithms, "no_class", NO_CLASS)
    write_algorithm(dirs.algorithms, "_private", BUYER)
    found = json.loads(ok(capsys, dirs, "algorithms", "--json").out)
    assert all(list(entry) == ["name", "path", "available", "error"] for entry in found)
    by_name = {entry["name"]: entry for entry in found}
    assert sorted(by_name) == ["broken", "buyer", "counter", "no_class"]
    assert by_name["buyer"] == {
        "name": "buyer",
        "path": str(dirs.algorithms / "buyer.py"),
        "available": True,
        "error": None,
    }
    assert by_name["broken"]["available"] is False
    assert "SyntaxError" in by_name["broken"]["error"]
    assert "line 3" in by_name["broken"]["error"]
    assert by_name["no_class"]["available"] is False
    assert "Algorithm" in by_name["no_class"]["error"]


def test_algorithms_table_shows_reasons_and_rescans_every_time(capsys, dirs):
    table = ok(capsys, dirs, "algorithms").out
    lines = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert lines["buyer"].split()[1] == "available"
    assert lines["broken"].split()[1] == "excluded"
    assert "SyntaxError" in lines["broken"]
    (dirs.algorithms / "buyer.py").rename(dirs.algorithms / "renamed.py")
    names = [line.split()[0] for line in ok(capsys, dirs, "algorithms").out.splitlines()[1:]]
    assert names == ["broken", "counter", "renamed"]


def test_algorithms_in_an_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = Dirs(new_data_dir(tmp_path / "data"), tmp_path / "empty")
    assert "no algorithm files" in ok(capsys, empty, "algorithms").out
    assert json.loads(ok(capsys, empty, "algorithms", "--json").out) == []


# --- add --------------------------------------------------------------------------------


def test_add_prints_id_and_display_name(capsys, dirs):
    out = ok(capsys, dirs, "add", "NVDA", "buyer", "10000").out
    instance_id, name = out.rstrip("\n").split("\t")
    [row] = instance_rows(dirs.data)
    assert int(instance_id) == row["id"]
    assert name == row["display_name"]
    match = DISPLAY_NAME.match(name)
    assert match and match["symbol"] == "NVDA" and match["algo"] == "buyer"
    assert row["status"] == "running"
    assert row["initial_capital"] == row["cash"] == 10_000
    assert row["code_version"] is None  # not loaded at creation


def test_add_json_is_the_created_instance(capsys, dirs):
    created = json.loads(ok(capsys, dirs, "add", "  brk.b ", "buyer", "2,500.5", "--json").out)
    assert list(created) == LIST_FIELDS
    [row] = instance_rows(dirs.data)
    assert created == {
        "id": row["id"],
        "display_name": row["display_name"],
        "ticker": "BRK.B",  # trimmed and upper-cased
        "algorithm_type": "buyer",
        "status": "running",
        "code_version": None,
        "code_sha256": None,
        "initial_capital": 2500.5,
        "cash": 2500.5,
        "shares": 0,
        "value": 2500.5,
        "pnl": 0,
        "trades": 0,
        "error": None,
        "warning": None,
    }
    assert created["display_name"].startswith("BRK.B_buyer_")


def test_duplicate_instances_get_unique_names(capsys, dirs):
    first = json.loads(ok(capsys, dirs, "add", "NVDA", "buyer", "100", "--json").out)
    second = json.loads(ok(capsys, dirs, "add", "nvda", "buyer", "100", "--json").out)
    assert first["id"] != second["id"]
    assert first["display_name"] != second["display_name"]
    assert all(DISPLAY_NAME.match(i["display_name"]) for i in (first, second))
    assert count(dirs.data, "algorithm_instances") == 2


def test_add_may_use_all_available_cash_but_no_more(capsys, dirs):
    ok(capsys, dirs, "add", "NVDA", "buyer", "60000")
    ok(capsys, dirs, "add", "AMD", "buyer", "40000")
    result = run(capsys, dirs, "add", "INTC", "buyer", "0.01")
    assert result.code != 0
    assert "more than the available cash 0.00" in result.err


# --- list -------------------------------------------------------------------------------


def test_list_json_fields_and_values(capsys, populated):
    rows = json.loads(ok(capsys, populated, "list", "--json").out)
    assert [list(r) for r in rows] == [LIST_FIELDS, LIST_FIELDS]
    running, stopped = rows
    source = (populated.algorithms / "buyer.py").read_bytes()
    assert running["code_sha256"] == hashlib.sha256(source).hexdigest()
    assert running["code_version"] == running["code_sha256"][:8]
    table = ok(capsys, populated, "list").out.splitlines()
    assert table[1].split()[5] == running["code_version"]  # what the table shows
    assert (running["id"], running["ticker"], running["status"]) == (1, "NVDA", "running")
    assert (running["shares"], running["trades"], running["error"]) == (1, 1, None)
    [db_row] = query(populated.data, "SELECT * FROM algorithm_instances WHERE id = 1")
    price = scalar(populated.data, "SELECT price FROM transactions WHERE algorithm_id = 1")
    assert running["cash"] == pytest.approx(10_000 - price)
    assert running["value"] == pytest.approx(running["cash"] + db_row["last_price"])
    assert running["pnl"] == pytest.approx(running["value"] - 10_000)
    assert (stopped["status"], stopped["shares"], stopped["trades"]) == ("stopped", 0, 2)
    assert stopped["value"] == pytest.approx(stopped["cash"])


def test_list_table_and_account_line(capsys, populated):
    out = ok(capsys, populated, "list").out
    header, first, second, *rest = out.splitlines()
    assert header.split()[:5] == ["ID", "NAME", "SYMBOL", "ALGORITHM", "STATUS"]
    assert first.split()[:5] == [
        "1",
        instance_rows(populated.data)[0]["display_name"],
        "NVDA",
        "buyer",
        "running",
    ]
    assert second.split()[4] == "stopped"
    assert any(line.startswith("available cash") and "account value" in line for line in rest)


def test_list_of_nothing(capsys, dirs):
    assert json.loads(ok(capsys, dirs, "list", "--json").out) == []


def test_global_options_also_after_the_command_and_from_the_environment(
    capsys, populated, monkeypatch
):
    after = run(capsys, None, "list", "--json", "--data-dir", str(populated.data))
    assert after.code == 0 and len(json.loads(after.out)) == 2
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(populated.data))
    monkeypatch.setenv("AUTOTRADER_ALGORITHM_DIR", str(populated.algorithms))
    from_env = run(capsys, None, "list", "--json")
    assert from_env.code == 0 and json.loads(from_env.out) == json.loads(after.out)
    names = [f["name"] for f in json.loads(run(capsys, None, "algorithms", "--json").out)]
    assert names == ["broken", "buyer", "counter"]


def test_version(capsys):
    result = run(capsys, None, "--version")
    assert result.code == 0
    assert result.out.strip() == f"autotrader-desktop {__version__}"


# --- stop, delete, trades ---------------------------------------------------------------


def test_stop_sells_the_open_position(capsys, populated):
    out = ok(capsys, populated, "stop", "1").out
    assert out.startswith("stopped 1 ")
    row = instance_rows(populated.data)[0]
    assert (row["status"], row["shares"], row["trade_count"]) == ("stopped", 0, 2)
    assert row["stopped_at"] is not None
    trades = query(populated.data, "SELECT * FROM transactions WHERE algorithm_id = 1 ORDER BY id")
    assert [(t["type"], t["shares"]) for t in trades] == [("buy", 1), ("sell", 1)]
    assert row["cash"] == pytest.approx(10_000 - trades[0]["price"] + trades[1]["price"])


def test_delete_removes_the_instance_and_its_history(capsys, populated):
    assert ok(capsys, populated, "delete", "2", "--yes").out.startswith("deleted 2 ")
    assert [r["id"] for r in instance_rows(populated.data)] == [1]
    assert query(populated.data, "SELECT * FROM transactions WHERE algorithm_id = 2") == []
    assert query(populated.data, "SELECT * FROM runs WHERE instance_id = 2") == []
    assert query(populated.data, "SELECT * FROM output_lines WHERE instance_id = 2") == []


def test_delete_asks_for_confirmation_on_a_terminal(capsys, populated, monkeypatch):
    before = dump(populated.data)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    result = run(capsys, populated, "delete", "2")
    assert result.code != 0
    assert "Delete " in result.out and "2 trades? [y/N]" in result.out
    assert "nothing deleted" in result.out
    monkeypatch.setattr("sys.stdin", Terminal(""))  # end of input: no
    assert run(capsys, populated, "delete", "2").code != 0
    assert dump(populated.data) == before
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert run(capsys, populated, "delete", "2").code == 0
    assert [r["id"] for r in instance_rows(populated.data)] == [1]


def test_trades_csv(capsys, populated):
    out = ok(capsys, populated, "trades", "2", "--csv").out
    assert out.splitlines()[0] == "id,algorithm_id,type,shares,price,timestamp"
    rows = list(csv.DictReader(io.StringIO(out)))
    stored = query(
        populated.data,
        "SELECT * FROM transactions WHERE algorithm_id = 2 ORDER BY timestamp DESC, id DESC",
    )
    assert [r["type"] for r in rows] == ["sell", "buy"]  # newest first
    assert rows == [
        {
            "id": str(t["id"]),
            "algorithm_id": "2",
            "type": t["type"],
            "shares": str(t["shares"]),
            "price": str(t["price"]),
            "timestamp": rows[i]["timestamp"],
        }
        for i, t in enumerate(stored)
    ]
    iso_utc = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
    assert all(iso_utc.fullmatch(r["timestamp"]) for r in rows)


@pytest.fixture
def new_york(monkeypatch):
    """Local time is New York's for the test."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_trades_table_in_words_cents_and_local_seconds(capsys, populated, new_york):
    table = ok(capsys, populated, "trades", "2").out.splitlines()
    assert table[0].split() == ["ID", "TYPE", "SHARES", "PRICE", "TIME"]
    stored = query(
        populated.data,
        "SELECT * FROM transactions WHERE algorithm_id = 2 ORDER BY timestamp DESC, id DESC",
    )
    expected = []
    for t in stored:
        when = datetime.strptime(t["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        local = when.astimezone(ZoneInfo("America/New_York"))
        shown_time = f"{local:%Y-%m-%d %H:%M:%S %Z}".split()
        expected.append(
            [str(t["id"]), t["type"], str(t["shares"]), f"{t['price']:,.2f}", *shown_time]
        )
    assert [line.split() for line in table[1:]] == expected
    assert [row[1] for row in expected] == ["sell", "buy"]  # newest first


def test_trades_json_has_the_fields_of_get_transactions(capsys, populated):
    from autotrader_desktop import api

    rows = json.loads(ok(capsys, populated, "trades", "2", "--json").out)
    database.open_database(populated.data)
    try:
        assert rows == api.get_transactions(2)
    finally:
        database.close_database()
    assert [list(r) for r in rows] == [
        ["id", "algorithm_id", "type", "shares", "price", "timestamp"]
    ] * 2
    assert run(capsys, populated, "trades", "2", "--json", "--csv").code == 2  # one format


def test_no_trades(capsys, dirs):
    ok(capsys, dirs, "add", "NVDA", "buyer", "100")
    assert "has no trades yet" in ok(capsys, dirs, "trades", "1").out
    assert ok(capsys, dirs, "trades", "1", "--csv").out == (
        "id,algorithm_id,type,shares,price,timestamp\n"
    )


# --- cycle ------------------------------------------------------------------------------


def test_cycle_count_runs_n_cycles_with_one_module_cache(capsys, dirs):
    ok(capsys, dirs, "add", "NVDA", "counter", "1000")
    ok(capsys, dirs, "add", "AMD", "counter", "1000")
    out = ok(capsys, dirs, "cycle", "--count", "3").out
    assert len(re.findall(r"^cycle .* UTC: 2 hold ", out, re.MULTILINE)) == 3

    imports = (dirs.algorithms / "counter.imports").read_text().split()
    runs = [line.split() for line in (dirs.algorithms / "counter.runs").read_text().splitlines()]
    # Every run in one algorithm host, not in this (the engine's) process...
    [host] = {pid for pid, *_ in runs}
    assert host != str(os.getpid())
    # ...which loaded the module once for both instances and all three cycles.
    assert imports.count(host) == 1
    by_instance: dict[str, list[tuple[str, str]]] = {}
    for _, algo_id, obj, n in runs:
        by_instance.setdefault(algo_id, []).append((obj, n))
    assert sorted(by_instance) == ["1", "2"]
    for calls in by_instance.values():
        assert len({obj for obj, _ in calls}) == 1  # one Algorithm object per instance
        assert [n for _, n in calls] == ["1", "2", "3"]
    assert count(dirs.data, "runs") == 6
    scheduled = query(dirs.data, "SELECT DISTINCT scheduled_at FROM runs")
    assert len(scheduled) == 3


def test_cycle_trades_and_records_the_code_version(capsys, dirs):
    ok(capsys, dirs, "add", "NVDA", "buyer", "10000")
    out = ok(capsys, dirs, "cycle", "--count", "2").out
    assert len(re.findall(r"^cycle .*: 1 executed ", out, re.MULTILINE)) == 2
    [row] = instance_rows(dirs.data)
    assert (row["shares"], row["trade_count"]) == (2, 2)
    expected = hashlib.sha256((dirs.algorithms / "buyer.py").read_bytes()).hexdigest()
    assert row["code_version"] == expected
    [listed] = json.loads(ok(capsys, dirs, "list", "--json").out)
    assert (listed["code_version"], listed["code_sha256"]) == (expected[:8], expected)


def test_cycle_without_instances(capsys, dirs):
    assert "no running instances" in ok(capsys, dirs, "cycle").out


# --- real processes: python -m and the console script -----------------------------------


def test_python_dash_m_and_console_script(dirs):
    env = subprocess_env(dirs.data, dirs.algorithms)
    added = run_cli_subprocess(["add", "nvda", "buyer", "1000", "--json"], env)
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    assert list(created) == LIST_FIELDS and created["ticker"] == "NVDA"

    script = VENV_BIN / "autotrader-desktop"
    assert script.exists()
    import subprocess

    def console(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=60
        )

    cycled = console("cycle", "--count", "2")
    assert cycled.returncode == 0, cycled.stderr
    assert len(re.findall(r"^cycle .*: 1 executed", cycled.stdout, re.MULTILINE)) == 2
    listed = console("list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["shares"], row["trades"]) == (created["id"], 2, 2)
    found = console("algorithms", "--json")
    assert found.returncode == 0
    assert {f["name"]: f["available"] for f in json.loads(found.stdout)} == {
        "broken": False,
        "buyer": True,
        "counter": True,
    }

    # Real stderr of a real process: the message, no traceback, for user mistakes.
    missing = console("--algorithm-dir", str(dirs.algorithms / "nope"), "cycle")
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    bad_env = run_cli_subprocess(["list"], {**env, "AUTOTRADER_RUN_TIME_LIMIT": "abc"})
    assert bad_env.returncode != 0
    assert "AUTOTRADER_RUN_TIME_LIMIT" in bad_env.stderr
    assert "Traceback" not in bad_env.stderr
    assert count(dirs.data, "runs") == 2


# --- every bad input --------------------------------------------------------------------

BAD_INPUTS = [
    # (id, argv, environment, what stderr must say)
    ("empty symbol", ["add", "", "buyer", "100"], {}, "enter a symbol"),
    ("blank symbol", ["add", "   ", "buyer", "100"], {}, "enter a symbol"),
    ("long symbol", ["add", "ABCDEFGHIJK", "buyer", "100"], {}, "1 to 10 letters"),
    ("digits", ["add", "NVDA1", "buyer", "100"], {}, "'NVDA1' is not valid"),
    ("inner space", ["add", "NV DA", "buyer", "100"], {}, "is not valid"),
    ("punctuation", ["add", "NV-DA", "buyer", "100"], {}, "is not valid"),
    ("unknown algorithm", ["add", "NVDA", "nosuch", "100"], {}, "available: buyer, counter"),
    ("excluded algorithm", ["add", "NVDA", "broken", "100"], {}, "not available: SyntaxError"),
    ("private file", ["add", "NVDA", "_private", "100"], {}, "no algorithm named '_private'"),
    ("capital 0", ["add", "NVDA", "buyer", "0"], {}, "greater than 0"),
    ("capital 0.0049", ["add", "NVDA", "buyer", "0.0049"], {}, "whole cents, e.g. 0.01"),
    ("symbol .", ["add", ".", "buyer", "100"], {}, "with at least one letter"),
    ("symbol ..", ["add", "..", "buyer", "100"], {}, "with at least one letter"),
    ("symbol ....", ["add", " .... ", "buyer", "100"], {}, "with at least one letter"),
    ("capital -5", ["add", "NVDA", "buyer", "-5"], {}, "greater than 0"),
    ("capital nan", ["add", "NVDA", "buyer", "nan"], {}, "finite"),
    ("capital inf", ["add", "NVDA", "buyer", "inf"], {}, "finite"),
    ("capital 1e400", ["add", "NVDA", "buyer", "1e400"], {}, "finite"),
    ("capital abc", ["add", "NVDA", "buyer", "abc"], {}, "'abc' is not a number"),
    ("capital empty", ["add", "NVDA", "buyer", ""], {}, "is not a number"),
    ("over available", ["add", "NVDA", "buyer", "95000"], {}, "more than the available cash"),
    ("missing arguments", ["add", "NVDA"], {}, "required"),
    ("stop unknown id", ["stop", "99"], {}, "no instance with id 99"),
    ("stop non-numeric", ["stop", "abc"], {}, "'abc' is not an instance id"),
    ("stop stopped", ["stop", "2"], {}, "already stopped"),
    ("stop id 2**63", ["stop", str(2**63)], {}, f"'{2**63}' is not an instance id"),
    ("stop id 0", ["stop", "0"], {}, "'0' is not an instance id"),
    ("stop id -1", ["stop", "-1"], {}, "'-1' is not an instance id"),
    ("delete id 10**30", ["delete", str(10**30), "--yes"], {}, "is not an instance id"),
    ("trades id 2**64", ["trades", str(2**64)], {}, "is not an instance id"),
    ("delete unknown id", ["delete", "99", "--yes"], {}, "no instance with id 99"),
    ("delete non-numeric", ["delete", "x1", "--yes"], {}, "'x1' is not an instance id"),
    ("delete running", ["delete", "1", "--yes"], {}, "is running; stop it first"),
    ("trades unknown id", ["trades", "99"], {}, "no instance with id 99"),
    ("trades non-numeric", ["trades", "1.5", "--csv"], {}, "'1.5' is not an instance id"),
    ("cycle count 0", ["cycle", "--count", "0"], {}, "must be 1 or more"),
    ("cycle count -2", ["cycle", "--count", "-2"], {}, "must be 1 or more"),
    ("cycle count x", ["cycle", "--count", "x"], {}, "not a whole number"),
    ("every 0", ["headless", "--every", "0"], {}, "seconds from 1 to 86,400"),
    ("every -1", ["headless", "--every", "-1"], {}, "seconds from 1 to 86,400"),
    ("every nan", ["headless", "--every", "nan"], {}, "seconds from 1 to 86,400"),
    ("every 0.5", ["headless", "--every", "0.5"], {}, "seconds from 1 to 86,400"),
    ("every 1e308", ["headless", "--every", "1e308"], {}, "seconds from 1 to 86,400"),
    ("every a day and 1 s", ["headless", "--every", "86401"], {}, "seconds from 1 to 86,400"),
    ("every abc", ["headless", "--every", "abc"], {}, "'abc' is not a number"),
    (
        "log file in a missing folder",
        ["headless", "--log-file", "/nonexistent/engine.log"],
        {},
        "cannot write the log file /nonexistent/engine.log: No such file or directory",
    ),
    ("feed bogus", ["--feed", "bogus", "list"], {}, "invalid choice: 'bogus'"),
    ("unknown command", ["frobnicate"], {}, "invalid choice: 'frobnicate'"),
    (
        "env time limit",
        ["cycle"],
        {"AUTOTRADER_RUN_TIME_LIMIT": "abc"},
        "AUTOTRADER_RUN_TIME_LIMIT: run_time_limit must be a number (got 'abc')",
    ),
    ("env time limit 0", ["cycle"], {"AUTOTRADER_RUN_TIME_LIMIT": "0"}, "between 0.1 and 3,600"),
    ("env feed", ["list"], {"AUTOTRADER_FEED": "bogus"}, "AUTOTRADER_FEED: feed must be one of"),
    (
        "env balance -1",
        ["add", "NVDA", "buyer", "1"],
        {"AUTOTRADER_STARTING_BALANCE": "-1"},
        "starting_balance must be between 0.01 and 1,000,000,000,000 (got '-1')",
    ),
    (
        "env balance 1e22",
        ["cycle"],
        {"AUTOTRADER_STARTING_BALANCE": "1e22"},
        "AUTOTRADER_STARTING_BALANCE: starting_balance must be between 0.01 and",
    ),
    (
        "env slippage 100 %",
        ["cycle"],
        {"AUTOTRADER_SLIPPAGE_BPS": "10000"},
        "AUTOTRADER_SLIPPAGE_BPS: slippage_bps must be between 0 and 9,999 (got '10000')",
    ),
    ("env slippage 250 %", ["cycle"], {"AUTOTRADER_SLIPPAGE_BPS": "25000"}, "slippage_bps must"),
    ("env commission", ["cycle"], {"AUTOTRADER_COMMISSION": "1e300"}, "commission must be"),
    ("env time limit 1e9", ["cycle"], {"AUTOTRADER_RUN_TIME_LIMIT": "1e9"}, "run_time_limit"),
    ("env seed -1", ["cycle"], {"AUTOTRADER_SIMULATOR_SEED": "-1"}, "simulator_seed must be"),
    ("env seed 2**64", ["cycle"], {"AUTOTRADER_SIMULATOR_SEED": str(2**64)}, "simulator_seed"),
    ("env seed 1.5", ["cycle"], {"AUTOTRADER_SIMULATOR_SEED": "1.5"}, "a whole number"),
    (
        "env host memory",
        ["cycle"],
        {"AUTOTRADER_HOST_MEMORY_LIMIT_MB": "10"},
        "host_memory_limit_mb must be between 256",
    ),
    ("stream url", ["--stream-url", "bogus", "cycle"], {}, "must be a ws:// or wss:// URL"),
    ("stream url no host", ["--stream-url", "wss://", "cycle"], {}, "must be a ws:// or wss://"),
    ("stream url http", ["--stream-url", "http://h/x", "cycle"], {}, "must be a ws:// or wss://"),
    (
        "history url bad IPv6",
        ["--history-url", "http://[::1", "cycle"],
        {},
        "history_url must be a http:// or https:// URL like https://data.alpaca.markets "
        "(got 'http://[::1': Invalid IPv6 URL)",
    ),
    ("history url port", ["--history-url", "http://h:99999", "list"], {}, "Port out of range"),
    ("history url path only", ["--history-url", "http:/x", "list"], {}, "must be a http://"),
    (
        "env history url",
        ["list"],
        {"AUTOTRADER_HISTORY_URL": "ftp://host"},
        "AUTOTRADER_HISTORY_URL: history_url must be a http:// or https:// URL",
    ),
]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [pytest.param(argv, env, message, id=name) for name, argv, env, message in BAD_INPUTS],
)
def test_bad_input_changes_nothing(capsys, caplog, monkeypatch, populated, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = dump(populated.data)
    result = run(capsys, populated, *argv)
    assert result.code != 0
    assert message in result.err
    assert "Traceback" not in result.err
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert dump(populated.data) == before


@pytest.mark.parametrize(
    "command",
    [["algorithms"], ["add", "NVDA", "buyer", "100"], ["cycle"], ["headless", "--every", "1"]],
)
@pytest.mark.parametrize("problem", ["missing", "a file"])
def test_bad_algorithm_folder(capsys, populated, tmp_path, command, problem):
    folder = tmp_path / "not-there"
    if problem == "a file":
        folder.write_text("")
    before = dump(populated.data)
    result = run(
        capsys, None, "--data-dir", str(populated.data), "--algorithm-dir", str(folder), *command
    )
    assert result.code != 0
    expected = "does not exist" if problem == "missing" else "is a file, not a folder"
    assert f"{folder} {expected}" in result.err
    assert "--algorithm-dir" in result.err
    assert "Traceback" not in result.err
    assert dump(populated.data) == before


def test_data_dir_that_is_a_file(capsys, tmp_path, dirs):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = run(capsys, None, "--data-dir", str(not_a_dir), "list")
    assert result.code != 0
    assert f"cannot use {not_a_dir} as the data directory" in result.err
    assert "Traceback" not in result.err
    assert not_a_dir.read_text() == ""


# --- which commands may create the data directory ----------------------------------------


@pytest.mark.parametrize(
    "command",
    [["list"], ["trades", "1"], ["algorithms"], ["stop", "1"], ["delete", "1", "--yes"]],
)
def test_a_mistyped_data_dir_is_an_error_and_nothing_is_created(capsys, tmp_path, dirs, command):
    typo = tmp_path / "typo" / "data"
    options = ["--data-dir", str(typo), "--algorithm-dir", str(dirs.algorithms)]
    result = run(capsys, None, *options, *command)
    assert result.code == 2
    assert f"cannot use {typo} as the data directory: it does not exist" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "typo").exists()


def test_an_empty_directory_is_not_taken_for_a_data_dir(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(capsys, None, "--data-dir", str(empty), "list")
    assert result.code == 2
    assert "it holds no AutoTrader Desktop database" in result.err
    assert list(empty.iterdir()) == []


def test_cycle_starts_a_data_dir(capsys, tmp_path, dirs):
    new = Dirs(tmp_path / "new" / "data", dirs.algorithms)
    assert "no running instances" in ok(capsys, new, "cycle").out
    assert (new.data / DB_FILENAME).is_file()


def test_add_starts_a_data_dir_but_a_failed_add_leaves_none(capsys, tmp_path, dirs):
    new = Dirs(tmp_path / "new" / "data", dirs.algorithms)
    failed = run(capsys, new, "add", "NVDA", "no_such_algorithm", "100")
    assert failed.code == 2 and "no_such_algorithm" in failed.err
    assert not (tmp_path / "new").exists()

    ok(capsys, new, "add", "NVDA", "buyer", "100")
    assert len(instance_rows(new.data)) == 1
    # A failure in a data directory that has something in it changes nothing.
    assert run(capsys, new, "add", "NVDA", "no_such_algorithm", "100").code == 2
    assert len(instance_rows(new.data)) == 1


# --- pipes and scripts --------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["list"], ["trades", "2"], ["trades", "2", "--csv"]])
def test_a_closed_pipe_ends_the_command_quietly(populated, argv):
    """`autotrader-desktop list | head -1`: the reader is gone before the output is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "autotrader_desktop", *argv],
        env=subprocess_env(populated.data, populated.algorithms),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == cli.BROKEN_PIPE_STATUS
    assert err == ""


def test_delete_without_a_terminal_needs_yes(capsys, populated, monkeypatch):
    before = dump(populated.data)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # `echo y | ...`: not a person
    result = run(capsys, populated, "delete", "2")
    assert result.code == 2
    assert "no terminal to confirm on" in result.err and "delete 2 --yes" in result.err
    assert dump(populated.data) == before
    assert ok(capsys, populated, "delete", "2", "--yes").out.startswith("deleted 2 ")
    assert "--yes" in run(capsys, None, "delete", "--help").out  # documented


def test_delete_refuses_a_running_instance_before_asking(capsys, populated, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    result = run(capsys, populated, "delete", "1")
    assert result.code == 2 and "is running; stop it first" in result.err
    assert "[y/N]" not in result.out
    assert [r["id"] for r in instance_rows(populated.data)] == [1, 2]


@pytest.mark.parametrize("capital", ["10.555", "0.001", "1,000.001"])
def test_capital_with_more_than_two_decimals_is_refused(capsys, dirs, capital):
    result = run(capsys, dirs, "add", "NVDA", "buyer", capital)
    assert result.code == 2
    assert f"capital {capital!r} has more than 2 decimals" in result.err
    assert instance_rows(dirs.data) == []


def test_capital_is_stored_exactly_as_given(capsys, dirs):
    ok(capsys, dirs, "add", "NVDA", "buyer", "10.55")
    ok(capsys, dirs, "add", "NVDA", "buyer", "1,000.550")  # trailing zeros change nothing
    assert [r["initial_capital"] for r in instance_rows(dirs.data)] == [10.55, 1000.55]


def test_a_mistyped_command_gets_a_suggestion(capsys):
    result = run(capsys, None, "lst")
    assert result.code == 2
    assert "invalid choice: 'lst'; did you mean 'list'?" in result.err
    assert "did you mean 'sim'?" in run(capsys, None, "--feed", "simm", "list").err
    assert "did you mean" not in run(capsys, None, "frobnicate").err


def _arguments(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for _, sub_action in _arguments(sub):
                    yield name, sub_action
        else:
            yield parser.prog, action


def test_every_argument_and_option_has_help_and_global_options_are_listed_once(capsys):
    parser = cli.build_parser()
    global_options = {
        "--data-dir",
        "--algorithm-dir",
        "--feed",
        "--stream-url",
        "--history-url",
        "--broker",
        "--trading-url",
        "--trading-stream-url",
        "--confirm-live",
        "--verbose",
    }
    for where, action in _arguments(parser):
        is_global = bool(global_options & set(action.option_strings))
        if is_global and where != parser.prog:
            assert action.help == argparse.SUPPRESS, (where, action.option_strings)
        else:
            assert action.help and action.help != argparse.SUPPRESS, (where, action.dest)
    top = run(capsys, None, "--help").out.split("\noptions:")[1]  # below the usage line
    assert all(top.count(option) == 1 for option in global_options), top
    for command in cli.COMMANDS:
        text = run(capsys, None, command, "--help").out
        assert not any(option in text for option in global_options), (command, text)
        assert "Global options" in text
    # ... and still work after the command.
    assert run(capsys, None, "list", "--data-dir", "/nonexistent/typo").code == 2


# --- bounds, from a real process --------------------------------------------------------


def test_unparseable_url_is_a_clear_error_in_a_real_process(dirs):
    env = subprocess_env(dirs.data, dirs.algorithms)
    result = run_cli_subprocess(["--history-url", "http://[::1", "list"], env)
    assert result.returncode == 2
    assert "history_url must be a http:// or https:// URL" in result.stderr
    assert "Invalid IPv6 URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_order_too_big_for_the_books_fails_alone_and_others_trade(dirs):
    """The largest balance there is, all of it on one instance asking for 2**63 shares: it
    fails alone with the reason (it used to overflow SQLite and fail every cycle's batch);
    the broker's own position bound is tested in test_accounting."""
    write_algorithm(dirs.algorithms, "greedy", returning("'buy', 2**63"))
    env = subprocess_env(dirs.data, dirs.algorithms, AUTOTRADER_STARTING_BALANCE="1e12")
    assert run_cli_subprocess(["add", "NVDA", "greedy", "999999999000"], env).returncode == 0
    assert run_cli_subprocess(["add", "NVDA", "buyer", "1000"], env).returncode == 0
    refused = run_cli_subprocess(["cycle"], {**env, "AUTOTRADER_STARTING_BALANCE": "1e22"})
    assert refused.returncode == 2 and "starting_balance must be between" in refused.stderr
    cycled = run_cli_subprocess(["cycle", "--count", "2"], env)
    assert cycled.returncode == 0, cycled.stderr
    assert "Traceback" not in cycled.stderr
    runs = query(
        dirs.data,
        "SELECT instance_id, outcome, reason FROM runs ORDER BY instance_id, scheduled_at",
    )
    assert [(r["instance_id"], r["outcome"]) for r in runs] == [
        (1, "failed"),
        (2, "executed"),
        (2, "executed"),
    ]
    assert str(2**63) in runs[0]["reason"]
    check_accounts(dirs.data)


def test_a_stored_setting_out_of_bounds_falls_back_to_its_default(capsys, caplog, populated):
    """Stored by an earlier version, which accepted 25,000 bps: the app still starts."""
    with closing(sqlite3.connect(populated.data / DB_FILENAME)) as conn, conn:
        conn.execute("INSERT INTO settings (key, value) VALUES ('slippage_bps', '25000')")
    ok(capsys, populated, "list")
    assert "stored setting ignored, its default is used: slippage_bps must be between 0" in (
        caplog.text
    )
