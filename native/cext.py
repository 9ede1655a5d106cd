"""Thin wrappers over the C extension native._native, with the API of native.pure.

Rules:
- No logic beyond argument marshalling and error mapping: the C code (native/src) does
  the work, with the GIL released (cffi API mode releases it around every call), so the
  heavy loops stay inside single C calls.
- Importing this module raises ImportError when the extension is not built.
- C error codes become DeltaError / PackError with the C code's message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from ._native import ffi, lib  # ImportError when not built
from .entry import ScannedEntry
from .errors import DeltaError, PackError, ResolveError, TreeError
from .resolve_pure import ParseRequest, ResolvedRow

__all__ = [
    "DeltaResolver",
    "PackScanner",
    "ScannedEntry",
    "Sha1",
    "delta_apply",
    "delta_header",
    "object_id",
    "sha1",
    "tree_links",
]

_ENTRY_BATCH = 256
_NO_LIMIT = (1 << 64) - 1
_alloc_raw = ffi.new_allocator(should_clear_after_alloc=False)


def _buf(data: Any) -> Any:
    """bytes pass to a ``const char *`` parameter as they are; other buffers get wrapped."""
    if type(data) is bytes:
        return data
    return ffi.from_buffer("char[]", data)


def object_id(type_num: int, data: bytes) -> bytes:
    """Raw 20-byte SHA-1 of b"<typename> <len>\\0" + data; ValueError on an unknown type."""
    out = ffi.new("uint8_t[20]")
    src = _buf(data)
    if lib.gs_object_id(type_num, src, len(src), out) != 0:
        raise ValueError(f"not an object type: {type_num!r}")
    return ffi.buffer(out, 20)[:]


class Sha1:
    """Streaming SHA-1 (FIPS 180-4)."""

    __slots__ = ("_ctx",)

    def __init__(self, data: bytes = b"") -> None:
        self._ctx = ffi.new("gs_sha1_ctx *")
        lib.gs_sha1_init(self._ctx)
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        src = _buf(data)
        lib.gs_sha1_update(self._ctx, src, len(src))

    def digest(self) -> bytes:
        """The digest of everything fed so far; more updates may follow."""
        out = ffi.new("uint8_t[20]")
        lib.gs_sha1_digest(self._ctx, out)
        return ffi.buffer(out, 20)[:]


def sha1(data: bytes) -> bytes:
    out = ffi.new("uint8_t[20]")
    src = _buf(data)
    lib.gs_sha1(src, len(src), out)
    return ffi.buffer(out, 20)[:]


def _header(d: Any) -> tuple[int, int, int]:
    base_size = ffi.new("uint64_t *")
    result_size = ffi.new("uint64_t *")
    header_len = ffi.new("size_t *")
    rc = lib.gs_delta_header(d, len(d), base_size, result_size, header_len)
    if rc != 0:
        raise DeltaError(ffi.string(lib.gs_delta_strerror(rc)).decode())
    return int(base_size[0]), int(result_size[0]), int(header_len[0])


def delta_header(delta: bytes) -> tuple[int, int, int]:
    """(base_size, result_size, header_len) of a git delta; DeltaError if truncated."""
    return _header(_buf(delta))


def delta_apply(base: bytes, delta: bytes) -> bytes:
    """Apply a git delta to ``base``; DeltaError on any malformed or ill-fitting delta."""
    b = _buf(base)
    d = _buf(delta)
    base_size, result_size, pos = _header(d)
    blen = len(b)
    if base_size != blen:
        raise DeltaError(f"delta base size {base_size} != actual base size {blen}")
    if result_size > (len(d) - pos) * max(1, min(blen, 0xFFFFFF)):
        raise DeltaError(f"delta result size {result_size} cannot be produced by this delta")
    out = _alloc_raw("uint8_t[]", result_size)
    rc = lib.gs_delta_apply(b, blen, d, len(d), out, result_size)
    if rc != 0:
        raise DeltaError(ffi.string(lib.gs_delta_strerror(rc)).decode())
    return ffi.buffer(out, result_size)[:]


class PackScanner:
    """Streaming validator/indexer of a whole pack; see native.pure.PackScanner."""

    def __init__(self, max_object_size: int | None = None) -> None:
        self.max_object_size = max_object_size
        limit = _NO_LIMIT if max_object_size is None else max(0, min(max_object_size, _NO_LIMIT))
        s = lib.gs_scanner_new(limit)
        if s == ffi.NULL:
            raise MemoryError("cannot allocate a pack scanner")
        self._s = ffi.gc(s, lib.gs_scanner_free)
        self._ents = ffi.new("gs_entry[]", _ENTRY_BATCH)
        self._consumed = ffi.new("size_t *")
        self._nout = ffi.new("size_t *")

    @property
    def object_count(self) -> int | None:
        n = int(lib.gs_scanner_object_count(self._s))
        return None if n < 0 else n

    def _error(self) -> PackError:
        return PackError(ffi.string(lib.gs_scanner_error(self._s)).decode("utf-8", "replace"))

    def feed(self, data: bytes) -> list[ScannedEntry]:
        """Consume the next piece of the pack; returns the entries it completed."""
        src = ffi.from_buffer("char[]", data)  # a pointer we can offset
        n = len(src)
        out: list[ScannedEntry] = []
        off = 0
        ents = self._ents
        while True:
            rc = lib.gs_scanner_feed(
                self._s, src + off, n - off, self._consumed, ents, _ENTRY_BATCH, self._nout
            )
            if rc != 0:
                raise self._error()
            for k in range(self._nout[0]):
                e = ents[k]
                out.append(
                    ScannedEntry(
                        offset=e.offset,
                        kind=e.kind,
                        size=e.size,
                        header_len=e.header_len,
                        length=e.length,
                        crc32=e.crc32,
                        base_offset=e.base_offset,
                        base_oid=ffi.buffer(e.base_oid, 20)[:] if e.has_base_oid else None,
                        oid=ffi.buffer(e.oid, 20)[:] if e.has_oid else None,
                    )
                )
            off += self._consumed[0]
            if off >= n:
                return out

    def finish(self) -> bytes:
        """Check that exactly the 20-byte SHA-1 trailer followed the last entry; return it."""
        out = ffi.new("uint8_t[20]")
        if lib.gs_scanner_finish(self._s, out) != 0:
            raise self._error()
        return ffi.buffer(out, 20)[:]


_TREE_ERRORS = {-1: "truncated or bad tree entry", -2: "bad tree entry name", -3: "bad tree entry mode"}


def tree_links(data: bytes) -> tuple[bytes, bytes]:
    """(packed subtree ids, packed blob ids) named by a tree; TreeError when malformed."""
    src = _buf(data)
    n = len(src)
    trees = _alloc_raw("uint8_t[]", n or 1)
    blobs = _alloc_raw("uint8_t[]", n or 1)
    counts = ffi.new("size_t[3]")
    rc = lib.gs_tree_links(src, n, trees, counts, blobs, counts + 1, counts + 2)
    if rc != 0:
        raise TreeError(_TREE_ERRORS.get(rc, "bad tree"), int(counts[2]))
    return ffi.buffer(trees, 20 * counts[0])[:], ffi.buffer(blobs, 20 * counts[1])[:]


_RES_ERRORS = {-1: "corrupt", -2: "limit", -3: "format", -4: "nomem", -5: "io"}
_ROW_BATCH = 512
# gs_resolved as laid out by the C compiler (checked at import): rows unpack in C, not per field
_ROW = struct.Struct("=QQQIIIiii20s20s")
if ffi.sizeof("gs_resolved") != _ROW.size:  # pragma: no cover - an unexpected ABI
    raise ImportError("gs_resolved layout differs from native.cext._ROW")


class DeltaResolver:
    """A pushed pack from scan to resolved rows and checked links; see native.resolve_pure
    (the twin, whose docstrings state the contract) and native/src/resolve.c."""

    def __init__(self, max_object_size: int | None = None, cache_bytes: int = 32 << 20) -> None:
        limit = _NO_LIMIT if max_object_size is None else max(0, min(max_object_size, _NO_LIMIT))
        r = lib.gs_resolver_new(limit, max(0, cache_bytes))
        if r == ffi.NULL:
            raise MemoryError("cannot allocate a pack resolver")
        self._r = ffi.gc(r, lib.gs_resolver_free)
        self._rows = ffi.new("gs_resolved[]", _ROW_BATCH)
        self._nout = ffi.new("size_t *")
        self._parse = ffi.new("gs_parse *")
        self._fd: int | None = None

    def _error(self, rc: int) -> Exception:
        msg = ffi.string(lib.gs_resolver_error(self._r)).decode("utf-8", "replace")
        if rc == -4:
            return MemoryError(msg)
        return ResolveError(_RES_ERRORS.get(rc, "corrupt"), msg)

    def feed(self, data: bytes) -> None:
        src = _buf(data)
        rc = lib.gs_resolver_feed(self._r, src, len(src))
        if rc:
            msg = ffi.string(lib.gs_resolver_error(self._r)).decode("utf-8", "replace")
            if rc == -5:
                raise OSError(msg)
            if rc == -4:
                raise MemoryError(msg)
            raise PackError(msg)

    def finish(self) -> bytes:
        out = ffi.new("uint8_t[20]")
        rc = lib.gs_resolver_finish(self._r, out)
        if rc:
            if rc == -4:
                raise MemoryError("out of memory")
            raise PackError(ffi.string(lib.gs_resolver_error(self._r)).decode("utf-8", "replace"))
        return ffi.buffer(out, 20)[:]

    @property
    def entries(self) -> int:
        return int(lib.gs_resolver_entries(self._r))

    @property
    def deltas(self) -> int:
        return int(lib.gs_resolver_deltas(self._r))

    @property
    def deltas_done(self) -> int:
        return int(lib.gs_resolver_deltas_done(self._r))

    def start(self, fd: int) -> None:
        self._fd = fd
        lib.gs_resolver_set_fd(self._r, fd)

    def next_rows(self) -> tuple[list[ResolvedRow], ParseRequest | None]:
        rc = lib.gs_resolver_next(self._r, self._rows, _ROW_BATCH, self._nout, self._parse)
        if rc < 0:
            raise self._error(rc)
        buf = ffi.buffer
        n = self._nout[0]
        rows: list[ResolvedRow] = [
            (oid, t, k, size, off, length, hlen, crc, base if has_base else None, depth)
            for off, size, length, hlen, crc, depth, t, k, has_base, oid, base in _ROW.iter_unpack(
                buf(self._rows, _ROW.size * n)
            )
        ]
        if rc == 1:
            p = self._parse
            return rows, (int(p.index), buf(p.oid, 20)[:], int(p.type), buf(p.data, p.len)[:])
        return rows, None

    def add_links(self, index: int, links: list[tuple[bytes, int]]) -> None:
        if not links:
            return
        oids = b"".join(o for o, _ in links)
        types = bytes(t for _, t in links)
        if lib.gs_resolver_add_links(self._r, index, oids, types, len(links)):
            raise MemoryError("out of memory")

    def pending_bases(self) -> list[bytes]:
        cap = max(1, self.deltas)
        out = _alloc_raw("uint8_t[]", 20 * cap)
        n = lib.gs_resolver_pending_bases(self._r, out, cap)
        raw = ffi.buffer(out, 20 * n)[:]
        return list(dict.fromkeys(raw[i : i + 20] for i in range(0, len(raw), 20)))

    def add_base(self, oid: bytes, obj_type: int, data: bytes, depth: int) -> bool:
        src = _buf(data)
        rc = lib.gs_resolver_add_base(self._r, oid, obj_type, src, len(src), depth)
        if rc < 0:
            raise MemoryError("out of memory")
        return rc == 1

    def first_unresolved(self) -> tuple[int, int, bytes | None] | None:
        off = ffi.new("uint64_t *")
        kind = ffi.new("int *")
        base = ffi.new("uint8_t[20]")
        rc = lib.gs_resolver_first_unresolved(self._r, off, kind, base)
        if rc == 0:
            return None
        return int(off[0]), int(kind[0]), ffi.buffer(base, 20)[:] if rc == 2 else None

    def wrong_link(self) -> tuple[bytes, bytes, int, int] | None:
        src = ffi.new("uint8_t[20]")
        oid = ffi.new("uint8_t[20]")
        want = ffi.new("int *")
        got = ffi.new("int *")
        if not lib.gs_resolver_wrong_link(self._r, src, oid, want, got):
            return None
        return ffi.buffer(src, 20)[:], ffi.buffer(oid, 20)[:], int(want[0]), int(got[0])

    def external_links(self, batch: int = 4096) -> Iterator[list[tuple[bytes, bytes, int]]]:
        cursor = ffi.new("uint64_t *")
        srcs = _alloc_raw("uint8_t[]", 20 * batch)
        oids = _alloc_raw("uint8_t[]", 20 * batch)
        types = _alloc_raw("uint8_t[]", batch)
        while True:
            n = lib.gs_resolver_external_links(self._r, cursor, srcs, oids, types, batch)
            if not n:
                return
            s = ffi.buffer(srcs, 20 * n)[:]
            o = ffi.buffer(oids, 20 * n)[:]
            t = ffi.buffer(types, n)[:]
            yield [(s[20 * k : 20 * k + 20], o[20 * k : 20 * k + 20], t[k]) for k in range(n)]

    def unnamed(self, batch: int = 4096) -> Iterator[list[bytes]]:
        cursor = ffi.new("uint64_t *")
        oids = _alloc_raw("uint8_t[]", 20 * batch)
        while True:
            n = lib.gs_resolver_unnamed(self._r, cursor, oids, batch)
            if not n:
                return
            o = ffi.buffer(oids, 20 * n)[:]
            yield [o[20 * k : 20 * k + 20] for k in range(n)]
