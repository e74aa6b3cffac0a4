"""Turning an algorithm file's source into a fresh module object.

Shared by the module cache (which executes algorithms) and the discovery worker (which only
checks that a file imports), so that both see a file exactly the same way.

Legacy imports: files written for the web AutoTrader say
`from database.db_manager import get_data_for_algorithm` and
`from system_databse.system_db_manager import get_transactions`. Those names resolve to
`autotrader_desktop.api`, but only inside algorithm modules: each gets its own
`__builtins__` whose `__import__` knows them, so no `database` package ever lands on
`sys.path` or in `sys.modules` for the rest of the process.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import inspect
import linecache
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

API_MODULE = "autotrader_desktop.api"
# legacy package -> {submodule name: module it stands for}
LEGACY_PACKAGES = {
    "database": {"db_manager": API_MODULE},
    "system_databse": {"system_db_manager": API_MODULE},
}
# Dotted, so that algorithms' loggers (named after __name__) share one parent.
MODULE_PREFIX = "autotrader_algorithms."


class AlgorithmLoadError(Exception):
    """A file that cannot serve as an algorithm; the message says why, for the user."""


def _legacy_package(name: str) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = []
    for sub, target in LEGACY_PACKAGES[name].items():
        setattr(package, sub, importlib.import_module(target))
    return package


def _algorithm_import(
    name: str,
    globals: Mapping[str, object] | None = None,
    locals: Mapping[str, object] | None = None,
    fromlist: Sequence[str] = (),
    level: int = 0,
) -> ModuleType:
    if level == 0:
        top, _, sub = name.partition(".")
        if top in LEGACY_PACKAGES and (not sub or sub in LEGACY_PACKAGES[top]):
            package = _legacy_package(top)
            return getattr(package, sub) if sub and fromlist else package
    return builtins.__import__(name, globals, locals, fromlist, level)


_ALGORITHM_BUILTINS = {**builtins.__dict__, "__import__": _algorithm_import}


def code_version(source: bytes) -> str:
    """The SHA-256 of the source, in hex: what the user sees as the code version."""
    return hashlib.sha256(source).hexdigest()


def load_module(name: str, source: bytes, path: Path) -> types.ModuleType:
    """Execute `source` as a brand-new module named for algorithm `name`.

    Raises whatever the module raises on import (SyntaxError included); the caller decides
    how to report it.
    """
    filename = str(path)
    code = compile(source, filename, "exec", dont_inherit=True)
    module = types.ModuleType(MODULE_PREFIX + name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = _ALGORITHM_BUILTINS
    # Tracebacks must show the code that ran, not whatever the file holds later.
    text = source.decode("utf-8", errors="replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    # Registered while cached: dataclasses, typing and pickle look classes up here.
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return module


def algorithm_class(module: types.ModuleType) -> type:
    cls = module.__dict__.get("Algorithm")
    if not inspect.isclass(cls):
        raise AlgorithmLoadError("no top-level class named Algorithm")
    return cls


def unload(module: types.ModuleType) -> None:
    if sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]
