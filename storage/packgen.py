"""Pack generation: stream a pack of chosen objects, reusing stored entry bytes.

Rules:
- Output is a version 2 pack: header (object count known up front), entries, SHA-1
  trailer over every byte before it. Bytes go out in pieces of about 64 KiB; no pack and
  no object list of contents is ever held whole.
- Entries go out in stored order, (pack_id, offset); that order puts every base before
  its deltas. A delta whose base is sent but not yet written (possible across fork
  stores) waits for it.
- Whole entries are copied verbatim. A delta's zlib stream is copied verbatim under a new
  header: OFS_DELTA to an already written base when the client takes ofs-delta, else
  REF_DELTA; REF_DELTA to a base the client has when it takes a thin pack; otherwise the
  object is resolved and deflated whole (never re-deltified).
- Whole-store sends (``write_whole_store``: a full clone of a store whose objects are all
  reachable) copy each stored pack's entries verbatim, row by row, with no per-object work;
  ``write_store_without_blobs`` (a blob:none clone of such a store) lists commits, trees
  and tags straight from the objects table in stored order, without a walk.
- Progress strings match git's pack-objects: "Counting objects: 100% (N/N), done." and
  "Total N (delta M), reused R (delta D), pack-reused P".
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from storage.chunks import iter_pack_body, pack_layouts
from storage.errors import MissingObject, PackFormatError
from storage.model import ENTRY_COLUMNS, EntryKind, ObjType, Oid, StoredEntry

FLUSH_SIZE = 64 * 1024
SCAN_RATIO = 4  # scan every stored entry when sending more than 1/SCAN_RATIO of them
SCAN_MIN = 1024  # below this many objects, point lookups always win (and no COUNT(*) is run)


class PackSource(Protocol):
    """The part of ``RepoStore`` pack generation needs."""

    def stored_entry(self, oid: Oid) -> StoredEntry | None: ...

    def read_entry_bytes(self, entry: StoredEntry) -> Iterator[bytes]: ...

    def iter_entries(self) -> Iterator[StoredEntry]: ...

    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]: ...

    def object_count(self) -> int: ...

    @property
    def connection(self) -> sqlite3.Connection: ...


@dataclass
class PackStats:
    total: int = 0
    deltas: int = 0
    reused: int = 0
    reused_deltas: int = 0
    pack_reused: int = 0

    def summary(self) -> str:
        return (
            f"Total {self.total} (delta {self.deltas}), reused {self.reused} "
            f"(delta {self.reused_deltas}), pack-reused {self.pack_reused}\n"
        )


def encode_entry_header(kind: int, size: int) -> bytes:
    """The type-and-size varint that opens a pack entry."""
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def encode_ofs(distance: int) -> bytes:
    """git's offset encoding for OFS_DELTA (big-endian base-128, each more byte adds one)."""
    out = [distance & 0x7F]
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    return bytes(reversed(out))


def decode_entry_size(header: bytes) -> int:
    """The size field of a pack entry header; raises PackFormatError."""
    if not header:
        raise PackFormatError("empty entry header")
    byte = header[0]
    size = byte & 0x0F
    shift = 4
    pos = 1
    while byte & 0x80:
        if pos >= len(header):
            raise PackFormatError("truncated entry header")
        byte = header[pos]
        size |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
    return size


def order_entries(source: PackSource, send: Iterable[Oid], send_set: set[Oid]) -> list[StoredEntry]:
    """The stored entries of ``send`` in (pack_id, offset) order; raises MissingObject."""
    found: list[StoredEntry] = []
    if len(send_set) >= SCAN_MIN and len(send_set) * SCAN_RATIO > source.object_count():
        seen: set[Oid] = set()
        for entry in source.iter_entries():
            if entry.oid in send_set and entry.oid not in seen:
                seen.add(entry.oid)
                found.append(entry)
        rest = [oid for oid in send if oid not in seen]  # e.g. stored in a fork parent
    else:
        rest = list(send)
    extra: list[StoredEntry] = []
    for oid in dict.fromkeys(rest):
        located = source.stored_entry(oid)
        if located is None:
            raise MissingObject(oid, "while writing a pack")
        extra.append(located)
    extra.sort(key=lambda e: (e.source, e.pack_id, e.offset))
    return extra + found if found else extra


