"""Where things live: the data directory and the algorithm folder, from source or frozen."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "AutoTraderDesktop"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def install_dir() -> Path:
    """The repository root when run from source; the executable's folder when frozen."""
    if is_frozen():
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parent.parent


def default_algorithm_dir() -> Path:
    return install_dir() / "algorithm"


def data_dir(option: str | None = None) -> Path:
    chosen = option or os.environ.get("AUTOTRADER_DATA_DIR")
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def algorithm_dir(resolved_setting: str | None) -> Path:
    return Path(resolved_setting).expanduser() if resolved_setting else default_algorithm_dir()
