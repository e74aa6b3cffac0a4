"""The discovery worker: imports algorithm files for discovery, in a process of its own.

User code runs here, never in the app process. Started by `discovery.scan` with
`discovery.worker_command()`; from source `python -m autotrader_desktop.discovery_worker`,
in the packaged app `<exe> _discovery-worker` (the CLI dispatches that to `main`).

Protocol. stdin: one JSON document, a list of snapshots, each a list of files
`{"name", "path", "source"}`, the algorithm's own first, then the siblings it imports (source
in base64: the exact bytes the parent hashed, so the verdict belongs to that content even if
the files change meanwhile). stdout: JSON lines, `{"ready": true}` once set up, then one
`{"name", "available", "error"}` per file, in order, flushed as soon as it is known, so the
parent can time each file and tell which one killed or hung the worker.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

from autotrader_desktop.algorithm_loader import AlgorithmLoadError, algorithm_class, load, unload
from autotrader_desktop.enums import Conventions
from autotrader_desktop.snapshot import Snapshot, SourceFile

MAX_REASON_CHARS = 300


def _line_in(tb: TracebackType | None, filename: str) -> int | None:
    """The line of the deepest traceback frame running `filename`, if any."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe(exc: BaseException, filename: str) -> str:
    """One line for the user: `Type: first line of the message (line N)`.

    N is a line of the user's file (`filename`): a syntax error's own line, else the deepest
    frame of that file in the traceback (for a failing nested import, the import line).
    No path is included, so the text stays true when the file is renamed.
    """
    syntax_error = exc if isinstance(exc, SyntaxError) and exc.filename == filename else None
    try:
        message = (syntax_error.msg or "") if syntax_error else str(exc)
    except Exception:  # a user exception whose __str__ raises
        message = "<message could not be shown>"
    lines = message.strip().splitlines()
    text = type(exc).__name__ + (f": {lines[0].strip()}" if lines else "")
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    line = syntax_error.lineno if syntax_error else _line_in(exc.__traceback__, filename)
    return f"{text} (line {line})" if line else text


def check(taken: Snapshot) -> str | None:
    """Import the snapshot as a run would load it; None if usable, else why not."""
    try:
        module = load(taken)
    except BaseException as exc:  # user code may raise anything, SystemExit included
        return describe(exc, str(taken.main.path))
    try:
        algorithm_class(module)
    except AlgorithmLoadError as exc:
        return str(exc)
    finally:
        unload(module)
    return None


def _snapshot(files: list[dict[str, str]]) -> Snapshot:
    sources = tuple(
        SourceFile(f["name"], Path(f["path"]), base64.b64decode(f["source"])) for f in files
    )
    # Conventions only matter to runs, not to whether the files import.
    return Snapshot(sources, Conventions.MODERN)


def _send(protocol: IO[str], message: dict[str, Any]) -> None:
    protocol.write(json.dumps(message) + "\n")
    protocol.flush()


def main() -> NoReturn:
    """Run the worker on this process's stdin/stdout; never returns."""
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so whatever
    # user code prints (even from C, or via sys.__stdout__) cannot corrupt the protocol.
    # os.dup makes the copy non-inheritable, so processes user code starts do not get it.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)
    # At the fd level: sys.stdin may be None in a windowed (frozen) build.
    with open(0, "rb", closefd=False) as stdin:
        jobs = json.loads(stdin.read())
    # User code that reads stdin gets end-of-file rather than our pipe.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # Imported before "ready" so that the first file's time limit is not spent on it.
    import autotrader_desktop.api  # noqa: F401

    _send(protocol, {"ready": True})
    for job in jobs:
        taken = _snapshot(job)
        error = check(taken)
        _send(protocol, {"name": taken.name, "available": error is None, "error": error})
    # Skip interpreter shutdown: threads or atexit handlers left by user code must not keep
    # the worker alive or run more user code.
    os._exit(0)


if __name__ == "__main__":
    main()
