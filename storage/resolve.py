"""Delta resolution for one ingested pack: from each base, down to all its deltas.

Rules:
- Input is the ``staging`` TEMP table (one row per pack entry, written by ingest) and
  the pack's chunk rows; output is one ``objects`` row per entry, written in resolution
  order with INSERT OR IGNORE, so a delta's base is always stored before the delta and
  the first copy of an object wins. By induction no delta chain can loop.
- Walk: every whole entry is a root; then every ref-delta base that is not in the pack
  but in the store (a thin pack) is a root. From a root, a depth-first walk visits its
  ofs-delta children (by base offset) and ref-delta children (by base id). Each delta
  is inflated and applied once; resolved contents sit in a byte-bounded LRU, and an
  evicted base is rebuilt from its nearest cached ancestor.
- Anything left unresolved afterwards has no base: MissingObject (ref-delta) or
  PackFormatError (ofs-delta).
- ``on_new_object(oid, type, data)`` is called for every commit, tree and tag of the pack
  (the closure check parses them; one already stored is checked again, harmlessly);
  blobs are never inflated unless they are bases.
- ``objects`` rows are inserted in batches (``_INSERT_BATCH``, one executemany each, in
  resolution order); the batch is flushed before the store is asked about this pack's
  objects (thin bases) and at the end.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import native
from native import collision
from storage.chunks import ChunkReader
from storage.errors import LimitExceeded, MissingObject, ObjectCorrupt, PackFormatError
from storage.model import ObjType, Oid, StoredEntry
from storage.objcache import ByteLRU

ProgressFn = Callable[[str], None]
_INSERT_BATCH = 512  # objects rows gathered per executemany
NewObjectFn = Callable[[Oid, int, bytes], None]

STAGING_DDL = (
    "CREATE TEMP TABLE staging("
    " offset INTEGER PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,"
    " header_len INTEGER NOT NULL, length INTEGER NOT NULL, crc32 INTEGER NOT NULL,"
    " base_offset INTEGER, base_oid BLOB, oid BLOB)",
    "CREATE INDEX temp.staging_base_offset ON staging(base_offset) WHERE base_offset IS NOT NULL",
    "CREATE INDEX temp.staging_base_oid ON staging(base_oid) WHERE base_oid IS NOT NULL",
)


class BaseSource(Protocol):
    """What resolution needs from the store to complete a thin pack."""

    def has_object(self, oid: Oid) -> bool: ...
    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]: ...
    def stored_entry(self, oid: Oid) -> StoredEntry | None: ...


class _Node:
    """A resolved object on the walk; ``parent`` links back towards the root."""

    __slots__ = ("depth", "hlen", "key", "length", "oid", "parent", "type")

    def __init__(
        self, key: int | bytes, oid: Oid, type_: int, depth: int, parent: _Node | None, hlen: int, length: int
    ) -> None:
        self.key = key  # pack offset, or the base id for a root outside the pack
        self.oid = oid
        self.type = type_
        self.depth = depth
        self.parent = parent
        self.hlen = hlen
        self.length = length


class Resolver:
    def __init__(
        self,
        conn: sqlite3.Connection,
        pack_id: int,
        store: BaseSource,
        on_new_object: NewObjectFn,
        progress: ProgressFn | None = None,
        cache_bytes: int = 32 << 20,
        max_object_size: int | None = None,
    ) -> None:
        self._conn = conn
        self._max_object_size = max_object_size
        self._pack_id = pack_id
        self._store = store
        self._on_new = on_new_object
        self._progress = progress
        self._cache: ByteLRU[int | bytes] = ByteLRU(cache_bytes)
        self._chunks = ChunkReader(conn)
        self._deltas_total = 0
        self._deltas_done = 0
        self._last_percent = -1
        self._rows: list[tuple[object, ...]] = []  # objects rows not yet inserted
        self.new_objects = 0

    # -- driver -------------------------------------------------------------------------

    def run(self) -> None:
        """Resolve every staged entry into ``objects``; raises on an unresolvable pack."""
        conn = self._conn
        self._deltas_total = conn.execute("SELECT COUNT(*) FROM staging WHERE kind >= 6").fetchone()[0]
        roots = self._batched(
            "SELECT s.offset, s.kind, s.size, s.header_len, s.length, s.crc32, s.oid,"
            " EXISTS(SELECT 1 FROM staging c WHERE c.base_offset = s.offset)"
            " OR EXISTS(SELECT 1 FROM staging c WHERE c.base_oid = s.oid)"
            " FROM staging s WHERE s.kind <= 4 AND s.offset > ? ORDER BY s.offset LIMIT 1000"
        )
        for offset, kind, size, hlen, length, crc, oid, has_children in roots:
            oid = bytes(oid)
            self._insert(oid, kind, kind, size, offset, length, hlen, crc, None, 0)
            if not has_children and kind == ObjType.BLOB:
                continue
            node = _Node(offset, oid, kind, 0, None, hlen, length)
            _, data = self._content(node)
            if kind != ObjType.BLOB:
                self._on_new(oid, kind, data)
            if has_children:
                self._walk(node)
        self._resolve_thin_bases()
        self._flush()
        self._report(done=True)
        self._check_all_resolved()

    def _batched(self, sql: str) -> Iterator[tuple]:
        """Rows of ``sql`` (keyed on offset) in pages, so the walk may update staging meanwhile."""
        last = -1
        while True:
            rows = self._conn.execute(sql, (last,)).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def _resolve_thin_bases(self) -> None:
        """Roots outside the pack: bases of still-unresolved ref-deltas that the store has."""
        last = b""
        while True:
            row = self._conn.execute(
                "SELECT base_oid FROM staging WHERE base_oid > ? AND oid IS NULL ORDER BY base_oid LIMIT 1",
                (last,),
            ).fetchone()
            if row is None:
                return
            base = last = bytes(row[0])
            self._flush()  # the store must see this pack's objects resolved so far
            if not self._store.has_object(base):
                continue  # may be a delta of this pack resolved from another root, or missing
            obj_type, data = self._store.get_object(base)
            entry = self._store.stored_entry(base)
            node = _Node(base, base, obj_type, entry.depth if entry else 0, None, 0, 0)
            self._cache.put(base, obj_type, data)
            del data
            self._walk(node)

    def _check_all_resolved(self) -> None:
        row = self._conn.execute(
            "SELECT offset, kind, base_oid FROM staging WHERE oid IS NULL ORDER BY offset LIMIT 1"
        ).fetchone()
        if row is None:
            return
        offset, kind, base_oid = row
        if base_oid is not None:
            raise MissingObject(bytes(base_oid), f"(base of the delta at pack offset {offset})")
        raise PackFormatError(f"delta at pack offset {offset} (kind {kind}) has no resolvable base")

    # -- the walk ----------------------------------------------------------------------

    def _children(self, node: _Node) -> list[tuple[int, int, int, int, int]]:
        """Unresolved deltas on ``node``: (offset, kind, header_len, length, crc32)."""
        return self._conn.execute(
            "SELECT offset, kind, header_len, length, crc32 FROM staging WHERE base_offset = ? AND oid IS NULL"
            " UNION ALL "
            "SELECT offset, kind, header_len, length, crc32 FROM staging WHERE base_oid = ? AND oid IS NULL",
            (node.key if isinstance(node.key, int) else -1, node.oid),
        ).fetchall()

    def _walk(self, root: _Node) -> None:
        stack: list[tuple[tuple[int, int, int, int, int], _Node]] = [(c, root) for c in self._children(root)]
        while stack:
            (offset, kind, hlen, length, crc), parent = stack.pop()
            base_type, base = self._content(parent)  # cached, or rebuilt from an ancestor
            delta = self._inflate(offset, hlen, length)
            self._check_limit(delta, offset)
            result = self._apply(base, delta, offset)
            del delta
            del base
            try:  # collision-detecting SHA-1: git refuses objects of a collision attack
                oid = collision.ingest_object_id(base_type, result)
            except collision.CollisionDetected as exc:
                raise ObjectCorrupt(f"delta at pack offset {offset}: {exc}") from exc
            self._conn.execute("UPDATE staging SET oid = ? WHERE offset = ?", (oid, offset))
            node = _Node(offset, oid, base_type, parent.depth + 1, parent, hlen, length)
            self._insert(oid, base_type, kind, len(result), offset, length, hlen, crc, parent.oid, node.depth)
            if base_type != ObjType.BLOB:
                self._on_new(oid, base_type, result)
            self._cache.put(offset, base_type, result)
            del result
            self._deltas_done += 1
            self._report()
            stack.extend((c, node) for c in self._children(node))

    def _content(self, node: _Node) -> tuple[int, bytes]:
        """The resolved ``(type, data)`` of a node already visited."""
        hit = self._cache.get(node.key)
        if hit is not None:
            return hit
        path: list[_Node] = []
        cur: _Node | None = node
        found: tuple[int, bytes] | None = None
        while cur is not None:
            found = self._cache.get(cur.key)
            if found is not None:
                break
            path.append(cur)
            cur = cur.parent
        if found is None:
            root = path.pop()
            if isinstance(root.key, int):
                data = self._inflate(root.key, root.hlen, root.length)
            else:
                data = self._store.get_object(root.oid)[1]
            self._cache.put(root.key, root.type, data)
            found = (root.type, data)
        obj_type, data = found
        for step in reversed(path):
            data = self._apply(data, self._inflate(step.key, step.hlen, step.length), step.key)  # type: ignore[arg-type]
            self._cache.put(step.key, obj_type, data)
        return obj_type, data

    # -- helpers -------------------------------------------------------------------------

    def _inflate(self, offset: int, hlen: int, length: int) -> bytes:
        raw = self._chunks.read_bytes(self._pack_id, offset + hlen, length - hlen)
        try:
            return zlib.decompress(raw)
        except zlib.error as exc:  # the scanner checked this stream; the store changed under us
            raise PackFormatError(f"entry at pack offset {offset}: bad zlib data ({exc})") from None

    def _check_limit(self, delta: bytes, offset: int) -> None:
        if self._max_object_size is None:
            return
        try:
            result_size = native.delta_header(delta)[1]
        except native.DeltaError as exc:
            raise ObjectCorrupt(f"delta at pack offset {offset} is malformed: {exc}") from None
        if result_size > self._max_object_size:
            raise LimitExceeded(
                f"object of the delta at pack offset {offset}: size {result_size} exceeds limit {self._max_object_size}"
            )

    @staticmethod
    def _apply(base: bytes, delta: bytes, offset: int | bytes) -> bytes:
        try:
            return native.delta_apply(base, delta)
        except native.DeltaError as exc:
            where = offset.hex() if isinstance(offset, bytes) else offset
            raise ObjectCorrupt(f"delta at pack offset {where} does not apply: {exc}") from None

    def _insert(
        self,
        oid: Oid,
        obj_type: int,
        kind: int,
        size: int,
        offset: int,
        length: int,
        hlen: int,
        crc: int,
        base: Oid | None,
        depth: int,
    ) -> None:
        self._rows.append((oid, obj_type, kind, size, self._pack_id, offset, length, hlen, crc, base, depth))
        if len(self._rows) >= _INSERT_BATCH:
            self._flush()

    def _flush(self) -> None:
        """Insert the pending objects rows, in resolution order; count the new ones (an
        object already stored keeps its first location: INSERT OR IGNORE)."""
        if not self._rows:
            return
        before = self._conn.total_changes
        self._conn.executemany(
            "INSERT OR IGNORE INTO objects(oid, type, kind, size, pack_id, offset, length, header_len, crc32,"
            " base, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._rows,
        )
        self.new_objects += self._conn.total_changes - before
        self._rows.clear()

    def _report(self, done: bool = False) -> None:
        if self._progress is None or not self._deltas_total:
            return
        percent = self._deltas_done * 100 // self._deltas_total
        if done:
            self._progress(
                f"Resolving deltas: {percent}% ({self._deltas_done}/{self._deltas_total}), done.\n"
            )
        elif percent != self._last_percent:
            self._last_percent = percent
            self._progress(f"Resolving deltas: {percent:3d}% ({self._deltas_done}/{self._deltas_total})\r")
