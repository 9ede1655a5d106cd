"""Minimal, fast parsers for the links inside git objects.

Rules:
- Only what reachability needs: a commit's tree, parents and committer time; a tree's
  entries (mode, name, raw oid); a tag's target and target type. Nothing else is decoded.
- Input is the object's content (no "<type> <len>\\0" header). Object ids come out raw
  (20 bytes). Malformed input raises ``ObjectCorrupt``, never anything else.
- No I/O, no caching: callers (``storage.walk``) own caches.
"""

from __future__ import annotations

import binascii
from typing import NamedTuple

from storage.errors import ObjectCorrupt
from storage.model import ObjType, Oid

TREE_MODE = b"40000"
GITLINK_MODE = b"160000"


class CommitInfo(NamedTuple):
    tree: Oid
    parents: tuple[Oid, ...]
    time: int  # committer time, unix seconds (0 when absent or unparsable)


class TreeEntry(NamedTuple):
    mode: bytes
    name: bytes
    oid: Oid


class TagInfo(NamedTuple):
    target: Oid
    target_type: ObjType


def _hex(value: bytes) -> Oid:
    if len(value) != 40:
        raise ObjectCorrupt(f"bad object id {value[:60]!r}")
    try:
        return binascii.unhexlify(value)
    except binascii.Error:
        raise ObjectCorrupt(f"bad object id {value!r}") from None


def _ident_time(line: bytes) -> int:
    # "<name> <email> <time> <tz>": the time is the second to last field after the '>'.
    close = line.rfind(b">")
    fields = line[close + 1 :].split()
    if not fields or not fields[0].isdigit():
        return 0
    return int(fields[0])


def parse_commit(data: bytes) -> CommitInfo:
    """Tree, parents and committer time of a commit; raises ObjectCorrupt."""
    if not data.startswith(b"tree "):
        raise ObjectCorrupt("commit does not start with a tree line")
    end_headers = data.find(b"\n\n")
    if end_headers < 0:
        end_headers = len(data)
    tree = _hex(data[5:45])
    parents: list[Oid] = []
    time = 0
    pos = 46
    while pos < end_headers:
        nl = data.find(b"\n", pos, end_headers)
        if nl < 0:
            nl = end_headers
        if data.startswith(b"parent ", pos):
            parents.append(_hex(data[pos + 7 : nl]))
        elif data.startswith(b"committer ", pos):
            time = _ident_time(data[pos + 10 : nl])
            break
        elif not data.startswith(b"author ", pos):
            break
        pos = nl + 1
    return CommitInfo(tree, tuple(parents), time)


def parse_tree(data: bytes) -> list[TreeEntry]:
    """Every entry of a tree, in stored order; raises ObjectCorrupt."""
    entries: list[TreeEntry] = []
    pos = 0
    size = len(data)
    while pos < size:
        space = data.find(b" ", pos)
        nul = data.find(b"\0", space + 1) if space >= 0 else -1
        if space < 0 or nul < 0 or nul + 21 > size:
            raise ObjectCorrupt("truncated tree entry")
        entries.append(TreeEntry(data[pos:space], data[space + 1 : nul], data[nul + 1 : nul + 21]))
        pos = nul + 21
    return entries


def tree_links(data: bytes) -> tuple[list[Oid], list[Oid]]:
    """(subtree ids, blob ids) named by a tree, gitlinks skipped; raises ObjectCorrupt.

    The hot path of every walk, so it avoids building TreeEntry tuples."""
    trees: list[Oid] = []
    blobs: list[Oid] = []
    pos = 0
    size = len(data)
    find = data.find
    while pos < size:
        space = find(b" ", pos)
        nul = find(b"\0", space + 1) if space >= 0 else -1
        if space < 0 or nul < 0 or nul + 21 > size:
            raise ObjectCorrupt("truncated tree entry")
        if space - pos == 5 and data[pos] == 0x34:  # "40000"
            trees.append(data[nul + 1 : nul + 21])
        elif not (space - pos == 6 and data[pos : pos + 3] == b"160"):  # not a gitlink
            blobs.append(data[nul + 1 : nul + 21])
        pos = nul + 21
    return trees, blobs


def parse_tag(data: bytes) -> TagInfo:
    """Target id and target type of an annotated tag; raises ObjectCorrupt."""
    if not data.startswith(b"object ") or data[47:53] != b"\ntype ":
        raise ObjectCorrupt("tag does not start with object and type lines")
    target = _hex(data[7:47])
    nl = data.find(b"\n", 53)
    if nl < 0:
        raise ObjectCorrupt("truncated tag")
    try:
        target_type = ObjType.from_name(data[53:nl])
    except ValueError:
        raise ObjectCorrupt(f"tag names unknown type {data[53:nl]!r}") from None
    return TagInfo(target, target_type)
