"""The in-memory module cache behind the snapshot rule.

An algorithm's snapshot (its file and the sibling files it imports, see snapshot.py) is
read once, on the first run that needs it, and executed as fresh module objects. From then
on every instance of that algorithm, including instances created later, runs that module:
the files are never read again for execution, so editing, deleting or renaming them
changes nothing until `clear()` (engine restart). Each cached module carries its snapshot,
whose hash is the *code version*, and the conventions its instances run with.
"""

from __future__ import annotations

import enum
import threading
import types
from dataclasses import dataclass
from pathlib import Path

from autotrader_desktop import algorithm_loader, snapshot
from autotrader_desktop.algorithm_loader import AlgorithmLoadError
from autotrader_desktop.conventions import ConventionsError
from autotrader_desktop.enums import Conventions
from autotrader_desktop.snapshot import Snapshot, SnapshotError


@dataclass(frozen=True)
class LoadedAlgorithm:
    name: str
    path: Path
    module: types.ModuleType
    cls: type
    snapshot: Snapshot

    @property
    def code_version(self) -> str:
        return self.snapshot.code_version

    @property
    def conventions(self) -> Conventions:
        return self.snapshot.conventions


class Drift(enum.Enum):
    """How the file on disk compares with the cached code."""

    SAME = "same"
    EDITED = "edited on disk — restart engine to load"
    DELETED = "file deleted — running from memory"


class ModuleCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loaded_modules: dict[str, LoadedAlgorithm] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    def path_of(self, name: str) -> Path:
        return self.folder / f"{name}.py"

    def get(self, name: str) -> LoadedAlgorithm:
        """The cached module for `name`, loading the file now if it is not cached yet.

        Raises AlgorithmLoadError (missing file, no Algorithm class) or whatever the module
        raises on import; failed loads are not cached.
        """
        cached = self.loaded_modules.get(name)
        if cached is not None:
            return cached
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        # Instances of one new algorithm may start together: load the file once.
        with load_lock:
            cached = self.loaded_modules.get(name)
            if cached is None:
                cached = self._load(name)
                self.loaded_modules[name] = cached
            return cached

    def _load(self, name: str) -> LoadedAlgorithm:
        try:
            taken = snapshot.take(name, self.folder, snapshot.disk_reader(self.folder))
        except (SnapshotError, ConventionsError) as exc:
            raise AlgorithmLoadError(str(exc)) from None
        module = algorithm_loader.load(taken)
        try:
            cls = algorithm_loader.algorithm_class(module)
        except AlgorithmLoadError:
            algorithm_loader.unload(module)
            raise
        return LoadedAlgorithm(name, self.path_of(name), module, cls, taken)

    def drift(self, name: str) -> Drift | None:
        """Compare the cached snapshot of `name` with the files; None if it is not cached."""
        cached = self.loaded_modules.get(name)
        if cached is None:
            return None
        differs, deleted = snapshot.changed(cached.snapshot, snapshot.disk_reader(self.folder))
        if deleted:
            return Drift.DELETED
        return Drift.EDITED if differs else Drift.SAME

    def clear(self) -> None:
        """Forget every module, exactly as a process restart would."""
        with self._lock:
            for loaded in self.loaded_modules.values():
                algorithm_loader.unload(loaded.module)
            self.loaded_modules = {}
            self._load_locks = {}
