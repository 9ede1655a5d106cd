"""RepoStore with packs made by the real git CLI: reads match git, refs are compare-and-swap."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from storage.errors import MissingObject, ObjectCorrupt, StorageError
from storage.model import ZERO_OID, EntryKind, ObjType, PushContext, RefCommand, oid_raw
from storage.refs import check_ref_name
from storage.repo_store import RepoStore
from storage.schema import CHUNK_SIZE
from tests.storage.gitpacks import WorkRepo, push, row_counts, use_native


def _grow(repo: WorkRepo, rounds: int, start: int = 0) -> list[str]:
    commits = []
    for i in range(start, start + rounds):
        repo.write(
            "big.txt",
            "".join(f"line {j} of the big file, round {i if j % 97 == 0 else 0}\n" for j in range(3000)),
        )
        repo.write(f"dir/sub{i % 3}/f{i}.txt", f"file {i}\n" * (i + 1))
        repo.write("dir/notes.md", "".join(f"note {k}\n" for k in range(i * 50)))
        commits.append(repo.commit(f"commit {i}"))
    return commits


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> WorkRepo:
    repo = WorkRepo(tmp_path_factory.mktemp("hist") / "work")
    _grow(repo, 12)
    # a gitlink: links into another repository are not part of closure
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{'ab' * 20},vendor/sub")
    repo.git("commit", "-q", "-m", "add submodule")
    repo.git("tag", "-a", "-m", "release 1", "v1")
    repo.git("branch", "side", "HEAD~3")
    return repo


@pytest.fixture(params=["c", "python"], autouse=True)
def native_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs against both native implementations."""
    use_native(request.param, monkeypatch)
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path) -> RepoStore:
    s = RepoStore.create(tmp_path / "repo.sqlite")
    yield s
    s.close()


def _assert_matches_git(store: RepoStore, repo: WorkRepo, oids: list[str]) -> None:
    expected = repo.cat_batch(oids)
    for hexid in oids:
        obj_type, data = store.get_object(oid_raw(hexid))
        assert (obj_type.type_name.decode(), data) == expected[hexid], hexid
        assert store.object_header(oid_raw(hexid)) == (obj_type, len(data))


@pytest.mark.parametrize("ofs", [True, False], ids=["ofs-delta", "ref-delta"])
def test_full_push_reads_back_like_git(store: RepoStore, history: WorkRepo, ofs: bool) -> None:
    main, tag = history.rev("main"), history.rev("v1")
    pack = history.pack(["--all"], ofs=ofs)
    result = push(store, pack, (None, main, "refs/heads/main"), (None, tag, "refs/tags/v1"), piece=777)
    assert result.unpack_error is None
    assert [r.error for r in result.refs] == [None, None]
    oids = history.objects("--all")
    assert store.object_count() == len(oids)
    _assert_matches_git(store, history, oids)
    kinds = {e.kind for e in store.iter_entries()}
    assert (EntryKind.OFS_DELTA if ofs else EntryKind.REF_DELTA) in kinds
    assert store.refs() == {"refs/heads/main": oid_raw(main), "refs/tags/v1": oid_raw(tag)}
    assert store.verify() == []
    ratio = store.stored_bytes() / len(pack)
    file_ratio = store.path.stat().st_size / len(pack)
    print(f"\nstored pack bytes / git pack = {ratio:.3f}; sqlite file / git pack = {file_ratio:.2f}")
    assert ratio == 1.0


