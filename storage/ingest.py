"""Streaming ingest of one pushed pack into the store, inside the caller's transaction.

Rules:
- The pack is read in pieces from ``read_pack(n)`` (b"" at the end). Each piece goes to
  ``chunks`` rows (storage.chunks), to an unlinked temporary file next to the database
  (read back by the resolver with pread, dropped at the end), and to
  ``native.DeltaResolver``, which scans it and keeps a fixed-size C record per entry
  (56 bytes, plus 36 bytes per distinct object id; see native/src/resolve.c). The
  whole pack is never in memory. A piece is scanned, spooled and written to chunk rows
  by one worker thread while this one reads the next piece (the C and SQLite calls
  release the GIL; the connection is serialized, sqlite3.threadsafety 3, and this thread
  only touches it through ``read_pack``'s end-of-pack hook).
- Then storage.resolve turns the entries into ``objects`` rows (every id computed by
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

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import native
from storage.chunks import ChunkWriter
from storage.closure import DROP_DDL, LINKS_DDL, AlternateType, ClosureCheck
from storage.errors import PackFormatError
from storage.model import Oid
from storage.resolve import BaseSource, Resolver
from storage.schema import SEQ_BITS

ReadFn = Callable[[int], bytes]
ProgressFn = Callable[[str], None]

READ_SIZE = 1 << 20
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
    conn.execute("DROP TABLE IF EXISTS temp.staging")  # left by older versions
    for stmt in DROP_DDL:
        conn.execute(stmt)


def _temp_dir(conn: sqlite3.Connection) -> str | None:
    """The database's directory (same disk as the pack's chunk rows), or the default."""
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main" and path:
            return os.path.dirname(path)
    return None


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
    for stmt in LINKS_DDL:
        conn.execute(stmt)
    try:
        with tempfile.TemporaryFile(dir=_temp_dir(conn)) as spool:
            return _ingest(
                conn, read_pack, store, alternate_type, progress, max_object_size, cache_bytes, spool
            )
    finally:
        drop_temp_tables(conn)


def _ingest(
    conn: sqlite3.Connection,
    read_pack: ReadFn,
    store: BaseSource,
    alternate_type: AlternateType,
    progress: ProgressFn | None,
    max_object_size: int | None,
    cache_bytes: int,
    spool: BinaryIO,
) -> IngestStats:
    pack_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM packs").fetchone()[0]
    resolver = native.DeltaResolver(max_object_size, cache_bytes)
    resolver.start(spool.fileno())  # the scan writes the spool (in its worker thread)
    size, checksum = _stream(conn, pack_id, read_pack, resolver)
    count = resolver.entries
    if count == 0:
        conn.execute("DELETE FROM chunks WHERE id >= ?", (pack_id << SEQ_BITS,))
        return IngestStats(None, size, 0, 0)
    resolution = Resolver(conn, pack_id, store, resolver, progress)
    resolution.run()
    closure = ClosureCheck(conn, alternate_type, resolver)
    closure.check()
    if resolution.new_objects == 0:  # every object was already stored: keep no dead pack
        conn.execute("DELETE FROM chunks WHERE id >= ?", (pack_id << SEQ_BITS,))
        return IngestStats(None, size, count, 0)
    conn.execute(
        "INSERT INTO packs(id, size, object_count, checksum, created_at) VALUES (?, ?, ?, ?, ?)",
        (pack_id, size, count, checksum, time.time_ns() // 1000),
    )
    unnamed = closure.unnamed(pack_id, MAX_UNNAMED)
    return IngestStats(
        pack_id, size, count, resolution.new_objects, None if unnamed is None else tuple(unnamed)
    )


def _stream(
    conn: sqlite3.Connection,
    pack_id: int,
    read_pack: ReadFn,
    resolver: native.AnyDeltaResolver,
) -> tuple[int, bytes]:
    """Copy the pack into chunk rows and the resolver (which writes the spool file);
    returns (size, checksum)."""
    writer = ChunkWriter(conn, pack_id)

    def take(data: bytes) -> None:
        resolver.feed(data)
        writer.write(data)

    with ThreadPoolExecutor(1, thread_name_prefix="ingest-scan") as worker:
        taking: Future[None] | None = None
        try:
            while True:
                data = read_pack(READ_SIZE)
                if taking is not None:
                    taking.result()
                    taking = None
                if not data:
                    break
                # scan and chunk rows (C and SQLite, GIL released) overlap the next read
                taking = worker.submit(take, data)
            checksum = resolver.finish()
        except native.PackError as exc:
            raise PackFormatError(str(exc)) from None
        finally:
            if taking is not None:
                taking.cancel()
                try:
                    taking.result()
                except Exception:  # the first error is the one raised
                    pass
    writer.close()
    return writer.size, checksum
