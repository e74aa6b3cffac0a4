"""The core (everything but autotrader_desktop/ui/) imports no Qt."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.helpers import REPO, run_python, subprocess_env

PACKAGE = REPO / "autotrader_desktop"
QT_PACKAGES = ("PySide6", "shiboken6", "qasync", "pyqtgraph")
# Modules every build has; the check below must at least cover these.
EXPECTED_CORE = {
    "autotrader_desktop.cli",
    "autotrader_desktop.database",
    "autotrader_desktop.discovery",
    "autotrader_desktop.engine",
    "autotrader_desktop.module_cache",
    "autotrader_desktop.orchestrator",
    "autotrader_desktop.paper_broker",
    "autotrader_desktop.feed.market_data",
    "autotrader_desktop.feed",
}


def core_files() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "ui" and "__pycache__" not in path.parts
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules() -> list[str]:
    # __main__ runs the program when imported.
    return [module_name(p) for p in core_files() if p.name != "__main__.py"]


def test_the_core_is_what_we_think_it_is():
    modules = set(core_modules())
    assert modules >= EXPECTED_CORE
    assert not any(".ui" in m for m in modules)


def import_in_fresh_process(modules: list[str], tmp_path: Path) -> dict[str, list[str]]:
    """Import `modules` in a new interpreter: what ended up in sys.modules, and which of
    it is Qt."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"qt = sorted(m for m in sys.modules if m.split('.')[0] in {QT_PACKAGES!r})\n"
        "print(json.dumps({'imported': sorted(sys.modules), 'qt': qt}))\n"
    )
    env = subprocess_env(tmp_path / "data", tmp_path / "algorithm")
    result = run_python(["-c", script], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_core_loads_no_qt(tmp_path):
    modules = core_modules()
    report = import_in_fresh_process(modules, tmp_path)
    assert set(report["imported"]) >= set(modules)
    assert report["qt"] == []


def test_the_fresh_process_check_sees_qt(tmp_path):
    report = import_in_fresh_process(["autotrader_desktop.clock", "pyqtgraph"], tmp_path)
    assert {"pyqtgraph", "PySide6", "shiboken6"} <= set(report["qt"])


def qt_imports(path: Path) -> list[str]:
    """`import X` / `from X import ...` statements of Qt packages anywhere in the file,
    including inside functions, plus importlib.import_module / __import__ of them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT_PACKAGES]
    return found


def test_no_core_file_has_a_qt_import_statement():
    files = core_files()
    assert len(files) >= len(EXPECTED_CORE)
    assert [hit for path in files for hit in qt_imports(path)] == []


def test_the_import_check_sees_qt_imports(tmp_path):
    """The AST check is not vacuous: it finds each form of Qt import."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "import PySide6.QtCore\n"
        "def f():\n"
        "    from pyqtgraph import PlotWidget\n"
        "    import importlib\n"
        "    importlib.import_module('qasync')\n"
        "    __import__('shiboken6')\n"
    )
    assert sorted(hit.split()[1] for hit in qt_imports(sample)) == [
        "PySide6.QtCore",
        "pyqtgraph",
        "qasync",
        "shiboken6",
    ]
