"""Rebuilding a repository's SQLite file from the blob store (snapshot + segments).

Rules:
- Streamed: the snapshot pack goes straight into ``chunks`` rows, its index straight into
  ``objects`` rows (no delta is resolved again; the pack trailer and the entry count are
  checked), refs and reflog rows from the refs manifest. Then each segment's packs go
  through the normal ingest (every object hashed, closure checked) and its reflog rows
  are applied; a reflog row already present (same ref, old, new, at) is skipped, so
  replaying a segment the snapshot already covers changes nothing.
- The file is built beside its final path (``<path>.rehydrate``) and renamed into place
  only when complete, so a crash leaves either no file or a whole one.
- The rebuilt file is a new writer incarnation (``meta.replica_writer``). Before the
  rename it claims the manifest (conditional put on the ETag it was built from): if
  another writer replaced the manifest meanwhile, ``RepoFenced`` is raised and nothing
  is renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from storage.blobstore import BlobStore
from storage.chunks import ChunkWriter
from storage.errors import StorageError
from storage.ingest import ingest_pack
from storage.manifest import Manifest, SnapshotInfo, load_manifest, put_manifest, snapshot_keys
from storage.model import ZERO_OID
from storage.replica_format import (
    ByteReader,
    ReplicaFormatError,
    read_index,
    read_json_lines,
    read_segment_header,
    reflog_row,
    unzstd_pieces,
)
from storage.repo_store import RepoStore
from storage.snapshot import marks

WRITER_KEY = "replica_writer"
_BATCH = 5000
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def new_writer_id() -> str:
    return secrets.token_hex(6)


def writer_id(store: RepoStore) -> str | None:
    row = store.connection.execute("SELECT value FROM meta WHERE key = ?", (WRITER_KEY,)).fetchone()
    return str(row[0]) if row else None


def ensure_writer_id(store: RepoStore) -> str:
    """This file's writer incarnation id, created on first need (a write transaction)."""
    found = writer_id(store)
    if found is not None:
        return found
    new = new_writer_id()
    conn = store.connection
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (WRITER_KEY, new))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return writer_id(store) or new


def remove_store_files(path: Path) -> None:
    for suffix in _COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


def rehydrate_copy(blobs: BlobStore, repo_id: str, path: Path) -> bool:
    """Rebuild a private copy at ``path`` without claiming the manifest (fsck); False when
    the repo has nothing in the blob store."""
    return rehydrate(blobs, repo_id, path, claim=False) is not None


