"""Paths inside trees: look one up, list a directory (optionally recursively), read a file.

Rules:
- Paths are ``/``-separated, relative to the root tree, without leading or trailing
  ``/``; ``""`` is the root. Names are bytes inside git; here they are str decoded as
  UTF-8 with ``surrogateescape`` so any byte name round-trips.
- Listings come in git's tree order (entries sorted as if a subtree's name ended in
  ``/``), recursive listings depth-first in that order, streamed as an iterator so a
  huge tree never sits in memory as one list.
- Errors: ``PathNotFound`` (no such path, or a path through a file), ``NotADirectory``
  / ``NotAFile`` when the path exists but has the other kind. ``MissingObject`` if the
  store is damaged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from storage.errors import MemoryLimitExceeded, StorageError
from storage.model import ObjType, Oid
from storage.objparse import parse_tree
from storage.repo_store import RepoStore

MAX_READ_BYTES = 128 << 20  # the most one read-API request holds of a single blob

MODE_TREE = 0o40000
MODE_LINK = 0o120000
MODE_GITLINK = 0o160000


class PathError(StorageError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class PathNotFound(PathError):
    """No such path in the tree."""


class NotADirectory(PathError):
    """The path names a file where a directory was asked for."""


class NotAFile(PathError):
    """The path names a directory (or submodule) where a file was asked for."""


@dataclass(frozen=True, slots=True)
class TreeItem:
    path: str
    mode: int
    oid: Oid

    @property
    def kind(self) -> str:
        """``tree``, ``blob`` or ``commit`` (a submodule), as ``git ls-tree`` says."""
        if self.mode == MODE_TREE:
            return "tree"
        if self.mode == MODE_GITLINK:
            return "commit"
        return "blob"


def decode_name(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def encode_name(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def normalize_path(path: str | None) -> str:
    """``path`` without surrounding slashes; ValueError for ``.``/``..``/empty components."""
    if not path:
        return ""
    clean = path.strip("/")
    if not clean:
        return ""
    for part in clean.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"bad path {path!r}: empty, '.' or '..' component")
    return clean


def entries(store: RepoStore, tree: Oid) -> list[tuple[bytes, int, Oid]]:
    """``(name, mode, oid)`` of one tree, in stored (git) order."""
    obj_type, data = store.get_object(tree)
    if obj_type != ObjType.TREE:
        raise StorageError(f"{tree.hex()} is not a tree")
    return [(e.name, int(e.mode, 8), e.oid) for e in parse_tree(data)]


def lookup(store: RepoStore, root: Oid, path: str) -> TreeItem | None:
    """The entry at ``path`` (the root itself for ``""``), or None when absent."""
    path = normalize_path(path)
    if not path:
        return TreeItem("", MODE_TREE, root)
    tree = root
    mode = MODE_TREE
    oid = root
    parts = path.split("/")
    for i, part in enumerate(parts):
        if mode != MODE_TREE:
            return None
        want = encode_name(part)
        for name, m, o in entries(store, tree):
            if name == want:
                mode, oid = m, o
                break
        else:
            return None
        if i < len(parts) - 1:
            tree = oid
    return TreeItem(path, mode, oid)


def require(store: RepoStore, root: Oid, path: str) -> TreeItem:
    """Like ``lookup`` but raises PathNotFound."""
    item = lookup(store, root, path)
    if item is None:
        raise PathNotFound(path, f"path {path!r} does not exist in this revision")
    return item


def list_tree(store: RepoStore, root: Oid, path: str = "", *, recursive: bool = False) -> Iterator[TreeItem]:
    """Entries under ``path``: a directory's children (every descendant if ``recursive``,
    subtrees included before their contents); a file lists as itself. Raises PathNotFound."""
    item = require(store, root, path)
    if item.mode != MODE_TREE:
        yield item
        return
    prefix = f"{item.path}/" if item.path else ""
    stack: list[Iterator[tuple[bytes, int, Oid]]] = [iter(entries(store, item.oid))]
    prefixes = [prefix]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            prefixes.pop()
            continue
        name, mode, oid = nxt
        child = TreeItem(prefixes[-1] + decode_name(name), mode, oid)
        yield child
        if recursive and mode == MODE_TREE:
            stack.append(iter(entries(store, oid)))
            prefixes.append(child.path + "/")


def read_blob(store: RepoStore, oid: Oid, limit: int | None = None) -> bytes:
    """A blob's whole content, refused with MemoryLimitExceeded when it is larger than
    ``limit`` (default ``MAX_READ_BYTES``, the actor's memory budget of DESIGN.md): a
    read that would hold more than the budget is an error, not an OOM kill."""
    limit = MAX_READ_BYTES if limit is None else limit
    header = store.object_header(oid)
    if header is not None and header[1] > limit:
        raise MemoryLimitExceeded(
            f"object {oid.hex()} has {header[1]} bytes, more than the {limit}-byte memory budget "
            "of one request; clone the repository to get it"
        )
    return store.get_object(oid)[1]


def read_file(store: RepoStore, root: Oid, path: str, limit: int | None = None) -> tuple[TreeItem, bytes]:
    """The file at ``path`` and its bytes (a symlink's bytes are its target).

    Raises PathNotFound, NotAFile for a directory or submodule, MemoryLimitExceeded for a
    file over ``limit`` bytes (see ``read_blob``)."""
    item = require(store, root, path)
    if item.mode in (MODE_TREE, MODE_GITLINK):
        what = "a directory" if item.mode == MODE_TREE else "a submodule"
        raise NotAFile(path, f"path {path!r} is {what}, not a file")
    return item, read_blob(store, item.oid, limit)
