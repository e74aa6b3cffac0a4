"""Time until the window is shown vs a bare script showing a plot with the same stack.

The bar (docs/behaviour.md#quality-bars): window shown <= 2x the time a bare script takes to
import the same stack and show an empty QMainWindow with a plot.

Both are measured the same way, each in a fresh interpreter (this venv's python,
offscreen): from starting the process until it prints its "shown" line on stdout.
- floor: a script importing PySide6, qasync, pyqtgraph, peewee, websockets, APScheduler
  and numpy (the modules the app uses of them) and showing a QMainWindow whose central
  widget is a pyqtgraph PlotWidget; it prints once the event loop runs with it shown;
- the app: `python -m autotrader_desktop` with AUTOTRADER_SMOKE=1, which prints
  "smoke: window shown (True)" once the window is shown and the event loop has run with
  it (the engine, a process of its own, is started after that and is not timed here).
  Its data directory is a temporary one, created by the untimed first run, so the timed
  runs are ordinary starts with no instances.
One untimed run of each warms the file cache; then REPEATS runs of each, alternating;
medians are compared.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 7
TARGET = 2.0
TIMEOUT_S = 120
APP_LINE = "smoke: window shown (True)"
FLOOR_LINE = "floor: window shown"

FLOOR_SCRIPT = f"""
import numpy
import peewee
import websockets.asyncio.client
import websockets.asyncio.server
import apscheduler.schedulers.asyncio
import qasync
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

app = QApplication([])
window = QMainWindow()
window.setWindowTitle("floor")
window.setCentralWidget(pg.PlotWidget())
window.resize(1200, 800)
window.show()

def shown():
    print("{FLOOR_LINE}", window.isVisible(), flush=True)
    app.quit()

QTimer.singleShot(0, shown)  # once the event loop runs with the window shown
app.exec()
"""


def time_until(command: list[str], line: str, env: dict[str, str], log: Path) -> float:
    """Seconds from starting `command` until it prints `line`; then let it finish."""
    with log.open("w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            for output in process.stdout:
                if output.startswith(line):
                    elapsed = time.perf_counter() - start
                    break
            else:
                raise RuntimeError(f"{command[1:]} never printed {line!r}:\n{log.read_text()}")
            process.stdout.read()  # until it closes: the process is ending by itself
            if process.wait(TIMEOUT_S) != 0:
                raise RuntimeError(f"{command[1:]} exited with {process.returncode}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        work = Path(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRADER_")}
        env |= {
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_CONFIG_HOME": str(work / "config"),  # QSettings: not the user's
        }
        app_env = env | {"AUTOTRADER_SMOKE": "1", "AUTOTRADER_DATA_DIR": str(work / "data")}
        floor_command = [sys.executable, "-c", FLOOR_SCRIPT]
        app_command = [sys.executable, "-m", "autotrader_desktop"]
        log = work / "stderr.log"

        def floor() -> float:
            return time_until(floor_command, FLOOR_LINE, env, log)

        def app() -> float:
            return time_until(app_command, APP_LINE, app_env, log)

        floor(), app()  # untimed: file cache, the app's data directory
        floors, apps = [], []
        for _ in range(REPEATS):
            floors.append(floor())
            apps.append(app())

    floor_s, app_s = statistics.median(floors), statistics.median(apps)
    ratio = app_s / floor_s
    print(f"bench_startup: process start until the window is shown, offscreen, {REPEATS} runs")
    print(f"floor (bare script, same stack, QMainWindow + PlotWidget): median {floor_s:.3f} s")
    print(f"  runs: {', '.join(f'{s:.3f}' for s in floors)}")
    print(f"app (python -m autotrader_desktop, smoke mode): median {app_s:.3f} s")
    print(f"  runs: {', '.join(f'{s:.3f}' for s in apps)}")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET:g}x)")
    print("PASS" if ratio <= TARGET else "FAIL")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
