"""Pack bytes in and out of ``chunks`` rows.

Rules:
- A pack is stored as it arrived, cut into rows of exactly ``CHUNK_SIZE`` bytes (the last
  row of a pack may be shorter). Row id = ``pack_id << 24 | seq`` (schema.chunk_id).
- ``ChunkWriter`` holds at most one chunk in memory; it writes each row as soon as it is
  full, inside the caller's transaction.
- Reads go through a ``ChunkReader``: a few whole rows are kept in a small LRU, because
  nearby entries are read together (delta resolution, pack generation) and SQLite's
  incremental blob reads walk a row's overflow-page chain from its start on every call.
  Large pieces (half a row or more) bypass the LRU and are read with blob I/O.
- ``iter_pack_body`` streams a whole stored pack's entries with one sequential query (the
  verbatim full-clone path); ``pack_layouts`` says which packs hold only live entries.
- Committed chunk rows never change; a writer that rolls back must ``clear()`` its reader
  (the next pack reuses the pack id).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from storage.errors import LimitExceeded, StorageError
from storage.schema import CHUNK_SIZE, MAX_SEQ, chunk_id


class ChunkWriter:
    """Appends the bytes of one pack to ``chunks`` rows as they arrive."""

    def __init__(self, conn: sqlite3.Connection, pack_id: int) -> None:
        self._conn = conn
        self._pack_id = pack_id
        self._parts: list[bytes] = []  # pending pieces, less than CHUNK_SIZE bytes in all
        self._pending = 0
        self._seq = 0
        self.size = 0  # bytes accepted so far

    def write(self, data: bytes | memoryview) -> None:
        n = len(data)
        self.size += n
        if self._pending + n < CHUNK_SIZE:
            self._parts.append(bytes(data))
            self._pending += n
            return
        # one join, then whole rows straight from a memoryview (no per-row slice copies)
        joined = b"".join([*self._parts, data]) if self._parts else data
        view = memoryview(joined)
        pos = 0
        while len(view) - pos >= CHUNK_SIZE:
            self._flush_row(view[pos : pos + CHUNK_SIZE])
            pos += CHUNK_SIZE
        rest = bytes(view[pos:])
        self._parts = [rest] if rest else []
        self._pending = len(rest)

    def close(self) -> None:
        """Write the last, possibly short, row. No-op when nothing is pending."""
        if self._parts:
            self._flush_row(b"".join(self._parts))
            self._parts = []
            self._pending = 0

    def _flush_row(self, data: bytes | memoryview) -> None:
        if self._seq > MAX_SEQ:
            raise LimitExceeded("pack too large for one store")
        self._conn.execute(
            "INSERT INTO chunks(id, data) VALUES (?, ?)", (chunk_id(self._pack_id, self._seq), data)
        )
        self._seq += 1


class ChunkReader:
    """Reads byte ranges of stored packs through a small LRU of whole chunk rows."""

    def __init__(self, conn: sqlite3.Connection, max_chunks: int = 4) -> None:
        self._conn = conn
        self._max = max_chunks
        self._rows: OrderedDict[int, bytes] = OrderedDict()

    def clear(self) -> None:
        self._rows.clear()

    def read_range(self, pack_id: int, offset: int, length: int) -> Iterator[bytes]:
        """Yield the ``length`` bytes of pack ``pack_id`` from ``offset``, at most a row per piece.

        Raises StorageError when a needed row is missing or too short (a damaged store).
        """
        end = offset + length
        pos = offset
        while pos < end:
            seq, within = divmod(pos, CHUNK_SIZE)
            take = min(CHUNK_SIZE - within, end - pos)
            yield self._piece(pack_id, seq, within, take)
            pos += take

    def read_bytes(self, pack_id: int, offset: int, length: int) -> bytes:
        """``read_range`` joined into one bytes object (for entries that fit in memory)."""
        parts = list(self.read_range(pack_id, offset, length))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _piece(self, pack_id: int, seq: int, within: int, take: int) -> bytes:
        rid = chunk_id(pack_id, seq)
        row = self._rows.get(rid)
        if row is None and take < CHUNK_SIZE // 2 and self._max:
            found = self._conn.execute("SELECT data FROM chunks WHERE id = ?", (rid,)).fetchone()
            if found is None:
                raise StorageError(f"chunk {seq} of pack {pack_id} is missing")
            row = bytes(found[0])
            self._rows[rid] = row
            if len(self._rows) > self._max:
                self._rows.popitem(last=False)
        if row is not None:
            self._rows.move_to_end(rid)
            if len(row) < within + take:
                raise StorageError(f"chunk {seq} of pack {pack_id} is short")
            return row[within : within + take]
        try:
            with self._conn.blobopen("chunks", "data", rid, readonly=True) as blob:
                if len(blob) < within + take:
                    raise StorageError(f"chunk {seq} of pack {pack_id} is short")
                blob.seek(within)
                return blob.read(take)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"chunk {seq} of pack {pack_id} is missing") from exc


@dataclass(frozen=True, slots=True)
class PackLayout:
    """One stored pack: its size and entries, and how many of them are live objects rows
    (an entry is dead when its object was already stored by an earlier pack)."""

    pack_id: int
    size: int  # bytes: 12-byte header, entries, 20-byte trailer
    entries: int
    live: int
    deltas: int  # live entries stored as deltas


def pack_layouts(conn: sqlite3.Connection) -> list[PackLayout]:
    """Every stored pack of this file, in id order (one pass over the location index)."""
    live = {
        row[0]: (row[1], row[2])
        for row in conn.execute("SELECT pack_id, COUNT(*), COUNT(base) FROM objects GROUP BY pack_id")
    }
    return [
        PackLayout(pid, size, count, *live.get(pid, (0, 0)))
        for pid, size, count in conn.execute("SELECT id, size, object_count FROM packs ORDER BY id")
    ]


def iter_pack_body(conn: sqlite3.Connection, layout: PackLayout) -> Iterator[bytes]:
    """The entries of a stored pack (its bytes without header and trailer), row by row,
    read with one sequential query. Raises StorageError when rows are missing."""
    start, end = 12, layout.size - 20
    pos = 0
    first, last = chunk_id(layout.pack_id, 0), chunk_id(layout.pack_id, MAX_SEQ)
    for rid, data in conn.execute(
        "SELECT id, data FROM chunks WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
    ):
        if rid != chunk_id(layout.pack_id, pos // CHUNK_SIZE):
            raise StorageError(f"chunk {pos // CHUNK_SIZE} of pack {layout.pack_id} is missing")
        lo, hi = max(start - pos, 0), min(end - pos, len(data))
        pos += len(data)
        if hi > lo:
            yield data[lo:hi] if (lo or hi < len(data)) else data
        if pos >= end:
            return
    raise StorageError(f"pack {layout.pack_id} is short")
