"""Text from algorithms made safe to store and log.

Whatever an algorithm prints, raises or returns may contain lone surrogates (a half-decoded
emoji, `os.fsdecode` of a non-UTF-8 name) that SQLite and UTF-8 log files refuse, or NUL
characters that some readers cut at. Every string that comes back from an algorithm host
passes through `safe_text` before it reaches the database or a log, so one instance's
output can never fail another's save.
"""

from __future__ import annotations


def safe_text(text: str, limit: int | None = None) -> str:
    """`text` as a str that encodes as UTF-8, at most `limit` characters (… marks a cut)."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates become \udXXX escapes: visible, and the rest stays readable.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")
