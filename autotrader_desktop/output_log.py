"""What algorithms print and log, as stored: per instance, capped and rotated.

An instance keeps its newest `output_lines_kept` lines (setting, default 2,000); older
lines are deleted as new ones come in, so a chatty algorithm cannot grow the database
without end (see docs/limits.md for what that costs per day).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence

# An instance's lines are rotated once it has written this share of its cap since the last
# rotation: the delete walks the kept lines' index entries, so rotating after every run
# would cost more than the writes. An instance holds at most 1.1 x the cap.
ROTATE_AFTER = 0.1

# Lines written per instance since its last rotation (in this process).
_written: Counter[int] = Counter()


def store(conn: sqlite3.Connection, lines: Sequence[tuple[int, str, str, str]], keep: int) -> None:
    """Insert (instance id, timestamp, stream, text) lines, then rotate the instances that
    wrote enough since their last rotation. Call inside the write transaction."""
    conn.executemany(
        "INSERT INTO output_lines (instance_id, timestamp, stream, text) VALUES (?, ?, ?, ?)",
        lines,
    )
    _written.update(line[0] for line in lines)
    due = [i for i in {line[0] for line in lines} if _written[i] >= max(1, keep * ROTATE_AFTER)]
    for instance_id in due:
        conn.execute(
            "DELETE FROM output_lines WHERE instance_id = ?1 AND id <= (SELECT id FROM"
            " output_lines WHERE instance_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            (instance_id, keep),
        )
        del _written[instance_id]
