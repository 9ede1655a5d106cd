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

import native
from storage.errors import ObjectCorrupt
from storage.model import ObjType, Oid

_HEX = frozenset(b"0123456789abcdef")


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
    # native.tree_links (C, GIL released; pure twin in native.tree_pure) validates modes
    # and names as git does and returns packed ids: subtrees first, then blobs.
    try:
        trees, blobs = native.tree_links(data)
    except native.TreeError as exc:
        raise ObjectCorrupt(f"{exc} in tree {_name(oid)}", oid) from None
    for i in range(0, len(trees), 20):
        yield trees[i : i + 20], ObjType.TREE
    for i in range(0, len(blobs), 20):
        yield blobs[i : i + 20], ObjType.BLOB


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
