"""Broken or hostile pushes: an unpack error, no ref moved, not one row added."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from storage.model import ObjType
from storage.packgen import encode_entry_header as entry_header
from storage.packwrite import iter_pack
from storage.repo_store import RepoStore
from tests.storage.gitpacks import WorkRepo, fix_trailer, push, row_counts, use_native


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> WorkRepo:
    repo = WorkRepo(tmp_path_factory.mktemp("bad") / "work")
    for i in range(6):
        repo.write("a.txt", "".join(f"line {j} {i if j % 50 == 0 else ''}\n" for j in range(2000)))
        repo.write(f"d/f{i}", f"{i}\n")
        repo.commit(f"c{i}")
    return repo


@pytest.fixture(params=["c", "python"], autouse=True)
def native_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs against both native implementations."""
    use_native(request.param, monkeypatch)
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path, work: WorkRepo) -> RepoStore:
    s = RepoStore.create(tmp_path / "repo.sqlite")
    base = work.rev("main~3")
    r = push(s, work.pack([base]), (None, base, "refs/heads/main"))
    assert r.unpack_error is None and r.refs[0].error is None
    yield s
    s.close()


def _new_pack(work: WorkRepo, thin: bool = False) -> bytes:
    return work.pack(["main", "^main~3"], thin=thin)


def _pack(entries: list[bytes]) -> bytes:
    body = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    return body + hashlib.sha1(body).digest()


def _whole(obj_type: ObjType, data: bytes) -> bytes:
    return entry_header(int(obj_type), len(data)) + zlib.compress(data)


def _ref_delta(base: bytes, delta: bytes) -> bytes:
    return entry_header(7, len(delta)) + base + zlib.compress(delta)


def _flip_in_first_zlib_stream(p: bytes) -> bytes:
    # byte 12 starts the first entry; a few bytes on we are inside its zlib stream
    i = 12 + 8
    return fix_trailer(p[:i] + bytes([p[i] ^ 0x5A]) + p[i + 1 :])


def _commit(tree: str, extra: str = "") -> bytes:
    return f"tree {tree}\n{extra}author A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nmsg\n".encode()


def _assert_rejected(store: RepoStore, pack: bytes, new: str, old: str | None, expect: str = "") -> None:
    before_refs, before_rows = store.refs(), row_counts(store.path)
    result = push(store, pack, (old, new, "refs/heads/main"))
    assert result.unpack_error, result
    assert expect.lower() in result.unpack_error.lower(), result.unpack_error
    assert [r.error for r in result.refs] == ["unpacker error"]
    assert store.refs() == before_refs
    assert row_counts(store.path) == before_rows
    assert store.verify() == []
    print(f"\n  unpack error: {result.unpack_error}")


CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated-half": (lambda p: p[: len(p) // 2], "truncated"),
    "truncated-header": (lambda p: p[:7], "truncated"),
    "truncated-trailer": (lambda p: p[:-5], "truncated"),
    "empty-body": (lambda p: b"", "truncated"),
    "corrupted-object": (_flip_in_first_zlib_stream, "entry at"),
    "wrong-trailer": (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "checksum"),
    "garbage-after-trailer": (lambda p: p + b"junk", "after the pack trailer"),
    "bad-signature": (lambda p: b"KCAP" + p[4:], "signature"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_pack(store: RepoStore, work: WorkRepo, case: str) -> None:
    mangle, expect = CASES[case]
    _assert_rejected(store, mangle(_new_pack(work)), work.rev("main"), work.rev("main~3"), expect)


def test_tip_pointing_at_missing_object(store: RepoStore, work: WorkRepo) -> None:
    before_rows = row_counts(store.path)
    result = push(
        store,
        _new_pack(work),
        (work.rev("main~3"), work.rev("main"), "refs/heads/main"),
        (None, "12" * 20, "refs/heads/dangling"),
    )
    assert result.unpack_error and "missing" in result.unpack_error
    assert store.refs() == {"refs/heads/main": bytes.fromhex(work.rev("main~3"))}
    assert row_counts(store.path) == before_rows


def test_thin_pack_without_its_bases(tmp_path: Path, work: WorkRepo) -> None:
    empty = RepoStore.create(tmp_path / "empty.sqlite")
    try:
        thin = _new_pack(work, thin=True)
        _assert_rejected(empty, thin, work.rev("main"), None, "missing object")
    finally:
        empty.close()


def test_ofs_delta_to_nowhere(store: RepoStore) -> None:
    delta = b"\x05\x05\x05hello"
    entry = entry_header(6, len(delta)) + b"\x05" + zlib.compress(delta)  # base 5 bytes before: no entry
    _assert_rejected(store, _pack([entry]), "11" * 20, None)


def test_delta_that_does_not_apply(store: RepoStore, work: WorkRepo) -> None:
    base_hex = work.git("rev-parse", "main~3:d/f0").decode().strip()
    base_size = len(store.get_object(bytes.fromhex(base_hex))[1])
    assert base_size < 128
    delta = bytes([base_size, 10]) + b"\x91\x00\xff"  # copy 255 bytes from offset 0 into a 10-byte result
    _assert_rejected(store, _pack([_ref_delta(bytes.fromhex(base_hex), delta)]), "11" * 20, None, "delta")


def test_malformed_commit(store: RepoStore, work: WorkRepo) -> None:
    tree = work.rev("main~3^{tree}")
    bad = f"tree {tree}\ncommitter A <a@x> 1 +0000\n\nno author\n".encode()
    oid = native.object_id(ObjType.COMMIT, bad).hex()
    _assert_rejected(store, b"".join(iter_pack([(ObjType.COMMIT, bad)])), oid, work.rev("main~3"), "author")


def test_commit_with_missing_parent(store: RepoStore, work: WorkRepo) -> None:
    c = _commit(work.rev("main~3^{tree}"), f"parent {'34' * 20}\n")
    oid = native.object_id(ObjType.COMMIT, c).hex()
    _assert_rejected(store, b"".join(iter_pack([(ObjType.COMMIT, c)])), oid, work.rev("main~3"), "34" * 20)


def test_tree_naming_missing_blob(store: RepoStore) -> None:
    tree = b"100644 x\0" + b"\x56" * 20
    commit = _commit(native.object_id(ObjType.TREE, tree).hex())
    pack = b"".join(iter_pack([(ObjType.TREE, tree), (ObjType.COMMIT, commit)]))
    _assert_rejected(store, pack, native.object_id(ObjType.COMMIT, commit).hex(), None, "56" * 20)


def test_tree_entry_of_wrong_type(store: RepoStore, work: WorkRepo) -> None:
    blob = bytes.fromhex(work.git("rev-parse", "main~3:a.txt").decode().strip())
    tree = b"40000 sub\0" + blob  # claims a tree, is a blob
    commit = _commit(native.object_id(ObjType.TREE, tree).hex())
    pack = b"".join(iter_pack([(ObjType.TREE, tree), (ObjType.COMMIT, commit)]))
    _assert_rejected(store, pack, native.object_id(ObjType.COMMIT, commit).hex(), None, "is a blob")


def test_tag_of_missing_object(store: RepoStore) -> None:
    tag = f"object {'78' * 20}\ntype commit\ntag t\ntagger A <a@x> 1 +0000\n\nt\n".encode()
    before = row_counts(store.path)
    r = push(
        store,
        b"".join(iter_pack([(ObjType.TAG, tag)])),
        (None, native.object_id(ObjType.TAG, tag).hex(), "refs/tags/t"),
    )
    assert r.unpack_error and "78" * 20 in r.unpack_error
    assert row_counts(store.path) == before


def test_all_refs_failing_keeps_no_objects(store: RepoStore, work: WorkRepo) -> None:
    before_refs, before_rows = store.refs(), row_counts(store.path)
    r = push(store, _new_pack(work), (work.rev("main~1"), work.rev("main"), "refs/heads/main"))  # stale old
    assert r.unpack_error is None and r.refs[0].error == "stale old value"
    assert store.refs() == before_refs and row_counts(store.path) == before_rows


def test_good_push_after_failures(store: RepoStore, work: WorkRepo) -> None:
    push(store, _new_pack(work)[:100], (work.rev("main~3"), work.rev("main"), "refs/heads/main"))
    r = push(store, _new_pack(work, thin=True), (work.rev("main~3"), work.rev("main"), "refs/heads/main"))
    assert r.unpack_error is None and r.refs[0].error is None
    assert store.verify() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_packs_never_leave_rows(store: RepoStore, work: WorkRepo, data: st.DataObject) -> None:
    pack = bytearray(_new_pack(work, thin=True))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(pack) - 1))
        pack[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        pack = bytearray(fix_trailer(bytes(pack)))
    before_refs, before_rows = store.refs(), row_counts(store.path)
    r = push(store, bytes(pack), (work.rev("main~3"), work.rev("main"), "refs/heads/main"))
    if r.unpack_error is None:  # the mutation hit nothing that matters (e.g. a no-op byte)
        assert store.verify() == []
        push(store, None, (work.rev("main"), work.rev("main~3"), "refs/heads/main"))
    else:
        assert store.refs() == before_refs and row_counts(store.path) == before_rows


def test_object_size_limit(store: RepoStore, work: WorkRepo) -> None:
    store.max_object_size = 1000
    _assert_rejected(store, _new_pack(work), work.rev("main"), work.rev("main~3"), "exceeds limit")


def test_object_size_limit_applies_to_delta_results(store: RepoStore, work: WorkRepo) -> None:
    base_hex = work.git("rev-parse", "main~3:a.txt").decode().strip()
    base_size = len(store.get_object(bytes.fromhex(base_hex))[1])
    assert base_size > 20000

    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(0x80 | (n & 0x7F))
            n >>= 7
        return bytes(out + bytes([n]))

    delta = varint(base_size) + varint(20000) + b"\xb0\x20\x4e"  # one copy of 20000 bytes from offset 0
    store.max_object_size = 1000
    _assert_rejected(
        store, _pack([_ref_delta(bytes.fromhex(base_hex), delta)]), "11" * 20, None, "exceeds limit"
    )
