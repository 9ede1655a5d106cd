"""Pure-Python twin of native/src/sha1dc.c: SHA-1 that detects collision attacks.

Rules: same results as the C code, block for block (tests/native/test_sha1dc.py runs both).
For each 64-byte block the 80-word schedule and the states before steps 58 and 65 are
kept; every disturbance vector whose unavoidable conditions the schedule meets (tables in
native/sha1dc_tables.py, made by native/sha1dc_gen.py) gets the recompression check, and an
output equal to ours marks a collision. Slow (pure Python: about 1 MB/s); the C code is
the one used in production.
"""

from __future__ import annotations

import struct

from .sha1dc_tables import DVS

__all__ = ["Sha1DC", "object_id_dc", "sha1dc"]

_M = 0xFFFFFFFF
_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)
_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M


def _f(t: int, b: int, c: int, d: int) -> int:
    if t < 20:
        return d ^ (b & (c ^ d))
    if t < 40 or t >= 60:
        return b ^ c ^ d
    return (b & c) | (d & (b | c))


def _recompress(t0: int, state: tuple[int, ...], w2: list[int]) -> list[int]:
    a, b, c, d, e = state
    for t in range(t0 - 1, -1, -1):
        a0, b0, c0, d0 = b, _rotl(c, 2), d, e
        e0 = (a - _rotl(a0, 5) - _f(t, b0, c0, d0) - _K[t // 20] - w2[t]) & _M
        a, b, c, d, e = a0, b0, c0, d0, e0
    ihv_in = (a, b, c, d, e)
    a, b, c, d, e = state
    for t in range(t0, 80):
        a, b, c, d, e = (_rotl(a, 5) + _f(t, b, c, d) + e + _K[t // 20] + w2[t]) & _M, a, _rotl(b, 30), c, d
    return [(x + y) & _M for x, y in zip(ihv_in, (a, b, c, d, e), strict=True)]


def _block(ihv: list[int], block: bytes) -> tuple[list[int], bool]:
    w = list(struct.unpack(">16I", block))
    for t in range(16, 80):
        x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
        w.append(((x << 1) | (x >> 31)) & _M)
    a, b, c, d, e = ihv
    saved: dict[int, tuple[int, ...]] = {}
    for t in range(80):
        if t in (58, 65):
            saved[t] = (a, b, c, d, e)
        a, b, c, d, e = (_rotl(a, 5) + _f(t, b, c, d) + e + _K[t // 20] + w[t]) & _M, a, _rotl(b, 30), c, d
    out = [(x + y) & _M for x, y in zip(ihv, (a, b, c, d, e), strict=True)]
    collision = False
    for _name, testt, dm, conds in DVS:
        if all(((w[i] >> x) ^ (w[j] >> y)) & 1 == v for i, x, j, y, v in conds):
            if _recompress(testt, saved[testt], [p ^ q for p, q in zip(w, dm, strict=True)]) == out:
                collision = True
    return out, collision


class Sha1DC:
    """Streaming SHA-1 that records whether any block showed a collision attack."""

    __slots__ = ("_buf", "_collision", "_ihv", "_total")

    def __init__(self, data: bytes = b"") -> None:
        self._ihv = list(_IV)
        self._buf = b""
        self._total = 0
        self._collision = False
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        self._total += len(data)
        buf = self._buf + bytes(data)
        n = len(buf) // 64 * 64
        for i in range(0, n, 64):
            self._ihv, hit = _block(self._ihv, buf[i : i + 64])
            self._collision |= hit
        self._buf = buf[n:]

    def result(self) -> tuple[bytes, bool]:
        """(digest, collision seen): the digest is plain SHA-1 either way."""
        tail = (
            self._buf + b"\x80" + b"\x00" * ((55 - len(self._buf)) % 64) + struct.pack(">Q", self._total * 8)
        )
        ihv, collision = list(self._ihv), self._collision
        for i in range(0, len(tail), 64):
            ihv, hit = _block(ihv, tail[i : i + 64])
            collision |= hit
        return struct.pack(">5I", *ihv), collision


def sha1dc(data: bytes) -> tuple[bytes, bool]:
    return Sha1DC(data).result()


def object_id_dc(type_num: int, data: bytes) -> tuple[bytes, bool]:
    """(object id, collision seen) of b"<type> <len>\\0" + data; ValueError on a bad type."""
    name = _NAMES.get(type_num)
    if name is None:
        raise ValueError(f"not an object type: {type_num!r}")
    h = Sha1DC(b"%s %d\x00" % (name, len(data)))
    h.update(data)
    return h.result()
