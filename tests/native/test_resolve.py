"""DeltaResolver (C, native/src/resolve.c) against its pure twin (native/resolve_pure.py):
real packs from git, thin packs, a tiny base cache, and hostile packs (Hypothesis)."""

from __future__ import annotations

import os
import tempfile
import zlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from native import PackError, ResolveError, resolve_pure
from tests.native.native_testlib import (
    RealPack,
    assemble,
    entry_header,
    fix_trailer,
    ofs_encode,
    varint,
    whole,
)

Transcript = list[Any]


def _resolver_cls(impl: ModuleType) -> Any:
    return resolve_pure.DeltaResolver if impl is native.pure else impl.DeltaResolver


def run(
    cls: Any,
    pack: bytes,
    *,
    store: dict[bytes, tuple[int, bytes]] | None = None,
    cache_bytes: int = 32 << 20,
    max_object_size: int | None = None,
    piece: int = 1 << 16,
    spool_by_feed: bool = False,
) -> Transcript:
    """Everything a resolver says about ``pack``, in order; an error ends the transcript."""
    out: Transcript = []
    r = cls(max_object_size, cache_bytes)
    with tempfile.TemporaryFile() as spool:
        try:
            if spool_by_feed:  # feed writes the spool
                r.start(spool.fileno())
            for i in range(0, len(pack), piece):
                r.feed(pack[i : i + piece])
            out.append(("checksum", r.finish(), r.entries, r.deltas))
            if not spool_by_feed:
                spool.write(pack)
                spool.flush()
                r.start(spool.fileno())

            def drain() -> None:
                while True:
                    rows, parse = r.next_rows()
                    out.extend(("row", *row) for row in rows)
                    if parse is not None:
                        index, oid, typ, data = parse
                        out.append(("parse", oid, typ, data))
                        if typ == 1 and data.startswith(b"tree "):  # enough of a commit for the test
                            r.add_links(index, [(bytes.fromhex(data[5:45].decode()), 2)])
                    elif not rows:
                        return

            drain()
            for base in r.pending_bases():
                out.append(("pending", base))
                if store and base in store and r.add_base(base, store[base][0], store[base][1], 3):
                    drain()
            out.append(("done", r.deltas_done, r.first_unresolved(), r.wrong_link()))
            out.append(("external", [x for b in r.external_links(7) for x in b]))
            out.append(("unnamed", [x for b in r.unnamed(5) for x in b]))
        except PackError as exc:
            out.append(("PackError", str(exc).split(" (")[0]))  # zlib's wording differs
        except ResolveError as exc:
            msg = str(exc)
            # the two twins word delta errors differently after "does not apply:"
            out.append(("ResolveError", exc.kind, msg.split(" does not apply")[0].split(" is malformed")[0]))
    return out


def rows_of(t: Transcript) -> list[tuple[Any, ...]]:
    return [x[1:] for x in t if x[0] == "row"]


def test_real_pack_matches_git(impl: ModuleType, real_pack: RealPack) -> None:
    t = run(_resolver_cls(impl), real_pack.data)
    rows = rows_of(t)
    assert len(rows) == len(real_pack.idx_entries)
    by_offset = {r[4]: r for r in rows}
    for offset, (oid, crc) in real_pack.idx_entries.items():
        row = by_offset[offset]
        assert row[0] == oid and row[7] == crc
        _typ, size, _in_pack, base_oid = real_pack.verify[offset]
        if base_oid is None:
            assert row[3] == size  # verify-pack gives a delta's own size
        else:
            assert row[8] == base_oid
    # a base is always before its deltas
    seen: set[bytes] = set()
    for row in rows:
        assert row[8] is None or row[8] in seen
        seen.add(row[0])
    done = next(x for x in t if x[0] == "done")
    assert done[2] is None and done[3] is None


