"""The engine's log file (`headless --log-file`, how a window starts its engine): rotated
by size, the newest lines kept, and stdout/stderr following it. In a child process: the
log file takes over the process's fds 1 and 2."""

from __future__ import annotations

import re

from autotrader_desktop import logging_config
from tests.helpers import run_python, subprocess_env

LIMIT = 10_000
WRITER = f"""
import logging, os, sys
from pathlib import Path
from autotrader_desktop import logging_config

logging_config.LOG_FILE_BYTES = {LIMIT}
logging_config.configure(log_file=Path(sys.argv[1]))
log = logging.getLogger("writer")
for i in range(1000):
    log.info("line %04d", i)
print("printed to stdout", flush=True)
os.write(2, b"written to fd 2\\n")
log.info("the last line")
"""


def test_a_log_file_past_its_limit_is_rotated_and_the_newest_lines_kept(tmp_path):
    log = tmp_path / "engine.log"
    result = run_python(["-c", WRITER, str(log)], subprocess_env(tmp_path, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # all of it went to the file
    count = logging_config.LOG_FILE_BACKUPS
    backups = [log.with_name(f"engine.log.{n}") for n in range(1, count + 1)]
    assert all(path.is_file() for path in backups)
    assert not log.with_name(f"engine.log.{count + 1}").exists()  # the oldest was deleted
    for path in [log, *backups]:
        assert path.stat().st_size <= LIMIT, path
    # Oldest file first: the lines run on without a gap up to the newest.
    text = "".join(path.read_text() for path in [*reversed(backups), log])
    numbers = [int(n) for n in re.findall(r"writer: line (\d{4})", text)]
    assert numbers == list(range(numbers[0], 1000))
    assert numbers[0] > 0  # the oldest lines went with the deleted file
    # What bypasses logging lands in the current file, in order.
    tail = log.read_text().splitlines()[-3:]
    assert tail[0] == "printed to stdout" and tail[1] == "written to fd 2"
    assert tail[2].endswith("writer: the last line")