def test_entries_match_git_index(store: RepoStore, history: WorkRepo, tmp_path: Path) -> None:
    pack = history.pack(["--all"])
    push(store, pack, (None, history.rev("main"), "refs/heads/main"))
    (tmp_path / "p.pack").write_bytes(pack)
    history.git("index-pack", str(tmp_path / "p.pack"))
    verify = history.git("verify-pack", "-v", str(tmp_path / "p.idx")).decode()
    seen = 0
    for line in verify.splitlines():
        m = re.match(r"([0-9a-f]{40}) (\w+)\s+(\d+) (\d+) (\d+)(?: (\d+) ([0-9a-f]{40}))?$", line)
        if not m:
            continue
        oid, type_name, size, in_pack, offset, depth, base = m.groups()
        entry = store.stored_entry(oid_raw(oid))
        assert entry is not None
        assert (entry.type.type_name.decode(), entry.length, entry.offset) == (
            type_name,
            int(in_pack),
            int(offset),
        )
        if base is None:  # for deltas verify-pack shows the delta's size, we keep the object's
            assert entry.size == int(size)
        assert entry.depth == int(depth or 0)
        assert entry.base == (oid_raw(base) if base else None)
        raw = b"".join(store.read_entry_bytes(entry))
        assert raw == pack[entry.offset : entry.offset + entry.length]
        seen += 1
    assert seen == store.object_count()
    offsets = [(e.pack_id, e.offset) for e in store.iter_entries()]
    assert offsets == sorted(offsets) and len(offsets) == seen


def test_thin_pack_completes_against_store(store: RepoStore, history: WorkRepo) -> None:
    base = history.rev("main~4")
    first = history.pack([base])
    assert push(store, first, (None, base, "refs/heads/main")).unpack_error is None
    thin = history.pack(["main", f"^{base}"], thin=True)
    result = push(store, thin, (base, history.rev("main"), "refs/heads/main"))
    assert result.unpack_error is None and result.refs[0].error is None
    oids = history.objects("main")
    _assert_matches_git(store, history, oids)
    # some deltas of the second pack name bases stored by the first one
    external = [
        e
        for e in store.iter_entries()
        if e.pack_id == 2 and e.kind == EntryKind.REF_DELTA and store.stored_entry(e.base).pack_id == 1
    ]  # type: ignore[arg-type]
    assert external, "git made no thin deltas; the test proves nothing"
    assert store.verify() == []


def test_chunks_are_exact_and_entries_span_them(store: RepoStore, tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "w")
    import random

    rnd = random.Random(7)
    for i in range(3):
        repo.write(f"r{i}.bin", rnd.randbytes(CHUNK_SIZE + 12345 * (i + 1)))
    head = repo.commit("random")
    pack = repo.pack([head])
    assert push(store, pack, (None, head, "refs/heads/main"), piece=65537).unpack_error is None
    sizes = [len(d) for (d,) in store.connection.execute("SELECT data FROM chunks ORDER BY id")]
    assert all(s == CHUNK_SIZE for s in sizes[:-1]) and 0 < sizes[-1] <= CHUNK_SIZE
    assert sum(sizes) == len(pack) == store.stored_bytes()
    _assert_matches_git(store, repo, repo.objects("--all"))
    assert store.verify() == []


# -- refs ------------------------------------------------------------------------------------


@pytest.fixture
def loaded(store: RepoStore, history: WorkRepo) -> RepoStore:
    pack = history.pack(["--all"])
    r = push(
        store,
        pack,
        (None, history.rev("main~2"), "refs/heads/main"),
        (None, history.rev("v1"), "refs/tags/v1"),
    )
    assert r.unpack_error is None and all(x.error is None for x in r.refs)
    return store


def test_cas_rejects_stale_old_value(loaded: RepoStore, history: WorkRepo) -> None:
    before = loaded.refs()
    r = push(loaded, None, (history.rev("main~5"), history.rev("main"), "refs/heads/main"))
    assert r.refs[0].error == "stale old value"
    assert loaded.refs() == before
    r = push(loaded, None, (None, history.rev("main"), "refs/heads/main"))
    assert r.refs[0].error == "ref already exists"
    r = push(loaded, None, (history.rev("main~2"), None, "refs/heads/nope"))
    assert r.refs[0].error == "ref does not exist"
    r = push(loaded, None, (history.rev("main~2"), history.rev("main"), "refs/heads/main"))
    assert r.refs[0].error is None
    assert loaded.refs()["refs/heads/main"] == oid_raw(history.rev("main"))


