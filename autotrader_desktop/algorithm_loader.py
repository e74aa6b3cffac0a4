"""Turning an algorithm's snapshot (snapshot.py) into fresh module objects.

Shared by the module cache (which executes algorithms) and the discovery worker (which only
checks that a file imports), so that both see a file exactly the same way.

Imports inside algorithm modules go through the snapshot's own `__import__` (each module
gets its own `__builtins__`), which knows three kinds of names that nothing else in the
process sees, so no such package ever lands on `sys.path` or shadows anything:
- the web AutoTrader's modules (`database.db_manager`, `system_databse.system_db_manager`,
  `system_databse.card_calculations`), served by `autotrader_desktop.legacy`;
- `algorithm.<name>` and `algorithm` (the folder as the web AutoTrader's package);
- the snapshot's sibling files by their plain names.
A sibling is executed once per snapshot, from the snapshot's bytes, on first import.
"""

from __future__ import annotations

import builtins
import inspect
import linecache
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autotrader_desktop.legacy import card_calculations, db_manager, system_db_manager
from autotrader_desktop.snapshot import FOLDER_PACKAGE, Snapshot, SourceFile

# legacy package -> {submodule name: module it stands for}. Imported here, not by name at
# run time, so that the packaged app's analysis sees them.
LEGACY_PACKAGES = {
    "database": {"db_manager": db_manager},
    "system_databse": {
        "system_db_manager": system_db_manager,
        "card_calculations": card_calculations,
    },
}
# Dotted, so that algorithms' loggers (named after __name__) share one parent.
MODULE_PREFIX = "autotrader_algorithms."


class AlgorithmLoadError(Exception):
    """A file that cannot serve as an algorithm; the message says why, for the user."""


def _legacy_package(name: str) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = []
    for sub, target in LEGACY_PACKAGES[name].items():
        setattr(package, sub, target)
    return package


class _Loader:
    """The modules of one snapshot, executed on demand, and the import function they share."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.prefix = MODULE_PREFIX + snapshot.name
        self.modules: dict[str, types.ModuleType] = {}
        self.builtins = {**builtins.__dict__, "__import__": self._import}
        self.package = types.ModuleType(FOLDER_PACKAGE)
        self.package.__path__ = []

    def module(self, stem: str) -> types.ModuleType:
        """The module of `stem` (the main file or a sibling), executing it on first use."""
        if stem in self.modules:  # also while it executes: circular imports see it
            return self.modules[stem]
        file = self.snapshot.main if stem == self.snapshot.name else self.snapshot.siblings[stem]
        name = self.prefix if stem == self.snapshot.name else f"{self.prefix}.{stem}"
        try:
            module = _execute(
                file, name, self.builtins, lambda m: self.modules.__setitem__(stem, m)
            )
        except BaseException:
            self.modules.pop(stem, None)
            raise
        setattr(self.package, stem, module)
        return module

    def _import(
        self,
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        top, _, sub = name.partition(".")
        siblings = self.snapshot.siblings
        if level == 0 and top in LEGACY_PACKAGES and (not sub or sub in LEGACY_PACKAGES[top]):
            package = _legacy_package(top)
            return getattr(package, sub) if sub and fromlist else package
        if (level == 0 and top == FOLDER_PACKAGE) or level == 1:
            stem = sub if level == 0 else top
            if stem in siblings or stem == self.snapshot.name:
                module = self.module(stem)
                return module if fromlist else self.package
            if not stem:  # `from algorithm import x` / `from . import x`
                for item in fromlist or ():
                    if item in siblings:
                        self.module(item)
                return self.package
        if level == 0 and not sub and top in siblings:
            return self.module(top)
        return builtins.__import__(name, globals, locals, fromlist, level)

    def unload(self) -> None:
        for module in self.modules.values():
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]


def _execute(
    file: SourceFile,
    name: str,
    module_builtins: dict[str, Any],
    register: Callable[[types.ModuleType], None],
) -> types.ModuleType:
    filename = str(file.path)
    code = compile(file.source, filename, "exec", dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = module_builtins
    # Tracebacks must show the code that ran, not whatever the file holds later.
    text = file.source.decode("utf-8", errors="replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    # Registered while cached: dataclasses, typing and pickle look classes up here.
    sys.modules[name] = module
    register(module)
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load(snapshot: Snapshot) -> types.ModuleType:
    """Execute the snapshot's main file (and the siblings it imports) as brand-new modules.

    Raises whatever the modules raise on import (SyntaxError included); the caller decides
    how to report it. `unload` forgets them again.
    """
    loader = _Loader(snapshot)
    try:
        module = loader.module(snapshot.name)
    except BaseException:
        loader.unload()
        raise
    module.__dict__["__autotrader_loader__"] = loader
    return module


def algorithm_class(module: types.ModuleType) -> type:
    cls = module.__dict__.get("Algorithm")
    if not inspect.isclass(cls):
        raise AlgorithmLoadError("no top-level class named Algorithm")
    return cls


def unload(module: types.ModuleType) -> None:
    loader = module.__dict__.get("__autotrader_loader__")
    if isinstance(loader, _Loader):
        loader.unload()
    elif sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]
