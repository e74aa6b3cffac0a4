"""The built desktop bundle, end to end (docs/behaviour.md#packaging): `make smoke`, run by .ci/run.

Needs `dist/autotrader-desktop/` (`make package`; AUTOTRADER_BUNDLE points elsewhere), so
every test here is marked `bundle`, which the normal `make test` run deselects. Each runs
the real executable, offscreen, with a fresh data directory, against a hard-linked copy of
the bundle: the copy's `algorithm/` folder is used and changed as a user would, and the
build output is never touched.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotrader_desktop import database
from tests.helpers import REPO, stdlib_modules

pytestmark = pytest.mark.bundle

NAME = "autotrader-desktop"
BUNDLE = Path(os.environ.get("AUTOTRADER_BUNDLE") or REPO / "dist" / NAME)
EXAMPLES = sorted(p.name for p in (REPO / "algorithm").glob("*.py"))
TIMEOUT_S = 120

STDLIB_ALGORITHM = '''
"""Uses the standard library, numpy and pandas the way user algorithms do; buys 1 share a run."""
import collections
import csv
import datetime
import decimal
import fractions
import hashlib
import io
import itertools
import json
import random
import sqlite3
import statistics
import zoneinfo

import numpy as np
import pandas as pd

from autotrader_desktop.api import get_position


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.rng = random.Random(7)
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE seen (at TEXT)")

    def run(self, current_time, algo_id):
        new_york = current_time.astimezone(zoneinfo.ZoneInfo("America/New_York"))
        assert new_york.utcoffset() in (datetime.timedelta(hours=-4), datetime.timedelta(hours=-5))
        self.db.execute("INSERT INTO seen VALUES (?)", (current_time.isoformat(),))
        seen = self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        values = np.array([self.rng.random() for _ in range(32)])
        stats = statistics.fmean(values.tolist())
        assert abs(stats - float(values.mean())) < 1e-9
        frame = pd.DataFrame({"c": values}).rolling(4).mean()
        assert abs(float(frame["c"].iloc[-1]) - float(values[-4:].mean())) < 1e-9
        assert decimal.Decimal("0.1") + decimal.Decimal("0.2") == decimal.Decimal("0.3")
        assert fractions.Fraction(1, 3) * 3 == 1
        counts = collections.Counter(itertools.islice(itertools.cycle("ab"), 5))
        out = io.StringIO()
        csv.writer(out).writerow([seen, counts["a"], hashlib.sha256(b"x").hexdigest()[:8]])
        print(json.dumps({"run": seen, "row": out.getvalue().strip(), "numpy": np.__version__,
                          "pandas": pd.__version__}))
        position = get_position(algo_id)
        return ("buy", 1) if position["cash"] > 10_000 else ("hold", 0)
'''

IMPORT_CHECK = """
import json

failed = {{}}
for name in {names!r}:
    try:
        __import__(name)
    except BaseException as exc:  # noqa: BLE001  (SystemExit too: anything is a failure)
        failed[name] = f"{{type(exc).__name__}}: {{exc}}"[:300]
with open({out!r}, "w", encoding="utf-8") as report:
    json.dump(failed, report)


class Algorithm:
    pass