def test_non_atomic_applies_each_ref_on_its_own(loaded: RepoStore, history: WorkRepo) -> None:
    r = push(
        loaded,
        None,
        (history.rev("main~2"), history.rev("main"), "refs/heads/main"),
        (history.rev("main~7"), history.rev("main"), "refs/tags/v1"),  # stale
        (None, history.rev("side"), "refs/heads/side"),
    )
    assert [x.error for x in r.refs] == [None, "stale old value", None]
    assert loaded.refs()["refs/heads/main"] == oid_raw(history.rev("main"))
    assert "refs/heads/side" in loaded.refs()


def test_atomic_is_all_or_nothing(loaded: RepoStore, history: WorkRepo) -> None:
    before, counts = loaded.refs(), row_counts(loaded.path)
    r = push(
        loaded,
        None,
        (history.rev("main~2"), history.rev("main"), "refs/heads/main"),
        (None, history.rev("main^{tree}"), "refs/heads/tree-branch"),  # not a commit
        atomic=True,
    )
    assert r.unpack_error is None
    assert r.refs[0].error == "atomic push failed"
    assert r.refs[1].error is not None and "not a commit" in r.refs[1].error
    assert loaded.refs() == before and row_counts(loaded.path) == counts


def test_delete_and_reflog(loaded: RepoStore, history: WorkRepo) -> None:
    main2, main = history.rev("main~2"), history.rev("main")
    assert push(loaded, None, (main2, main, "refs/heads/main"), token="tok-2").refs[0].error is None
    assert push(loaded, None, (None, history.rev("v1"), "refs/tags/v1")).refs[0].error == "ref already exists"
    assert push(loaded, None, (history.rev("v1"), None, "refs/tags/v1")).refs[0].error is None
    assert "refs/tags/v1" not in loaded.refs()
    log = loaded.reflog()
    assert [(e.ref, e.old.hex(), e.new.hex()) for e in log[:3]] == [
        ("refs/tags/v1", history.rev("v1"), "0" * 40),
        ("refs/heads/main", main2, main),
        ("refs/tags/v1", "0" * 40, history.rev("v1")),
    ]
    assert [e.at_us for e in log] == sorted((e.at_us for e in log), reverse=True)
    assert log[1].token_id == "tok-2" and log[1].via == "git"
    only_main = loaded.reflog("refs/heads/main")
    assert [e.new.hex() for e in only_main] == [main, main2]
    assert loaded.reflog("refs/heads/main", limit=1)[0].new.hex() == main
    t = log[1].at_us
    assert [e.new.hex() for e in loaded.reflog("refs/heads/main", until_us=t - 1)] == [main2]
    assert [e.new.hex() for e in loaded.reflog("refs/heads/main", since_us=t)] == [main]


def test_update_refs_for_api_and_restore(loaded: RepoStore, history: WorkRepo) -> None:
    main2, main5 = history.rev("main~2"), history.rev("main~5")
    ctx = PushContext(token_id="api-tok", via="restore")
    r = loaded.update_refs(
        [RefCommand(oid_raw(main2), oid_raw(main5), "refs/heads/main")], ctx, message="restore"
    )
    assert r.refs[0].error is None
    e = loaded.reflog(limit=1)[0]
    assert (e.new.hex(), e.via, e.token_id, e.message) == (main5, "restore", "api-tok", "restore")
    r = loaded.update_refs([RefCommand(oid_raw(main2), oid_raw(main2), "refs/heads/main")], ctx)
    assert r.refs[0].error == "stale old value"
    r = loaded.update_refs([RefCommand(ZERO_OID, b"\x01" * 20, "refs/heads/x")], ctx)
    assert r.refs[0].error == "missing necessary objects"


