"""The web AutoTrader's read-only surface, under its old module names.

Algorithm files written for the web AutoTrader import `database.db_manager`,
`system_databse.system_db_manager` and `system_databse.card_calculations`; inside
algorithm modules those names resolve to the modules of this package (algorithm_loader),
which give the old names, parameters and return shapes on top of the app's own API, with
that system's conventions: regular-session bars with integer volume, second-resolution
timestamps, lenient arguments. Whatever would write (record a trade, create an algorithm,
insert bars) raises ReadOnlyError naming the function: the engine does that here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn


class ReadOnlyError(RuntimeError):
    """An algorithm called a web AutoTrader function that would write."""


def read_only(module: str, name: str, instead: str) -> Callable[..., NoReturn]:
    """A stand-in for the old writer `module.name` that refuses, saying what to do."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            f"{module}.{name}() is not available to algorithms in AutoTrader Desktop: {instead}"
        )

    refuse.__name__ = refuse.__qualname__ = name
    return refuse
