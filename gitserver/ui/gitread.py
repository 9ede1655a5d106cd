"""The UI's window onto a repository: thin calls into the storage read layer.

Rules:
- Nothing here computes Git: revisions come from ``storage.revisions``, trees and files
  from ``storage.treeview``, logs from ``storage.history``, diffs from ``storage.diff``
  (the same functions the REST read API uses). This module only packs their results
  into what one page needs, in one worker-thread call per page (``RepoActor.run_read``).
- Storage errors become ``ApiError`` (``NOT_FOUND`` for unknown revisions and paths,
  ``INVALID_INPUT`` for malformed or ambiguous ones), so the UI answers like the API.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from gitserver.catalog import RepoRecord
from gitserver.errors import ApiError, invalid_input, not_found
from gitserver.ui.context import Ctx
from gitserver.ui.diffview import FileChange
from storage import revisions
from storage.model import ObjType, Oid, ReflogEntry

if TYPE_CHECKING:
    from storage import history, treeview
    from storage.repo_store import RepoStore

T = TypeVar("T")


async def read(ctx: Ctx, record: RepoRecord, fn: Callable[..., T], *args: Any) -> T:
    """``fn(store, *args)`` on a read connection of the repo's actor, errors mapped."""
    from storage import treeview  # imported late: the read layer loads with the first page

    try:
        return await ctx.actor(record).run_read(fn, *args)
    except (revisions.BadRevision, revisions.AmbiguousRevision) as exc:
        raise invalid_input(str(exc)) from None
    except (revisions.UnknownRevision, treeview.PathNotFound) as exc:
        raise not_found(str(exc)) from None
    except ValueError as exc:  # treeview.normalize_path: '.', '..', empty components
        raise invalid_input(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    path: str
    kind: str  # tree, blob, commit (submodule)
    mode: int
    size: int | None


@dataclass(frozen=True, slots=True)
class TreePage:
    commit: history.Commit
    item: treeview.TreeItem
    entries: list[Entry]  # empty for a file


@dataclass(frozen=True, slots=True)
class RefsView:
    head: str
    branches: list[tuple[str, str]]  # (short name, hex)
    tags: list[tuple[str, str]]
    other: list[tuple[str, str]]


def refs_view(store: RepoStore) -> RefsView:
    branches, tags, other = [], [], []
    for name, oid in sorted(store.refs().items()):
        if name.startswith("refs/heads/"):
            branches.append((name[len("refs/heads/") :], oid.hex()))
        elif name.startswith("refs/tags/"):
            tags.append((name[len("refs/tags/") :], oid.hex()))
        else:
            other.append((name, oid.hex()))
    return RefsView(store.head(), branches, tags, other)


def tree_page(store: RepoStore, rev: str, path: str) -> TreePage:
    """The commit ``rev`` names and what is at ``path`` in it (a directory's entries
    in git order, with blob sizes)."""
    from storage import history, treeview

    oid = revisions.resolve_commit(store, rev)
    commit = history.read_commit(store, oid)
    item = treeview.require(store, commit.tree, path)
    entries: list[Entry] = []
    if item.kind == "tree":
        for child in treeview.list_tree(store, commit.tree, item.path):
            header = store.object_header(child.oid) if child.kind == "blob" else None
            name = child.path.rsplit("/", 1)[-1]
            entries.append(Entry(name, child.path, child.kind, child.mode, header[1] if header else None))
    entries.sort(key=lambda e: e.kind != "tree")  # directories first, git order within each group
    return TreePage(commit, item, entries)


def file_page(store: RepoStore, rev: str, path: str) -> tuple[history.Commit, treeview.TreeItem, bytes]:
    from storage import history, treeview

    oid = revisions.resolve_commit(store, rev)
    commit = history.read_commit(store, oid)
    try:
        item, data = treeview.read_file(store, commit.tree, path)
    except treeview.NotAFile as exc:
        raise ApiError("INVALID_INPUT", str(exc)) from None
    return commit, item, data


def log_page(
    store: RepoStore, rev: str, path: str, skip: int, limit: int
) -> tuple[list[history.Commit], bool]:
    """Commits ``skip .. skip+limit`` of ``git log REV -- PATH``, and whether more follow."""
    from storage import history

    start = revisions.resolve_commit(store, rev)
    got = list(itertools.islice(history.walk(store, start, path), skip, skip + limit + 1))
    return got[:limit], len(got) > limit


def commit_info(store: RepoStore, rev: str) -> history.Commit:
    from storage import history

    return history.read_commit(store, revisions.resolve_commit(store, rev))


def object_type(store: RepoStore, oid: Oid) -> ObjType | None:
    header = store.object_header(oid)
    return header[0] if header else None


def reflog(store: RepoStore, ref: str | None) -> list[ReflogEntry]:
    """The repo's permanent reflog (one ref, or all), oldest first, for the timeline."""
    return list(reversed(store.reflog(ref=ref)))


MAX_DIFF_FILES = 300


def diff_files(store: RepoStore, from_rev: str | None, to_rev: str) -> list[FileChange]:
    """What changed from ``from_rev`` (None: the empty tree, for a root commit) to
    ``to_rev``, per file: ``storage.diff.diff_trees`` (renames as ``git diff -M``, patches
    identical to git's), the first ``MAX_DIFF_FILES`` files."""
    from storage import diff

    old_tree = revisions.resolve_treeish(store, from_rev) if from_rev else None
    new_tree = revisions.resolve_treeish(store, to_rev)
    out: list[FileChange] = []
    for fd in itertools.islice(diff.diff_trees(store, old_tree, new_tree), MAX_DIFF_FILES):
        change = fd.change
        out.append(
            FileChange(
                path=change.path,
                old_path=change.old.path if change.old is not None else None,
                status=change.status,
                additions=fd.additions,
                deletions=fd.deletions,
                binary=fd.binary,
                patch=fd.patch.decode("utf-8", "replace"),
            )
        )
    return out
