"""IngestStats.unnamed: the new objects of a pack that nothing in the pack names (its tips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.ingest import IngestStats, ingest_pack
from storage.model import oid_raw
from storage.repo_store import RepoStore
from tests.storage.gitpacks import WorkRepo, use_native


@pytest.fixture(params=["c", "python"], autouse=True)
def native_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_native(request.param, monkeypatch)
    return str(request.param)


def _ingest(store: RepoStore, pack: bytes) -> IngestStats:
    conn = store.connection
    conn.execute("BEGIN IMMEDIATE")
    view = memoryview(pack)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        piece = bytes(view[pos : pos + n])
        pos += len(piece)
        return piece

    try:
        return ingest_pack(conn, read, store, store.alternate_type)
    finally:
        conn.execute("COMMIT")


def test_unnamed_are_the_pushed_tips_and_a_dangling_object(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "work")
    for i in range(4):
        repo.write(f"f{i}.txt", f"file {i}\n" * 50)
        repo.commit(f"commit {i}")
    repo.git("branch", "side", "HEAD~2")
    repo.git("tag", "-a", "-m", "release", "v1", "HEAD~1")
    store = RepoStore.create(tmp_path / "repo.sqlite")
    try:
        first = _ingest(store, repo.pack(["main", "v1"]))
        # a tag object names its commit: the tips are main's commit and the tag, not side's
        assert set(first.unnamed) == {oid_raw(repo.rev("main")), oid_raw(repo.rev("v1"))}

        repo.write("f0.txt", "changed\n")
        new_tip = repo.commit("commit 4")
        dangling = repo.git("hash-object", "-w", "--stdin", input=b"nobody names me\n").decode().strip()
        listed = [*repo.objects(new_tip, "^HEAD~1"), dangling]
        pack = repo.git("pack-objects", "--stdout", "-q", input="".join(o + "\n" for o in listed).encode())
        second = _ingest(store, pack)
        # only new objects count: the unchanged files the new tree names were stored before
        assert set(second.unnamed) == {oid_raw(new_tip), oid_raw(dangling)}
        assert second.new_objects == 4  # commit, tree, the changed blob, the dangling blob
    finally:
        store.close()
