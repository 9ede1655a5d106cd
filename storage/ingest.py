"""Streaming ingest of one pushed pack into the store, inside the caller's transaction.

Rules:
- The pack is read in pieces from ``read_pack(n)`` (b"" at the end). Each piece goes to
  ``chunks`` rows (storage.chunks) and to ``native.PackScanner``; the scanner's entries go
  to the ``staging`` TEMP table in batches. The whole pack is never in memory.
- Then storage.resolve turns staged entries into ``objects`` rows (every id computed by
  us, never taken from the client) and storage.closure checks that every new object's
  links are stored.
- Failure raises PackFormatError, ObjectCorrupt or MissingObject (GitUserError: the
  message is for the git user) and leaves the rollback to the caller. Nothing here
  commits.
- A pack with no entries, or with only objects already stored, leaves no rows.
- ``IngestStats.unnamed``: the new objects that no object of the pack names (None when more
  than ``MAX_UNNAMED``); storage.fullclone compares them with the pushed ref values.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import native
from storage.chunks import ChunkWriter
from storage.closure import LINKS_DDL, AlternateType, ClosureCheck
from storage.errors import PackFormatError
from storage.model import Oid
from storage.resolve import STAGING_DDL, BaseSource, Resolver
from storage.schema import SEQ_BITS

ReadFn = Callable[[int], bytes]
ProgressFn = Callable[[str], None]

READ_SIZE = 1 << 20
_STAGE_BATCH = 2000
MAX_UNNAMED = 4096


@dataclass(frozen=True, slots=True)
class IngestStats:
    pack_id: int | None  # None when the pack had no entries and was not kept
    size: int
    entries: int
    new_objects: int
    # new objects no object of the pack names (the pushed tips); None: more than MAX_UNNAMED
    unnamed: tuple[Oid, ...] | None = ()


def drop_temp_tables(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.staging")
    conn.execute("DROP TABLE IF EXISTS temp.links")


def ingest_pack(
    conn: sqlite3.Connection,
    read_pack: ReadFn,
    store: BaseSource,
    alternate_type: AlternateType,
    progress: ProgressFn | None = None,
    max_object_size: int | None = None,
    cache_bytes: int = 32 << 20,
) -> IngestStats:
    """Store one pack and its objects. The caller holds a write transaction.

    Raises PackFormatError (truncated, bad zlib, bad trailer...), ObjectCorrupt (delta
    does not apply, malformed commit/tree/tag, wrong link type) or MissingObject (delta
    base or linked object absent).
    """
    drop_temp_tables(conn)
    for stmt in (*STAGING_DDL, *LINKS_DDL):
        conn.execute(stmt)
    try:
        pack_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM packs").fetchone()[0]
        size, count, checksum = _stream(conn, pack_id, read_pack, max_object_size)
        if count == 0:
            conn.execute("DELETE FROM chunks WHERE id >= ?", (pack_id << SEQ_BITS,))
            return IngestStats(None, size, 0, 0)
        closure = ClosureCheck(conn, alternate_type)
        resolver = Resolver(conn, pack_id, store, closure.add, progress, cache_bytes, max_object_size)
        resolver.run()
        closure.check()
        if resolver.new_objects == 0:  # every object was already stored: keep no dead pack
            conn.execute("DELETE FROM chunks WHERE id >= ?", (pack_id << SEQ_BITS,))
            return IngestStats(None, size, count, 0)
        conn.execute(
            "INSERT INTO packs(id, size, object_count, checksum, created_at) VALUES (?, ?, ?, ?, ?)",
            (pack_id, size, count, checksum, time.time_ns() // 1000),
        )
        unnamed = closure.unnamed(pack_id, MAX_UNNAMED)
        return IngestStats(
            pack_id, size, count, resolver.new_objects, None if unnamed is None else tuple(unnamed)
        )
    finally:
        drop_temp_tables(conn)


def _stream(
    conn: sqlite3.Connection, pack_id: int, read_pack: ReadFn, max_object_size: int | None
) -> tuple[int, int, bytes]:
    """Copy the pack into chunk rows and staging rows; returns (size, entries, checksum)."""
    scanner = native.PackScanner(max_object_size)
    writer = ChunkWriter(conn, pack_id)
    batch: list[tuple[object, ...]] = []
    count = 0
    try:
        while True:
            data = read_pack(READ_SIZE)
            if not data:
                break
            for e in scanner.feed(data):
                batch.append(
                    (
                        e.offset,
                        e.kind,
                        e.size,
                        e.header_len,
                        e.length,
                        e.crc32,
                        e.base_offset if e.kind == 6 else None,
                        e.base_oid,
                        e.oid,
                    )
                )
            writer.write(data)
            if len(batch) >= _STAGE_BATCH:
                count += _stage(conn, batch)
        checksum = scanner.finish()
    except native.PackError as exc:
        raise PackFormatError(str(exc)) from None
    count += _stage(conn, batch)
    writer.close()
    return writer.size, count, checksum


def _stage(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> int:
    n = len(batch)
    if n:
        conn.executemany(
            "INSERT INTO staging(offset, kind, size, header_len, length, crc32, base_offset, base_oid, oid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        batch.clear()
    return n
