"""Byte formats of what a repository keeps in the blob store (snapshots and segments).

Rules:
- Pure encoding and decoding: no blob store, no SQL. Everything streams: writers yield
  pieces, readers pull from a ``ByteReader`` over an iterator of pieces.
- Snapshot index (``<snap>.idx.zst``, zstandard): ``b"GSIDX1\\n"``, then one fixed
  ``INDEX_RECORD`` (87 bytes) per entry of the snapshot pack, in pack order: oid, type,
  kind, size, offset, length, header_len, crc32, base (20 zero bytes = none), depth. It is
  exactly the ``objects`` rows of the rehydrated store, so a rehydrate copies rows instead
  of resolving deltas again.
- Refs manifest (``<snap>.refs.zst``, zstandard): JSON lines. First a header object
  ``{"format": 1, "head", "alternates", "objects", "pack_size", "pack_checksum"}`` (plus
  ``"shallow": [hex...]``, the repo's shallow commits, for a shallow repo), then
  ``{"ref": name, "oid": hex}`` lines, then ``{"log": [ref, old, new, at, token_id, via,
  message]}`` lines in reflog order (oldest first).
- Segment (``segments/<writer>-<seq>.seg``, what one write shipped): ``b"GSSEG1\\n"``, a
  big-endian u32 length and that many bytes of JSON ``{"head", "packs": [size...],
  "reflog": [[ref, old, new, at, token_id, via, message]...]}`` (plus ``"shallow":
  [hex...]`` for a shallow repo: the whole list, recorded before the packs are
  replayed so their closure check allows the boundary), then each pack's bytes
  in order. Packs are stored exactly as the local store holds them.
- Malformed input raises ``ReplicaFormatError``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import zstandard

from storage.errors import StorageError
from storage.model import ReflogEntry, StoredEntry

INDEX_MAGIC = b"GSIDX1\n"
SEGMENT_MAGIC = b"GSSEG1\n"
INDEX_RECORD = struct.Struct(">20sBBQQQHI20sI")
NO_BASE = b"\x00" * 20
ZSTD_LEVEL = 3
PIECE = 1 << 20


class ReplicaFormatError(StorageError):
    """A snapshot or segment object is malformed or truncated."""


class ByteReader:
    """``read(n)`` over an iterator of byte pieces (returns fewer bytes only at the end)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._it = iter(pieces)
        self._buf = bytearray()
        self.consumed = 0

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            piece = next(self._it, None)
            if piece is None:
                break
            self._buf += piece
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += len(out)
        return out

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise ReplicaFormatError(f"truncated: wanted {n} bytes, got {len(data)}")
        return data

    def limited(self, n: int) -> LimitedReader:
        return LimitedReader(self, n)


class LimitedReader:
    """The next ``n`` bytes of a ``ByteReader`` as a ``read(k)`` function (b"" at the end)."""

    def __init__(self, inner: ByteReader, n: int) -> None:
        self._inner = inner
        self.left = n

    def __call__(self, k: int) -> bytes:
        if self.left <= 0:
            return b""
        data = self._inner.read(min(k, self.left))
        if not data:
            raise ReplicaFormatError(f"truncated: {self.left} bytes missing")
        self.left -= len(data)
        return data


def zstd_pieces(lines: Iterable[bytes], level: int = ZSTD_LEVEL) -> Iterator[bytes]:
    """Compress a stream of byte pieces into zstandard frame pieces of about ``PIECE`` bytes."""
    comp = zstandard.ZstdCompressor(level=level).compressobj()
    out = bytearray()
    for line in lines:
        out += comp.compress(line)
        if len(out) >= PIECE:
            yield bytes(out)
            out.clear()
    out += comp.flush()
    if out:
        yield bytes(out)


def unzstd_pieces(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress zstandard pieces (one frame) into pieces; ReplicaFormatError if damaged."""
    dec = zstandard.ZstdDecompressor().decompressobj()
    try:
        for piece in pieces:
            data = dec.decompress(piece)
            if data:
                yield data
    except zstandard.ZstdError as exc:
        raise ReplicaFormatError(f"bad zstandard data: {exc}") from None
    if not dec.eof:
        raise ReplicaFormatError("zstandard stream is truncated")


# -- index ---------------------------------------------------------------------------------


def encode_index_record(e: StoredEntry) -> bytes:
    return INDEX_RECORD.pack(
        e.oid,
        int(e.type),
        int(e.kind),
        e.size,
        e.offset,
        e.length,
        e.header_len,
        e.crc32,
        e.base or NO_BASE,
        e.depth,
    )


IndexRow = tuple[bytes, int, int, int, int, int, int, int, bytes | None, int]


def read_index(reader: ByteReader) -> Iterator[IndexRow]:
    """Rows ``(oid, type, kind, size, offset, length, header_len, crc32, base, depth)``."""
    if reader.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
        raise ReplicaFormatError("not a snapshot index")
    size = INDEX_RECORD.size
    while True:
        raw = reader.read(size)
        if not raw:
            return
        if len(raw) != size:
            raise ReplicaFormatError("snapshot index ends inside a record")
        oid, t, kind, osize, offset, length, hlen, crc, base, depth = INDEX_RECORD.unpack(raw)
        yield oid, t, kind, osize, offset, length, hlen, crc, (None if base == NO_BASE else base), depth


# -- refs manifest -------------------------------------------------------------------------


def reflog_json(e: ReflogEntry) -> list[Any]:
    return [e.ref, e.old.hex(), e.new.hex(), e.at_us, e.token_id, e.via, e.message]


def reflog_row(item: Any) -> tuple[str, bytes, bytes, int, str | None, str, str]:
    """A JSON reflog item back to a ``reflog`` row (ref, old, new, at, token_id, via, message)."""
    try:
        ref, old, new, at, token_id, via, message = item
        return (
            str(ref),
            bytes.fromhex(old),
            bytes.fromhex(new),
            int(at),
            token_id,
            str(via),
            str(message or ""),
        )
    except (TypeError, ValueError) as exc:
        raise ReplicaFormatError(f"bad reflog item {item!r}: {exc}") from None


def json_line(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def read_json_lines(reader: ByteReader) -> Iterator[Any]:
    """JSON objects, one per line, from a (decompressed) reader."""
    buf = b""
    while True:
        piece = reader.read(PIECE)
        if not piece:
            break
        buf += piece
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line:
                yield _loads(line)
    if buf.strip():
        yield _loads(buf)


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise ReplicaFormatError(f"bad JSON line: {exc}") from None


# -- segments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    head: str
    packs: list[int]  # byte size of each pack, in order
    reflog: list[Any]  # JSON reflog items (see reflog_json)
    shallow: list[str] = field(default_factory=list)  # the repo's shallow commits (hex), if any

    def encode(self) -> bytes:
        fields: dict[str, Any] = {"head": self.head, "packs": self.packs, "reflog": self.reflog}
        if self.shallow:  # only shallow repos carry it: other segments stay byte-identical
            fields["shallow"] = self.shallow
        body = json.dumps(fields).encode()
        return SEGMENT_MAGIC + struct.pack(">I", len(body)) + body


def read_segment_header(reader: ByteReader) -> SegmentHeader:
    if reader.read(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
        raise ReplicaFormatError("not a segment")
    (n,) = struct.unpack(">I", reader.exact(4))
    data = _loads(reader.exact(n))
    try:
        return SegmentHeader(
            str(data["head"]),
            [int(s) for s in data["packs"]],
            list(data["reflog"]),
            [str(h) for h in data.get("shallow", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplicaFormatError(f"bad segment header: {exc}") from None
