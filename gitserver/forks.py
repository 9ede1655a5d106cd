"""Forks that copy no objects, made lazily, and the pools that outlive deleted parents.

How it works:
- Creating a fork writes one catalog row and nothing else: the row names its parent
  (``forked_from``) and its refs (``ref_set``: a hash into ``ref_sets``, where the refs are
  kept once, zlib-compressed, for every fork that has the same refs). No SQLite file yet,
  so a fork costs a catalog row (~0.3 KiB), whatever the size of the parent.
- The fork's own file is made on first use (``materialize``, called by the actor host
  when it wakes a repo whose file is absent): an empty RepoStore whose ``alternates`` name
  the parent's file (relative path), its refs created as at fork time (reflog entries
  ``via: fork`` dated when the fork was made). It is built under a temporary name and
  linked into place, so concurrent wakers agree and a crash leaves no half-made file.
  The parent is made first when it is itself an unmade fork.
- Objects are never copied: the fork's reads fall through to its parent's file (and its
  parent's alternates: at most ``MAX_DEPTH`` levels), its pushes go to its own file.
- Deleting a repo that forks still name moves its row to ``pools``: the file stays,
  nameless and tokenless, as an object pool. Deleting the last repo that names a pool
  removes the pool's file too, and so on up the chain (``delete`` returns every file to
  remove). All these decisions happen in one catalog transaction.
- Surviving the data dir (gitserver.catalog_mirror, gitserver.tiering): pending ref sets
  and pools are mirrored to the blob store; with tiering, a missing file is rebuilt
  parent-first along ``lineage`` (a manifest first, else ``build_file`` from the ref set,
  then ``finish`` once the new file is shipped).

Synchronous (catalog, SQLite); async callers use a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path

from gitserver.catalog import Catalog, RepoRecord
from storage.model import ZERO_OID, Oid, PushContext, RefCommand
from storage.repo_store import MAX_ALTERNATE_DEPTH

MAX_DEPTH = MAX_ALTERNATE_DEPTH  # ancestors a fork may have (alternates nest this deep)


class ForkError(Exception):
    """A fork that cannot be made (chain too deep)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A repo or pool row, as far as forks care."""

    id: str
    path: Path
    forked_from: str | None
    ref_set: str | None
    default_branch: str
    created_at: int


def encode_refs(refs: dict[str, Oid]) -> tuple[str, bytes]:
    """``(hash, compressed blob)`` of a set of refs; equal sets give equal hashes."""
    raw = json.dumps(sorted((name, oid.hex()) for name, oid in refs.items()), separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest(), zlib.compress(raw, 9)


def decode_refs(blob: bytes) -> dict[str, Oid]:
    return {name: bytes.fromhex(oid) for name, oid in json.loads(zlib.decompress(blob))}


def pick_refs(refs: dict[str, Oid], default_branch: str, default_branch_only: bool) -> dict[str, Oid]:
    """The refs a fork starts with: all of them, or only the default branch."""
    if not default_branch_only:
        return dict(refs)
    head = f"refs/heads/{default_branch}"
    return {head: refs[head]} if head in refs else {}


def pending_refs(catalog: Catalog, record: RepoRecord) -> dict[str, Oid] | None:
    """The refs of a fork whose file is not made yet; None once it has a file."""
    if record.ref_set is None or record.path.exists():
        return None
    with catalog.tx() as db:
        row = db.execute("SELECT data FROM ref_sets WHERE hash = ?", (record.ref_set,)).fetchone()
    return decode_refs(row[0]) if row else {}


def create_fork(
    catalog: Catalog,
    parent: RepoRecord,
    parent_refs: dict[str, Oid],
    *,
    namespace: str,
    name: str,
    read_only: bool,
    default_branch_only: bool,
) -> RepoRecord:
    """Register a fork of ``parent`` holding ``parent_refs`` (filtered). No file is made.

    Raises catalog.RepoExists, catalog.ParentGone, ForkError (chain too deep)."""
    if _depth(catalog, parent.id) >= MAX_DEPTH:
        raise ForkError(f"a fork may have at most {MAX_DEPTH} ancestors")
    digest, blob = encode_refs(pick_refs(parent_refs, parent.default_branch, default_branch_only))
    with catalog.tx() as db:
        db.execute("INSERT OR IGNORE INTO ref_sets(hash, data) VALUES (?, ?)", (digest, blob))
    try:
        return catalog.create(
            namespace,
            name,
            description=parent.description,
            default_branch=parent.default_branch,
            read_only=read_only,
            public=parent.public,
            forked_from=parent.id,
            ref_set=digest,
        )
    except BaseException:
        with catalog.tx() as db:
            _drop_ref_set(db, digest)
        raise


def materialize(catalog: Catalog, repo_id: str) -> None:
    """Make the file of a fork (repo or pool) that has none yet; a no-op otherwise."""
    node = build_file(catalog, repo_id)
    if node is not None:
        finish(catalog, node)


def build_file(catalog: Catalog, repo_id: str) -> Node | None:
    """Make the file of a pending fork (repo or pool) from its ref set, without touching
    the catalog (``finish`` does); returns the node it was made for, None when there was
    nothing to make. Its parent is made first when it is itself an unmade fork."""
    from storage.repo_store import RepoStore

    node = _node_by_id(catalog, repo_id)
    if node is None or node.ref_set is None or node.path.exists():
        return None
    if node.forked_from is None:
        return None
    parent = _node_by_id(catalog, node.forked_from)
    if parent is None:
        raise FileNotFoundError(f"parent {node.forked_from} of fork {repo_id} is gone")
    materialize(catalog, parent.id)
    with catalog.tx() as db:
        row = db.execute("SELECT data FROM ref_sets WHERE hash = ?", (node.ref_set,)).fetchone()
    refs = decode_refs(row[0]) if row else {}
    node.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = node.path.with_name(f"{node.path.name}.{secrets.token_hex(4)}.tmp")
    try:
        alternate = os.path.relpath(parent.path, node.path.parent)
        with RepoStore.create(tmp, head=f"refs/heads/{node.default_branch}", alternates=[alternate]) as store:
            commands = [RefCommand(ZERO_OID, oid, ref) for ref, oid in sorted(refs.items())]
            result = store.update_refs(commands, PushContext(via="fork"), message=f"fork of {parent.id}")
            failed = [r for r in result.refs if r.error]
            if failed:
                raise FileNotFoundError(f"fork {repo_id}: {failed[0].ref}: {failed[0].error}")
            # the refs are as old as the fork, not as its first use
            store.connection.execute("UPDATE reflog SET at = ?", (node.created_at,))
        with contextlib.suppress(FileExistsError):  # another waker made it first: same content
            os.link(tmp, node.path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{tmp}{suffix}")
    return node


def finish(catalog: Catalog, node: Node) -> bool:
    """Forget the ref set of a fork whose file is made; True when no repo or pool names
    that ref set any more (its row is gone)."""
    with catalog.tx() as db:
        db.execute("UPDATE repos SET ref_set = NULL WHERE id = ?", (node.id,))
        db.execute("UPDATE pools SET ref_set = NULL WHERE id = ?", (node.id,))
        _drop_ref_set(db, node.ref_set)
        if node.ref_set is None:
            return False
        return db.execute("SELECT 1 FROM ref_sets WHERE hash = ?", (node.ref_set,)).fetchone() is None


def lineage(catalog: Catalog, repo_id: str) -> list[Node]:
    """The repo or pool ``repo_id`` and its ancestors (repos or pools), nearest first."""
    chain: list[Node] = []
    node = _node_by_id(catalog, repo_id)
    while node is not None and len(chain) <= MAX_DEPTH:
        chain.append(node)
        node = _node_by_id(catalog, node.forked_from) if node.forked_from else None
    return chain


def ref_set_unused(catalog: Catalog, digest: str) -> bool:
    """True when the catalog holds ref set ``digest`` no more."""
    with catalog.tx() as db:
        return db.execute("SELECT 1 FROM ref_sets WHERE hash = ?", (digest,)).fetchone() is None


def delete(catalog: Catalog, repo_id: str) -> list[Path] | None:
    """Delete a repo's row; returns the repo files to remove now (None: no such repo).

    A repo that forks still name becomes a pool and nothing is removed; otherwise its own
    file goes, and every pool up its chain that nobody names any more goes with it."""
    removed: list[Path] = []
    with catalog.tx() as db:
        row = db.execute(
            "SELECT id, path, forked_from, ref_set, default_branch, created_at FROM repos WHERE id = ?",
            (repo_id,),
        ).fetchone()
        if row is None:
            return None
        db.execute("DELETE FROM repos WHERE id = ?", (repo_id,))
        if _children(db, repo_id):
            db.execute(
                "INSERT INTO pools(id, path, forked_from, ref_set, default_branch, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            return removed
        removed.append(catalog.data_dir / row[1])
        _drop_ref_set(db, row[3])
        parent = row[2]
        while parent is not None:
            pool = db.execute(
                "SELECT path, forked_from, ref_set FROM pools WHERE id = ?", (parent,)
            ).fetchone()
            if pool is None or _children(db, parent):
                break
            db.execute("DELETE FROM pools WHERE id = ?", (parent,))
            removed.append(catalog.data_dir / pool[0])
            _drop_ref_set(db, pool[2])
            parent = pool[1]
    return removed


def pool_count(catalog: Catalog) -> int:
    with catalog.tx() as db:
        return int(db.execute("SELECT COUNT(*) FROM pools").fetchone()[0])


def _children(db: sqlite3.Connection, repo_id: str) -> int:
    row = db.execute(
        "SELECT (SELECT COUNT(*) FROM repos WHERE forked_from = ?) + (SELECT COUNT(*) FROM pools WHERE forked_from = ?)",
        (repo_id, repo_id),
    ).fetchone()
    return int(row[0])


def _drop_ref_set(db: sqlite3.Connection, digest: str | None) -> None:
    if digest is None:
        return
    db.execute(
        "DELETE FROM ref_sets WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM repos WHERE ref_set = ?) "
        "AND NOT EXISTS (SELECT 1 FROM pools WHERE ref_set = ?)",
        (digest, digest, digest),
    )


def _node_by_id(catalog: Catalog, repo_id: str) -> Node | None:
    cols = "id, path, forked_from, ref_set, default_branch, created_at"
    with catalog.tx() as db:
        row = db.execute(f"SELECT {cols} FROM repos WHERE id = ?", (repo_id,)).fetchone()
        if row is None:
            row = db.execute(f"SELECT {cols} FROM pools WHERE id = ?", (repo_id,)).fetchone()
    if row is None:
        return None
    return Node(row[0], catalog.data_dir / row[1], row[2], row[3], row[4], row[5])


def _depth(catalog: Catalog, repo_id: str) -> int:
    """How many ancestors ``repo_id`` has."""
    depth = 0
    node = _node_by_id(catalog, repo_id)
    while node is not None and node.forked_from is not None and depth <= MAX_DEPTH:
        depth += 1
        node = _node_by_id(catalog, node.forked_from)
    return depth
