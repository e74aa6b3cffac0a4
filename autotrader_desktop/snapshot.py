"""An algorithm's snapshot: the exact source bytes it runs from, its own file and the sibling
files of the folder it imports, with one code version and its conventions.

The snapshot is taken once, when the algorithm is first loaded; from then on its instances
run those bytes whatever happens to the files (the snapshot rule). Editing or deleting a
sibling is drift just like editing the file itself.

Sibling imports: a file may import another file of the algorithm folder as
`from algorithm.<name> import ...`, `import algorithm.<name>`, `from algorithm import <name>`
(how the web AutoTrader's files refer to each other), `from .<name> import ...`, or plainly
`import <name>` / `from <name> import ...` when `<name>.py` is in the folder (files starting
with `_` included: helpers that are not algorithms themselves). The `algorithm.` forms
name a file that must exist; a missing one makes the snapshot fail with a clear reason.

Pure apart from `read`, the caller's way of getting a file's bytes (the disk for the module
cache, the bytes already read for discovery).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from autotrader_desktop import conventions
from autotrader_desktop.enums import Conventions

# The package name the web AutoTrader's files use for the algorithm folder.
FOLDER_PACKAGE = "algorithm"

Reader = Callable[[str], bytes | None]  # file stem -> its bytes, None if there is no such file


class SnapshotError(Exception):
    """The files cannot make a snapshot (a missing sibling...); the message is for the user."""


class UnusableSource(SnapshotError):
    """A file that is not read as source: too large, or not a regular file."""


# An algorithm file, or a file it imports: a few kB. Anything larger is refused unread
# (parsing a 50 MB file took a minute and 15 GB of memory).
MAX_SOURCE_BYTES = 2**20


def read_source(path: Path) -> bytes:
    """The file's bytes, reading at most MAX_SOURCE_BYTES + 1 of them.

    Raises UnusableSource for a file larger than that or that is not a regular file (a
    FIFO, a device: opened without blocking, so one never hangs a read), and OSError as
    opening it does (missing, a symlink loop, no permission).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnusableSource("not a regular file")
        source = file.read(MAX_SOURCE_BYTES + 1)
        if len(source) > MAX_SOURCE_BYTES:
            size = os.fstat(fd).st_size
            raise UnusableSource(
                f"too large to be an algorithm file ({size / 2**20:,.1f} MB; at most "
                f"{MAX_SOURCE_BYTES // 2**20} MB is read)"
            )
    return source


@dataclass(frozen=True)
class SourceFile:
    name: str  # file stem
    path: Path
    source: bytes


@dataclass(frozen=True)
class Snapshot:
    """`files[0]` is the algorithm's own file; the rest are its siblings, sorted by name."""

    files: tuple[SourceFile, ...]
    conventions: Conventions

    @property
    def name(self) -> str:
        return self.files[0].name

    @property
    def main(self) -> SourceFile:
        return self.files[0]

    @cached_property
    def siblings(self) -> dict[str, SourceFile]:
        return {f.name: f for f in self.files[1:]}

    @cached_property
    def code_version(self) -> str:
        return code_version(self.files)


def code_version(files: tuple[SourceFile, ...] | list[SourceFile]) -> str:
    """SHA-256 in hex. A lone file's is the hash of its bytes (what `sha256sum` prints);
    with siblings, a hash over every file's name and content hash."""
    if len(files) == 1:
        return hashlib.sha256(files[0].source).hexdigest()
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.source).digest())
    return digest.hexdigest()


def _parse(source: bytes, path: Path) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiler warnings about user code are not ours
        return ast.parse(source, filename=str(path))


@dataclass(frozen=True)
class FileFacts:
    """What a file's source says about its imports, parsed once (discovery caches these).

    plain: top-level names of plain imports (siblings if such a file exists);
    required: names it imports as `algorithm.<name>` or relatively (must exist);
    conventions: its own conventions (conventions.own), None if it says nothing.
    """

    plain: tuple[str, ...]
    required: tuple[str, ...]
    conventions: Conventions | None

    def to_json(self) -> str:
        return json.dumps([self.plain, self.required, self.conventions])

    @classmethod
    def from_json(cls, text: str) -> FileFacts:
        plain, required, own = json.loads(text)
        return cls(tuple(plain), tuple(required), Conventions(own) if own else None)


