"""SHA-1 and object ids against hashlib, dulwich and the git CLI."""

from __future__ import annotations

import hashlib
import subprocess
from types import ModuleType

import pytest
from dulwich.objects import Blob
from hypothesis import given, settings
from hypothesis import strategies as st

SIZES = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 65536, 1 << 20]


@pytest.mark.parametrize("n", SIZES)
def test_sha1_matches_hashlib_at_block_edges(impl: ModuleType, n: int) -> None:
    data = bytes((i * 131 + 7) & 0xFF for i in range(n))
    assert impl.sha1(data) == hashlib.sha1(data).digest()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_streaming_sha1_any_split(impl: ModuleType, data: bytes, cuts: list[int]) -> None:
    h = impl.Sha1()
    prev = 0
    for c in sorted(min(c, len(data)) for c in cuts):
        h.update(data[prev:c])
        assert h.digest() == hashlib.sha1(data[:c]).digest()  # digest() does not end the stream
        prev = c
    h.update(data[prev:])
    assert h.digest() == hashlib.sha1(data).digest()


def test_sha1_accepts_bytes_like(impl: ModuleType) -> None:
    data = b"abc" * 100
    assert impl.sha1(bytearray(data)) == impl.sha1(memoryview(data)) == hashlib.sha1(data).digest()


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2000))
def test_blob_id_matches_dulwich(impl: ModuleType, data: bytes) -> None:
    assert impl.object_id(3, data) == Blob.from_string(data).sha().digest()


@pytest.mark.parametrize("type_num,name", [(1, "commit"), (2, "tree"), (3, "blob"), (4, "tag")])
def test_object_id_matches_git_hash_object(impl: ModuleType, type_num: int, name: str) -> None:
    data = b"x" * 1234 + b"\n"
    want = subprocess.run(
        ["git", "hash-object", "--literally", "-t", name, "--stdin"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout.strip()
    assert impl.object_id(type_num, data).hex() == want.decode()


@pytest.mark.parametrize("bad", [0, 5, 6, 7, -1, 99])
def test_object_id_rejects_unknown_type(impl: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError):
        impl.object_id(bad, b"")
