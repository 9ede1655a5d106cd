"""delta_apply / delta_header against dulwich's and git's deltas, and hostile deltas."""

from __future__ import annotations

import zlib
from types import ModuleType

import pytest
from dulwich.pack import create_delta
from hypothesis import given, settings
from hypothesis import strategies as st

from native import DeltaError, pure
from tests.native.native_testlib import RealPack, varint

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def make_delta(base: bytes, target: bytes) -> bytes:
    return b"".join(create_delta(base, target))


@settings(max_examples=150, deadline=None)
@given(base=st.binary(max_size=3000), edits=st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=40))))
def test_applies_dulwich_deltas(impl: ModuleType, base: bytes, edits: list[tuple[int, bytes]]) -> None:
    target = bytearray(base)
    for pos, ins in edits:
        target[pos : pos + len(ins) // 2] = ins
    delta = make_delta(base, bytes(target))
    assert impl.delta_header(delta)[:2] == (len(base), len(target))
    assert impl.delta_apply(base, delta) == bytes(target)


def test_applies_real_git_deltas(impl: ModuleType, real_pack: RealPack) -> None:
    """Resolve every delta of a pack written by git and check the ids git put in its .idx."""
    data = real_pack.data
    by_oid: dict[bytes, tuple[int, bytes]] = {}
    by_off: dict[int, tuple[int, bytes]] = {}
    deltas = 0
    pending = [e for e in impl.PackScanner().feed(data)]
    while pending:
        left = []
        for e in pending:
            raw = zlib.decompress(data[e.offset + e.header_len : e.offset + e.length])
            if e.kind <= 4:
                obj = (e.kind, raw)
            else:
                base = by_off.get(e.base_offset) if e.kind == 6 else by_oid.get(e.base_oid)
                if base is None:
                    left.append(e)
                    continue
                obj = (base[0], impl.delta_apply(base[1], raw))
                deltas += 1
            want_oid = real_pack.idx_entries[e.offset][0]
            assert impl.object_id(obj[0], obj[1]) == want_oid
            by_oid[want_oid] = obj
            by_off[e.offset] = obj
        assert len(left) < len(pending)
        pending = left
    assert deltas >= 10


def test_copy_size_zero_means_64k(impl: ModuleType) -> None:
    base = bytes(range(256)) * 256 + b"tail"
    delta = varint(len(base)) + varint(0x10000) + b"\x80"  # copy, offset 0, size 0 => 0x10000
    assert impl.delta_apply(base, delta) == base[:0x10000]


def test_copy_with_all_offset_and_size_bytes(impl: ModuleType) -> None:
    base = bytes(range(256)) * 300
    off, size = 0x00010203, 0x000105
    delta = varint(len(base)) + varint(size) + bytes([0xFF, 3, 2, 1, 0, 5, 1, 0])
    assert impl.delta_apply(base, delta) == base[off : off + size]


def test_header(impl: ModuleType) -> None:
    assert impl.delta_header(varint(300) + varint(2**40) + b"rest") == (300, 2**40, 2 + 6)
    with pytest.raises(DeltaError):
        impl.delta_header(b"\x80\x80")
    with pytest.raises(DeltaError):
        impl.delta_header(b"\xff" * 12 + b"\x01\x01")


@pytest.mark.parametrize(
    "base,delta",
    [
        (b"abc", varint(4) + varint(1) + b"\x01x"),  # base size mismatch
        (b"abc", varint(3) + varint(2) + b"\x01x"),  # output short
        (b"abc", varint(3) + varint(1) + b"\x02xy"),  # insert overflows output
        (b"abc", varint(3) + varint(1) + b"\x05x"),  # insert truncated
        (b"abc", varint(3) + varint(1) + b"\x00"),  # reserved opcode
        (b"abc", varint(3) + varint(2) + b"\x91\x02\x02"),  # copy 2 bytes from offset 2: outside base
        (b"abc", varint(3) + varint(4) + b"\x90\x04"),  # copy 4 bytes: outside base
        (b"abc", varint(3) + varint(1) + b"\x90\x02"),  # copy overflows output
        (b"abc", varint(3) + varint(1) + b"\x91"),  # copy truncated
        (b"abc", varint(3) + varint(2**62) + b"\x90\x01"),  # absurd size: refused before allocation
        (b"abc", varint(3)),  # header truncated
        (b"", b""),
    ],
)
def test_bad_deltas_raise_delta_error(impl: ModuleType, base: bytes, delta: bytes) -> None:
    with pytest.raises(DeltaError):
        impl.delta_apply(base, delta)


def _outcome(impl: ModuleType, base: bytes, delta: bytes) -> bytes | str:
    try:
        return impl.delta_apply(base, delta)
    except DeltaError:
        return "DeltaError"


@settings(max_examples=400, deadline=None)
@given(
    base=st.binary(max_size=600),
    target=st.binary(max_size=600),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 10**6),
)
def test_mutated_deltas_only_raise_delta_error(
    impl: ModuleType, cext: ModuleType, base: bytes, target: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    delta = bytearray(make_delta(base, target))
    for pos, val in flips:
        delta[pos % len(delta)] = val
    delta = delta[: max(1, cut % (len(delta) + 1))]
    got = _outcome(impl, base, bytes(delta))
    # the twin must agree, byte for byte or error for error

    assert got == _outcome(pure, base, bytes(delta)) == _outcome(cext, base, bytes(delta))


@settings(max_examples=300, deadline=None)
@given(base=st.binary(max_size=100), delta=st.binary(max_size=100))
def test_random_deltas_only_raise_delta_error(impl: ModuleType, base: bytes, delta: bytes) -> None:
    try:
        out = impl.delta_apply(base, delta)
    except DeltaError:
        return
    assert len(out) == impl.delta_header(delta)[1]
