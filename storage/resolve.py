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
- ``objects`` rows are inserted in batches of ``_INSERT_BATCH`` (one executemany each), by
  the calling thread (the connection's), while a worker thread drives the resolver and
  parses commits and tags; at most ``_QUEUE_BATCHES`` batches wait between them. The
  thin-base phase (it reads the store) runs between two such drains, in the caller.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Protocol

import native
from storage.errors import LimitExceeded, MissingObject, ObjectCorrupt, PackFormatError
from storage.model import ObjType, Oid, StoredEntry
from storage.objlinks import links

ProgressFn = Callable[[str], None]
_INSERT_BATCH = 512  # objects rows gathered per executemany
_QUEUE_BATCHES = 8  # batches the resolving thread may run ahead of the inserts

# pack_id (an integer of ours) is written into the statement: rows go in as the resolver gives them
_INSERT_SQL = (
    "INSERT OR IGNORE INTO objects(oid, type, kind, size, offset, length, header_len, crc32,"
    " base, depth, pack_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {pack_id:d})"
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
        self._insert_sql = _INSERT_SQL.format(pack_id=int(pack_id))
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
        """Resolve until the resolver has nothing queued. The resolver runs in a worker
        thread (its C calls release the GIL) while this thread inserts the rows it hands
        over through a bounded queue: resolution and SQLite use both cores."""
        q: queue.Queue[list[tuple[object, ...]] | BaseException | None] = queue.Queue(_QUEUE_BATCHES)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(q, stop), name="ingest-resolve", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                self._insert(item)
                self._report()
        finally:
            stop.set()
            while worker.is_alive():
                try:  # unblock a worker waiting on a full queue
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def _produce(
        self, q: queue.Queue[list[tuple[object, ...]] | BaseException | None], stop: threading.Event
    ) -> None:
        """The worker: resolve, parse commits and tags, and queue batches of objects rows."""
        r = self._r
        pending: list[tuple[object, ...]] = []

        def put(item: list[tuple[object, ...]] | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    pass

        try:
            while not stop.is_set():
                rows, parse = r.next_rows()
                pending += rows
                if len(pending) >= _INSERT_BATCH:
                    put(pending)
                    pending = []
                if parse is not None:
                    index, oid, obj_type, data = parse
                    r.add_links(index, [(target, int(t)) for target, t in links(obj_type, data, oid)])
                elif not rows:
                    break
            if pending:
                put(pending)
            put(None)
        except BaseException as exc:  # handed to the inserting thread, which raises it
            put(exc)

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        """Insert objects rows in resolution order; count the new ones (an object already
        stored keeps its first location: INSERT OR IGNORE)."""
        if rows:
            before = self._conn.total_changes
            self._conn.executemany(self._insert_sql, rows)
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
