"""Where things live: the data directory and the algorithm folder, from source or frozen.

Packaged (PyInstaller one-folder build, see build_app.spec and docs/packaging.md):

    autotrader-desktop/
        autotrader-desktop          the executable: install_dir()
        algorithm/                  the user's algorithm folder: default_algorithm_dir()
        _internal/                  the bundle: bundle_dir()
            algorithm_examples/     pristine copies of the examples, to re-seed algorithm/
            resources/              icon, desktop entry

The algorithm folder is re-created with the examples when it is missing at start. The data
directory is the platform's user data directory either way, so rebuilding or moving the
app never touches the user's instances and trades.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "AutoTraderDesktop"
# Inside the bundle (bundle_dir()): the examples that seed a missing algorithm folder.
EXAMPLES_DIR_NAME = "algorithm_examples"

log = logging.getLogger(__name__)


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def install_dir() -> Path:
    """The repository root when run from source; the executable's folder when frozen."""
    if is_frozen():
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """The environment of the app's worker processes (discovery, algorithm hosts): they
    must import this very autotrader_desktop, whatever the current directory or other
    installed copies."""
    env = dict(os.environ)
    if not is_frozen():
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def bundle_dir() -> Path:
    """The app's own read-only files: the repository root from source, the bundle's
    `_internal` folder (PyInstaller's `sys._MEIPASS`) when frozen."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS", install_dir()))
    return Path(__file__).resolve().parent.parent


def default_algorithm_dir() -> Path:
    """`algorithm/` beside the executable (or in the repository, from source).

    Frozen, a missing folder is re-created with the bundled examples first (see
    seed_algorithm_dir); an existing one is never touched, even if empty.
    """
    folder = install_dir() / "algorithm"
    if is_frozen() and not os.path.lexists(folder):
        seed_algorithm_dir(folder, bundle_dir() / EXAMPLES_DIR_NAME)
    return folder


def seed_algorithm_dir(folder: Path, examples: Path) -> bool:
    """Create `folder` holding copies of the `*.py` files in `examples`.

    All or nothing: the copies are made in a hidden folder beside it, which is then renamed
    into place, so an interrupted start or two starting at once never leave a half-filled
    folder. Returns False, with a warning logged, when it cannot be done (a read-only
    install folder, say); callers then report the missing folder as usual.
    """
    try:
        staging = Path(tempfile.mkdtemp(prefix=".algorithm-", dir=folder.parent))
    except OSError as exc:
        log.warning("cannot create the algorithm folder %s: %s", folder, exc.strerror or exc)
        return False
    try:
        for example in sorted(examples.glob("*.py")):
            shutil.copyfile(example, staging / example.name)
        staging.chmod(0o755)  # mkdtemp makes it private; this is an ordinary user folder
        os.rename(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if folder.is_dir():  # another start of the app got there first
            return True
        log.warning("cannot create the algorithm folder %s: %s", folder, exc.strerror or exc)
        return False
    log.info("created the algorithm folder %s with the example algorithms", folder)
    return True


def data_dir(option: str | None = None) -> Path:
    chosen = option or os.environ.get("AUTOTRADER_DATA_DIR")
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def algorithm_dir(resolved_setting: str | None) -> Path:
    return Path(resolved_setting).expanduser() if resolved_setting else default_algorithm_dir()
