"""The value type a PackScanner yields; shared by the C wrapper and the pure-Python twin.

Rules: plain data, no behaviour; both implementations must produce equal instances for
the same pack, whatever the chunking of the input.
"""

from __future__ import annotations

from typing import NamedTuple

# Entry kinds (gitformat-pack): 1 commit, 2 tree, 3 blob, 4 tag, 6 ofs-delta, 7 ref-delta.
OBJ_COMMIT = 1
OBJ_TREE = 2
OBJ_BLOB = 3
OBJ_TAG = 4
OBJ_OFS_DELTA = 6
OBJ_REF_DELTA = 7

TYPE_NAMES: dict[int, bytes] = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


class ScannedEntry(NamedTuple):
    """One pack entry as found by PackScanner.

    offset: where the entry starts in the pack; kind: 1-4, 6 or 7; size: the declared
    inflated size of the entry data (the delta's size for 6/7); header_len: bytes of the
    entry header (type/size varint plus the ofs varint or the 20-byte base id);
    length: header_len plus the compressed bytes; crc32: zlib CRC32 of those ``length`` raw
    bytes (what a .idx v2 stores); base_offset: absolute offset of the base for an
    ofs-delta, else -1; base_oid: the base id of a ref-delta, else None; oid: the object id
    of a whole object (kinds 1-4), else None.
    """

    offset: int
    kind: int
    size: int
    header_len: int
    length: int
    crc32: int
    base_offset: int
    base_oid: bytes | None
    oid: bytes | None