def rehydrate(
    blobs: BlobStore, repo_id: str, path: Path, *, claim: bool = True
) -> tuple[Manifest, str] | None:
    """Rebuild ``path`` from the repo's manifest; None (and no file) when it has none.

    Returns the claimed manifest and its ETag. Raises RepoFenced, BlobStoreError,
    ReplicaFormatError / StorageError for damaged objects (the partial file is removed)."""
    loaded = load_manifest(blobs, repo_id)
    if loaded is None:
        return None
    manifest, etag = loaded
    tmp = Path(str(path) + ".rehydrate")
    remove_store_files(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = new_writer_id()
    try:
        store = RepoStore.create(tmp, head=manifest.head, alternates=manifest.alternates)
        try:
            if manifest.snapshot is not None:
                _load_snapshot(store, blobs, repo_id, manifest.snapshot)
            for seg in manifest.segments:
                _replay_segment(store, blobs, seg.key)
            _finish(store, manifest.head, writer)
            pack_mark, reflog_mark = marks(store)
        finally:
            store.close()
        claimed = manifest.bump(writer=writer, pack_mark=pack_mark, reflog_mark=reflog_mark)
        new_etag = put_manifest(blobs, claimed, etag) if claim else etag
        remove_store_files(path)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        remove_store_files(tmp)
        raise
    return claimed, new_etag


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _tx(store: RepoStore) -> Iterator[None]:
    conn = store.connection
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _load_snapshot(store: RepoStore, blobs: BlobStore, repo_id: str, snap: SnapshotInfo) -> None:
    pack_key, index_key, refs_key = snapshot_keys(repo_id, snap.id)
    conn = store.connection
    refs = read_json_lines(ByteReader(unzstd_pieces(blobs.get(refs_key))))
    header = next(refs, None)
    if not isinstance(header, dict) or header.get("format") != 1:
        raise ReplicaFormatError(f"{refs_key}: bad header")
    with _tx(store):
        size, checksum = _copy_pack(conn, blobs.get(pack_key))
        if size != header["pack_size"] or checksum.hex() != header["pack_checksum"]:
            raise ReplicaFormatError(f"{pack_key}: size or checksum differs from the refs manifest")
        count = 0
        batch: list[tuple[object, ...]] = []
        for oid, t, kind, osize, offset, length, hlen, crc, base, depth in read_index(
            ByteReader(unzstd_pieces(blobs.get(index_key)))
        ):
            if offset + length > size - 20:
                raise ReplicaFormatError(f"{index_key}: entry outside the pack")
            batch.append((oid, t, kind, osize, 1, offset, length, hlen, crc, base, depth))
            count += 1
            if len(batch) >= _BATCH:
                _insert_objects(conn, batch)
        _insert_objects(conn, batch)
        if count != header["objects"]:
            raise ReplicaFormatError(
                f"{index_key}: {count} entries, the refs manifest says {header['objects']}"
            )
        if count:
            conn.execute(
                "INSERT INTO packs(id, size, object_count, checksum, created_at) VALUES (1, ?, ?, ?, ?)",
                (size, count, checksum, time.time_ns() // 1000),
            )
        else:
            conn.execute("DELETE FROM chunks")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'alternates'", (json.dumps(header.get("alternates", [])),)
        )
        _insert_shallow(conn, header.get("shallow", []))
        logs: list[tuple[object, ...]] = []
        for item in refs:
            if "ref" in item:
                conn.execute(
                    "INSERT OR REPLACE INTO refs(name, oid) VALUES (?, ?)",
                    (item["ref"], bytes.fromhex(item["oid"])),
                )
            elif "log" in item:
                logs.append(reflog_row(item["log"]))
                if len(logs) >= _BATCH:
                    _insert_reflog(conn, logs)
        _insert_reflog(conn, logs)


def _copy_pack(conn: sqlite3.Connection, pieces: Iterable[bytes]) -> tuple[int, bytes]:
    writer = ChunkWriter(conn, 1)
    sha = hashlib.sha1()
    tail = b""
    for piece in pieces:
        writer.write(piece)
        joined = tail + piece
        sha.update(joined[:-20])
        tail = joined[-20:]
    writer.close()
    if writer.size < 32 or sha.digest() != tail:
        raise ReplicaFormatError("snapshot pack is truncated or its trailer does not match")
    return writer.size, tail


def _insert_objects(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    if batch:
        conn.executemany(
            "INSERT OR IGNORE INTO objects(oid, type, kind, size, pack_id, offset, length, header_len, crc32,"
            " base, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        batch.clear()


def _insert_reflog(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    if rows:
        conn.executemany(
            "INSERT INTO reflog(ref, old, new, at, token_id, via, message) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        rows.clear()


def _insert_shallow(conn: sqlite3.Connection, hexes: Iterable[str]) -> None:
    """Record a shallow repo's boundary commits (snapshot or segment header)."""
    try:
        rows = [(bytes.fromhex(h),) for h in hexes]
    except (TypeError, ValueError) as exc:
        raise ReplicaFormatError(f"bad shallow list: {exc}") from None
    conn.executemany("INSERT OR IGNORE INTO shallow(oid) VALUES (?)", rows)


def _replay_segment(store: RepoStore, blobs: BlobStore, key: str) -> None:
    reader = ByteReader(blobs.get(key))
    header = read_segment_header(reader)
    conn = store.connection
    with _tx(store):
        _insert_shallow(conn, header.shallow)  # before the packs: their closure check needs it
        for size in header.packs:
            part = reader.limited(size)
            ingest_pack(conn, part, store, store.alternate_type)
            if part.left:
                raise ReplicaFormatError(f"{key}: pack shorter than its recorded size")
        for item in header.reflog:
            ref, old, new, at, token_id, via, message = reflog_row(item)
            seen = conn.execute(
                "SELECT 1 FROM reflog WHERE ref = ? AND old = ? AND new = ? AND at = ?", (ref, old, new, at)
            ).fetchone()
            if seen:
                continue
            if new == ZERO_OID:
                conn.execute("DELETE FROM refs WHERE name = ?", (ref,))
            else:
                conn.execute("INSERT OR REPLACE INTO refs(name, oid) VALUES (?, ?)", (ref, new))
            conn.execute(
                "INSERT INTO reflog(ref, old, new, at, token_id, via, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ref, old, new, at, token_id, via, message),
            )


def _finish(store: RepoStore, head: str, writer: str) -> None:
    conn = store.connection
    with _tx(store):
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('head', ?)", (head,))
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (WRITER_KEY, writer))
        problems = conn.execute(
            "SELECT COUNT(*) FROM refs WHERE oid NOT IN (SELECT oid FROM objects)"
        ).fetchone()[0]
    if problems and not store.alternate_paths():
        raise StorageError(f"rehydrated store has {problems} refs pointing at missing objects")
