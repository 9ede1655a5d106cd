"""Build a small pack of whole objects (for objects the server itself creates).

Rules:
- Output is a complete version-2 pack: header, one zlib-compressed whole entry per
  object (no deltas), SHA-1 trailer. The store then ingests it like any pushed pack, so
  there is one storage format and one validation path.
- Entry headers follow gitformat-pack: type in bits 4-6 of the first byte, size as a
  little-endian base-128 varint starting with the first byte's low 4 bits.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import native
from storage.model import ObjType
from storage.packgen import encode_entry_header


def iter_pack(objects: Sequence[tuple[ObjType, bytes]], level: int = 6) -> Iterator[bytes]:
    """Yield the pack's bytes piece by piece: header, each entry, trailer."""
    sha = native.Sha1()
    head = b"PACK" + struct.pack(">II", 2, len(objects))
    sha.update(head)
    yield head
    for obj_type, data in objects:
        piece = encode_entry_header(int(obj_type), len(data)) + zlib.compress(data, level)
        sha.update(piece)
        yield piece
    yield sha.digest()


class PieceReader:
    """Adapts an iterator of byte pieces to a ``read(n)`` function (b"" at the end)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buf = b""
        self._pos = 0

    def __call__(self, n: int) -> bytes:
        while self._pos >= len(self._buf):
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._buf, self._pos = piece, 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out
