"""Delta resolution for one ingested pack: native.DeltaResolver does the work, this module
writes its rows and answers its questions.

Rules:
- Input is a ``native.DeltaResolver`` that scanned the pack (storage.ingest) and can read
  it back; output is one ``objects`` row per entry, written in resolution order with
  INSERT OR IGNORE, so a delta's base is always stored before the delta and the first
  copy of an object wins. Every id is computed by us (SHA-1DC with the C extension).
- Walk (native.resolve_pure states it exactly): every whole entry is a root, depth first
  to its ofs- and ref-delta children; then every ref-delta base that is not in the pack
  but in the store (a thin pack) is a root.
- Commits and tags (and a tree the C parser refuses) come back to be parsed here
  (storage.objlinks: ObjectCorrupt for a malformed one); their links go back to the
  resolver, which keeps every link for storage.closure.
- Anything left unresolved afterwards has no base: MissingObject (ref-delta) or
  PackFormatError (ofs-delta). Resolver errors map to ObjectCorrupt (a delta does not
  apply, a collision attack), LimitExceeded (max_object_size) or PackFormatError.
- ``objects`` rows are inserted in batches of ``_INSERT_BATCH`` (one executemany each).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Protocol

import native
from storage.errors import LimitExceeded, MissingObject, ObjectCorrupt, PackFormatError
from storage.model import ObjType, Oid, StoredEntry
from storage.objlinks import links

ProgressFn = Callable[[str], None]
_INSERT_BATCH = 512  # objects rows gathered per executemany

_INSERT_SQL = (
    "INSERT OR IGNORE INTO objects(oid, type, kind, size, pack_id, offset, length, header_len, crc32,"
    " base, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class BaseSource(Protocol):
    """What resolution needs from the store to complete a thin pack."""

    def has_object(self, oid: Oid) -> bool: ...
    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]: ...
    def stored_entry(self, oid: Oid) -> StoredEntry | None: ...


class Resolver:
    def __init__(
        self,
        conn: sqlite3.Connection,
        pack_id: int,
        store: BaseSource,
        resolver: native.AnyDeltaResolver,
        progress: ProgressFn | None = None,
    ) -> None:
        self._conn = conn
        self._pack_id = pack_id
        self._store = store
        self._r = resolver
        self._progress = progress
        self._deltas_total = resolver.deltas
        self._last_percent = -1
        self.new_objects = 0

    def run(self) -> None:
        """Resolve every entry into ``objects``; raises on an unresolvable pack."""
        try:
            self._drain()
            for base in self._r.pending_bases():
                if not self._store.has_object(base):
                    continue  # may be resolved from another root yet, or missing
                obj_type, data = self._store.get_object(base)
                entry = self._store.stored_entry(base)
                if self._r.add_base(base, int(obj_type), data, entry.depth if entry else 0):
                    del data
                    self._drain()
        except native.ResolveError as exc:
            if exc.kind == "corrupt":
                raise ObjectCorrupt(str(exc)) from None
            if exc.kind == "limit":
                raise LimitExceeded(str(exc)) from None
            raise PackFormatError(str(exc)) from None
        self._report(done=True)
        self._check_all_resolved()

    def _drain(self) -> None:
        r = self._r
        pack_id = self._pack_id
        pending: list[tuple[object, ...]] = []
        while True:
            rows, parse = r.next_rows()
            pending += [
                (o, t, k, s, pack_id, off, ln, h, c, b, d) for o, t, k, s, off, ln, h, c, b, d in rows
            ]
            if len(pending) >= _INSERT_BATCH or (not rows and parse is None):
                self._insert(pending)
                self._report()
            if parse is not None:
                index, oid, obj_type, data = parse
                r.add_links(index, [(target, int(t)) for target, t in links(obj_type, data, oid)])
            elif not rows:
                return

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        """Insert objects rows in resolution order; count the new ones (an object already
        stored keeps its first location: INSERT OR IGNORE)."""
        if rows:
            before = self._conn.total_changes
            self._conn.executemany(_INSERT_SQL, rows)
            self.new_objects += self._conn.total_changes - before
            rows.clear()

    def _check_all_resolved(self) -> None:
        found = self._r.first_unresolved()
        if found is None:
            return
        offset, kind, base_oid = found
        if base_oid is not None:
            raise MissingObject(base_oid, f"(base of the delta at pack offset {offset})")
        raise PackFormatError(f"delta at pack offset {offset} (kind {kind}) has no resolvable base")

    def _report(self, done: bool = False) -> None:
        if self._progress is None or not self._deltas_total:
            return
        done_count = self._r.deltas_done
        percent = done_count * 100 // self._deltas_total
        if done:
            self._progress(f"Resolving deltas: {percent}% ({done_count}/{self._deltas_total}), done.\n")
        elif percent != self._last_percent:
            self._last_percent = percent
            self._progress(f"Resolving deltas: {percent:3d}% ({done_count}/{self._deltas_total})\r")
