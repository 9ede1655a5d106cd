"""The catalog's copy in the blob store, so a node with an empty data dir knows every repo.

Rules:
- One small JSON object per repository, ``catalog/<repo id>.json``: the row's identity and
  settings (id, namespace, name, description, default branch, times, flags, parent). Size
  figures and ``last_push_at`` are derived state: they are recomputed when the repo is
  rehydrated.
- A fork whose file is not made yet (``ref_set`` in the catalog) names its pending refs in
  its entry (``ref_set``: the hash); the refs themselves are one shared object per ref set,
  ``refsets/<hash>.json.zz`` (the catalog's zlib blob, content-addressed), uploaded before
  any entry names it, so 1,000 forks of one repo cost one ref-set object and 1,000 small
  entries. An acknowledged fork that was never used comes back with its refs.
- When a fork's file is made, gitserver.tiering ships it (remote durability: its own
  manifest holds the refs from then on), rewrites its entry without ``ref_set`` and
  deletes the ref-set object once the catalog names it no more. ``restore`` trusts a
  repo's manifest over its entry's ``ref_set``, so an entry still naming a deleted
  ref-set object is harmless.
- A deleted repo that forks still need (a nameless pool, gitserver.forks) keeps an entry
  with ``"pool": true`` (id, parent, default branch, created_at, pending refs): a fork is
  rehydrated after its parent, pool or repo. The entry goes when the pool is freed.
- Written when a repo is created (``Catalog.on_create``; strict for forks under remote
  durability, gitserver.tiering), again before a push is acknowledged under remote
  durability, rewritten as a pool entry when a repo becomes a pool; deleted with the
  repo or pool.
- ``restore`` runs at start: into an EMPTY catalog it inserts every mirrored repo and pool
  (the files are rehydrated lazily, on first use); ``reconcile`` then mirrors rows that
  are missing (repos created offline with ``gitserver repo create``).
- Synchronous (worker threads or start-up).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gitserver.catalog import Catalog, RepoRecord
from storage.blobstore import BlobStore, NotFound
from storage.manifest import manifest_key

PREFIX = "catalog/"
REF_SET_PREFIX = "refsets/"
log = logging.getLogger("gitserver.catalog_mirror")

_FIELDS = (
    "id", "namespace", "name", "description", "default_branch", "created_at", "updated_at",
    "read_only", "public", "forked_from",
)  # fmt: skip
_POOL_FIELDS = ("id", "forked_from", "default_branch", "created_at")


def key_of(repo_id: str) -> str:
    return f"{PREFIX}{repo_id}.json"


def ref_set_key(digest: str) -> str:
    return f"{REF_SET_PREFIX}{digest}.json.zz"


def _with_ref_set(
    blobs: BlobStore, catalog: Catalog | None, digest: str | None, uploaded: set[str] | None
) -> dict[str, str]:
    """The entry field of a pending ref set, its object uploaded first unless ``uploaded``
    says it already is (none when ``digest`` is None or the catalog lacks it)."""
    if digest is None or catalog is None:
        return {}
    if uploaded is None or digest not in uploaded:
        with catalog.tx() as db:
            row = db.execute("SELECT data FROM ref_sets WHERE hash = ?", (digest,)).fetchone()
        if row is None:
            return {}
        blobs.put(ref_set_key(digest), bytes(row[0]))
        if uploaded is not None:
            uploaded.add(digest)
    return {"ref_set": digest}


def mirror(
    blobs: BlobStore, record: RepoRecord, catalog: Catalog | None = None, uploaded: set[str] | None = None
) -> None:
    """Write a repo's entry; with ``catalog``, a pending fork's ref set too (``uploaded``:
    the ref sets known to be in the blob store already, updated)."""
    data: dict[str, Any] = {f: getattr(record, f) for f in _FIELDS}
    data.update(_with_ref_set(blobs, catalog, record.ref_set, uploaded))
    blobs.put(key_of(record.id), json.dumps(data, sort_keys=True).encode())


def mirror_pool(blobs: BlobStore, catalog: Catalog, pool_id: str, uploaded: set[str] | None = None) -> bool:
    """Write the entry of pool ``pool_id`` (replacing its repo entry); False: no such pool."""
    with catalog.tx() as db:
        row = db.execute(
            "SELECT id, forked_from, default_branch, created_at, ref_set FROM pools WHERE id = ?", (pool_id,)
        ).fetchone()
    if row is None:
        return False
    data: dict[str, Any] = dict(zip(_POOL_FIELDS, row[:4], strict=True))
    data["pool"] = True
    data.update(_with_ref_set(blobs, catalog, row[4], uploaded))
    blobs.put(key_of(pool_id), json.dumps(data, sort_keys=True).encode())
    return True


def drop_ref_set(blobs: BlobStore, digest: str) -> None:
    """Delete a ref-set object (the caller knows the catalog names it no more)."""
    blobs.delete(ref_set_key(digest))


def unmirror(blobs: BlobStore, repo_id: str) -> None:
    blobs.delete(key_of(repo_id))


def _path(repo_id: str) -> str:
    return f"repos/{repo_id[:2]}/{repo_id}.sqlite"


def _pending(blobs: BlobStore, data: dict[str, Any], ref_sets: dict[str, bytes]) -> str | None:
    """An entry's pending ref set (its data put in ``ref_sets``), unless the repo has a
    manifest (its file was made and shipped: the manifest holds the refs since then)."""
    digest = data.get("ref_set")
    if not isinstance(digest, str):
        return None
    if blobs.head(manifest_key(data["id"])) is not None:
        return None
    if digest not in ref_sets:
        try:
            ref_sets[digest] = b"".join(blobs.get(ref_set_key(digest)))
        except NotFound:
            log.error(
                "ref set %s of %s is missing from the blob store: it comes back empty", digest, data["id"]
            )
            return None
    return digest


def restore(catalog: Catalog, blobs: BlobStore) -> int:
    """Fill an empty catalog from the mirror; returns how many rows (repos and pools) were
    inserted."""
    with catalog.tx() as db:
        if db.execute("SELECT (SELECT COUNT(*) FROM repos) + (SELECT COUNT(*) FROM pools)").fetchone()[0]:
            return 0
    repos: list[tuple[Any, ...]] = []
    pools: list[tuple[Any, ...]] = []
    ref_sets: dict[str, bytes] = {}
    for key, _size, _etag in blobs.list(PREFIX):
        try:
            data = json.loads(b"".join(blobs.get(key)))
            digest = _pending(blobs, data, ref_sets)
            rid = data["id"]
            if data.get("pool"):
                pools.append(
                    (rid, _path(rid), data["forked_from"], digest, data["default_branch"], data["created_at"])
                )
                continue
            r = {f: data[f] for f in _FIELDS}
            repos.append(
                (rid, r["namespace"], r["name"], r["description"], r["default_branch"], r["created_at"],
                 r["updated_at"], int(r["read_only"]), int(r["public"]), r["forked_from"], _path(rid), digest)
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            log.error("skipping unreadable catalog entry %s: %s", key, exc)
    with catalog.tx() as db:
        db.executemany("INSERT OR IGNORE INTO ref_sets(hash, data) VALUES (?, ?)", list(ref_sets.items()))
        db.executemany(
            "INSERT OR IGNORE INTO repos (id, namespace, name, description, default_branch, created_at,"
            " updated_at, last_push_at, read_only, public, forked_from, path, size_bytes, object_count, ref_set)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, 0, 0, ?)",
            repos,
        )
        db.executemany(
            "INSERT OR IGNORE INTO pools (id, path, forked_from, ref_set, default_branch, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            pools,
        )
    if repos or pools:
        log.info(
            "catalog restored from the blob store: %d repositories, %d pools, %d pending ref sets",
            len(repos), len(pools), len(ref_sets),
        )  # fmt: skip
    return len(repos) + len(pools)


def reconcile(catalog: Catalog, blobs: BlobStore) -> int:
    """Mirror every catalog row (repo or pool) the blob store lacks; returns how many were
    written."""
    have = {key for key, _size, _etag in blobs.list(PREFIX)}
    uploaded: set[str] = set()
    with catalog.tx() as db:
        ids = [row[0] for row in db.execute("SELECT id FROM repos")]
        pool_ids = [row[0] for row in db.execute("SELECT id FROM pools")]
    written = 0
    for rid in ids:
        if key_of(rid) not in have:
            record = catalog.get_by_id(rid)
            if record is not None:
                mirror(blobs, record, catalog, uploaded)
                written += 1
    for pid in pool_ids:
        if key_of(pid) not in have and mirror_pool(blobs, catalog, pid, uploaded):
            written += 1
    return written