def test_twins_agree_on_real_pack_with_tiny_cache(cext: ModuleType, real_pack: RealPack) -> None:
    big = run(cext.DeltaResolver, real_pack.data)
    assert run(cext.DeltaResolver, real_pack.data, cache_bytes=0) == big
    assert run(cext.DeltaResolver, real_pack.data, cache_bytes=3000, piece=977) == big
    assert run(resolve_pure.DeltaResolver, real_pack.data, cache_bytes=3000) == big
    assert run(cext.DeltaResolver, real_pack.data, spool_by_feed=True, piece=5000) == big
    assert run(resolve_pure.DeltaResolver, real_pack.data, spool_by_feed=True, piece=5000) == big


def _delta(base: bytes, result: bytes) -> bytes:
    """A delta that copies the whole base then inserts ``result[len(base):]`` (needs prefix)."""
    out = varint(len(base)) + varint(len(result))
    if base:
        out += bytes([0x80 | 0x10 | 0x20 | 0x40, len(base) & 0xFF, (len(base) >> 8) & 0xFF, len(base) >> 16])
    rest = result[len(base) :]
    for i in range(0, len(rest), 127):
        out += bytes([len(rest[i : i + 127])]) + rest[i : i + 127]
    return out


def _ofs(pos: int, base_pos: int, delta: bytes) -> bytes:
    return entry_header(6, len(delta)) + ofs_encode(pos - base_pos) + zlib.compress(delta)


def _chain_pack(n: int) -> bytes:
    parts = [whole(3, b"x" * 10)]
    positions = [12]
    data = b"x" * 10
    for k in range(n):
        new = data + b"%d," % k
        e = _ofs(positions[-1] + len(parts[-1]), positions[-1], _delta(data, new))
        positions.append(positions[-1] + len(parts[-1]))
        parts.append(e)
        data = new
    return assemble(parts)


def test_long_chain_rebuilt_without_cache(cext: ModuleType) -> None:
    pack = _chain_pack(150)  # longer than the C rebuild's 64-step pieces
    full = run(cext.DeltaResolver, pack)
    assert len(rows_of(full)) == 151
    assert run(cext.DeltaResolver, pack, cache_bytes=0) == full
    assert run(resolve_pure.DeltaResolver, pack, cache_bytes=0) == full
    assert [r[9] for r in rows_of(full)] == list(range(151))  # depths


def test_thin_pack_bases_come_from_the_store(impl: ModuleType) -> None:
    base = b"hello world\n" * 3
    base_oid = native.pure.object_id(3, base)
    new = base + b"more\n"
    d = _delta(base, new)
    tree = b"100644 a\0" + native.pure.object_id(3, new) + b"100644 b\0" + base_oid
    pack = assemble([entry_header(7, len(d)) + base_oid + zlib.compress(d), whole(2, tree)])
    cls = _resolver_cls(impl)
    t = run(cls, pack, store={base_oid: (3, base)})
    rows = rows_of(t)
    assert [r[0] for r in rows] == [native.pure.object_id(2, tree), native.pure.object_id(3, new)]
    assert rows[1][8] == base_oid and rows[1][9] == 4  # the store's depth + 1
    assert ("pending", base_oid) in t
    done = next(x for x in t if x[0] == "done")
    assert done[2] is None
    # the tree names the new blob (in the pack) and the base (a thin base: not external)
    assert next(x for x in t if x[0] == "external")[1] == []
    assert next(x for x in t if x[0] == "unnamed")[1] == [native.pure.object_id(2, tree)]
    missing = run(cls, pack)
    assert next(x for x in missing if x[0] == "done")[2] == (12, 7, base_oid)


def test_wrong_type_and_external_links(impl: ModuleType) -> None:
    blob = b"data\n"
    blob_oid = native.pure.object_id(3, blob)
    outside = bytes(range(20))
    tree = b"40000 d\0" + blob_oid + b"100644 f\0" + outside
    t = run(_resolver_cls(impl), assemble([whole(3, blob), whole(2, tree)]))
    done = next(x for x in t if x[0] == "done")
    tree_oid = native.pure.object_id(2, tree)
    assert done[3] == (tree_oid, blob_oid, 2, 3)
    assert next(x for x in t if x[0] == "external")[1] == [(tree_oid, outside, 3)]


