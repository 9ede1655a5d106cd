"""Pure-Python twin of the C tree scanner (native/src/tree.c ``gs_tree_links``).

Rules: the same validation and results as the C code (tests run both): entries are
``<octal mode> <name>\\0<20-byte id>``; a mode is 1..7 octal digits, a name non-empty,
without "/", not "." or ".."; tree ids and blob (or symlink) ids come back packed, 20
bytes each; gitlinks are skipped; anything else raises TreeError with the entry offset.
"""

from __future__ import annotations

from .errors import TreeError

_S_IFMT = 0o170000
_COMMON = {b"100644": 2, b"100755": 2, b"40000": 1, b"120000": 2, b"160000": 0}
_OCTAL = frozenset(b"01234567")
_KINDS = {0o040000: 1, 0o100000: 2, 0o120000: 2, 0o160000: 0}


def tree_links(data: bytes) -> tuple[bytes, bytes]:
    """(packed subtree ids, packed blob ids) named by a tree; TreeError when malformed."""
    trees = bytearray()
    blobs = bytearray()
    pos = 0
    n = len(data)
    find = data.find
    while pos < n:
        sp = find(b" ", pos, pos + 8)
        if sp <= pos:
            raise TreeError("truncated or bad tree entry", pos)
        nul = find(b"\0", sp + 1)
        if nul < 0 or nul + 21 > n:
            raise TreeError("truncated or bad tree entry", pos)
        name = data[sp + 1 : nul]
        if not name or b"/" in name or name == b"." or name == b"..":
            raise TreeError(f"bad tree entry name {name[:100]!r}", pos)
        mode = data[pos:sp]
        kind = _COMMON.get(mode)
        if kind is None:
            if not _OCTAL.issuperset(mode):
                raise TreeError("bad tree entry mode", pos)
            kind = _KINDS.get(int(mode, 8) & _S_IFMT)
            if kind is None:
                raise TreeError("bad tree entry mode", pos)
        if kind == 1:
            trees += data[nul + 1 : nul + 21]
        elif kind == 2:
            blobs += data[nul + 1 : nul + 21]
        pos = nul + 21
    return bytes(trees), bytes(blobs)
