"""The small parts under RepoStore: object link parsing, the byte-bounded LRU, pack entry headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import native
from storage.errors import ObjectCorrupt
from storage.model import ObjType
from storage.objcache import ByteLRU
from storage.objlinks import links
from storage.packgen import encode_entry_header as entry_header
from storage.packwrite import PieceReader, iter_pack

A, B = b"\xaa" * 20, b"\xbb" * 20


def test_commit_links() -> None:
    c = (
        f"tree {A.hex()}\nparent {B.hex()}\nparent {A.hex()}\nauthor x <y> 1 +0000\n"
        "committer x <y> 1 +0000\ngpgsig -----BEGIN\n continued\n\nmsg\n\nbody\n"
    ).encode()
    assert list(links(ObjType.COMMIT, c)) == [(A, ObjType.TREE), (B, ObjType.COMMIT), (A, ObjType.COMMIT)]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"tree xyz\nauthor a\ncommitter c\n\n",
        b"parent " + A.hex().encode() + b"\n",
        b"tree " + A.hex().encode() + b"\ncommitter c\n\n",
        b"tree " + A.hex().encode() + b"\nauthor a\n\n",
        b"tree " + A.hex().upper().encode() + b"\nauthor a\ncommitter c\n\n",
        b"tree " + A.hex().encode(),
    ],
)
def test_bad_commits(bad: bytes) -> None:
    with pytest.raises(ObjectCorrupt):
        list(links(ObjType.COMMIT, bad))


def test_tree_links_skip_gitlinks() -> None:
    t = b"100644 a\0" + A + b"40000 d\0" + B + b"160000 sub\0" + A + b"120000 l\0" + B + b"100664 old\0" + A
    got = sorted(links(ObjType.TREE, t))  # the order of links does not matter
    assert got == sorted([(A, ObjType.BLOB), (B, ObjType.TREE), (B, ObjType.BLOB), (A, ObjType.BLOB)])
    assert list(links(ObjType.TREE, b"")) == []


@pytest.mark.parametrize(
    "bad",
    [
        b"100644 a\0" + A[:10],
        b"100644 \0" + A,
        b"100644 a/b\0" + A,
        b"100644 ..\0" + A,
        b"100944 a\0" + A,
        b"170000 a\0" + A,
        b"100644a\0" + A,
        b" a\0" + A,
    ],
)
def test_bad_trees(bad: bytes) -> None:
    with pytest.raises(ObjectCorrupt):
        list(links(ObjType.TREE, bad))


def test_tag_links() -> None:
    t = f"object {A.hex()}\ntype tree\ntag v1\ntagger x <y> 1 +0000\n\nm\n".encode()
    assert list(links(ObjType.TAG, t)) == [(A, ObjType.TREE)]
    with pytest.raises(ObjectCorrupt):
        list(links(ObjType.TAG, f"object {A.hex()}\ntype spoon\ntag v1\n\n".encode()))
    with pytest.raises(ObjectCorrupt):
        list(links(ObjType.TAG, f"type tree\nobject {A.hex()}\ntag v1\n\n".encode()))


@given(st.sampled_from([ObjType.COMMIT, ObjType.TREE, ObjType.TAG, ObjType.BLOB]), st.binary(max_size=300))
def test_links_only_raise_object_corrupt(obj_type: ObjType, data: bytes) -> None:
    try:
        for oid, t in links(obj_type, data):
            assert len(oid) == 20 and t in ObjType
    except ObjectCorrupt:
        pass


def test_byte_lru_bound() -> None:
    lru: ByteLRU[int] = ByteLRU(100)
    for i in range(10):
        lru.put(i, 3, b"x" * 30)
    assert lru.bytes <= 100 and len(lru) == 3
    assert lru.get(9) == (3, b"x" * 30) and lru.get(0) is None
    lru.get(7)
    lru.put(10, 3, b"y" * 30)  # evicts 8, the least recently used
    assert 8 not in lru and 7 in lru
    lru.put(11, 3, b"z" * 101)  # larger than the whole bound: not cached
    assert 11 not in lru and lru.bytes <= 100


@given(st.integers(0, 2**60 - 1), st.sampled_from([1, 2, 3, 4, 6, 7]))
def test_entry_header_round_trip(size: int, kind: int) -> None:
    h = entry_header(kind, size)
    assert (h[0] >> 4) & 7 == kind
    value, shift = h[0] & 0x0F, 4
    for byte in h[1:]:
        value |= (byte & 0x7F) << shift
        shift += 7
    assert value == size
    assert all(b & 0x80 for b in h[:-1]) and not h[-1] & 0x80


def test_iter_pack_is_a_valid_pack() -> None:
    objs = [(ObjType.BLOB, b"a" * n) for n in (0, 1, 15, 16, 5000)]
    reader = PieceReader(iter_pack(objs))
    scanner = native.PackScanner()
    entries = []
    while piece := reader(7):
        entries += scanner.feed(piece)
    scanner.finish()
    assert [e.oid for e in entries] == [native.object_id(t, d) for t, d in objs]
