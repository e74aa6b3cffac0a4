"""The in-memory module cache behind the snapshot rule.

An algorithm's file is read once, on the first run that needs it, and executed as a fresh
module object. From then on every instance of that algorithm, including instances created
later, runs that module: the file is never read again for execution, so editing, deleting
or renaming it changes nothing until `clear()` (engine restart). Each cached module carries
the SHA-256 of the source it was executed from, its *code version*.
"""

from __future__ import annotations

import enum
import threading
import types
from dataclasses import dataclass
from pathlib import Path

from autotrader_desktop import algorithm_loader
from autotrader_desktop.algorithm_loader import AlgorithmLoadError


@dataclass(frozen=True)
class LoadedAlgorithm:
    name: str
    path: Path
    module: types.ModuleType
    cls: type
    code_version: str


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
        path = self.path_of(name)
        try:
            source = path.read_bytes()
        except FileNotFoundError:
            raise AlgorithmLoadError(
                f"algorithm file {path.name} not found in {self.folder}"
            ) from None
        module = algorithm_loader.load_module(name, source, path)
        try:
            cls = algorithm_loader.algorithm_class(module)
        except AlgorithmLoadError:
            algorithm_loader.unload(module)
            raise
        return LoadedAlgorithm(name, path, module, cls, algorithm_loader.code_version(source))

    def drift(self, name: str) -> Drift | None:
        """Compare the cached code of `name` with its file; None if `name` is not cached."""
        cached = self.loaded_modules.get(name)
        if cached is None:
            return None
        try:
            source = cached.path.read_bytes()
        except FileNotFoundError:
            return Drift.DELETED
        if algorithm_loader.code_version(source) != cached.code_version:
            return Drift.EDITED
        return Drift.SAME

    def clear(self) -> None:
        """Forget every module, exactly as a process restart would."""
        with self._lock:
            for loaded in self.loaded_modules.values():
                algorithm_loader.unload(loaded.module)
            self.loaded_modules = {}
            self._load_locks = {}
