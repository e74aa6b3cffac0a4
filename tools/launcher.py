"""Entry script of the packaged app (build_app.spec): the same `main` as `autotrader-desktop`.

`freeze_support()` lets user algorithms use multiprocessing with the spawn or forkserver
start methods inside the frozen app (it returns at once in the app's own process).
"""

import multiprocessing
import sys

from autotrader_desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