"""


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app() -> Iterator[Path]:
    """A private copy of the bundle (hard links when possible): its executable's path."""
    exe = BUNDLE / NAME
    if not exe.is_file():
        pytest.fail(f"no bundle at {BUNDLE}: build it first with `make package`")
    parent = BUNDLE.parent
    copy = Path(tempfile.mkdtemp(prefix=".bundle-test-", dir=parent)) / NAME
    try:
        shutil.copytree(BUNDLE, copy, symlinks=True, copy_function=os.link)
    except OSError:  # no hard links here: a real copy
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(BUNDLE, copy, symlinks=True)
    try:
        yield copy / NAME
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    home = tmp_path / "home"
    home.mkdir()
    # A data directory as the first start leaves it: the read-only commands need one.
    database.open_database(tmp_path / "data")
    database.close_database()
    return {
        **keep,
        "QT_QPA_PLATFORM": "offscreen",
        "AUTOTRADER_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run(app: Path, env: dict[str, str], *args: str, ok: bool = True, **kwargs):
    started = time.perf_counter()
    result = subprocess.run(
        [str(app), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=env["HOME"],
        **kwargs,
    )
    seconds = time.perf_counter() - started
    print(f"$ {app.name} {' '.join(args)}  -> exit {result.returncode} in {seconds:.2f} s")
    if ok:
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
        assert not unexpected_tracebacks(result.stderr), result.stderr
    return result


def unexpected_tracebacks(output: str) -> list[str]:
    """Lines of a process's output that start a traceback (logged or an unlogged crash)."""
    return [line for line in output.splitlines() if line.startswith("Traceback")]


def add_algorithm(app: Path, name: str, source: str) -> Path:
    path = app.parent / "algorithm" / f"{name}.py"
    path.write_text(source, encoding="utf-8")  # a new file: never write through a hard link
    return path


# --- the bundle's layout ------------------------------------------------------------------


def test_layout_beside_and_inside_the_executable(app):
    folder = app.parent
    assert os.access(app, os.X_OK)
    assert sorted(p.name for p in (folder / "algorithm").glob("*.py")) == EXAMPLES
    for name in EXAMPLES:
        original = (REPO / "algorithm" / name).read_bytes()
        assert (folder / "algorithm" / name).read_bytes() == original
        assert (folder / "_internal" / "algorithm_examples" / name).read_bytes() == original
    resources = folder / "_internal" / "resources"
    assert (resources / f"{NAME}.desktop").is_file()
    assert (resources / "icons" / f"{NAME}.svg").is_file()
    assert (resources / "icons" / f"{NAME}-512.png").is_file()
    assert os.access(folder / "install-desktop-entry.sh", os.X_OK)
    # Trimmed: translations, unused platform plugins; kept: what desktops and tests use.
    qt = folder / "_internal" / "PySide6" / "Qt"
    assert not (qt / "translations").exists()
    platforms = {p.name for p in (qt / "plugins" / "platforms").iterdir()}
    assert platforms == {"libqxcb.so", "libqwayland.so", "libqoffscreen.so"}
    assert (qt / "plugins" / "imageformats" / "libqsvg.so").is_file()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"bundle size: {size / 1e6:.0f} MB")


def test_every_bundled_library_finds_its_dependencies(app):
    """What ldd cannot resolve would fail to load at run time on this machine."""
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    internal = app.parent / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}  # as the bootloader sets it
    missing = {}
    libraries = [app, *(p for p in internal.rglob("*.so*") if p.is_file())]
    for library in libraries:
        out = subprocess.run(["ldd", str(library)], env=env, capture_output=True, text=True)
        lost = [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]
        if lost:
            missing[str(library.relative_to(internal.parent))] = lost
    assert not missing, "unresolved libraries (install them, see .ci/run):\n" + "\n".join(
        f"{lib}: {', '.join(names)}" for lib, names in sorted(missing.items())
    )


# --- the command line ---------------------------------------------------------------------


def test_algorithms_json_lists_the_examples_beside_the_executable(app, env):
    found = json.loads(run(app, env, "algorithms", "--json").stdout)
    by_name = {f["name"]: f for f in found}
    assert sorted(f"{name}.py" for name in by_name) == EXAMPLES
    for name, entry in by_name.items():
        assert entry["available"], (name, entry["error"])
        assert Path(entry["path"]) == app.parent / "algorithm" / f"{name}.py"


def test_a_missing_algorithm_folder_is_recreated_with_the_examples(app, env):
    folder = app.parent / "algorithm"
    shutil.rmtree(folder)
    found = json.loads(run(app, env, "algorithms", "--json").stdout)
    assert sorted(p.name for p in folder.glob("*.py")) == EXAMPLES
    assert all(f["available"] for f in found)
    assert not [p for p in app.parent.iterdir() if p.name.startswith(".algorithm-")]


def test_stdlib_and_numpy_algorithm_is_available_and_trades(app, env):
    add_algorithm(app, "stdlib_numpy", STDLIB_ALGORITHM)
    found = {f["name"]: f for f in json.loads(run(app, env, "algorithms", "--json").stdout)}
    assert found["stdlib_numpy"]["available"], found["stdlib_numpy"]["error"]

    created = json.loads(run(app, env, "add", "SPY", "stdlib_numpy", "20000", "--json").stdout)
    cycled = run(app, env, "cycle", "--count", "2").stdout
    assert len(re.findall(r"^cycle .*: 1 executed ", cycled, re.MULTILINE)) == 2, cycled

    [row] = json.loads(run(app, env, "list", "--json").stdout)
    assert (row["id"], row["status"], row["error"]) == (created["id"], "running", None)
    assert (row["shares"], row["trades"]) == (2, 2)
    trades = run(app, env, "trades", str(created["id"]), "--csv").stdout.splitlines()
    assert trades[0] == "id,algorithm_id,type,shares,price,timestamp"
    assert [line.split(",")[2:4] for line in trades[1:]] == [["buy", "1"], ["buy", "1"]]