def file_facts(source: bytes, path: Path) -> FileFacts:
    """Raises SyntaxError or conventions.ConventionsError."""
    tree = _parse(source, path)
    plain: set[str] = set()
    required: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top != FOLDER_PACKAGE:
                    plain.add(top)
                elif rest:
                    required.add(rest.partition(".")[0])
        elif isinstance(node, ast.ImportFrom):
            top, _, rest = (node.module or "").partition(".")
            if node.level > 1:
                continue  # beyond the folder: fails at import, as it would anywhere
            if (node.level == 1 and not top) or (node.level == 0 and node.module == FOLDER_PACKAGE):
                required.update(alias.name for alias in node.names if alias.name != "*")
            elif node.level == 1:
                required.add(top)
            elif top == FOLDER_PACKAGE:
                required.add(rest.partition(".")[0])
            else:
                plain.add(top)
    return FileFacts(tuple(sorted(plain)), tuple(sorted(required)), conventions.own(tree))


FactsOf = Callable[[bytes, Path], FileFacts]


def take(name: str, folder: Path, read: Reader, facts: FactsOf = file_facts) -> Snapshot:
    """The snapshot of algorithm `name` in `folder`: its file and every sibling it imports,
    directly or through other siblings.

    Raises SnapshotError (file or a required sibling missing), SyntaxError (any of the
    files) or conventions.ConventionsError (a bad declaration).
    """
    sources: dict[str, bytes] = {}
    paths: dict[str, Path] = {}
    known: dict[str, FileFacts] = {}
    imports: dict[str, set[str]] = {}
    cache: dict[str, bytes | None] = {}

    def source_of(stem: str) -> bytes | None:
        if stem not in cache:
            cache[stem] = read(stem)
        return cache[stem]

    if source_of(name) is None:
        raise SnapshotError(f"algorithm file {name}.py not found in {folder}")
    todo = [name]
    while todo:
        stem = todo.pop()
        if stem in sources:
            continue
        data = source_of(stem)
        assert data is not None
        sources[stem] = data
        paths[stem] = path = folder / f"{stem}.py"
        known[stem] = found = facts(data, path)
        missing = sorted(n for n in found.required if source_of(n) is None)
        if missing:
            where = "" if stem == name else f" (in {stem}.py)"
            raise SnapshotError(
                f"imports {FOLDER_PACKAGE}.{missing[0]}{where}, but {missing[0]}.py is not in "
                "the algorithm folder"
            )
        wanted = set(found.required) | {n for n in found.plain if source_of(n) is not None}
        wanted.discard(stem)
        imports[stem] = wanted
        todo.extend(wanted)

    resolved: dict[str, Conventions] = {}

    def conventions_of(stem: str, seen: frozenset[str]) -> Conventions:
        if stem not in resolved:
            deps = [conventions_of(d, seen | {stem}) for d in sorted(imports[stem] - seen)]
            resolved[stem] = conventions.resolve(known[stem].conventions, deps)
        return resolved[stem]

    files = [SourceFile(name, paths[name], sources[name])]
    files += [SourceFile(s, paths[s], sources[s]) for s in sorted(sources) if s != name]
    return Snapshot(tuple(files), conventions_of(name, frozenset()))


def disk_reader(folder: Path) -> Reader:
    """Read `<stem>.py` of `folder` (at most MAX_SOURCE_BYTES); None when there is no such
    file. Raises SnapshotError, naming the file, for one that cannot be used."""

    def read(stem: str) -> bytes | None:
        if not stem.isidentifier():
            return None
        try:
            return read_source(folder / f"{stem}.py")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except UnusableSource as exc:
            raise SnapshotError(f"{stem}.py is {exc}") from None
        except OSError as exc:
            raise SnapshotError(f"cannot read {stem}.py: {exc.strerror or exc}") from None

    return read


def changed(snapshot: Snapshot, read: Reader) -> tuple[bool, bool]:
    """(some file differs from the snapshot, the algorithm's own file is gone)."""
    main_now = read(snapshot.name)
    if main_now is None:
        return True, True
    differs = main_now != snapshot.main.source or any(
        read(f.name) != f.source for f in snapshot.files[1:]
    )
    return differs, False