class _Out:
    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.sha = hashlib.sha1()
        self.buf = bytearray()
        self.offset = 0

    def put(self, data: bytes) -> None:
        self.buf += data
        self.offset += len(data)
        if len(self.buf) >= FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        buf = self.buf
        for start in range(0, len(buf), FLUSH_SIZE):
            piece = bytes(buf[start : start + FLUSH_SIZE])
            self.sha.update(piece)
            self.write(piece)
        buf.clear()


def write_pack(
    source: PackSource,
    send: list[Oid],
    client_has: set[Oid],
    write: Callable[[bytes], None],
    *,
    ofs_delta: bool,
    thin_pack: bool,
    progress: Callable[[str], None] | None = None,
) -> PackStats:
    """Write a pack holding exactly the objects ``send`` (each once) to ``write``.

    ``client_has`` are objects the client certainly has: with ``thin_pack`` they may be
    REF_DELTA bases without being sent. Raises MissingObject, PackFormatError."""
    send_set = set(send)
    entries = order_entries(source, send, send_set)
    return _write_entries(
        source,
        entries,
        len(entries),
        send_set,
        client_has if thin_pack else None,
        write,
        ofs_delta=ofs_delta,
        progress=progress,
    )


def write_store_without_blobs(
    source: PackSource,
    write: Callable[[bytes], None],
    *,
    progress: Callable[[str], None] | None = None,
) -> PackStats:
    """Every commit, tree and tag of the store, in stored order, no walk (a blob:none
    clone of a store whose objects are all wanted). A delta's base has the delta's type,
    so every base is sent too. Raises MissingObject, PackFormatError."""
    conn = source.connection
    total = conn.execute("SELECT COUNT(*) FROM objects WHERE type != ?", (ObjType.BLOB,)).fetchone()[0]
    return _write_entries(
        source, _non_blob_entries(conn), total, _EVERY_BASE, None, write, ofs_delta=True, progress=progress
    )


class _EveryBase:
    """A ``send_set`` that holds every base (the type-filtered whole-store stream)."""

    def __contains__(self, oid: object) -> bool:
        return True


_EVERY_BASE = _EveryBase()


