"""fsck of a repository's latest snapshot in the blob store against its local file.

Rules:
- Read-only, streamed; returns readable problem lines ([] when clean, or when the repo
  has no snapshot: a fresh repo need not have one).
- Checks: the manifest reads; the snapshot's three objects exist; the pack hashes to
  its trailer and matches the size and checksum in the refs manifest; the index has one
  record per pack entry, each inside the pack, each naming an object the local store
  holds with the same type and size; the snapshot's reflog is a prefix of the local
  reflog (the reflog only grows) and its refs are what that prefix says, and every
  snapshot ref target is stored locally; every segment the manifest names exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from storage.blobstore import BlobStore, BlobStoreError
from storage.errors import StorageError
from storage.manifest import load_manifest, snapshot_keys
from storage.model import ZERO_OID
from storage.replica_format import ByteReader, read_index, read_json_lines, reflog_row, unzstd_pieces

if TYPE_CHECKING:
    from storage.repo_store import RepoStore


def verify_snapshot(store: RepoStore, blobs: BlobStore, repo_id: str, limit: int = 100) -> list[str]:
    problems: list[str] = []
    try:
        loaded = load_manifest(blobs, repo_id)
        if loaded is None:
            return []
        manifest = loaded[0]
        for seg in manifest.segments:
            if blobs.head(seg.key) is None:
                problems.append(f"segment {seg.key} named by the manifest is missing")
        snap = manifest.snapshot
        if snap is None:
            return problems
        keys = snapshot_keys(repo_id, snap.id)
        missing = [k for k in keys if blobs.head(k) is None]
        if missing:
            return problems + [f"snapshot object {k} is missing" for k in missing]
        pack_key, index_key, refs_key = keys
        lines = read_json_lines(ByteReader(unzstd_pieces(blobs.get(refs_key))))
        header = next(lines)
        sha = hashlib.sha1()
        tail = b""
        size = 0
        for piece in blobs.get(pack_key):
            size += len(piece)
            joined = tail + piece
            sha.update(joined[:-20])
            tail = joined[-20:]
        if sha.digest() != tail:
            problems.append(f"snapshot {snap.id}: pack trailer does not match its content")
        if size != header.get("pack_size") or tail.hex() != header.get("pack_checksum"):
            problems.append(f"snapshot {snap.id}: pack size or checksum differs from its refs manifest")
        count = 0
        for oid, t, _kind, osize, offset, length, _h, _c, _b, _d in read_index(
            ByteReader(unzstd_pieces(blobs.get(index_key)))
        ):
            count += 1
            if offset + length > size - 20:
                problems.append(f"snapshot {snap.id}: index entry {oid.hex()} lies outside the pack")
            local = store.object_header(oid)
            if local is None:
                problems.append(f"snapshot {snap.id}: object {oid.hex()} is not in the local store")
            elif (int(local[0]), local[1]) != (t, osize):
                problems.append(f"snapshot {snap.id}: object {oid.hex()} differs in type or size locally")
            if len(problems) >= limit:
                return problems
        if count != header.get("objects"):
            problems.append(
                f"snapshot {snap.id}: index has {count} entries, refs manifest says {header.get('objects')}"
            )
        problems += _check_refs(store, snap.id, lines)
    except (BlobStoreError, StorageError, StopIteration) as exc:
        problems.append(f"snapshot of {repo_id} cannot be read: {exc or type(exc).__name__}")
    return problems[:limit]


def _check_refs(store: RepoStore, snap_id: str, lines: Iterator[Any]) -> list[str]:
    problems: list[str] = []
    snap_refs: dict[str, bytes] = {}
    snap_log: list[tuple[str, bytes, bytes, int, str | None, str, str]] = []
    for item in lines:
        if "ref" in item:
            snap_refs[item["ref"]] = bytes.fromhex(item["oid"])
        elif "log" in item:
            snap_log.append(reflog_row(item["log"]))
    local_log = [
        (e.ref, e.old, e.new, e.at_us, e.token_id, e.via, e.message) for e in reversed(store.reflog())
    ]
    if local_log[: len(snap_log)] != snap_log:
        problems.append(f"snapshot {snap_id}: its reflog is not a prefix of the local reflog")
    replayed: dict[str, bytes] = {}
    for ref, _old, new, *_rest in snap_log:
        if new == ZERO_OID:
            replayed.pop(ref, None)
        else:
            replayed[ref] = new
    if snap_log and replayed != snap_refs:
        problems.append(f"snapshot {snap_id}: its refs differ from what its reflog says")
    for ref, oid in snap_refs.items():
        if not store.has_object(oid):
            problems.append(f"snapshot {snap_id}: ref {ref} names {oid.hex()}, absent locally")
    return problems
