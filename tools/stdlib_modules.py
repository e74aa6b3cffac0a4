"""Which standard-library, numpy and pandas modules the packaged app bundles for user
algorithms.

User algorithms may import any standard-library module, numpy and pandas
(docs/behaviour.md#packaging), but
PyInstaller only bundles what the app itself imports. build_app.spec therefore lists
every module found here as a hidden import, and tests/e2e/test_bundle.py checks
that every one of them that imports from source also imports inside the built bundle.

Modules are found by walking the interpreter's own files (nothing is imported), starting
from `sys.stdlib_module_names`. What is left out, and why, is in the constants below.
"""

from __future__ import annotations

import importlib.util
import pkgutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Top-level standard-library names that are not bundled.
EXCLUDED = {
    "test": "CPython's regression-test suite (~30 MB), 'for internal use by Python only'",
    "idlelib": "the IDLE editor, an application rather than a library",
    "turtledemo": "turtle demo programs, an application rather than a library",
}
# Subpackages that are a package's own test suite (ctypes.test, unittest.test,
# lib2to3.tests, sqlite3.test, tkinter.test, numpy._core.tests, ...).
TEST_SUBPACKAGES = {"test", "tests", "idle_test"}
# numpy's packaging and test plumbing, and its deprecated build system for compiling C and
# Fortran extensions (numpy.distutils, gone with Python 3.12; it needs setuptools' command
# machinery and a compiler, nothing a running app can use).
NUMPY_EXCLUDED = {
    "numpy._pyinstaller",
    "numpy.conftest",
    "numpy.distutils",
    "numpy.f2py._backends._distutils",
}
# pandas' pytest configuration (pytest), DataFrame.style (jinja2) and the matplotlib
# plotting backend (matplotlib): they need packages the bundle leaves out (build_app.spec).
PANDAS_EXCLUDED = {
    "pandas.conftest",
    "pandas.util._test_decorators",
    "pandas.io.formats.style",
    "pandas.io.formats.style_render",
    "pandas.plotting._matplotlib",
}
# Tk-based modules: bundled only when Tk is installed on the build machine (else _tkinter
# cannot load there and PyInstaller cannot collect Tcl/Tk's files).
TK_MODULES = {"tkinter", "_tkinter", "turtle"}
# In a virtual environment with setuptools, `import distutils` gives setuptools' copy (its
# .pth shim). The bundle has the standard library's own copy (build_app.spec leaves
# setuptools out: its run-time hooks would import setuptools and pkg_resources at every
# start), so that is the one walked.
SHIMMED = {"distutils"}
# Importing these does something visible (opens a web browser, prints, runs a program):
# bundled, but the import check in tests/e2e/test_bundle.py leaves them out.
NOISY_ON_IMPORT = {"antigravity", "this", "__hello__", "__phello__"}


def _stdlib_dirs() -> list[Path]:
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    dirs = {Path(paths["stdlib"]), Path(paths["platstdlib"])}
    return sorted(d.resolve() for d in dirs)


def _in_stdlib(origin: str | None, stdlib_dirs: list[Path]) -> bool:
    if origin in (None, "built-in", "frozen"):
        return True
    path = Path(origin).resolve()
    return any(path.is_relative_to(d) and "site-packages" not in path.parts for d in stdlib_dirs)


def tk_available() -> bool:
    """Whether Tk is installed here: `_tkinter` loads and Tcl finds its library."""
    try:
        import _tkinter  # noqa: F401
        import tkinter

        tkinter.Tcl()
    except Exception:
        return False
    return True


def _walk(package: str, locations: list[str]) -> Iterator[str]:
    """The submodules of `package` (found in `locations`), recursively, test suites left out."""
    for info in pkgutil.iter_modules(locations, prefix=package + "."):
        leaf = info.name.rpartition(".")[2]
        if info.ispkg and leaf in TEST_SUBPACKAGES:
            continue
        yield info.name
        if info.ispkg:
            yield from _walk(info.name, [str(Path(loc) / leaf) for loc in locations])


def stdlib_modules(include_tk: bool | None = None) -> list[str]:
    """Every standard-library module of this interpreter that the app bundles, sorted."""
    if include_tk is None:
        include_tk = tk_available()
    stdlib_dirs = _stdlib_dirs()
    found: set[str] = set()
    for name in sorted(sys.stdlib_module_names):
        if name in EXCLUDED or (name in TK_MODULES and not include_tk):
            continue
        if name in sys.builtin_module_names:
            found.add(name)
            continue
        if name in SHIMMED:
            own = [d / name for d in stdlib_dirs if (d / name / "__init__.py").is_file()]
            if own:
                found.add(name)
                found.update(_walk(name, [str(own[0])]))
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not _in_stdlib(spec.origin, stdlib_dirs):
            continue  # not built for this platform (winreg, _scproxy...) or shadowed
        found.add(name)
        found.update(_walk(name, list(spec.submodule_search_locations or [])))
    return sorted(found)


def _package_modules(package: str, excluded: set[str]) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = {package, *_walk(package, list(spec.submodule_search_locations))}
    return sorted(n for n in names if not any(n == x or n.startswith(x + ".") for x in excluded))


def numpy_modules() -> list[str]:
    """numpy and all its submodules, test suites and packaging hooks left out."""
    return _package_modules("numpy", NUMPY_EXCLUDED)


def pandas_modules() -> list[str]:
    """pandas and all its submodules, its test suite and pytest plumbing left out."""
    return _package_modules("pandas", PANDAS_EXCLUDED)


def import_check_modules(modules: list[str]) -> list[str]:
    """The modules the bundle's import check imports: all but noisy ones and `__main__`s."""
    return [
        m
        for m in modules
        if m.partition(".")[0] not in NOISY_ON_IMPORT and not m.endswith(".__main__")
    ]


if __name__ == "__main__":
    std, num, pd = stdlib_modules(), numpy_modules(), pandas_modules()
    print(f"{len(std)} standard-library modules, {len(num)} numpy and {len(pd)} pandas modules")
    print(f"Tk {'available' if tk_available() else 'not available'}")
