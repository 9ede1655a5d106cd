"""RepoStore: one repository's SQLite file (objects, packs, refs, reflog).

Rules:
- One connection per instance; not thread-safe (the owning actor runs it on one thread
  at a time). A read-only instance works beside a writer thanks to WAL.
- Every write method is one transaction: it commits entirely or leaves no row behind.
- Object reads fall through to the alternates (fork parents) listed in meta
  ``alternates``, in order, after this store's own tables (a relative path is relative
  to this file's directory, so a data dir can move). Alternates are opened
  read-only on first need, follow their own alternates, and are never written.
- Object ids are raw 20-byte bytes. Reads resolve delta chains through a byte-bounded
  LRU of resolved objects (storage.objcache).
- Shallow repositories (an import with ``depth``): table ``shallow`` lists commits whose
  parents are absent by design; the closure check and fsck allow exactly those missing
  links. The list is written in the same transaction as the import's refs.
- A push that provably keeps every stored object reachable from the refs records so in
  meta ``whole_reachable`` (storage.fullclone), in its own transaction, without a walk;
  one it cannot prove that for drops the row. No other write touches it: they change the
  refs or the object count, which the row is keyed by.
- Errors: MissingObject for absent objects; GitUserError subclasses from ingest become a
  PushResult's ``unpack_error``; StorageError for a damaged store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import native
from storage import fullclone, objparse
from storage import refs as refs_mod
from storage.chunks import ChunkReader
from storage.errors import GitUserError, MissingObject, ObjectCorrupt, StorageError
from storage.ingest import IngestStats, ingest_pack
from storage.model import (
    ENTRY_COLUMNS,
    ObjType,
    Oid,
    PushContext,
    PushResult,
    RefCommand,
    ReflogEntry,
    RefResult,
    StoredEntry,
)
from storage.objcache import ByteLRU
from storage.packwrite import PieceReader, iter_pack
from storage.schema import connect, create_schema, ensure_shallow_table, schema_version

ReadFn = Callable[[int], bytes]
ProgressFn = Callable[[str], None]

DEFAULT_CACHE_BYTES = 16 << 20
MAX_CHAIN = 10_000  # longer delta chains mean a damaged (looping) store
MAX_ALTERNATE_DEPTH = 8
MAX_PROOF_WALK = 100_000  # objects a push may walk to prove its fast-forwards


class RepoStore:
    """The object store and refs of one repository (see module docstring)."""

    # Bound of the resolved-object LRU used while resolving a pushed pack's deltas.
    ingest_cache_bytes = 32 << 20
    # Largest object (inflated entry) a push may carry; None = no limit. Set by the owner.
    max_object_size: int | None = None

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        readonly: bool,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        alternate_depth: int = 0,
    ) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self._cache: ByteLRU[bytes] = ByteLRU(cache_bytes)
        self._chunks = ChunkReader(conn)
        self._alternate_depth = alternate_depth
        self._alts: list[RepoStore | None] | None = None  # opened lazily

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, head: str = "refs/heads/main", alternates: Sequence[str] = ()
    ) -> RepoStore:
        """Create a new, empty repository file. FileExistsError if ``path`` exists."""
        problem = refs_mod.check_ref_name(head)
        if problem:
            raise ValueError(f"bad head {head!r}: {problem}")
        p = Path(path)
        if p.exists():
            raise FileExistsError(str(p))
        conn = connect(p, new=True)
        try:
            create_schema(conn, head, json.dumps([os.fspath(a) for a in alternates]))
        except BaseException:
            conn.close()
            raise
        return cls(conn, p, readonly=False)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, readonly: bool = False, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> RepoStore:
        """Open an existing repository file. FileNotFoundError if absent; StorageError if
        it is not a repository file."""
        return cls._open(Path(path), readonly=readonly, cache_bytes=cache_bytes, alternate_depth=0)

    @classmethod
    def _open(cls, p: Path, *, readonly: bool, cache_bytes: int, alternate_depth: int) -> RepoStore:
        if not p.is_file():
            raise FileNotFoundError(str(p))
        conn = connect(p, readonly=readonly)
        if schema_version(conn) is None:
            conn.close()
            raise StorageError(f"{p} is not a repository file")
        if not readonly:
            ensure_shallow_table(conn)
        return cls(conn, p, readonly=readonly, cache_bytes=cache_bytes, alternate_depth=alternate_depth)

    def close(self) -> None:
        for alt in self._alts or ():
            if alt is not None:
                alt.close()
        self._alts = None
        self._cache.clear()
        self._chunks.clear()
        self._conn.close()

    def __enter__(self) -> RepoStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for storage modules (fsck, snapshots) that read tables directly."""
        return self._conn

    # -- alternates ----------------------------------------------------------------------

    def alternate_paths(self) -> list[str]:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'alternates'").fetchone()
        return list(json.loads(row[0])) if row and row[0] else []

    def _alternates(self) -> list[RepoStore | None]:
        if self._alts is None:
            self._alts = []
            if self._alternate_depth < MAX_ALTERNATE_DEPTH:
                for alt_path in self.alternate_paths():
                    try:
                        alt = RepoStore._open(
                            self.path.parent / alt_path,  # a relative path is relative to this file's dir
                            readonly=True,
                            cache_bytes=self._cache.max_bytes // 2,
                            alternate_depth=self._alternate_depth + 1,
                        )
                    except (FileNotFoundError, StorageError, sqlite3.Error):
                        alt = None  # a missing parent hides its objects; fsck reports it
                    self._alts.append(alt)
        return self._alts

    def _in_alternates(self, oid: Oid) -> tuple[int, RepoStore] | None:
        for i, alt in enumerate(self._alternates()):
            if alt is not None and alt.has_object(oid):
                return i, alt
        return None

    def alternate_type(self, oid: Oid) -> ObjType | None:
        """Type of ``oid`` when only an alternate holds it (used by the closure check)."""
        found = self._in_alternates(oid)
        if found is None:
            return None
        header = found[1].object_header(oid)
        return header[0] if header else None

    # -- objects -------------------------------------------------------------------------

    def _own_entry(self, oid: Oid) -> StoredEntry | None:
        row = self._conn.execute(f"SELECT {ENTRY_COLUMNS} FROM objects WHERE oid = ?", (oid,)).fetchone()
        return StoredEntry.from_row(row) if row else None

    def find_oid_range(self, lo: Oid, hi: Oid, limit: int) -> list[Oid]:
        """Up to ``limit`` distinct stored ids in ``[lo, hi]`` (alternates included), sorted;
        abbreviated-id lookups use it."""
        found = {
            bytes(r[0])
            for r in self._conn.execute(
                "SELECT oid FROM objects WHERE oid BETWEEN ? AND ? ORDER BY oid LIMIT ?", (lo, hi, limit)
            )
        }
        for alt in self._alternates():
            if alt is not None and len(found) < limit:
                found.update(alt.find_oid_range(lo, hi, limit))
        return sorted(found)[:limit]

    def has_object(self, oid: Oid) -> bool:
        if self._conn.execute("SELECT 1 FROM objects WHERE oid = ?", (oid,)).fetchone():
            return True
        return self._in_alternates(oid) is not None

    def object_header(self, oid: Oid) -> tuple[ObjType, int] | None:
        row = self._conn.execute("SELECT type, size FROM objects WHERE oid = ?", (oid,)).fetchone()
        if row:
            return ObjType(row[0]), row[1]
        found = self._in_alternates(oid)
        return found[1].object_header(oid) if found else None

    def stored_entry(self, oid: Oid) -> StoredEntry | None:
        """Where ``oid`` is stored; ``source`` says which store (() = this one)."""
        entry = self._own_entry(oid)
        if entry is not None:
            return entry
        found = self._in_alternates(oid)
        if found is None:
            return None
        i, alt = found
        inner = alt.stored_entry(oid)
        if inner is None:
            return None
        return StoredEntry(
            inner.oid,
            inner.type,
            inner.size,
            inner.kind,
            inner.pack_id,
            inner.offset,
            inner.length,
            inner.header_len,
            inner.crc32,
            inner.base,
            inner.depth,
            (i, *inner.source),
        )

    def read_entry_bytes(self, entry: StoredEntry) -> Iterator[bytes]:
        """The entry's raw pack bytes (header + zlib stream), streamed in pieces."""
        if entry.source:
            alts = self._alternates()
            i = entry.source[0]
            alt = alts[i] if i < len(alts) else None
            if alt is None:
                raise MissingObject(entry.oid, "(its alternate store is unavailable)")
            inner = StoredEntry(
                entry.oid,
                entry.type,
                entry.size,
                entry.kind,
                entry.pack_id,
                entry.offset,
                entry.length,
                entry.header_len,
                entry.crc32,
                entry.base,
                entry.depth,
                entry.source[1:],
            )
            return alt.read_entry_bytes(inner)
        return self._chunks.read_range(entry.pack_id, entry.offset, entry.length)

    def _inflate(self, entry: StoredEntry) -> bytes:
        raw = self._chunks.read_bytes(
            entry.pack_id, entry.offset + entry.header_len, entry.length - entry.header_len
        )
        try:
            return zlib.decompress(raw)
        except zlib.error as exc:
            raise ObjectCorrupt(
                f"stored entry of {entry.oid.hex()} does not inflate: {exc}", entry.oid
            ) from None

    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]:
        """The object's type and content, deltas resolved. MissingObject if absent."""
        hit = self._cache.get(oid)
        if hit is not None:
            return ObjType(hit[0]), hit[1]
        chain: list[StoredEntry] = []
        cur = oid
        while True:
            if chain:
                hit = self._cache.get(cur)
                if hit is not None:
                    obj_type, data = hit
                    break
            entry = self._own_entry(cur)
            if entry is None:
                found = self._in_alternates(cur)
                if found is None:
                    raise MissingObject(cur, f"(delta base of {oid.hex()})" if chain else "")
                obj_type, data = found[1].get_object(cur)
                break
            if entry.base is None:
                obj_type, data = entry.type, self._inflate(entry)
                self._check_size(entry, data)
                self._cache.put(entry.oid, obj_type, data)
                break
            chain.append(entry)
            if len(chain) > MAX_CHAIN:
                raise StorageError(f"delta chain of {oid.hex()} is too long or loops")
            cur = entry.base
        for entry in reversed(chain):
            try:
                data = native.delta_apply(data, self._inflate(entry))
            except native.DeltaError as exc:
                raise ObjectCorrupt(
                    f"stored delta of {entry.oid.hex()} does not apply: {exc}", entry.oid
                ) from None
            self._check_size(entry, data)
            obj_type = entry.type
            self._cache.put(entry.oid, obj_type, data)
        return ObjType(obj_type), data

    @staticmethod
    def _check_size(entry: StoredEntry, data: bytes) -> None:
        if len(data) != entry.size:
            raise ObjectCorrupt(
                f"object {entry.oid.hex()} has {len(data)} bytes, index says {entry.size}", entry.oid
            )

    def iter_entries(self) -> Iterator[StoredEntry]:
        """Every object of this store (not its alternates) in (pack_id, offset) order.

        Within one pack a ref-delta may precede its base; an ofs-delta never does.
        """
        last = (-1, -1)
        while True:
            rows = self._conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM objects WHERE (pack_id, offset) > (?, ?)"
                " ORDER BY pack_id, offset LIMIT 1000",
                last,
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield StoredEntry.from_row(row)
            last = (rows[-1][4], rows[-1][5])

    def object_count(self) -> int:
        """Objects stored in this file (alternates not counted)."""
        return self._conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0]

    def stored_bytes(self) -> int:
        """Bytes of pack data stored in this file."""
        return self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM packs").fetchone()[0]

    # -- refs ----------------------------------------------------------------------------

    def head(self) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        return str(row[0]) if row else "refs/heads/main"

    def set_head(self, ref: str) -> None:
        """Point HEAD at ``ref`` (which need not exist yet). ValueError on a bad name."""
        problem = refs_mod.check_ref_name(ref)
        if problem:
            raise ValueError(f"bad ref name {ref!r}: {problem}")
        self._write_tx(
            lambda: self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('head', ?)", (ref,))
        )

    def refs(self) -> dict[str, Oid]:
        """Every ref and its target, sorted by name."""
        return refs_mod.read_refs(self._conn)

    def reflog(
        self,
        ref: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int | None = None,
    ) -> list[ReflogEntry]:
        """Reflog entries, newest first; bounds on ``at`` are inclusive."""
        return refs_mod.read_reflog(self._conn, ref, since_us, until_us, limit)

    def shallow_commits(self) -> frozenset[Oid]:
        """This repository's own shallow commits (empty unless imported with a depth)."""
        try:
            rows = self._conn.execute("SELECT oid FROM shallow").fetchall()
        except sqlite3.OperationalError:  # an older file opened read-only: no table yet
            return frozenset()
        return frozenset(bytes(r[0]) for r in rows)

    def _record_shallow(self, oids: Iterable[Oid]) -> None:
        self._conn.executemany("INSERT OR IGNORE INTO shallow(oid) VALUES (?)", [(bytes(o),) for o in oids])

    def _object_type(self, oid: Oid) -> ObjType | None:
        header = self.object_header(oid)
        return header[0] if header else None

    # -- writes --------------------------------------------------------------------------

    def _begin(self) -> None:
        if self.readonly:
            raise StorageError("store is open read-only")
        self._conn.execute("BEGIN IMMEDIATE")

    def _write_tx(self, fn: Callable[[], object]) -> None:
        self._begin()
        try:
            fn()
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def receive(
        self,
        commands: Sequence[RefCommand],
        read_pack: ReadFn | None,
        context: PushContext,
        progress: ProgressFn | None = None,
        shallow: Callable[[], Iterable[Oid]] | None = None,
    ) -> PushResult:
        """Ingest a pushed pack and apply its ref commands, in one transaction.

        A broken pack (truncated, corrupt, bad trailer, missing base or link, a new tip
        that is not stored) rolls everything back and sets ``unpack_error``. If no ref
        command succeeds, nothing is kept either.

        ``shallow`` (import with a depth) gives commits that become shallow here: it is
        called once the whole pack has been read (the remote names them before the pack,
        but a streaming client only hands them over at the end), before the closure check,
        which then allows their parents to be absent.
        """
        commands = list(commands)
        self._begin()
        try:
            # full-clone fact (storage.fullclone): was every stored object reachable before?
            before = self._whole_reachable_state() if shallow is None else None
            stats: IngestStats | None = None
            if read_pack is not None:
                if shallow is not None:
                    read_pack = self._recording_shallow_at_end(read_pack, shallow)
                stats = self._ingest(read_pack, progress)
            elif shallow is not None:
                self._record_shallow(shallow())
            for cmd in commands:
                if not cmd.is_delete and len(cmd.new) == 20 and not self.has_object(cmd.new):
                    raise MissingObject(cmd.new, f"(new value of {cmd.ref})")
            results = refs_mod.check_commands(self._conn, commands, self._object_type, context.atomic)
            moved = refs_mod.apply_commands(self._conn, commands, results, context)
            if moved:
                self._record_whole_reachable(before, stats)
                self._conn.execute("COMMIT")
            else:
                self._rollback()
            return PushResult(None, results)
        except GitUserError as exc:
            self._rollback()
            return PushResult(str(exc), [RefResult(c.ref, "unpacker error") for c in commands])
        except BaseException:
            self._rollback()
            raise

    # -- the full-clone fact (storage.fullclone) -------------------------------------------

    def _whole_reachable_state(self) -> tuple[dict[str, Oid], int] | None:
        """(refs, object count) when meta records that every stored object is reachable
        from the refs (or the store is empty); None when unknown. In the write transaction."""
        if self.alternate_paths() or self.shallow_commits():
            return None  # forks keep the walk; a shallow store's reachability is not plain
        if not fullclone.has_record(self._conn):  # only an empty store can qualify: no COUNT(*)
            empty = self._conn.execute("SELECT 1 FROM objects LIMIT 1").fetchone() is None
            return ({}, 0) if empty and not self.refs() else None
        refs = self.refs()
        count = self.object_count()
        return (refs, count) if fullclone.recorded_whole(self._conn, refs, count) else None

    def _record_whole_reachable(
        self, before: tuple[dict[str, Oid], int] | None, stats: IngestStats | None
    ) -> None:
        """Keep the fact across this push when it provably still holds, else drop it.

        It holds at the new refs state when it held before and (a) no ref was deleted and
        every changed ref's old value is still reachable: it is still some ref's value, or
        a new commit or tag reached from the new ref values names it (a fast-forward); and
        (b) every new object no object of the pack names is a ref value (then every new
        object is reachable from the new refs, since the pack names only new or stored
        objects). Anything else, or a proof that would cost more than ``MAX_PROOF_WALK``
        objects, drops the fact: the next full clone walks."""
        count = None
        if before is not None:
            refs_before, count_before = before
            refs = self.refs()
            if self._push_keeps_whole(refs_before, refs, stats):
                count = count_before + (stats.new_objects if stats is not None else 0)
        if count is None:
            fullclone.record_whole(self._conn, {}, None)
        else:
            fullclone.record_whole(self._conn, refs, count)

    def _push_keeps_whole(
        self, before: dict[str, Oid], after: dict[str, Oid], stats: IngestStats | None
    ) -> bool:
        values = set(after.values())
        if stats is not None and stats.new_objects:
            if stats.unnamed is None or stats.pack_id is None:
                return False
            if any(oid not in values for oid in stats.unnamed):
                return False
        lost: set[Oid] = set()  # old values of changed refs no ref holds any more
        for name, old in before.items():
            new = after.get(name)
            if new is None:
                return False  # a delete
            if new != old and old not in values:
                lost.add(old)
        if not lost:
            return True
        if stats is None or stats.pack_id is None:
            return False  # no new object can name them
        starts = [after[name] for name in after if before.get(name) != after[name]]
        return self._new_objects_name(stats.pack_id, starts, lost)

    def _new_objects_name(self, pack_id: int, starts: list[Oid], wanted: set[Oid]) -> bool:
        """Whether the commits and tags of pack ``pack_id`` reached from ``starts`` through
        that pack's commits and tags name every object of ``wanted`` (as parent or target)."""
        wanted = set(wanted)
        seen: set[Oid] = set()
        todo = list(dict.fromkeys(starts))
        while todo and wanted:
            oid = todo.pop()
            if oid in seen:
                continue
            seen.add(oid)
            if len(seen) > MAX_PROOF_WALK:
                return False
            row = self._conn.execute("SELECT type, pack_id FROM objects WHERE oid = ?", (oid,)).fetchone()
            if row is None or row[1] != pack_id:
                continue  # stored before this push: not walked
            if row[0] == ObjType.COMMIT:
                named: Sequence[Oid] = objparse.parse_commit(self.get_object(oid)[1]).parents
            elif row[0] == ObjType.TAG:
                named = (objparse.parse_tag(self.get_object(oid)[1]).target,)
            else:
                continue
            for target in named:
                wanted.discard(target)
                todo.append(target)
        return not wanted

    def _recording_shallow_at_end(self, read_pack: ReadFn, shallow: Callable[[], Iterable[Oid]]) -> ReadFn:
        """``read_pack`` that records ``shallow()`` when it first reports the end."""
        recorded = False

        def read(n: int) -> bytes:
            nonlocal recorded
            data = read_pack(n)
            if not data and not recorded:
                recorded = True
                self._record_shallow(shallow())
            return data

        return read

    def _rollback(self) -> None:
        if self._conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
            self._conn.execute("ROLLBACK")
        # Both caches may hold data of the rolled-back pack, whose id the next pack reuses.
        self._cache.clear()
        self._chunks.clear()

    def _ingest(self, read_pack: ReadFn, progress: ProgressFn | None) -> IngestStats:
        return ingest_pack(
            self._conn,
            read_pack,
            self,
            self.alternate_type,
            progress,
            max_object_size=self.max_object_size,
            cache_bytes=self.ingest_cache_bytes,
        )

    def update_refs(
        self, commands: Sequence[RefCommand], context: PushContext, *, message: str = ""
    ) -> PushResult:
        """Move refs only (commit API, restore): same compare-and-swap and reflog rules."""
        commands = list(commands)
        self._begin()
        try:
            results = refs_mod.check_commands(self._conn, commands, self._object_type, context.atomic)
            moved = refs_mod.apply_commands(self._conn, commands, results, context, message)
            self._conn.execute("COMMIT" if moved else "ROLLBACK")
            return PushResult(None, results)
        except BaseException:
            self._rollback()
            raise

    def write_objects(self, objects: Iterable[tuple[ObjType, bytes]]) -> list[Oid]:
        """Store objects made by the server as one small pack; returns their ids in order.

        Objects already stored are skipped. Raises ObjectCorrupt for a malformed
        commit/tree/tag and MissingObject when one names an object not stored or given.
        """
        items = [(ObjType(t), bytes(d)) for t, d in objects]
        oids = [native.object_id(t, d) for t, d in items]
        fresh: list[tuple[ObjType, bytes]] = []
        seen: set[Oid] = set()
        for oid, item in zip(oids, items, strict=True):
            if oid not in seen and not self.has_object(oid):
                seen.add(oid)
                fresh.append(item)
        if not fresh:
            return oids
        self._begin()
        try:
            self._ingest(PieceReader(iter_pack(fresh)), None)
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return oids

    # -- maintenance ---------------------------------------------------------------------

    def verify(self) -> list[str]:
        """fsck: every problem found in this store, as readable lines ([] when clean)."""
        from storage.fsck import verify_store

        return verify_store(self)
