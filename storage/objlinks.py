"""Minimal validation of commits, trees and tags, and the links they name.

Rules:
- Only what ingest needs to trust an object: the structure git itself relies on to walk
  history (commit: tree, parents, author, committer; tree: mode, name, id per entry;
  tag: object, type, tag name). Anything malformed raises ObjectCorrupt.
- ``links`` yields ``(oid, expected_type)`` for every object this one names, except
  gitlinks (mode 160000), which point into other repositories.
- Blobs have no structure and no links.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator

from storage.errors import ObjectCorrupt
from storage.model import ObjType, Oid

_S_IFMT = 0o170000
_MODE_TYPES = {0o040000: ObjType.TREE, 0o100000: ObjType.BLOB, 0o120000: ObjType.BLOB}
_GITLINK = 0o160000
_HEX = frozenset(b"0123456789abcdef")
# The modes git writes today, looked up without parsing; anything else takes the slow path.
_COMMON_MODES: dict[bytes, ObjType | None] = {
    b"100644": ObjType.BLOB, b"100755": ObjType.BLOB, b"40000": ObjType.TREE, b"120000": ObjType.BLOB,
    b"160000": None,
}
_OCTAL = frozenset(b"01234567")


def links(obj_type: int, data: bytes, oid: Oid | None = None) -> Iterator[tuple[Oid, ObjType]]:
    """Validate one object and yield the objects it links to. Raises ObjectCorrupt."""
    if obj_type == ObjType.COMMIT:
        yield from _commit_links(data, oid)
    elif obj_type == ObjType.TREE:
        yield from _tree_links(data, oid)
    elif obj_type == ObjType.TAG:
        yield from _tag_links(data, oid)
    elif obj_type != ObjType.BLOB:
        raise ObjectCorrupt(f"unknown object type {obj_type}", oid)


def _hex_id(value: bytes, what: str, oid: Oid | None) -> Oid:
    if len(value) != 40 or not _HEX.issuperset(value):
        raise ObjectCorrupt(f"bad {what} id in object {_name(oid)}", oid)
    return binascii.unhexlify(value)


def _name(oid: Oid | None) -> str:
    return oid.hex() if oid else "(new)"


def _headers(data: bytes, what: str, oid: Oid | None) -> list[tuple[bytes, bytes]]:
    """The header lines ``(key, value)`` up to the first blank line (continuations skipped)."""
    end = data.find(b"\n\n")
    head = data if end < 0 else data[: end + 1]
    if not head.endswith(b"\n"):
        raise ObjectCorrupt(f"unterminated header in {what} {_name(oid)}", oid)
    out: list[tuple[bytes, bytes]] = []
    for line in head[:-1].split(b"\n"):
        if line.startswith(b" "):
            if not out:
                raise ObjectCorrupt(f"bad header continuation in {what} {_name(oid)}", oid)
            continue
        key, sep, value = line.partition(b" ")
        if not sep or not key:
            raise ObjectCorrupt(f"bad header line in {what} {_name(oid)}", oid)
        out.append((key, value))
    return out


def _commit_links(data: bytes, oid: Oid | None) -> Iterator[tuple[Oid, ObjType]]:
    headers = _headers(data, "commit", oid)
    if not headers or headers[0][0] != b"tree":
        raise ObjectCorrupt(f"commit {_name(oid)} does not start with a tree line", oid)
    found: list[tuple[Oid, ObjType]] = [(_hex_id(headers[0][1], "tree", oid), ObjType.TREE)]
    i = 1
    while i < len(headers) and headers[i][0] == b"parent":
        found.append((_hex_id(headers[i][1], "parent", oid), ObjType.COMMIT))
        i += 1
    if i >= len(headers) or headers[i][0] != b"author":
        raise ObjectCorrupt(f"commit {_name(oid)} has no author line", oid)
    if i + 1 >= len(headers) or headers[i + 1][0] != b"committer":
        raise ObjectCorrupt(f"commit {_name(oid)} has no committer line", oid)
    yield from found


def _tree_links(data: bytes, oid: Oid | None) -> Iterator[tuple[Oid, ObjType]]:
    pos = 0
    n = len(data)
    find = data.find
    while pos < n:
        sp = find(b" ", pos, pos + 8)
        nul = find(b"\0", sp + 1) if sp > pos else -1
        if nul < 0 or nul + 21 > n:
            raise ObjectCorrupt(f"truncated or bad entry in tree {_name(oid)} at byte {pos}", oid)
        mode_text = data[pos:sp]
        name = data[sp + 1 : nul]
        if not name or b"/" in name or name == b"." or name == b"..":
            raise ObjectCorrupt(f"bad entry name {name!r} in tree {_name(oid)}", oid)
        target = data[nul + 1 : nul + 21]
        pos = nul + 21
        if mode_text in _COMMON_MODES:
            entry_type = _COMMON_MODES[mode_text]
            if entry_type is not None:
                yield target, entry_type
            continue
        if not _OCTAL.issuperset(mode_text):
            raise ObjectCorrupt(f"bad mode in tree {_name(oid)}", oid)
        fmt = int(mode_text, 8) & _S_IFMT
        if fmt == _GITLINK:
            continue
        entry_type = _MODE_TYPES.get(fmt)
        if entry_type is None:
            raise ObjectCorrupt(f"bad mode {mode_text.decode()} in tree {_name(oid)}", oid)
        yield target, entry_type


def _tag_links(data: bytes, oid: Oid | None) -> Iterator[tuple[Oid, ObjType]]:
    headers = _headers(data, "tag", oid)
    if len(headers) < 3 or [k for k, _ in headers[:3]] != [b"object", b"type", b"tag"]:
        raise ObjectCorrupt(f"tag {_name(oid)} lacks object/type/tag lines", oid)
    target = _hex_id(headers[0][1], "object", oid)
    try:
        target_type = ObjType.from_name(headers[1][1])
    except ValueError:
        raise ObjectCorrupt(f"tag {_name(oid)} names unknown type {headers[1][1]!r}", oid) from None
    yield target, target_type
