"""Commit history like ``git log REV [-- PATH]``: parsed commits, walked newest first, by page.

Rules:
- Order is git log's default: a queue by committer date (newest first, ties in the
  order they were queued), each commit shown once, its parents queued when it is shown.
- A path filter keeps commits that change PATH (a file, or anything under a
  directory) with git's default history simplification: a commit whose tree at PATH
  equals one of its parents' is not shown and only that parent (the first such) is
  followed; a root commit is shown when PATH exists in it.
- Pages: ``log_page`` returns at most ``limit`` commits and the walk's frontier (the
  queued commits) as the cursor for the next page, so paging costs O(page), not
  O(position). Commits reachable along two paths across a page boundary can only
  repeat if committer dates go backwards along history (clock skew).
- Memory: the queue and the seen set of one page only.
- In a shallow repository (an import with a depth) the log stops at its shallow
  commits, shown as parentless (as ``git log`` in a shallow clone).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from storage.errors import StorageError
from storage.model import ObjType, Oid
from storage.objparse import parse_commit
from storage.repo_store import RepoStore
from storage.treeview import lookup

MAX_FRONTIER = 512  # queued commits a cursor may carry


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    email: str
    time: int  # unix seconds
    tz: str  # "+0200"


@dataclass(frozen=True, slots=True)
class Commit:
    oid: Oid
    tree: Oid
    parents: tuple[Oid, ...]
    author: Identity
    committer: Identity
    message: str


def parse_identity(value: bytes) -> Identity:
    """``Name <email> 1700000000 +0200`` (lenient: damaged lines give empty fields)."""
    lt = value.find(b"<")
    gt = value.find(b">", lt + 1)
    if lt < 0 or gt < 0:
        return Identity(value.decode("utf-8", "replace").strip(), "", 0, "+0000")
    name = value[:lt].strip().decode("utf-8", "replace")
    email = value[lt + 1 : gt].decode("utf-8", "replace")
    rest = value[gt + 1 :].split()
    secs = int(rest[0]) if rest and rest[0].isdigit() else 0
    tz = rest[1].decode("ascii", "replace") if len(rest) > 1 else "+0000"
    return Identity(name, email, secs, tz)


def parse_full_commit(oid: Oid, data: bytes) -> Commit:
    """Every field the API shows; raises ObjectCorrupt for a malformed header."""
    info = parse_commit(data)
    head, _, body = data.partition(b"\n\n")
    author = committer = Identity("", "", 0, "+0000")
    encoding = "utf-8"
    for line in head.split(b"\n"):
        if line.startswith(b"author "):
            author = parse_identity(line[7:])
        elif line.startswith(b"committer "):
            committer = parse_identity(line[10:])
        elif line.startswith(b"encoding "):
            encoding = line[9:].decode("ascii", "replace").strip() or "utf-8"
    try:
        message = body.decode(encoding, "replace")
    except LookupError:
        message = body.decode("utf-8", "replace")
    return Commit(oid, info.tree, info.parents, author, committer, message)


def read_commit(store: RepoStore, oid: Oid) -> Commit:
    obj_type, data = store.get_object(oid)
    if obj_type != ObjType.COMMIT:
        raise StorageError(f"{oid.hex()} is not a commit")
    return parse_full_commit(oid, data)


def _at_path(store: RepoStore, tree: Oid, path: str) -> tuple[int, Oid] | None:
    item = lookup(store, tree, path)
    return (item.mode, item.oid) if item else None


@dataclass(slots=True)
class LogPage:
    commits: list[Commit]
    frontier: list[Oid]  # commits still queued; empty when history is exhausted


def log_page(store: RepoStore, starts: Sequence[Oid], limit: int, path: str = "") -> LogPage:
    """Up to ``limit`` commits of the history from ``starts``, newest first.

    ``starts`` is one commit for a first page, a previous page's frontier afterwards."""
    counter = itertools.count()
    queue: list[tuple[int, int, Oid, Commit]] = []
    queued: set[Oid] = set()
    shallow = store.shallow_commits()

    def push(oid: Oid) -> None:
        if oid in queued:
            return
        queued.add(oid)
        commit = read_commit(store, oid)
        if oid in shallow:
            commit = replace(commit, parents=())
        heapq.heappush(queue, (-commit.committer.time, next(counter), oid, commit))

    for oid in starts:
        push(oid)
    out: list[Commit] = []
    while queue and len(out) < limit:
        _, _, oid, commit = heapq.heappop(queue)
        follow, show = _simplify(store, commit, path)
        if show:
            out.append(commit)
        for parent in follow:
            push(parent)
    frontier = [item[2] for item in sorted(queue)]
    return LogPage(out, frontier)


def _simplify(store: RepoStore, commit: Commit, path: str) -> tuple[tuple[Oid, ...], bool]:
    """(parents to follow, whether to show ``commit``) under a path filter."""
    if not path:
        return commit.parents, True
    here = _at_path(store, commit.tree, path)
    if not commit.parents:
        return (), here is not None
    for parent in commit.parents:
        if _at_path(store, read_commit(store, parent).tree, path) == here:
            return (parent,), False
    return commit.parents, True


def walk(store: RepoStore, start: Oid, path: str = "") -> Iterator[Commit]:
    """Every commit of the history from ``start`` (for callers that want a plain iterator)."""
    frontier: list[Oid] = [start]
    while frontier:
        page = log_page(store, frontier, 100, path)
        yield from page.commits
        frontier = page.frontier


@dataclass(frozen=True, slots=True)
class ReflogRow:
    id: int
    ref: str
    old: Oid
    new: Oid
    at_us: int
    token_id: str | None
    via: str
    message: str


def reflog_page(
    store: RepoStore,
    ref: str | None,
    since_us: int | None,
    until_us: int | None,
    limit: int,
    before_id: int | None = None,
) -> tuple[list[ReflogRow], int | None]:
    """Reflog rows newest first (``at`` bounds inclusive) and the cursor of the next page
    (the last row's id, or None when no row is left)."""
    where: list[str] = []
    args: list[object] = []
    for cond, value in (
        ("ref = ?", ref),
        ("at >= ?", since_us),
        ("at <= ?", until_us),
        ("id < ?", before_id),
    ):
        if value is not None:
            where.append(cond)
            args.append(value)
    sql = "SELECT id, ref, old, new, at, token_id, via, message FROM reflog"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit + 1)
    rows = [
        ReflogRow(i, r, bytes(o), bytes(n), at, tok, via, msg or "")
        for i, r, o, n, at, tok, via, msg in store.connection.execute(sql, args)
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
