"""The module cache behind the snapshot rule: which code each algorithm runs until restart.

An algorithm's snapshot (its file and the sibling files it imports, see snapshot.py) is
read once, on the first run that needs it; its hash is the *code version*. Its host (see
hosts/) loads the snapshot, never the files, and so does every later host of the same
algorithm (after a crash): editing, deleting or renaming the files changes nothing until
`clear()` (engine restart). Nothing here executes the code: user code runs only in hosts.
"""

from __future__ import annotations

import enum
import threading
import traceback
from pathlib import Path

from autotrader_desktop import snapshot
from autotrader_desktop.algorithm_loader import AlgorithmLoadError
from autotrader_desktop.conventions import ConventionsError
from autotrader_desktop.snapshot import Snapshot, SnapshotError


class SnapshotUnavailable(AlgorithmLoadError):
    """The files cannot make a snapshot; `details` is what the user reads under the message."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details or message


class Drift(enum.Enum):
    """How the files on disk compare with the cached code."""

    SAME = "same"
    EDITED = "edited on disk — restart engine to load"
    DELETED = "file deleted — running from memory"


class ModuleCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def path_of(self, name: str) -> Path:
        return self.folder / f"{name}.py"

    def get(self, name: str) -> Snapshot:
        """The snapshot of `name`, taken from the files now if there is none yet.

        Raises SnapshotUnavailable when the files cannot make one (missing, a bad sibling
        import, a syntax error, a bad conventions declaration).
        """
        with self._lock:
            cached = self.snapshots.get(name)
            if cached is None:
                cached = self.snapshots[name] = self._take(name)
            return cached

    def _take(self, name: str) -> Snapshot:
        try:
            return snapshot.take(name, self.folder, snapshot.disk_reader(self.folder))
        except (SnapshotError, ConventionsError) as exc:
            raise SnapshotUnavailable(str(exc)) from None
        except SyntaxError as exc:  # found by parsing, before anything runs
            where = f" (line {exc.lineno})" if exc.lineno else ""
            raise SnapshotUnavailable(
                f"SyntaxError: {exc.msg}{where}",
                "Traceback (most recent call last):\n"
                + "".join(traceback.format_exception_only(exc)),
            ) from None

    def forget(self, taken: Snapshot) -> None:
        """Drop a snapshot that failed to load: the next instance reads the files again
        (the rule protects code that actually loaded)."""
        with self._lock:
            if self.snapshots.get(taken.name) is taken:
                del self.snapshots[taken.name]

    def drift(self, name: str) -> Drift | None:
        """Compare the cached snapshot of `name` with the files; None if it is not cached."""
        cached = self.snapshots.get(name)
        if cached is None:
            return None
        differs, deleted = snapshot.changed(cached, snapshot.disk_reader(self.folder))
        if deleted:
            return Drift.DELETED
        return Drift.EDITED if differs else Drift.SAME

    def clear(self) -> None:
        """Forget every snapshot, exactly as a process restart would."""
        with self._lock:
            self.snapshots = {}
