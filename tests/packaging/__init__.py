"""Tests of the packaged app: its files (normal run) and the built bundle (`-m bundle`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_tool(name: str):
    """A module from tools/ (not a package: build_app.spec puts tools/ on sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


stdlib_modules = load_tool("stdlib_modules")