def test_add_with_bad_input_gives_a_clean_error_and_changes_nothing(app, env):
    for args, message in [
        (["add", "SPY", "no_such_algorithm", "1000"], "available: mean_reversion"),
        (["add", "", "test_algo", "1000"], "enter a symbol"),
        (["add", "SPY1", "test_algo", "1000"], "'SPY1' is not valid"),
        (["add", "SPY", "test_algo", "-5"], "greater than 0"),
        (["add", "SPY", "test_algo", "lots"], "'lots' is not a number"),
    ]:
        result = run(app, env, *args, ok=False)
        assert result.returncode == 2, (args, result.returncode, result.stderr)
        assert result.stderr.startswith("error: "), (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert json.loads(run(app, env, "list", "--json").stdout) == []


@pytest.mark.timeout(900)
def test_every_stdlib_numpy_and_pandas_module_importable_from_source_imports_in_the_bundle(
    app, env, tmp_path
):
    """Parity with the build interpreter, through the bundle's own algorithm import path."""
    modules = stdlib_modules.import_check_modules(
        stdlib_modules.stdlib_modules()
        + stdlib_modules.numpy_modules()
        + stdlib_modules.pandas_modules()
    )
    assert len(modules) > 800

    def failures(where: str, command: list[str] | None) -> dict[str, str]:
        out = tmp_path / f"{where}.json"
        path = tmp_path / f"import_check_{where}.py"
        source = IMPORT_CHECK.format(names=modules, out=str(out))
        if command is None:
            worker_run(app, env, path, source)
        else:
            path.write_text(source, encoding="utf-8")
            done = subprocess.run(
                [*command, str(path)],
                # the standard library's distutils, as bundled, not setuptools' copy
                env={**env, "SETUPTOOLS_USE_DISTUTILS": "stdlib"},
                cwd=tmp_path,
                capture_output=True,
                timeout=600,
            )
            assert out.is_file(), done.stderr.decode(errors="replace")[-3000:]
        return json.loads(out.read_text(encoding="utf-8"))

    # From source: the build interpreter itself (this venv), outside the repository.
    source_failed = failures("source", [sys.executable])
    # In the bundle: the discovery worker imports the file exactly as it imports algorithms.
    bundle_failed = failures("bundle", None)
    print(f"{len(modules)} modules checked; {len(source_failed)} fail from source too")
    lost = {name: bundle_failed[name] for name in sorted(set(bundle_failed) - set(source_failed))}
    assert not lost, "import from source but not in the bundle:\n" + "\n".join(
        f"{name}: {error}" for name, error in lost.items()
    )


PROBE = """
import json
import traceback
from datetime import UTC, datetime
from importlib.metadata import entry_points

results = {{}}


def probe(name, check):
    try:
        results[name] = check()
    except BaseException:
        results[name] = "FAILED " + traceback.format_exc()


def scheduler_plugins():
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler()
    job = scheduler.add_job(print, "interval", seconds=5)  # the trigger found by entry point
    scheduler.add_job(print, "cron", second=2)
    scheduler.add_executor("threadpool", alias="pool")  # the executor found by entry point
    return {{
        "triggers": sorted(ep.name for ep in entry_points(group="apscheduler.triggers")),
        "executors": sorted(ep.name for ep in entry_points(group="apscheduler.executors")),
        "trigger": type(job.trigger).__name__,
    }}


def keyring_backends():
    import keyring
    import keyring.backend
    import keyring.backends.SecretService  # noqa: F401  (secretstorage, cryptography)

    names = sorted(ep.name for ep in entry_points(group="keyring.backends"))
    viable = sorted(type(k).__name__ for k in keyring.backend.get_all_keyring())
    chosen = type(keyring.get_keyring()).__name__
    return {{"entry_points": names, "viable": viable, "chosen": chosen}}


def market_hours():
    from autotrader_desktop.feed import market_hours

    return [
        market_hours.is_open(datetime(2024, 3, 13, 15, 31, tzinfo=UTC)),  # a Wednesday
        market_hours.is_open(datetime(2024, 12, 25, 15, 31, tzinfo=UTC)),  # Christmas
    ]


def zones():
    import zoneinfo

    when = datetime(2024, 7, 1, 12, tzinfo=UTC)
    offsets = [str(when.astimezone(zoneinfo.ZoneInfo("America/New_York")).utcoffset())]
    zoneinfo.reset_tzpath(to=[])  # as on a system without a time zone database: tzdata
    try:
        offsets.append(str(when.astimezone(zoneinfo.ZoneInfo.no_cache("Europe/Paris")).utcoffset()))
    finally:
        zoneinfo.reset_tzpath()
    return offsets


def icon():
    from autotrader_desktop import paths, resources

    return [paths.is_frozen(), resources.icon_path().is_file(), sorted(resources.icon_pngs())]


def qt_svg():
    from PySide6.QtSvg import QSvgRenderer

    from autotrader_desktop import resources

    return QSvgRenderer(str(resources.icon_path())).isValid()


probe("apscheduler", scheduler_plugins)
probe("keyring", keyring_backends)
probe("market_hours", market_hours)
probe("zoneinfo", zones)
probe("icon", icon)
probe("qt_svg", qt_svg)
with open({out!r}, "w", encoding="utf-8") as report:
    json.dump(results, report)


class Algorithm:
    pass
"""


def worker_run(app: Path, env: dict[str, str], path: Path, source: str) -> None:
    """Import `source` in the bundle's discovery worker, the way it checks algorithms."""
    # One snapshot: its files, the algorithm's own first (discovery_worker's protocol).
    job = [
        {
            "name": path.stem,
            "path": str(path),
            "source": base64.b64encode(source.encode()).decode(),
        }
    ]
    result = subprocess.run(
        [str(app), "_discovery-worker"],
        input=json.dumps([job]),
        env=env,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages == [{"ready": True}, {"name": path.stem, "available": True, "error": None}], (
        messages,
        result.stderr[-3000:],
    )


def test_what_the_app_finds_at_run_time_works_frozen(app, env, tmp_path):
    """Entry points (APScheduler, keyring), the NYSE calendar, time zones, the icon, QtSvg."""
    out = tmp_path / "probe.json"
    worker_run(app, env, tmp_path / "probe.py", PROBE.format(out=str(out)))
    results = json.loads(out.read_text(encoding="utf-8"))
    failed = {k: v for k, v in results.items() if isinstance(v, str) and v.startswith("FAILED")}
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
    scheduler = results["apscheduler"]
    assert {"cron", "date", "interval"} <= set(scheduler["triggers"])
    assert {"asyncio", "threadpool"} <= set(scheduler["executors"])
    assert scheduler["trigger"] == "IntervalTrigger"
    assert {"SecretService", "chainer", "libsecret"} <= set(results["keyring"]["entry_points"])
    assert results["market_hours"] == [True, False]
    assert results["zoneinfo"] == ["-1 day, 20:00:00", "2:00:00"]
    assert results["icon"] == [True, True, [16, 22, 24, 32, 48, 64, 128, 256, 512]]
    assert results["qt_svg"] is True
    print(f"keyring backends here: {results['keyring']['viable']}")


# --- the window and the headless engine ---------------------------------------------------


def test_window_starts_and_quits_by_itself_in_smoke_mode(app, env):
    result = run(app, {**env, "AUTOTRADER_SMOKE": "1"})
    assert "smoke: window shown (True), engine started" in result.stdout, result.stdout
    assert "Could not load the Qt platform plugin" not in result.stderr


def test_headless_runs_cycles_and_exits_0_on_sigterm(app, env):
    add_algorithm(app, "stdlib_numpy", STDLIB_ALGORITHM)
    run(app, env, "add", "SPY", "stdlib_numpy", "20000")
    lines: list[str] = []
    started = threading.Event()  # the engine runs, or the process has ended
    with subprocess.Popen(
        [str(app), "headless", "--every", "1"],
        env=env,
        cwd=env["HOME"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "headless engine running" in line:
                    started.set()
            started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert started.wait(TIMEOUT_S) and proc.poll() is None, "".join(lines)
            deadline = time.monotonic() + TIMEOUT_S
            trades = 0
            while trades < 2 and proc.poll() is None and time.monotonic() < deadline:
                [row] = json.loads(run(app, env, "list", "--json").stdout)  # ~0.3 s a call
                trades = row["trades"]
            assert trades >= 2, "".join(lines)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=TIMEOUT_S) == 0, "".join(lines)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(timeout=10)
    output = "".join(lines)
    assert "engine stopped" in output and not unexpected_tracebacks(output), output
