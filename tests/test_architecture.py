"""The core (everything but autotrader_desktop/ui/) loads no Qt, even indirectly or by name.

The static rules (who may import Qt, the window, the command line) are import-linter
contracts in pyproject.toml, checked by `lint-imports` in `make test`; this checks what
actually gets imported at run time.
"""

from __future__ import annotations

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
    "autotrader_desktop.broker.paper",
    "autotrader_desktop.broker.alpaca",
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