@pytest.mark.parametrize(
    "name",
    [
        "main",
        "refs/",
        "refs/heads/a..b",
        "refs/heads/a.lock",
        "refs/heads/.hidden",
        "refs/heads/a/",
        "refs/heads//a",
        "refs/heads/a\x01",
        "refs/heads/a b",
        "refs/heads/a~1",
        "refs/heads/a^",
        "refs/heads/a:b",
        "refs/heads/a?",
        "refs/heads/a*",
        "refs/heads/a[",
        "refs/heads/a\\b",
        "refs/heads/a@{1}",
        "refs/heads/a.",
        "refs/heads/x/.y",
        "refs/heads/x\x7f",
    ],
)
def test_bad_ref_names_are_rejected(loaded: RepoStore, history: WorkRepo, name: str) -> None:
    assert check_ref_name(name) is not None
    before = loaded.refs()
    r = push(loaded, None, (None, history.rev("main"), name))
    assert r.refs[0].error is not None and r.refs[0].error.startswith("funny refname")
    assert loaded.refs() == before


@pytest.mark.parametrize(
    "name", ["refs/heads/main", "refs/heads/feature/x-1.2", "refs/tags/v1.0", "refs/heads/@"]
)
def test_good_ref_names(name: str) -> None:
    assert check_ref_name(name) is None


def test_head(store: RepoStore) -> None:
    assert store.head() == "refs/heads/main"
    store.set_head("refs/heads/trunk")
    assert store.head() == "refs/heads/trunk"
    with pytest.raises(ValueError):
        store.set_head("trunk")


# -- objects written by the server -----------------------------------------------------------


def test_write_objects_round_trip(store: RepoStore, tmp_path: Path) -> None:
    blob = b"hello\n"
    blob_id = (
        subprocess.run(["git", "hash-object", "--stdin"], input=blob, capture_output=True, check=True)
        .stdout.strip()
        .decode()
    )
    tree = b"100644 hello.txt\0" + oid_raw(blob_id)
    oids = store.write_objects([(ObjType.BLOB, blob), (ObjType.TREE, tree)])
    assert oids[0].hex() == blob_id
    commit = (f"tree {oids[1].hex()}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nmsg\n").encode()
    (cid,) = store.write_objects([(ObjType.COMMIT, commit)])
    assert store.get_object(cid) == (ObjType.COMMIT, commit)
    assert store.write_objects([(ObjType.BLOB, blob)]) == [oids[0]]  # already stored: no new pack
    assert store.connection.execute("SELECT COUNT(*) FROM packs").fetchone()[0] == 2
    r = store.update_refs([RefCommand(ZERO_OID, cid, "refs/heads/main")], PushContext(via="api"))
    assert r.refs[0].error is None
    assert store.verify() == []


def test_write_objects_checks_closure_and_format(store: RepoStore) -> None:
    counts = row_counts(store.path)
    dangling = b"tree " + b"12" * 20 + b"\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nm\n"
    with pytest.raises(MissingObject):
        store.write_objects([(ObjType.COMMIT, dangling)])
    with pytest.raises(ObjectCorrupt):
        store.write_objects([(ObjType.COMMIT, b"not a commit\n")])
    with pytest.raises(ObjectCorrupt):
        store.write_objects([(ObjType.TREE, b"100644 a\0short")])
    assert row_counts(store.path) == counts
    with pytest.raises(MissingObject):
        store.get_object(b"\x12" * 20)


# -- concurrency, alternates, fsck -----------------------------------------------------------


def test_readonly_reader_beside_a_writer(loaded: RepoStore, history: WorkRepo) -> None:
    reader = RepoStore.open(loaded.path, readonly=True)
    try:
        seen_during: list[dict] = []
        pack = history.pack(["--all"])
        pos = 0

        def read(n: int) -> bytes:
            nonlocal pos
            if pos == 0:
                seen_during.append(reader.refs())
                assert reader.has_object(oid_raw(history.rev("main~2")))
            out = pack[pos : pos + min(n, 1000)]
            pos += len(out)
            return out

        cmd = RefCommand(oid_raw(history.rev("main~2")), oid_raw(history.rev("main")), "refs/heads/main")
        assert loaded.receive([cmd], read, PushContext(), None).refs[0].error is None
        assert seen_during[0]["refs/heads/main"] == oid_raw(history.rev("main~2"))
        assert reader.refs()["refs/heads/main"] == oid_raw(history.rev("main"))
        with pytest.raises(StorageError):
            reader.set_head("refs/heads/x")
    finally:
        reader.close()


