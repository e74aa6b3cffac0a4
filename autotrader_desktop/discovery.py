"""Algorithm discovery: which files in the algorithm folder can run, and why the others cannot.

`scan(folder)` lists the folder afresh on every call. Each file's verdict is cached in the
database under a hash of its content and the environment (see docs/discovery.md), so an
unchanged folder rescans by reading and hashing files, without running anything. A file
seen for the first time is checked in two steps:

1. here, with `ast` (nothing is executed): it parses and binds the name `Algorithm`;
2. in a worker process (`discovery_worker`), which imports it exactly as a run would.
   User code never runs in the app process and never enters its module cache. A file that
   kills or hangs the worker is excluded and a fresh worker checks the files after it.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import json
import logging
import os
import queue
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import peewee

import autotrader_desktop
from autotrader_desktop import database, snapshot
from autotrader_desktop.conventions import ConventionsError
from autotrader_desktop.database import DiscoveryVerdict, SourceFacts
from autotrader_desktop.discovery_worker import describe
from autotrader_desktop.enums import Conventions
from autotrader_desktop.paths import is_frozen, worker_env

log = logging.getLogger(__name__)

IMPORT_TIMEOUT_S = 10.0
# Starting the worker (a fresh interpreter importing the data API) is not charged to any
# file; this limit only catches a worker that cannot start at all.
STARTUP_TIMEOUT_S = 60.0
# The packaged app's CLI dispatches this first argument to discovery_worker.main().
FROZEN_WORKER_ARG = "_discovery-worker"
ALGORITHM_CLASS = "Algorithm"
# Host parameters per statement, under SQLite's historical limit of 999.
_SQL_PARAMS = 900


class AlgorithmFolderError(Exception):
    """The algorithm folder cannot be scanned; the message says what the user can do."""


@dataclass(frozen=True)
class AlgorithmFile:
    """One `*.py` file of the algorithm folder and whether it can be used."""

    name: str  # file stem, e.g. "sma_crossover"
    path: Path
    available: bool
    error: str | None  # why not, in one line (with the line number when there is one)
    # The conventions its instances run with (conventions.py); None when not available.
    conventions: Conventions | None = None


class _Verdict(NamedTuple):
    available: bool
    error: str | None
    # False when the verdict says more about the machine or the app than about the file.
    cacheable: bool = True


def worker_command() -> list[str]:
    """The argv that starts a discovery worker, from source or in the packaged app."""
    if is_frozen():
        return [sys.executable, FROZEN_WORKER_ARG]
    return [sys.executable, "-m", "autotrader_desktop.discovery_worker"]


def scan(folder: Path, *, import_timeout: float = IMPORT_TIMEOUT_S) -> list[AlgorithmFile]:
    """Every algorithm file in `folder`, sorted by name, each available or with its reason.

    `import_timeout` bounds each file's import in the worker. Raises AlgorithmFolderError
    when the folder cannot be listed. Uses the verdict cache of the open database, if any.
    """
    folder = Path(folder)
    paths = _list_folder(folder)
    environment = _environment_key()
    verdicts: dict[Path, _Verdict] = {}
    sources: dict[str, bytes] = {}
    for path in paths:
        try:
            sources[path.stem] = snapshot.read_source(path)
        except OSError as exc:
            verdicts[path] = _Verdict(False, f"cannot read the file: {exc.strerror or exc}", False)
        except snapshot.UnusableSource as exc:
            verdicts[path] = _Verdict(False, str(exc), False)
    # Each file is hashed once: the facts cache and the verdict key both use the digest.
    digests = {id(source): hashlib.sha256(source).digest() for source in sources.values()}
    facts = _Facts(digests)
    disk = snapshot.disk_reader(folder)

    def read(stem: str) -> bytes | None:
        # Files starting with "_" are not listed (not algorithms) but may be imported.
        return sources[stem] if stem in sources else disk(stem) if stem.startswith("_") else None

    snapshots: dict[Path, snapshot.Snapshot] = {}
    keys: dict[Path, str] = {}
    for path in paths:
        if path in verdicts:
            continue
        try:
            taken = snapshot.take(path.stem, folder, read, facts.of)
        except SyntaxError as exc:
            verdicts[path] = _Verdict(False, describe(exc, str(path)))
            continue
        except (snapshot.SnapshotError, ConventionsError) as exc:
            verdicts[path] = _Verdict(False, str(exc))
            continue
        snapshots[path] = taken
        parts = [environment, *(facts.digest(f.source) for f in taken.files)]
        keys[path] = hashlib.sha256(b"".join(parts)).hexdigest()
    facts.store()

    cached = _load_verdicts(list(keys.values()))
    new: dict[Path, _Verdict] = {}
    to_import: list[snapshot.Snapshot] = []
    for path, key in keys.items():
        if key in cached:
            verdicts[path] = cached[key]
            continue
        verdict = _static_verdict(sources[path.stem], path)
        if verdict is None:
            to_import.append(snapshots[path])
        else:
            new[path] = verdict
    if to_import:
        imported = _import_verdicts(to_import, import_timeout)
        new.update(zip([s.main.path for s in to_import], imported, strict=True))
    verdicts.update(new)
    _store_verdicts({keys[path]: v for path, v in new.items() if v.cacheable})
    return [
        AlgorithmFile(
            path.stem,
            path,
            verdicts[path].available,
            verdicts[path].error,
            snapshots[path].conventions if verdicts[path].available else None,
        )
        for path in paths
    ]


class _Facts:
    """Each source's FileFacts, from the database cache or parsed once (then stored)."""

    def __init__(self, digests: dict[int, bytes]) -> None:
        # id(source) -> its SHA-256: keyed by identity, the bytes objects of this scan stay
        # alive in its `sources`, and hashing them again to look them up would cost as much.
        self._digests = digests
        self._known: dict[str, snapshot.FileFacts] = {}
        self._new: dict[str, snapshot.FileFacts] = {}
        keys = [digest.hex() for digest in digests.values()]
        if keys and not database.db.deferred:
            try:
                for start in range(0, len(keys), _SQL_PARAMS):
                    chunk = keys[start : start + _SQL_PARAMS]
                    rows = database.db.execute_sql(
                        "SELECT key, facts FROM source_facts "
                        f"WHERE key IN ({', '.join('?' * len(chunk))})",
                        chunk,
                    )
                    self._known.update(
                        (key, snapshot.FileFacts.from_json(text)) for key, text in rows
                    )
            except (peewee.DatabaseError, ValueError) as exc:
                log.warning("discovery: cannot read cached import facts (%s)", exc)

    def digest(self, source: bytes) -> bytes:
        found = self._digests.get(id(source))
        if found is None:  # a file starting with "_", read for an import
            found = hashlib.sha256(source).digest()
        return found

    def of(self, source: bytes, path: Path) -> snapshot.FileFacts:
        key = self.digest(source).hex()
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = self._new[key] = snapshot.file_facts(source, path)
        return found

    def store(self) -> None:
        if not self._new or database.db.deferred:
            return
        rows = [{"key": k, "facts": f.to_json()} for k, f in self._new.items()]
        try:
            with database.write_transaction():
                for start in range(0, len(rows), _SQL_PARAMS // 2):
                    chunk = rows[start : start + _SQL_PARAMS // 2]
                    SourceFacts.insert_many(chunk).on_conflict_replace().execute()
        except peewee.DatabaseError as exc:
            log.warning("discovery: cannot cache import facts (%s)", exc)


def _is_candidate(entry: os.DirEntry) -> bool:
    """A `*.py` file to list: a file, or a symlink (a broken or looping one is listed too,
    and excluded with its reason, rather than hiding it or failing the whole folder)."""
    if not entry.name.endswith(".py") or entry.name.startswith(("_", ".")):
        return False
    try:
        return entry.is_file() or entry.is_symlink()
    except OSError:  # a symlink loop
        return True


def _list_folder(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if _is_candidate(entry)]
    except FileNotFoundError:
        raise AlgorithmFolderError(
            f"The algorithm folder {folder} does not exist. Create it, or choose another "
            "folder with --algorithm-dir, AUTOTRADER_ALGORITHM_DIR or Settings."
        ) from None
    except NotADirectoryError:
        raise AlgorithmFolderError(
            f"The algorithm folder {folder} is a file, not a folder. Choose a folder with "
            "--algorithm-dir, AUTOTRADER_ALGORITHM_DIR or Settings."
        ) from None
    except OSError as exc:
        raise AlgorithmFolderError(
            f"The algorithm folder {folder} cannot be read ({exc.strerror or exc}). "
            "Check its permissions, or choose another folder."
        ) from None
    return [folder / name for name in sorted(names, key=lambda n: n[:-3])]


def _environment_key() -> bytes:
    """What, besides a file's content, decides whether it imports (see docs/discovery.md)."""
    parts = [sys.version, autotrader_desktop.__version__]
    if not is_frozen():
        # From source the app can change without a version bump (a git pull): these files
        # decide what algorithms can import and how reasons read.
        package = Path(autotrader_desktop.__file__).parent
        for name in ("algorithm_loader.py", "api.py", "discovery_worker.py", "snapshot.py"):
            try:
                parts.append(hashlib.sha256((package / name).read_bytes()).hexdigest())
            except OSError:
                parts.append(f"{name}: unreadable")
        # Installing or removing a package changes its folder's mtime, so a file that
        # failed on a missing package is checked again once the user has installed it.
        folders = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
        if site.ENABLE_USER_SITE:
            folders.add(site.getusersitepackages())
        for folder in sorted(folders):
            try:
                parts.append(f"{folder} {os.stat(folder).st_mtime_ns}")
            except OSError:
                parts.append(f"{folder} missing")
    return hashlib.sha256("\n".join(parts).encode()).digest()


def _static_verdict(source: bytes, path: Path) -> _Verdict | None:
    """Syntax and the Algorithm name, checked without executing anything; None: import it."""
    try:
        # Compiler warnings about user code (invalid escapes...) are not ours to show.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError, RecursionError) as exc:
        return _Verdict(False, describe(exc, str(path)))
    if not _binds_algorithm(tree):
        return _Verdict(False, f"no top-level class named {ALGORITHM_CLASS}")
    return None


def _binds_algorithm(tree: ast.Module) -> bool:
    """Whether module-level code binds the name `Algorithm`.

    A class statement, usually; an import or assignment (`Algorithm = MyStrategy`) counts
    too, because the runner accepts any class under that name (the worker checks it is
    one). Module-level if/try/with blocks are looked into; function and class bodies are
    other scopes and are not.
    """
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if isinstance(node, ast.ClassDef) and node.name == ALGORITHM_CLASS:
                return True
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound = [alias.asname or alias.name.partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.Assign):
            bound = [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and node.value and isinstance(node.target, ast.Name):
            bound = [node.target.id]
        else:
            bound = []
        if ALGORITHM_CLASS in bound:
            return True
        todo.extend(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
        )
    return False


def _load_verdicts(keys: list[str]) -> dict[str, _Verdict]:
    if not keys or database.db.deferred:
        return {}
    found: dict[str, _Verdict] = {}
    try:
        for start in range(0, len(keys), _SQL_PARAMS):
            chunk = keys[start : start + _SQL_PARAMS]
            rows = database.db.execute_sql(
                "SELECT key, available, error FROM discovery_verdicts "
                f"WHERE key IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((key, _Verdict(bool(ok), error)) for key, ok, error in rows)
    except peewee.DatabaseError as exc:
        # The cache only saves time: without it, files are checked again.
        log.warning("discovery: cannot read cached verdicts (%s)", exc)
        return {}
    return found


def _store_verdicts(verdicts: dict[str, _Verdict]) -> None:
    if not verdicts or database.db.deferred:
        return
    rows = [{"key": k, "available": v.available, "error": v.error} for k, v in verdicts.items()]
    per_statement = _SQL_PARAMS // 3
    try:
        with database.write_transaction():
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                DiscoveryVerdict.insert_many(chunk).on_conflict_replace().execute()
    except peewee.DatabaseError as exc:
        log.warning("discovery: cannot cache verdicts (%s)", exc)


def _import_verdicts(jobs: list[snapshot.Snapshot], timeout: float) -> list[_Verdict]:
    """One verdict per job, in order, from as many workers as it takes."""
    verdicts: list[_Verdict] = []
    while len(verdicts) < len(jobs):
        # Each pass decides at least one file, so this ends.
        verdicts += _worker_pass(jobs[len(verdicts) :], timeout)
    return verdicts


def _worker_pass(jobs: list[snapshot.Snapshot], timeout: float) -> list[_Verdict]:
    """Run one worker over `jobs`; verdicts for the prefix it got through.

    If a file kills or hangs the worker, that file's verdict ends the list. If the worker
    never gets going, every job gets an uncached "not checked" verdict.
    """
    payload = json.dumps(
        [
            [
                {"name": f.name, "path": str(f.path), "source": base64.b64encode(f.source).decode()}
                for f in job.files
            ]
            for job in jobs
        ]
    ).encode()
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                worker_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,  # a file, not a pipe: user output can never block the worker
                env=worker_env(),
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            return [_not_checked(str(exc))] * len(jobs)
        lines: queue.Queue[bytes | None] = queue.Queue()
        pump = threading.Thread(
            target=_pump, args=(proc, payload, lines), name="discovery-worker", daemon=True
        )
        pump.start()
        verdicts: list[_Verdict] = []
        ready = False
        outcome = "done"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while len(verdicts) < len(jobs):
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    outcome = "hung"
                    break
                if line is None:
                    outcome = "died"
                    proc.wait()  # for its real exit code, before the kill below
                    break
                message = json.loads(line)
                if ready:
                    verdicts.append(_Verdict(message["available"], message["error"]))
                else:
                    ready = message == {"ready": True}
                # Each file's time starts when the worker is done with the one before.
                deadline = time.monotonic() + timeout
        finally:
            # Done, dead, hung or interrupted: it has nothing left to do for us.
            proc.kill()
            proc.wait()
            pump.join(timeout=5)
        if not ready:
            if outcome == "hung":
                detail = f"no answer within {STARTUP_TIMEOUT_S:g} s"
            else:
                stderr.seek(0)
                said = stderr.read().decode(errors="replace").strip().splitlines()
                detail = said[-1] if said else _exit_text(proc.returncode)
            return [_not_checked(detail)] * len(jobs)
        # Cached like any verdict, so that a file that hangs or kills the worker costs one
        # time-out, not one per scan; editing the file checks it again.
        if outcome == "hung":
            verdicts.append(_Verdict(False, f"import did not finish within {timeout:g} s"))
        elif outcome == "died":
            code = proc.returncode
            verdicts.append(_Verdict(False, f"import ended the process ({_exit_text(code)})"))
        return verdicts


def _pump(proc: subprocess.Popen[bytes], payload: bytes, lines: queue.Queue[bytes | None]) -> None:
    """Feed the jobs to the worker, then relay its stdout lines; None marks the end."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        # OSError: the worker is gone already; its exit says why. close() releases the pipe
        # even when flushing fails, so nothing is left to complain at garbage collection.
        with contextlib.suppress(OSError):
            proc.stdin.write(payload)
        with contextlib.suppress(OSError):
            proc.stdin.close()
        for line in proc.stdout:
            lines.put(line)
    finally:
        proc.stdout.close()
        lines.put(None)


def _not_checked(detail: str) -> _Verdict:
    # Not cached: it is about the worker, not the file.
    return _Verdict(False, f"not checked: the discovery worker failed to start ({detail})", False)


def _exit_text(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"