def _non_blob_entries(conn: sqlite3.Connection) -> Iterator[StoredEntry]:
    last = (-1, -1)
    while True:
        rows = conn.execute(
            f"SELECT {ENTRY_COLUMNS}"
            " FROM objects WHERE (pack_id, offset) > (?, ?) AND type != ? ORDER BY pack_id, offset LIMIT 2000",
            (*last, ObjType.BLOB),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield StoredEntry.from_row(row)
        last = (rows[-1][4], rows[-1][5])


def _write_entries(
    source: PackSource,
    entries: Iterable[StoredEntry],
    total: int,
    send_set: Container[Oid],
    thin_bases: set[Oid] | None,
    write: Callable[[bytes], None],
    *,
    ofs_delta: bool,
    progress: Callable[[str], None] | None,
) -> PackStats:
    if progress is not None:
        progress(f"Counting objects: 100% ({total}/{total}), done.\n")
    out = _Out(write)
    out.put(b"PACK" + struct.pack(">II", 2, total))
    stats = PackStats()
    written: dict[Oid, int] = {}
    waiting: dict[Oid, list[StoredEntry]] = {}

    def emit(entry: StoredEntry) -> None:
        start = out.offset
        if entry.kind in (EntryKind.OFS_DELTA, EntryKind.REF_DELTA):
            if not _emit_delta(source, entry, out, written, thin_bases, ofs_delta):
                _emit_whole(source, entry, out)
            else:
                stats.deltas += 1
                stats.reused += 1
                stats.reused_deltas += 1
        else:
            for piece in source.read_entry_bytes(entry):
                out.put(piece)
            stats.reused += 1
        written[entry.oid] = start
        stats.total += 1

    for entry in entries:
        base = entry.base
        if base is not None and base in send_set and base not in written:
            waiting.setdefault(base, []).append(entry)
            continue
        emit(entry)
        ready = waiting.pop(entry.oid, None)
        while ready:
            nxt = ready.pop()
            emit(nxt)
            ready.extend(waiting.pop(nxt.oid, ()))
    if waiting:
        oid = next(iter(waiting))
        raise MissingObject(oid, "as a delta base while writing a pack")
    if stats.total != total:
        raise PackFormatError(f"pack header says {total} objects, {stats.total} were written")
    out.flush()
    trailer = out.sha.digest()
    write(trailer)
    if progress is not None:
        progress(stats.summary())
    return stats


def _emit_delta(
    source: PackSource,
    entry: StoredEntry,
    out: _Out,
    written: dict[Oid, int],
    client_has: set[Oid] | None,
    ofs_delta: bool,
) -> bool:
    """Write a stored delta under a rewritten header; False when its base is unusable."""
    base = entry.base
    assert base is not None
    offset = written.get(base)
    if offset is None and (client_has is None or base not in client_has):
        return False
    pieces = source.read_entry_bytes(entry)
    head = b""
    for piece in pieces:
        head += piece
        if len(head) >= entry.header_len:
            break
    if len(head) < entry.header_len:
        raise PackFormatError(f"stored entry of {entry.oid.hex()} is truncated")
    delta_size = decode_entry_size(head[: entry.header_len])
    if offset is not None and ofs_delta:
        header = encode_entry_header(EntryKind.OFS_DELTA, delta_size) + encode_ofs(out.offset - offset)
    else:
        header = encode_entry_header(EntryKind.REF_DELTA, delta_size) + base
    out.put(header)
    out.put(head[entry.header_len :])
    for piece in pieces:
        out.put(piece)
    return True


def _emit_whole(source: PackSource, entry: StoredEntry, out: _Out) -> None:
    obj_type, data = source.get_object(entry.oid)
    out.put(encode_entry_header(obj_type, len(data)))
    out.put(zlib.compress(data))


def write_whole_store(
    conn: sqlite3.Connection,
    write: Callable[[bytes], None],
    *,
    progress: Callable[[str], None] | None = None,
) -> PackStats | None:
    """Send every object of the store by copying each stored pack's entries verbatim
    (pack reuse): one pack header for the total, the packs' bodies in id order, a new
    trailer. Valid because ofs-delta distances are internal to a pack and a ref-delta
    names a base stored in an earlier pack or the same one.

    Returns None, having written nothing, when some pack holds dead entries (objects
    stored first by an earlier pack), which would be sent twice. The caller checks that
    the client takes ofs-delta and that every stored object is to be sent."""
    layouts = pack_layouts(conn)
    if any(p.live != p.entries for p in layouts):
        return None
    total = sum(p.entries for p in layouts)
    deltas = sum(p.deltas for p in layouts)
    if progress is not None:
        progress(f"Counting objects: 100% ({total}/{total}), done.\n")
    sha = hashlib.sha1()
    head = b"PACK" + struct.pack(">II", 2, total)
    sha.update(head)
    write(head)
    for layout in layouts:
        for piece in iter_pack_body(conn, layout):
            sha.update(piece)
            write(piece)  # a chunk row's worth (at most 2 MiB): the writer frames it
    write(sha.digest())
    stats = PackStats(total, deltas, total, deltas, total)
    if progress is not None:
        progress(stats.summary())
    return stats
