"""Which calling conventions an algorithm file runs with, decided from its source alone.

Two sets exist (docs/legacy.md):

- MODERN: `run(current_time, algo_id)` gets an aware UTC datetime, and the instance's
  `Algorithm` object is created on its first run and kept until restart.
- LEGACY, as the web AutoTrader did it: `current_time` is the string
  'YYYY-MM-DDTHH:MM:SSZ' and a fresh `Algorithm(ticker, initial_capital)` is made for every
  run (its state lives in the transaction history, not on `self`).

How a file's conventions are decided, first rule that applies:
1. an explicit module-level `AUTOTRADER_CONVENTIONS = "legacy"` (or `"modern"`);
2. it imports the web AutoTrader's modules (`database...`, `system_databse...`): legacy;
3. it imports `autotrader_desktop...`: modern;
4. otherwise those of the sibling files it imports (a subclass of a legacy file runs like
   it), legacy if any of them is;
5. otherwise, a file with no such imports at all: modern.

Pure (no I/O, nothing executed): the engine, algorithm hosts and discovery share it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from autotrader_desktop.enums import Conventions

DECLARATION = "AUTOTRADER_CONVENTIONS"
LEGACY_TOP_MODULES = frozenset({"database", "system_databse"})
MODERN_TOP_MODULE = "autotrader_desktop"


class ConventionsError(ValueError):
    """An explicit declaration that cannot be honoured; the message says what is valid."""


def _top_modules(tree: ast.AST) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.partition(".")[0])
    return tops


def declared(tree: ast.Module) -> Conventions | None:
    """The conventions a module-level `AUTOTRADER_CONVENTIONS = "..."` states, if any."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == DECLARATION for t in targets):
            continue
        value = node.value
        text = value.value if isinstance(value, ast.Constant) else None
        try:
            return Conventions(str(text).strip().lower())
        except ValueError:
            raise ConventionsError(
                f'{DECLARATION} must be "legacy" or "modern" (line {node.lineno})'
            ) from None
    return None


def own(tree: ast.Module) -> Conventions | None:
    """What the file itself says or implies (rules 1-3); None when it says nothing."""
    explicit = declared(tree)
    if explicit is not None:
        return explicit
    tops = _top_modules(tree)
    if tops & LEGACY_TOP_MODULES:
        return Conventions.LEGACY
    if MODERN_TOP_MODULE in tops:
        return Conventions.MODERN
    return None


def resolve(main: Conventions | None, siblings: Iterable[Conventions | None]) -> Conventions:
    """Rules 4 and 5: the main file's own conventions, else its siblings', else modern."""
    if main is not None:
        return main
    if Conventions.LEGACY in set(siblings):
        return Conventions.LEGACY
    return Conventions.MODERN


def detect(source: bytes | str) -> Conventions:
    """Conventions of a single file, ignoring siblings (raises SyntaxError, ConventionsError)."""
    return resolve(own(ast.parse(source)), ())
