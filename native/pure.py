"""Pure-Python twin of the native extension: SHA-1, object ids, delta apply, pack scan.

Rules:
- Same API and same results as native.cext (the C extension); tests run both.
- Hostile input raises only DeltaError / PackError (native.errors), never anything else.
- Memory stays bounded by the size of one output buffer: the pack scanner inflates in
  pieces of at most INFLATE_CHUNK bytes, hashes incrementally, and keeps only a partial
  entry header between feeds (plus one offset per entry, to validate ofs-deltas).
- Limits shared with the C code (so both reject the same inputs): a delta size varint has
  at most 9 bytes (values < 2**63); a pack entry's size varint has at most 9 bytes
  (values < 2**60); an ofs-delta's distance must land on the start of an earlier entry.

Formats: gitformat-pack(5), "pack-*.pack files have the following format" and
"Deltified representation".
"""

from __future__ import annotations

import hashlib
import zlib

from .entry import TYPE_NAMES, ScannedEntry
from .errors import DeltaError, PackError

__all__ = [
    "PackScanner",
    "ScannedEntry",
    "Sha1",
    "delta_apply",
    "delta_header",
    "object_id",
    "sha1",
]

INFLATE_CHUNK = 64 * 1024
_MAX_ENTRY_HEADER = 32  # 9-byte size varint + 20-byte base id fits; ofs varint is shorter


def _type_name(type_num: int) -> bytes:
    try:
        return TYPE_NAMES[type_num]
    except KeyError:
        raise ValueError(f"not an object type: {type_num!r}") from None


def object_id(type_num: int, data: bytes) -> bytes:
    """Raw 20-byte SHA-1 of b"<typename> <len>\\0" + data; ValueError on an unknown type."""
    h = hashlib.sha1(b"%s %d\x00" % (_type_name(type_num), len(data)))
    h.update(data)
    return h.digest()


