"""Pure-Python twin of the C resolver (native/src/resolve.c): a pushed pack from scan to
resolved rows and checked links.

Rules (both twins; tests compare them on hostile packs):
- ``feed(data)`` scans the pack (PackScanner) and keeps one record per entry; ``finish()``
  checks the trailer and returns the checksum. ``start(fd)`` names the pack's file: when
  called before feeding, feed writes each piece there (OSError if it cannot); the walk
  reads the pack's bytes back from it (pread), never holds them.
- ``next_rows()`` resolves, and returns ``(rows, parse)``: up to 512 ``ResolvedRow``s in
  resolution order (a base before its deltas; rows of duplicate objects included), and
  ``parse`` when an object needs the caller to parse it (a commit, a tag, or a tree the
  built-in parser refuses): ``(index, oid, type, data)``; the caller gives back its links
  with ``add_links(index, [(oid, type), ...])`` before calling ``next_rows`` again.
  ``([], None)`` means done.
- Order: roots are the whole entries in pack order; a resolved object's ofs-delta
  children, then the ref-delta children waiting on its id, go on one LIFO stack, so the
  walk is depth first with the lowest offset first.
- Errors: ResolveError with kind "corrupt" (a delta does not apply, a collision attack),
  "limit" (a delta's result exceeds max_object_size), "format" or "io" (the pack file);
  PackError from feed/finish. Messages name the entry's pack offset.
- Thin packs: ``pending_bases()`` lists the ids that unresolved ref-deltas still wait on
  (pack order, distinct); ``add_base(oid, type, data, depth)`` queues a base's subtree
  (True) or says nothing waits on it (False).
- After resolution: ``first_unresolved()`` -> (offset, kind, base id or None) | None;
  ``wrong_link()`` -> (src, oid, wanted type, actual type) for a link to an object of the
  pack (or an added base) of another type; ``external_links()`` yields batches of (src,
  oid, type) for linked ids outside the pack; ``unnamed()`` yields batches of the pack's
  ids that no link names. Each distinct id is kept once; the first link naming an id
  sets its wanted type, a different one later is kept in a list of up to 16 conflicts.
- Object ids of deltas: plain SHA-1 here (the pure collision detector is too slow for
  ingest, see native.collision.ingest_object_id); SHA-1DC in the C twin.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator

from . import tree_pure
from .errors import DeltaError, ResolveError, TreeError
from .pure import PackScanner, delta_apply, delta_header, object_id

ResolvedRow = tuple[bytes, int, int, int, int, int, int, int, bytes | None, int]
"""(oid, type, kind, size, offset, length, header_len, crc32, base oid | None, depth)"""
ParseRequest = tuple[int, bytes, int, bytes]
"""(entry index, oid, type, data)"""

_ROW_BATCH = 512
_MAX_CONFLICTS = 16


class _Ent:
    __slots__ = (
        "base_oid",
        "children",
        "crc",
        "depth",
        "ext",
        "hlen",
        "kind",
        "length",
        "offset",
        "oid",
        "parent",
        "size",
        "type",
    )

    def __init__(self, offset: int, size: int, length: int, crc: int, hlen: int, kind: int) -> None:
        self.offset = offset
        self.size = size
        self.length = length
        self.crc = crc
        self.hlen = hlen
        self.kind = kind
        self.type = kind if kind <= 4 else 0
        self.parent = -1
        self.children: list[int] = []
        self.oid: bytes | None = None
        self.base_oid: bytes | None = None
        self.depth = 0
        self.ext = False


class _Rec:
    __slots__ = ("entry", "ref", "src", "want")

    def __init__(self) -> None:
        self.entry = -1
        self.ref: list[int] = []
        self.src = -1
        self.want = 0


class DeltaResolver:
    def __init__(self, max_object_size: int | None = None, cache_bytes: int = 32 << 20) -> None:
        self._scanner = PackScanner(max_object_size)
        self._max = max_object_size
        self._cache_max = cache_bytes
        self._ents: list[_Ent] = []
        self._npack = 0
        self._recs: dict[bytes, _Rec] = {}
        self._index: dict[int, int] = {}  # offset -> entry, during the scan
        self._conflicts: list[tuple[int, bytes, int]] = []
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._stack: list[int] = []
        self._next_root = 0
        self._pinned = -1
        self._fd = -1
        self._spooled = 0
        self.deltas = 0
        self.deltas_done = 0

    # -- scan ----------------------------------------------------------------------------

    def _rec(self, oid: bytes) -> _Rec:
        r = self._recs.get(oid)
        if r is None:
            r = self._recs[oid] = _Rec()
        return r

    def feed(self, data: bytes) -> None:
        if self._fd >= 0:
            view = memoryview(data)
            while view:
                put = os.pwrite(self._fd, view, self._spooled)
                view = view[put:]
                self._spooled += put
        for e in self._scanner.feed(data):
            i = len(self._ents)
            x = _Ent(e.offset, e.size, e.length, e.crc32, e.header_len, e.kind)
            self._ents.append(x)
            self._index[e.offset] = i
            if e.kind <= 4:
                assert e.oid is not None
                x.oid = e.oid
                self._rec(e.oid)
            elif e.kind == 6:
                x.parent = self._index[e.base_offset]
                self._ents[x.parent].children.append(i)
                self.deltas += 1
            else:
                assert e.base_oid is not None
                x.base_oid = e.base_oid
                self._rec(e.base_oid).ref.append(i)
                self.deltas += 1
        self._npack = len(self._ents)

    def finish(self) -> bytes:
        checksum = self._scanner.finish()
        self._index = {}
        return checksum

    @property
    def entries(self) -> int:
        return self._npack

    def start(self, fd: int) -> None:
        self._fd = fd

    # -- reading and caching -------------------------------------------------------------

    def _inflate(self, i: int) -> bytes:
        import zlib

        e = self._ents[i]
        n = e.length - e.hlen
        raw = os.pread(self._fd, n, e.offset + e.hlen)
        if len(raw) != n:
            raise ResolveError("io", f"cannot read pack entry at offset {e.offset}")
        try:
            d = zlib.decompressobj()
            out = d.decompress(raw, e.size + 1)
            ok = d.eof and len(out) == e.size
        except zlib.error:
            ok = False
        if not ok:
            raise ResolveError("format", f"entry at pack offset {e.offset}: bad zlib data")
        return out

    def _put(self, i: int, data: bytes) -> None:
        if len(data) > self._cache_max and i != self._pinned:
            return
        self._cache[i] = data
        self._cache_bytes += len(data)
        for k in list(self._cache):
            if self._cache_bytes <= self._cache_max:
                break
            if k != self._pinned:
                self._cache_bytes -= len(self._cache.pop(k))

    def _content(self, i: int) -> bytes:
        path: list[int] = []
        cur = i
        while cur not in self._cache and self._ents[cur].kind >= 6:
            path.append(cur)
            cur = self._ents[cur].parent
        if cur in self._cache:
            self._cache.move_to_end(cur)
            data = self._cache[cur]
        else:
            data = self._inflate(cur)
            self._put(cur, data)
        for step in reversed(path):
            data = self._apply(step, data, self._inflate(step))
            self._put(step, data)
        return data

    def _apply(self, i: int, base: bytes, delta: bytes) -> bytes:
        off = self._ents[i].offset
        if self._max is not None:
            try:
                result_size = delta_header(delta)[1]
            except DeltaError as exc:
                raise ResolveError("corrupt", f"delta at pack offset {off} is malformed: {exc}") from None
            if result_size > self._max:
                raise ResolveError(
                    "limit",
                    f"object of the delta at pack offset {off}: size {result_size} exceeds limit {self._max}",
                )
        try:
            return delta_apply(base, delta)
        except DeltaError as exc:
            raise ResolveError("corrupt", f"delta at pack offset {off} does not apply: {exc}") from None

    # -- the walk ------------------------------------------------------------------------

    def _resolved(self, i: int, oid: bytes, size: int, rows: list[ResolvedRow] | None) -> None:
        e = self._ents[i]
        e.oid = oid
        x = self._recs[oid]
        if x.entry < 0:
            x.entry = i
            for c in reversed(x.ref):
                self._ents[c].parent = i
                self._stack.append(c)
            x.ref = []
        self._stack.extend(reversed(e.children))
        if rows is not None:
            base = self._ents[e.parent].oid if e.parent >= 0 else None
            rows.append((oid, e.type, e.kind, size, e.offset, e.length, e.hlen, e.crc, base, e.depth))

    def _add_link(self, src: int, oid: bytes, want: int) -> None:
        x = self._rec(oid)
        if not x.want:
            x.want = want
            x.src = src
        elif x.want != want and len(self._conflicts) < _MAX_CONFLICTS:
            self._conflicts.append((src, oid, want))

    def add_links(self, index: int, links: list[tuple[bytes, int]]) -> None:
        for oid, t in links:
            self._add_link(index, oid, int(t))

    def next_rows(self) -> tuple[list[ResolvedRow], ParseRequest | None]:
        rows: list[ResolvedRow] = []
        stack = self._stack
        while len(rows) < _ROW_BATCH:
            if not stack:
                if self._pinned >= 0:
                    self._cache_bytes -= len(self._cache.pop(self._pinned, b""))
                    self._pinned = -1
                while self._next_root < self._npack and self._ents[self._next_root].kind >= 6:
                    self._next_root += 1
                if self._next_root >= self._npack:
                    return rows, None
                stack.append(self._next_root)
                self._next_root += 1
            i = stack.pop()
            e = self._ents[i]
            mark = len(stack)
            if e.kind <= 4:
                assert e.oid is not None
                self._resolved(i, e.oid, e.size, rows)
                if len(stack) == mark and e.type == 3:
                    continue
                data = self._inflate(i)
                if len(stack) > mark:
                    self._put(i, data)
            else:
                p = e.parent
                base = self._content(p)
                data = self._apply(i, base, self._inflate(i))
                del base
                e.type = self._ents[p].type
                e.depth = self._ents[p].depth + 1
                oid = object_id(e.type, data)
                self._rec(oid)
                self._resolved(i, oid, len(data), rows)
                self.deltas_done += 1
                if len(stack) > mark:
                    self._put(i, data)
            if e.type != 3:
                assert e.oid is not None
                if e.type == 2:
                    try:
                        trees, blobs = tree_pure.tree_links(data)
                    except TreeError:
                        return rows, (i, e.oid, e.type, data)
                    for k in range(0, len(trees), 20):
                        self._add_link(i, trees[k : k + 20], 2)
                    for k in range(0, len(blobs), 20):
                        self._add_link(i, blobs[k : k + 20], 3)
                else:
                    return rows, (i, e.oid, e.type, data)
        return rows, None

    # -- thin packs ----------------------------------------------------------------------

    def pending_bases(self) -> list[bytes]:
        out: dict[bytes, None] = {}
        for e in self._ents[: self._npack]:
            if e.kind == 7 and e.oid is None:
                assert e.base_oid is not None
                if self._recs[e.base_oid].entry < 0:
                    out[e.base_oid] = None
        return list(out)

    def add_base(self, oid: bytes, obj_type: int, data: bytes, depth: int) -> bool:
        x = self._recs.get(oid)
        if x is None or x.entry >= 0 or not x.ref or self._stack or self._pinned >= 0:
            return False
        i = len(self._ents)
        e = _Ent(0, len(data), 0, 0, 0, obj_type)
        e.ext = True
        e.depth = depth
        self._ents.append(e)
        self._pinned = i
        self._cache[i] = data
        self._cache_bytes += len(data)
        self._resolved(i, oid, len(data), None)
        return True

    # -- after resolution ----------------------------------------------------------------

    def first_unresolved(self) -> tuple[int, int, bytes | None] | None:
        for e in self._ents[: self._npack]:
            if e.oid is None:
                return e.offset, e.kind, e.base_oid if e.kind == 7 else None
        return None

    def _type(self, x: _Rec) -> int:
        return self._ents[x.entry].type

    def _src(self, src: int) -> bytes:
        oid = self._ents[src].oid
        assert oid is not None
        return oid

    def wrong_link(self) -> tuple[bytes, bytes, int, int] | None:
        for src, oid, want in self._conflicts:
            x = self._recs[oid]
            if x.entry >= 0 and self._type(x) != want:
                return self._src(src), oid, want, self._type(x)
        for oid, x in self._recs.items():
            if x.want and x.entry >= 0 and self._type(x) != x.want:
                return self._src(x.src), oid, x.want, self._type(x)
        return None

    def external_links(self, batch: int = 4096) -> Iterator[list[tuple[bytes, bytes, int]]]:
        out: list[tuple[bytes, bytes, int]] = []
        for oid, x in self._recs.items():
            if x.want and x.entry < 0:
                out.append((self._src(x.src), oid, x.want))
                if len(out) >= batch:
                    yield out
                    out = []
        if out:
            yield out

    def unnamed(self, batch: int = 4096) -> Iterator[list[bytes]]:
        out: list[bytes] = []
        for oid, x in self._recs.items():
            if not x.want and x.entry >= 0 and not self._ents[x.entry].ext:
                out.append(oid)
                if len(out) >= batch:
                    yield out
                    out = []
        if out:
            yield out
