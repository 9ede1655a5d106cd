"""PackScanner against packs written by git, any chunking, and hostile packs."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import tracemalloc
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native import PackError, ScannedEntry, pure
from tests.native.native_testlib import (
    RealPack,
    assemble,
    entry_header,
    fix_trailer,
    git,
    ofs_encode,
    sub_pack,
    varint,
    whole,
)

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def scan(impl: ModuleType, chunks: list[bytes], **kw: int) -> tuple[list[ScannedEntry], bytes]:
    s = impl.PackScanner(**kw)
    out: list[ScannedEntry] = []
    for c in chunks:
        out += s.feed(c)
    return out, s.finish()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_matches_git_index(impl: ModuleType, real_pack: RealPack) -> None:
    entries, trailer = scan(impl, [real_pack.data])
    assert trailer == real_pack.data[-20:]
    assert [e.offset for e in entries] == sorted(real_pack.idx_entries)
    starts = {e.offset for e in entries}
    kinds = {e.kind for e in entries}
    assert {1, 2, 3, 4} <= kinds and kinds & {6, 7}
    for e in entries:
        oid, crc = real_pack.idx_entries[e.offset]
        typ, size, in_pack, base_oid = real_pack.verify[e.offset]
        assert e.crc32 == crc
        assert e.length == in_pack
        assert e.size == size
        assert e.crc32 == zlib.crc32(real_pack.data[e.offset : e.offset + e.length])
        if e.kind <= 4:
            assert e.kind == TYPES[typ] and e.oid == oid
            assert e.base_offset == -1 and e.base_oid is None
        elif e.kind == 6:
            assert e.oid is None and e.base_oid is None
            assert e.base_offset in starts and real_pack.idx_entries[e.base_offset][0] == base_oid
        else:
            assert e.oid is None and e.base_offset == -1 and e.base_oid == base_oid
    assert entries[-1].offset + entries[-1].length == len(real_pack.data) - 20


def test_object_count(impl: ModuleType, small_pack: RealPack) -> None:
    s = impl.PackScanner()
    assert s.object_count is None
    s.feed(small_pack.data[:11])
    assert s.object_count is None
    s.feed(small_pack.data[11:12])
    assert s.object_count == len(small_pack.idx_entries)


def test_byte_by_byte(impl: ModuleType, small_pack: RealPack) -> None:
    data = small_pack.data
    assert scan(impl, [data[i : i + 1] for i in range(len(data))]) == scan(impl, [data])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 10**7), max_size=40))
def test_any_split_same_result(
    impl: ModuleType, cext: ModuleType, real_pack: RealPack, cuts: list[int]
) -> None:
    want = scan(pure, [real_pack.data])
    assert scan(impl, split(real_pack.data, cuts)) == want
    assert scan(cext, [real_pack.data]) == want


def test_thin_pack_ref_deltas(impl: ModuleType, repos: dict[str, Path]) -> None:
    data = git(repos["small"], "pack-objects", "--stdout", "--thin", "--revs", "-q", input=b"main\n^main~2\n")
    entries, trailer = scan(impl, [data])
    assert trailer == data[-20:]
    refs = [e for e in entries if e.kind == 7]
    assert refs, "a thin pack of two commits should have ref-deltas against older blobs"
    for e in entries:
        if e.oid is not None:
            git(repos["small"], "cat-file", "-e", e.oid.hex())
    for e in refs:
        assert e.base_oid is not None
        git(repos["small"], "cat-file", "-e", e.base_oid.hex())


def test_large_object_streams_in_pieces(impl: ModuleType) -> None:
    blob = bytes(range(256)) * (3 << 12)  # 3 MiB
    data = assemble([whole(3, blob)])
    entries, _ = scan(impl, split(data, [5, 17, 1000, 20000]))
    assert entries[0].oid == hashlib.sha1(b"blob %d\0" % len(blob) + blob).digest()
    assert entries[0].size == len(blob)


def test_memory_stays_bounded(impl: ModuleType) -> None:
    size = 64 << 20
    comp = zlib.compressobj()
    zdata = b"".join([comp.compress(b"\0" * (1 << 20)) for _ in range(64)]) + comp.flush()
    body = b"PACK\0\0\0\2\0\0\0\1" + entry_header(3, size) + zdata
    data = body + hashlib.sha1(body).digest()
    tracemalloc.start()
    try:
        s = impl.PackScanner()
        entries = []
        for i in range(0, len(data), 4096):
            entries += s.feed(data[i : i + 4096])
        s.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entries[0].size == size
    assert peak < 2 << 20, f"peak {peak} bytes while scanning a {size}-byte object"


def test_version_3_and_empty_pack(impl: ModuleType) -> None:
    assert scan(impl, [assemble([whole(3, b"x")], version=3)])[0][0].oid is not None
    empty = assemble([])
    assert scan(impl, [empty]) == ([], empty[-20:])


def test_hand_made_deltas(impl: ModuleType) -> None:
    base = whole(3, b"hello world")
    delta = varint(11) + varint(5) + b"\x90\x05"
    ofs = entry_header(6, len(delta)) + ofs_encode(len(base)) + zlib.compress(delta)
    ref = entry_header(7, len(delta)) + b"\x11" * 20 + zlib.compress(delta)
    entries, _ = scan(impl, [assemble([base, ofs, ref])])
    assert [e.kind for e in entries] == [3, 6, 7]
    assert entries[1].base_offset == 12 and entries[1].header_len == 2
    assert entries[2].base_oid == b"\x11" * 20 and entries[2].header_len == 21


def _bad_packs() -> dict[str, bytes]:
    blob = whole(3, b"hello world")
    delta = varint(11) + varint(5) + b"\x90\x05"
    zd = zlib.compress(delta)
    good = assemble([blob])
    return {
        "signature": b"KCAP" + good[4:],
        "version 1": assemble([blob], version=1),
        "version 4": assemble([blob], version=4),
        "truncated trailer": good[:-1],
        "truncated entry": fix_trailer(good[:-25]),
        "extra byte": good + b"\0",
        "bad checksum": good[:-1] + bytes([good[-1] ^ 1]),
        "count too high": assemble([blob], count=2),
        "count too low": assemble([blob, blob], count=1),
        "type 0": assemble([entry_header(0, 1) + zlib.compress(b"x")]),
        "type 5": assemble([entry_header(5, 1) + zlib.compress(b"x")]),
        "size too big": assemble([whole(3, b"hello", size=6)]),
        "size too small": assemble([whole(3, b"hello", size=4)]),
        "bad zlib": assemble([entry_header(3, 5) + b"\x78\x9c\xff\xff\xff\xff\xff"]),
        "zlib bad adler": assemble([entry_header(3, 5) + zlib.compress(b"hello")[:-1] + b"\0"]),
        "ofs zero": assemble([blob, entry_header(6, len(delta)) + ofs_encode(0) + zd]),
        "ofs before pack": assemble([blob, entry_header(6, len(delta)) + ofs_encode(len(blob) + 13) + zd]),
        "ofs to pack header": assemble([blob, entry_header(6, len(delta)) + ofs_encode(len(blob) + 1) + zd]),
        "ofs mid entry": assemble([blob, entry_header(6, len(delta)) + ofs_encode(len(blob) - 1) + zd]),
        "ofs to itself later": assemble([entry_header(6, len(delta)) + ofs_encode(1) + zd]),
        "size varint too long": assemble([b"\xb0" + b"\x80" * 9 + b"\x01" + zlib.compress(b"")]),
        "ofs varint huge": assemble([blob, entry_header(6, 5) + b"\xff" * 12 + b"\x01" + zd]),
        "short header": b"PACK\0\0\0\2",
        "nothing": b"",
    }


@pytest.mark.parametrize("name", sorted(_bad_packs()))
def test_bad_packs_raise_pack_error(impl: ModuleType, name: str) -> None:
    data = _bad_packs()[name]
    with pytest.raises(PackError):
        scan(impl, [data])
    with pytest.raises(PackError):
        scan(impl, [data[i : i + 1] for i in range(len(data))])


def test_max_object_size(impl: ModuleType) -> None:
    data = assemble([whole(3, b"x" * 100)])
    assert scan(impl, [data], max_object_size=100)[0][0].size == 100
    with pytest.raises(PackError):
        scan(impl, [data], max_object_size=99)


def test_failed_scanner_stays_failed(impl: ModuleType) -> None:
    s = impl.PackScanner()
    with pytest.raises(PackError):
        s.feed(b"JUNKJUNKJUNK")
    with pytest.raises(PackError):
        s.feed(b"PACK")
    with pytest.raises(PackError):
        s.finish()


def test_finish_twice_fails(impl: ModuleType) -> None:
    s = impl.PackScanner()
    s.feed(assemble([]))
    s.finish()
    with pytest.raises(PackError):
        s.finish()


def test_every_prefix_is_truncated(impl: ModuleType) -> None:
    data = assemble([whole(1, b"tree x\n"), whole(3, b"y" * 300)])
    for n in range(len(data)):
        with pytest.raises(PackError):
            scan(impl, [data[:n]])


def _outcome(impl: ModuleType, chunks: list[bytes]) -> object:
    try:
        return scan(impl, chunks)
    except PackError:
        return "PackError"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 30),
    flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 10**7),
    insert=st.binary(max_size=3),
    fix=st.booleans(),
    cuts=st.lists(st.integers(0, 10**7), max_size=6),
)
def test_mutated_packs_only_raise_pack_error(
    impl: ModuleType,
    cext: ModuleType,
    small_pack: RealPack,
    k: int,
    flips: list[tuple[int, int]],
    cut: int,
    insert: bytes,
    fix: bool,
    cuts: list[int],
) -> None:
    """Complete packs of k entries, mutated; with ``fix`` the trailer is recomputed so the
    damage must be found inside the entries. Outcomes agree between the twins."""
    ends = sorted(off + v[2] for off, v in small_pack.verify.items())
    orig = sub_pack(small_pack.data, ends, min(k, len(ends)))
    data = bytearray(orig[:-20])
    for pos, val in flips:
        data[pos % len(data)] = val
    at = cut % (len(data) + 1)
    data[at:at] = insert
    pack = fix_trailer(bytes(data) + bytes(20)) if fix else bytes(data) + orig[-20:]
    got = _outcome(impl, split(pack, cuts))
    assert got == _outcome(pure, [pack]) == _outcome(cext, [pack])
    if not flips and not insert:
        assert got != "PackError"


def test_git_accepts_what_we_accept(impl: ModuleType, small_pack: RealPack, tmp_path: Path) -> None:
    """Cross-check with git index-pack: the pack we scan cleanly is one git indexes too."""
    p = tmp_path / "x.pack"
    p.write_bytes(small_pack.data)
    out = subprocess.run(["git", "index-pack", "-o", str(tmp_path / "x.idx"), str(p)], capture_output=True)
    assert out.returncode == 0
    _, trailer = scan(impl, [small_pack.data])
    assert out.stdout.strip().decode() == trailer.hex()
