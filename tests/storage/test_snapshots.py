"""Snapshots, segments, rehydrate and manifest fencing, on the file and the real S3 store."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.blobstore import BlobStore, open_blobstore
from storage.manifest import RepoFenced, load_manifest, snapshot_keys
from storage.rehydrate import ensure_writer_id, rehydrate
from storage.replica import Replica
from storage.replica_format import ReplicaFormatError
from storage.repo_store import RepoStore
from storage.snapshot import write_snapshot
from tests.storage.gitpacks import WorkRepo, push
from tests.storage.gitrepos import index_pack, run_git


@pytest.fixture(params=["file", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "file":
        store = open_blobstore(f"file://{tmp_path / 'blobs'}")
    else:
        service = request.getfixturevalue("s3_service")
        store = open_blobstore(service.url(f"snap-{secrets.token_hex(4)}"))
    yield store
    store.close()


def _grow(repo: WorkRepo, start: int, rounds: int) -> list[str]:
    out = []
    for i in range(start, start + rounds):
        repo.write("big.txt", "".join(f"line {j} round {i if j % 50 == 0 else 0}\n" for j in range(2000)))
        repo.write(f"d/f{i}.txt", f"file {i}\n" * (i + 1))
        out.append(repo.commit(f"commit {i}"))
    return out


def _state(store: RepoStore) -> tuple[dict, list, str, set]:
    oids = {e.oid for e in store.iter_entries()}
    reflog = [(e.ref, e.old, e.new, e.at_us, e.token_id, e.via, e.message) for e in store.reflog()]
    return store.refs(), reflog, store.head(), oids


def test_snapshot_segments_rehydrate_roundtrip(blobs: BlobStore, tmp_path: Path) -> None:
    work = WorkRepo(tmp_path / "work")
    store = RepoStore.create(tmp_path / "a.sqlite")
    replica = Replica(blobs, "r1")
    c1 = _grow(work, 0, 6)
    assert push(store, work.pack([c1[-1]]), (None, c1[-1], "refs/heads/main")).refs[0].error is None
    assert replica.ship(store) is not None
    c2 = _grow(work, 6, 4)  # thin pack: ref-deltas against the first push
    assert (
        push(store, work.pack([c2[-1], f"^{c1[-1]}"], thin=True), (c1[-1], c2[-1], "refs/heads/main"))
        .refs[0]
        .error
        is None
    )
    replica.ship(store)
    writer = ensure_writer_id(store)
    info = write_snapshot(store, blobs, "r1", "s1", writer=writer, at=1)
    replica.commit_snapshot(info)
    manifest = load_manifest(blobs, "r1")
    assert manifest is not None and manifest[0].segments == () and manifest[0].snapshot == info
    # after the snapshot: a branch, a tag, a delete, a HEAD change, all shipped
    c3 = _grow(work, 10, 3)
    push(store, work.pack([c3[-1], f"^{c2[-1]}"], thin=True), (None, c3[-1], "refs/heads/topic"))
    push(store, None, (None, c1[0], "refs/tags/v0"))
    push(store, None, (c1[0], None, "refs/tags/v0"))
    store.set_head("refs/heads/topic")
    replica.ship(store)
    assert replica.ship(store) is None  # nothing new
    before = _state(store)
    assert len(load_manifest(blobs, "r1")[0].segments) == 1  # type: ignore[index]

    # the snapshot pack alone is a valid git pack holding every object of the snapshot
    pack_key = snapshot_keys("r1", "s1")[0]
    bare = tmp_path / "check.git"
    run_git("init", "-q", "--bare", bare)
    assert len(index_pack(bare, b"".join(blobs.get(pack_key)), strict=False)) == info.objects

    claimed = rehydrate(blobs, "r1", tmp_path / "b.sqlite")
    assert claimed is not None
    with RepoStore.open(tmp_path / "b.sqlite") as back:
        assert _state(back) == before
        assert back.verify() == []
        for oid in before[3]:
            assert back.get_object(oid) == store.get_object(oid)
        assert ensure_writer_id(back) == claimed[0].writer != writer
    # the old writer lost the repo: it may not write any more
    push(store, None, (None, c1[1], "refs/heads/late"))
    with pytest.raises(RepoFenced):
        replica.ship(store)
    with pytest.raises(RepoFenced):
        replica.ship(store)
    store.close()


def test_two_writers_exactly_one_wins(blobs: BlobStore, tmp_path: Path) -> None:
    work = WorkRepo(tmp_path / "work")
    commits = _grow(work, 0, 2)
    stores = [RepoStore.create(tmp_path / f"w{i}.sqlite") for i in range(2)]
    for s in stores:
        push(s, work.pack([commits[-1]]), (None, commits[-1], "refs/heads/main"))
    replicas = [Replica(blobs, "race") for _ in stores]
    for s in stores:
        ensure_writer_id(s)
    barrier = threading.Barrier(2)
    outcome: list[object] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcome[i] = replicas[i].ship(stores[i])
        except RepoFenced as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lost = [o for o in outcome if isinstance(o, RepoFenced)]
    assert len(lost) == 1, outcome
    winner = 0 if not isinstance(outcome[0], RepoFenced) else 1
    manifest = load_manifest(blobs, "race")
    assert manifest is not None and manifest[0].writer == ensure_writer_id(stores[winner])
    # the loser stays fenced; the winner keeps writing
    push(stores[winner], None, (None, commits[0], "refs/heads/more"))
    assert replicas[winner].ship(stores[winner]) is not None
    with pytest.raises(RepoFenced, match="fenced"):
        replicas[1 - winner].ship(stores[1 - winner])
    for s in stores:
        s.close()


def test_rehydrate_of_unknown_repo_is_none(blobs: BlobStore, tmp_path: Path) -> None:
    assert rehydrate(blobs, "nothing-here", tmp_path / "x.sqlite") is None
    assert not (tmp_path / "x.sqlite").exists()


def test_damaged_snapshot_pack_fails_and_leaves_no_file(blobs: BlobStore, tmp_path: Path) -> None:
    work = WorkRepo(tmp_path / "work")
    commits = _grow(work, 0, 2)
    store = RepoStore.create(tmp_path / "a.sqlite")
    push(store, work.pack([commits[-1]]), (None, commits[-1], "refs/heads/main"))
    replica = Replica(blobs, "dmg")
    info = write_snapshot(store, blobs, "dmg", "s1", writer=ensure_writer_id(store), at=1)
    replica.commit_snapshot(info)
    pack_key = snapshot_keys("dmg", "s1")[0]
    data = bytearray(b"".join(blobs.get(pack_key)))
    data[100] ^= 0xFF
    blobs.put(pack_key, bytes(data))
    with pytest.raises(ReplicaFormatError, match=r"trailer|checksum"):
        rehydrate(blobs, "dmg", tmp_path / "b.sqlite")
    assert not (tmp_path / "b.sqlite").exists()
    assert not (tmp_path / "b.sqlite.rehydrate").exists()
    store.close()
