"""Pack bytes in and out of ``chunks`` rows.

Rules:
- A pack is stored as it arrived, cut into rows of exactly ``CHUNK_SIZE`` bytes (the last
  row of a pack may be shorter). Row id = ``pack_id << 24 | seq`` (schema.chunk_id).
- ``ChunkWriter`` holds at most one chunk in memory; it writes each row as soon as it is
  full, inside the caller's transaction.
- Reads use SQLite incremental blob I/O, so reading a 100-byte entry never loads a
  2 MiB row; ranges that cross rows are streamed piece by piece.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from storage.errors import LimitExceeded, StorageError
from storage.schema import CHUNK_SIZE, MAX_SEQ, chunk_id


class ChunkWriter:
    """Appends the bytes of one pack to ``chunks`` rows as they arrive."""

    def __init__(self, conn: sqlite3.Connection, pack_id: int) -> None:
        self._conn = conn
        self._pack_id = pack_id
        self._buf = bytearray()
        self._seq = 0
        self.size = 0  # bytes accepted so far

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self._buf += data
        while len(self._buf) >= CHUNK_SIZE:
            self._flush_row(bytes(self._buf[:CHUNK_SIZE]))
            del self._buf[:CHUNK_SIZE]

    def close(self) -> None:
        """Write the last, possibly short, row. No-op when nothing is pending."""
        if self._buf:
            self._flush_row(bytes(self._buf))
            self._buf.clear()

    def _flush_row(self, data: bytes) -> None:
        if self._seq > MAX_SEQ:
            raise LimitExceeded("pack too large for one store")
        self._conn.execute("INSERT INTO chunks(id, data) VALUES (?, ?)", (chunk_id(self._pack_id, self._seq), data))
        self._seq += 1


def read_range(conn: sqlite3.Connection, pack_id: int, offset: int, length: int) -> Iterator[bytes]:
    """Yield the ``length`` bytes of pack ``pack_id`` starting at ``offset``, row by row.

    Raises StorageError when a needed row is missing or too short (a damaged store).
    """
    end = offset + length
    pos = offset
    while pos < end:
        seq, within = divmod(pos, CHUNK_SIZE)
        take = min(CHUNK_SIZE - within, end - pos)
        try:
            with conn.blobopen("chunks", "data", chunk_id(pack_id, seq), readonly=True) as blob:
                if len(blob) < within + take:
                    raise StorageError(f"chunk {seq} of pack {pack_id} is short")
                blob.seek(within)
                piece = blob.read(take)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"chunk {seq} of pack {pack_id} is missing") from exc
        yield piece
        pos += take


def read_bytes(conn: sqlite3.Connection, pack_id: int, offset: int, length: int) -> bytes:
    """``read_range`` joined into one bytes object (for entries that fit in memory)."""
    parts = list(read_range(conn, pack_id, offset, length))
    return parts[0] if len(parts) == 1 else b"".join(parts)
