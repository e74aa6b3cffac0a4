"""What `Algorithm.run` may return, and the check that enforces it."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

ACTIONS = ("buy", "sell", "hold")
# More shares than any company has issued; bigger numbers would overflow the books.
MAX_SHARES = 10**12


class InvalidDecision(ValueError):
    """The algorithm returned something other than (action, shares)."""


@dataclass(frozen=True)
class Decision:
    action: str
    shares: int

    def __str__(self) -> str:
        return f"{self.action} {self.shares}"

    @property
    def is_order(self) -> bool:
        return self.action != "hold" and self.shares > 0


def _quote(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ raises
        return f"<{type(value).__name__} object whose repr() failed>"
    if not isinstance(text, str):
        return f"<{type(value).__name__} object>"
    return text if len(text) <= 200 else text[:197] + "..."


def validate(returned: Any) -> Decision:
    """(action, shares) from a run's return value; InvalidDecision quoting it otherwise."""
    what = f"run() returned {_quote(returned)}"
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise InvalidDecision(f"{what}; expected a 2-tuple (action, shares)")
    action, shares = returned
    if not isinstance(action, str) or action not in ACTIONS:
        raise InvalidDecision(f"{what}; action must be 'buy', 'sell' or 'hold'")
    # numpy integers are Integral; bools are too, and are refused on purpose.
    if isinstance(shares, bool) or not isinstance(shares, numbers.Integral):
        raise InvalidDecision(f"{what}; shares must be a whole number (int)")
    count = int(shares)
    if not 0 <= count <= MAX_SHARES:
        raise InvalidDecision(f"{what}; shares must be between 0 and {MAX_SHARES:,}")
    return Decision(str(action), count)