class Sha1:
    """Streaming SHA-1 (FIPS 180-4)."""

    __slots__ = ("_h",)

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashlib.sha1(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        """The digest of everything fed so far; more updates may follow."""
        return self._h.digest()


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _delta_varint(delta: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    n = len(delta)
    while True:
        if pos >= n:
            raise DeltaError("delta header truncated")
        c = delta[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, pos
        if shift >= 63:
            raise DeltaError("delta size varint too long")


def delta_header(delta: bytes) -> tuple[int, int, int]:
    """(base_size, result_size, header_len) of a git delta; DeltaError if truncated."""
    base_size, pos = _delta_varint(delta, 0)
    result_size, pos = _delta_varint(delta, pos)
    return base_size, result_size, pos


def delta_apply(base: bytes, delta: bytes) -> bytes:
    """Apply a git delta to ``base``.

    The output is allocated at the size the header declares; every copy is checked against
    the base and the output. DeltaError if the base size differs from the header, an
    instruction is truncated, uses the reserved opcode 0, reads outside the base, writes
    past the declared size, or the output is not filled exactly.
    """
    base_size, result_size, pos = delta_header(delta)
    blen = len(base)
    if base_size != blen:
        raise DeltaError(f"delta base size {base_size} != actual base size {blen}")
    n = len(delta)
    # Each instruction byte yields at most max(1, min(base, 0xffffff)) output bytes; a
    # larger declared size cannot be filled, so refuse before allocating it.
    if result_size > (n - pos) * max(1, min(blen, 0xFFFFFF)):
        raise DeltaError(f"delta result size {result_size} cannot be produced by this delta")
    out = bytearray(result_size)
    o = 0
    while pos < n:
        op = delta[pos]
        pos += 1
        if op & 0x80:
            off = 0
            size = 0
            for i in range(4):
                if op & (1 << i):
                    if pos >= n:
                        raise DeltaError("delta copy instruction truncated")
                    off |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    if pos >= n:
                        raise DeltaError("delta copy instruction truncated")
                    size |= delta[pos] << (8 * i)
                    pos += 1
            if size == 0:
                size = 0x10000
            if off + size > blen:
                raise DeltaError(f"delta copy {off}+{size} outside base of {blen} bytes")
            if o + size > result_size:
                raise DeltaError("delta copy overflows the declared result size")
            out[o : o + size] = base[off : off + size]
            o += size
        elif op:
            if pos + op > n:
                raise DeltaError("delta insert instruction truncated")
            if o + op > result_size:
                raise DeltaError("delta insert overflows the declared result size")
            out[o : o + op] = delta[pos : pos + op]
            pos += op
            o += op
        else:
            raise DeltaError("delta uses reserved opcode 0")
    if o != result_size:
        raise DeltaError(f"delta produced {o} bytes, header declared {result_size}")
    return bytes(out)


def _parse_entry_header(buf: bytes, offset: int) -> tuple[int, int, int, int, bytes | None] | None:
    """Parse an entry header prefix: (kind, size, header_len, ofs, base_oid), or None if short.

    Raises PackError as soon as the prefix is invalid. ``ofs`` is the raw ofs-delta
    distance (0 for other kinds); the caller checks it names an earlier entry.
    """
    n = len(buf)
    if n == 0:
        return None
    c = buf[0]
    kind = (c >> 4) & 7
    if kind not in (1, 2, 3, 4, 6, 7):
        raise PackError(f"entry at {offset}: invalid object type {kind}")
    size = c & 0x0F
    shift = 4
    pos = 1
    while c & 0x80:
        if shift >= 60:
            raise PackError(f"entry at {offset}: size varint too long")
        if pos >= n:
            return None
        c = buf[pos]
        pos += 1
        size |= (c & 0x7F) << shift
        shift += 7
    if kind == 6:
        if pos >= n:
            return None
        c = buf[pos]
        pos += 1
        ofs = c & 0x7F
        while True:
            if ofs >= offset or ofs >= 1 << 56:
                raise PackError(f"entry at {offset}: ofs-delta base before the pack start")
            if not c & 0x80:
                break
            if pos >= n:
                return None
            c = buf[pos]
            pos += 1
            ofs = ((ofs + 1) << 7) | (c & 0x7F)
        return kind, size, pos, ofs, None
    if kind == 7:
        if pos + 20 > n:
            return None
        return kind, size, pos + 20, 0, bytes(buf[pos : pos + 20])
    return kind, size, pos, 0, None


class PackScanner:
    """Streaming validator/indexer of a whole pack (see module docstring).

    ``feed(data)`` returns the entries completed by this piece of input; ``finish()``
    checks the trailer and returns the pack checksum. Any error is a PackError, after
    which the scanner refuses further input.
    """

    def __init__(self, max_object_size: int | None = None) -> None:
        self.max_object_size = max_object_size
        self.object_count: int | None = None
        self._state = "header"  # header | entry_hdr | entry_data | trailer | done | failed
        self._buf = bytearray()  # partial pack header, entry header, or trailer
        self._pos = 0  # pack offset of the next byte to consume
        self._pack_sha = hashlib.sha1()
        self._entries_done = 0
        self._starts: set[int] = set()
        # the entry being read
        self._offset = 0
        self._kind = 0
        self._size = 0
        self._hlen = 0
        self._base_offset = -1
        self._base_oid: bytes | None = None
        self._crc = 0
        self._inflated = 0
        self._zd: zlib._Decompress | None = None
        self._obj_sha: hashlib._Hash | None = None

    def _fail(self, msg: str) -> PackError:
        self._state = "failed"
        return PackError(msg)

    def feed(self, data: bytes) -> list[ScannedEntry]:
        """Consume the next piece of the pack; returns the entries it completed."""
        if self._state == "failed":
            raise PackError("pack scanner already failed")
        if self._state == "done":
            raise PackError("pack scanner already finished")
        try:
            return self._feed(memoryview(data).cast("B"))
        except PackError:
            self._state = "failed"
            raise

    def _consume(self, piece: memoryview | bytes) -> None:
        self._pack_sha.update(piece)
        self._pos += len(piece)

    def _feed(self, data: memoryview) -> list[ScannedEntry]:
        out: list[ScannedEntry] = []
        i = 0
        n = len(data)
        while i < n:
            st = self._state
            if st == "header":
                take = min(12 - len(self._buf), n - i)
                self._buf += data[i : i + take]
                self._consume(data[i : i + take])
                i += take
                if len(self._buf) == 12:
                    self._parse_pack_header(bytes(self._buf))
                    self._buf.clear()
            elif st == "entry_hdr":
                i = self._feed_entry_header(data, i)
            elif st == "entry_data":
                i = self._feed_entry_data(data, i, out)
            elif st == "trailer":
                take = n - i
                if len(self._buf) + take > 20:
                    raise PackError(f"data after the pack trailer at offset {self._pos + 20}")
                self._buf += data[i:]
                i = n
        return out

    def _parse_pack_header(self, hdr: bytes) -> None:
        if hdr[:4] != b"PACK":
            raise PackError("not a pack: bad signature")
        version = int.from_bytes(hdr[4:8], "big")
        if version not in (2, 3):
            raise PackError(f"unsupported pack version {version}")
        self.object_count = int.from_bytes(hdr[8:12], "big")
        self._state = "entry_hdr" if self.object_count else "trailer"

    def _feed_entry_header(self, data: memoryview, i: int) -> int:
        had = len(self._buf)
        if had == 0:
            self._offset = self._pos
        cand = bytes(self._buf) + bytes(data[i : i + _MAX_ENTRY_HEADER - had])
        parsed = _parse_entry_header(cand, self._offset)
        if parsed is None:
            self._buf[:] = cand
            self._crc = zlib.crc32(cand[had:], self._crc) if had else zlib.crc32(cand)
            self._consume(cand[had:])
            return i + len(cand) - had
        kind, size, hlen, ofs, base_oid = parsed
        if kind == 6:
            base = self._offset - ofs
            if base not in self._starts:
                raise PackError(f"entry at {self._offset}: ofs-delta base {base} is not an earlier entry")
            self._base_offset = base
        else:
            self._base_offset = -1
        if self.max_object_size is not None and size > self.max_object_size:
            raise PackError(f"entry at {self._offset}: size {size} exceeds limit {self.max_object_size}")
        used = hlen - had
        piece = cand[had:hlen]
        self._crc = zlib.crc32(piece, self._crc) if had else zlib.crc32(piece)
        self._consume(piece)
        self._buf.clear()
        self._kind, self._size, self._hlen, self._base_oid = kind, size, hlen, base_oid
        self._inflated = 0
        self._zd = zlib.decompressobj()
        if kind <= 4:
            self._obj_sha = hashlib.sha1(b"%s %d\x00" % (TYPE_NAMES[kind], size))
        else:
            self._obj_sha = None
        self._state = "entry_data"
        return i + used

    def _feed_entry_data(self, data: memoryview, i: int, out: list[ScannedEntry]) -> int:
        zd = self._zd
        assert zd is not None
        buf = data[i:]
        while True:
            room = self._size - self._inflated + 1  # one byte over the size proves an overflow
            try:
                chunk = zd.decompress(buf, min(INFLATE_CHUNK, room))
            except zlib.error as e:
                raise PackError(f"entry at {self._offset}: bad zlib data ({e})") from None
            self._inflated += len(chunk)
            if self._inflated > self._size:
                raise PackError(f"entry at {self._offset}: inflates past its declared size {self._size}")
            if self._obj_sha is not None:
                self._obj_sha.update(chunk)
            if zd.eof:
                used = len(buf) - len(zd.unused_data)
                self._account(buf[:used])
                i += used
                self._end_entry(out)
                return i
            tail_len = len(zd.unconsumed_tail)
            used = len(buf) - tail_len
            if used:
                self._account(buf[:used])
                i += used
                buf = buf[used:]
            if not tail_len and len(chunk) < min(INFLATE_CHUNK, room):
                return i  # all input taken, no pending output: wait for more

    def _account(self, piece: memoryview) -> None:
        self._crc = zlib.crc32(piece, self._crc)
        self._consume(piece)

    def _end_entry(self, out: list[ScannedEntry]) -> None:
        if self._inflated != self._size:
            raise PackError(
                f"entry at {self._offset}: inflated to {self._inflated} bytes, declared {self._size}"
            )
        oid = self._obj_sha.digest() if self._obj_sha is not None else None
        out.append(
            ScannedEntry(
                offset=self._offset,
                kind=self._kind,
                size=self._size,
                header_len=self._hlen,
                length=self._pos - self._offset,
                crc32=self._crc,
                base_offset=self._base_offset,
                base_oid=self._base_oid,
                oid=oid,
            )
        )
        self._starts.add(self._offset)
        self._zd = None
        self._obj_sha = None
        self._crc = 0
        self._entries_done += 1
        assert self.object_count is not None
        self._state = "trailer" if self._entries_done == self.object_count else "entry_hdr"

    def finish(self) -> bytes:
        """Check that exactly the 20-byte SHA-1 trailer followed the last entry; return it."""
        if self._state == "failed":
            raise PackError("pack scanner already failed")
        if self._state == "done":
            raise PackError("pack scanner already finished")
        if self._state != "trailer" or len(self._buf) != 20:
            self._state = "failed"
            raise PackError(f"pack truncated at offset {self._pos + len(self._buf)}")
        trailer = bytes(self._buf)
        if trailer != self._pack_sha.digest():
            self._state = "failed"
            raise PackError("pack checksum mismatch")
        self._state = "done"
        return trailer
