"""Creating and removing a repository's SQLite file, and reading its size figures.

Rules:
- Synchronous, for a worker thread or the offline CLI. The catalog row comes first (it
  enforces name uniqueness), then the file; if the file cannot be made, the row goes.
- Removing a repo removes the database and its WAL/SHM/journal companions; a missing
  file is not an error (a half-created or already-removed repo).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from gitserver.catalog import Catalog, RepoRecord

if TYPE_CHECKING:
    from storage.repo_store import RepoStore

_COMPANIONS = ("", "-wal", "-shm", "-journal")


def create_repo(
    catalog: Catalog,
    namespace: str,
    name: str,
    *,
    description: str = "",
    default_branch: str = "main",
    read_only: bool = False,
    public: bool = False,
) -> RepoRecord:
    """Register the repo and create its empty store with HEAD -> the default branch.

    Raises catalog.RepoExists; storage errors propagate after the row is removed."""
    from storage.repo_store import RepoStore

    record = catalog.create(
        namespace,
        name,
        description=description,
        default_branch=default_branch,
        read_only=read_only,
        public=public,
    )
    try:
        record.path.parent.mkdir(parents=True, exist_ok=True)
        RepoStore.create(record.path, head=record.head_ref).close()
    except BaseException:
        catalog.delete(record.id)
        remove_files(record.path)
        raise
    return record


def remove_files(path: Path) -> None:
    for suffix in _COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


def size_figures(store: RepoStore) -> tuple[int, int]:
    """``(size_bytes, object_count)`` of a repo, for RepoInfo."""
    return store.stored_bytes(), store.object_count()


class CatalogBookkeeping:
    """A write hook (``ActorHost.write_hooks``, after durability): every write tells the
    catalog the repo's newest ref update and size figures, in the writer's thread and
    before the client sees success, so listings need not wake actors and an API read
    right after ``git push`` already shows it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def before_write(self, repo_id: str) -> None:
        pass

    def after_write(self, repo_id: str, store: RepoStore) -> None:
        size, count = size_figures(store)
        self.catalog.note_push(repo_id, last_ref_update_us(store), size, count)


def last_ref_update_us(store: RepoStore) -> int | None:
    """When a ref of the repo last moved (its newest reflog entry), or None."""
    entries = store.reflog(limit=1)
    return entries[0].at_us if entries else None