def test_alternates_fall_through(loaded: RepoStore, history: WorkRepo, tmp_path: Path) -> None:
    fork = RepoStore.create(tmp_path / "fork.sqlite", alternates=[str(loaded.path)])
    try:
        main2 = history.rev("main~2")
        assert fork.has_object(oid_raw(main2)) and fork.object_count() == 0
        assert (
            fork.update_refs(
                [RefCommand(ZERO_OID, oid_raw(main2), "refs/heads/main")], PushContext(via="fork")
            )
            .refs[0]
            .error
            is None
        )
        entry = fork.stored_entry(oid_raw(main2))
        assert entry is not None and entry.source == (0,)
        own = loaded.stored_entry(oid_raw(main2))
        assert b"".join(fork.read_entry_bytes(entry)) == b"".join(loaded.read_entry_bytes(own))  # type: ignore[arg-type]
        # a thin push into the fork completes against the parent's objects
        thin = history.pack(["main", f"^{main2}"], thin=True)
        r = push(fork, thin, (main2, history.rev("main"), "refs/heads/main"))
        assert r.unpack_error is None and r.refs[0].error is None
        _assert_matches_git(fork, history, history.objects("main"))
        assert 0 < fork.object_count() < loaded.object_count()
        assert fork.verify() == []
    finally:
        fork.close()


def test_verify_finds_damage(loaded: RepoStore) -> None:
    assert loaded.verify() == []
    conn = loaded.connection
    ((cid, data),) = conn.execute("SELECT id, data FROM chunks ORDER BY id LIMIT 1").fetchall()
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    conn.execute("UPDATE chunks SET data = ? WHERE id = ?", (bytes(damaged), cid))
    conn.execute("INSERT INTO refs(name, oid) VALUES ('refs/heads/ghost', ?)", (b"\x07" * 20,))
    reopened = RepoStore.open(loaded.path, readonly=True)
    try:
        problems = reopened.verify()
    finally:
        reopened.close()
    text = "\n".join(problems)
    assert "trailer does not match" in text
    assert "refs/heads/ghost: points at missing object" in text
    assert "CRC32 mismatch" in text or "hashes to" in text or "does not" in text


def test_repushing_known_objects_keeps_no_pack(loaded: RepoStore, history: WorkRepo) -> None:
    packs = loaded.connection.execute("SELECT COUNT(*) FROM packs").fetchone()[0]
    size = loaded.stored_bytes()
    r = push(loaded, history.pack(["--all"]), (None, history.rev("side"), "refs/heads/side"))
    assert r.unpack_error is None and r.refs[0].error is None
    assert loaded.connection.execute("SELECT COUNT(*) FROM packs").fetchone()[0] == packs
    assert loaded.stored_bytes() == size and loaded.verify() == []
    empty = b"PACK\0\0\0\2\0\0\0\0"
    r = push(loaded, empty + hashlib.sha1(empty).digest(), (None, history.rev("side"), "refs/heads/side2"))
    assert r.unpack_error is None and r.refs[0].error is None
    assert loaded.stored_bytes() == size


def test_tiny_caches_still_resolve_everything(history: WorkRepo, tmp_path: Path) -> None:
    """With caches too small to hold a base, resolution rebuilds evicted bases from ancestors."""
    RepoStore.create(tmp_path / "tiny.sqlite").close()
    tiny = RepoStore.open(tmp_path / "tiny.sqlite", cache_bytes=64)
    try:
        tiny.ingest_cache_bytes = 64
        r = push(tiny, history.pack(["--all"]), (None, history.rev("main"), "refs/heads/main"))
        assert r.unpack_error is None
        _assert_matches_git(tiny, history, history.objects("--all"))
        assert max(e.depth for e in tiny.iter_entries()) >= 2
    finally:
        tiny.close()