def test_errors(impl: ModuleType) -> None:
    cls = _resolver_cls(impl)
    base = b"abc" * 10
    bad = varint(len(base) + 1) + varint(3) + b"\x03xyz"
    t = run(cls, assemble([whole(3, base), _ofs(12 + len(whole(3, base)), 12, bad)]))
    assert t[-1][:2] == ("ResolveError", "corrupt")
    assert "pack offset" in t[-1][2]
    big = _delta(base, base + b"y" * 100)
    t = run(cls, assemble([whole(3, base), _ofs(12 + len(whole(3, base)), 12, big)]), max_object_size=120)
    assert t[-1][:2] == ("ResolveError", "limit")
    t = run(cls, assemble([whole(3, base)])[:-1])
    assert t[-1][0] == "PackError"


# --- hostile packs: both twins say the same ------------------------------------------------

_objects = st.lists(st.tuples(st.sampled_from([1, 2, 3, 4]), st.binary(max_size=60)), min_size=1, max_size=5)


@st.composite
def hostile_packs(draw: st.DrawFn) -> bytes:
    """Whole objects, then deltas on earlier entries (ofs) or on ids (ref), some broken."""
    objs = draw(_objects)
    parts: list[bytes] = []
    pos = 12
    starts: list[int] = []
    datas: list[bytes] = []
    oids: list[bytes] = []
    for typ, data in objs:
        if typ == 2 and draw(st.booleans()):  # a well-formed tree naming earlier objects
            data = b"".join(b"100644 f%d\0" % k + o for k, o in enumerate(oids[:3])) or data
        e = whole(typ, data)
        starts.append(pos)
        datas.append(data)
        oids.append(native.pure.object_id(typ, data))
        parts.append(e)
        pos += len(e)
    for _ in range(draw(st.integers(0, 5))):
        k = draw(st.integers(0, len(starts) - 1))
        base = datas[k]
        extra = draw(st.binary(max_size=30))
        delta = _delta(base, base + extra)
        mode = draw(st.sampled_from(["ok", "ok", "junk", "short", "ref", "ref-missing"]))
        if mode == "junk":
            delta = draw(st.binary(max_size=20))
        elif mode == "short":
            delta = delta[: draw(st.integers(0, len(delta)))]
        if mode in ("ref", "ref-missing"):
            target = oids[k] if mode == "ref" else draw(st.binary(min_size=20, max_size=20))
            e = entry_header(7, len(delta)) + target + zlib.compress(delta)
        else:
            e = _ofs(pos, starts[k], delta)
        starts.append(pos)
        datas.append(base + extra)
        oids.append(oids[k])
        parts.append(e)
        pos += len(e)
    pack = assemble(parts)
    if draw(st.booleans()):  # flip a byte after the header
        i = draw(st.integers(12, len(pack) - 21))
        pack = fix_trailer(pack[:i] + bytes([pack[i] ^ draw(st.integers(1, 255))]) + pack[i + 1 :])
    return pack


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=hostile_packs(), cache=st.sampled_from([0, 64, 1 << 20]), limit=st.sampled_from([None, 40]))
def test_hostile_packs_twins_agree(cext: ModuleType, pack: bytes, cache: int, limit: int | None) -> None:
    c = run(cext.DeltaResolver, pack, cache_bytes=cache, max_object_size=limit)
    p = run(resolve_pure.DeltaResolver, pack, cache_bytes=cache, max_object_size=limit)
    assert c == p


def test_spool_read_error_is_reported(cext: ModuleType) -> None:
    pack = _chain_pack(3)
    r = cext.DeltaResolver(None, 1 << 20)
    r.feed(pack)
    r.finish()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        r.start(fd)
        with pytest.raises(ResolveError) as err:
            r.next_rows()
        assert err.value.kind == "io"
    finally:
        os.close(fd)
