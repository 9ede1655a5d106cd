"""The catalog's copy in the blob store, so a node with an empty data dir knows every repo.

Rules:
- One small JSON object per repository, ``catalog/<repo id>.json``: the row's identity and
  settings (id, namespace, name, description, default branch, times, flags, parent). Size
  figures and ``last_push_at`` are derived state: they are recomputed when the repo is
  rehydrated.
- Written when a repo is created (``Catalog.on_create``), and again before a push is
  acknowledged under remote durability (``ensure``), so an acknowledged push always has
  its catalog row in the blob store; deleted when the repo is deleted.
- ``restore`` runs at start: into an EMPTY catalog it inserts every mirrored row (the
  repo files are rehydrated lazily, on first use); ``reconcile`` then mirrors rows that
  are missing (repos created offline with ``gitserver repo create``).
- Synchronous (worker threads or start-up). Lazy forks (no file yet) are mirrored
  without their pending refs: recovered, such a fork starts empty (documented limit).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gitserver.catalog import Catalog, RepoRecord
from storage.blobstore import BlobStore

PREFIX = "catalog/"
log = logging.getLogger("gitserver.catalog_mirror")

_FIELDS = (
    "id", "namespace", "name", "description", "default_branch", "created_at", "updated_at",
    "read_only", "public", "forked_from",
)  # fmt: skip


def key_of(repo_id: str) -> str:
    return f"{PREFIX}{repo_id}.json"


def record_json(record: RepoRecord) -> bytes:
    return json.dumps({f: getattr(record, f) for f in _FIELDS}, sort_keys=True).encode()


def mirror(blobs: BlobStore, record: RepoRecord) -> None:
    blobs.put(key_of(record.id), record_json(record))


def unmirror(blobs: BlobStore, repo_id: str) -> None:
    blobs.delete(key_of(repo_id))


def restore(catalog: Catalog, blobs: BlobStore) -> int:
    """Fill an empty catalog from the mirror; returns how many rows were inserted."""
    if catalog.count() > 0:
        return 0
    rows: list[dict[str, Any]] = []
    for key, _size, _etag in blobs.list(PREFIX):
        try:
            data = json.loads(b"".join(blobs.get(key)))
            rows.append({f: data[f] for f in _FIELDS})
        except (ValueError, KeyError) as exc:
            log.error("skipping unreadable catalog entry %s: %s", key, exc)
    rows.sort(key=lambda r: r["created_at"])  # parents before their forks
    with catalog.tx() as db:
        for r in rows:
            rid = r["id"]
            db.execute(
                "INSERT OR IGNORE INTO repos (id, namespace, name, description, default_branch, created_at,"
                " updated_at, last_push_at, read_only, public, forked_from, path, size_bytes, object_count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, 0, 0)",
                (rid, r["namespace"], r["name"], r["description"], r["default_branch"], r["created_at"],
                 r["updated_at"], int(r["read_only"]), int(r["public"]), r["forked_from"],
                 f"repos/{rid[:2]}/{rid}.sqlite"),
            )  # fmt: skip
    if rows:
        log.info("catalog restored from the blob store: %d repositories", len(rows))
    return len(rows)


def reconcile(catalog: Catalog, blobs: BlobStore) -> int:
    """Mirror every catalog row the blob store lacks; returns how many were written."""
    have = {key for key, _size, _etag in blobs.list(PREFIX)}
    with catalog.tx() as db:
        ids = [row[0] for row in db.execute("SELECT id FROM repos")]
    written = 0
    for rid in ids:
        if key_of(rid) not in have:
            record = catalog.get_by_id(rid)
            if record is not None:
                mirror(blobs, record)
                written += 1
    return written
