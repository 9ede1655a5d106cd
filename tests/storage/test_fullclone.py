"""Pack reuse for full clones (storage.fullclone + packgen.write_whole_store), checked by
real git: the pack is the stored packs' entries verbatim, complete and valid; anything
that makes the store hold more than the wanted objects falls back to the object walk."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from storage import fullclone, packgen
from storage.model import FilterSpec, PackRequest
from storage.repository import Repository
from tests.storage.gitpacks import WorkRepo, push
from tests.storage.gitrepos import index_pack, run_git


def _pack(repo: Repository, request: PackRequest) -> tuple[bytes, list[str]]:
    out = bytearray()
    messages: list[str] = []
    repo.write_pack(request, None, out.extend, messages.append)
    return bytes(out), messages


def _clone_request(repo: Repository, **kw: object) -> PackRequest:
    wants = list(dict.fromkeys(repo.store.refs().values()))
    return PackRequest(wants=wants, ofs_delta=True, thin_pack=True, include_tag=True, **kw)  # type: ignore[arg-type]


@pytest.fixture
def two_pushes(tmp_path: Path) -> tuple[WorkRepo, Repository]:
    """A store of two packs: the second a thin pack deltified against the first."""
    from storage.repo_store import RepoStore

    work = WorkRepo(tmp_path / "work")
    for i in range(30):
        work.write(f"f{i % 5}.txt", "".join(f"line {n} {i}\n" for n in range(200)))
        work.commit(f"c{i}")
    first = work.rev("HEAD")
    store = RepoStore.create(tmp_path / "s.sqlite")
    assert push(store, work.pack(["--all"]), (None, first, "refs/heads/main")).unpack_error is None
    for i in range(5):
        work.write("f1.txt", "".join(f"line {n} again {i}\n" for n in range(200)))
        work.commit(f"d{i}")
    work.git("tag", "-a", "-m", "release", "v1")
    second = work.rev("HEAD")
    pack = work.pack([second, f"^{first}", work.rev("v1")], thin=True)
    result = push(store, pack, (first, second, "refs/heads/main"), (None, work.rev("v1"), "refs/tags/v1"))
    assert result.unpack_error is None
    return work, Repository(store)


def test_full_clone_reuses_the_stored_packs_verbatim(
    two_pushes: tuple[WorkRepo, Repository], tmp_path: Path
) -> None:
    work, repo = two_pushes
    request = _clone_request(repo)
    for attempt in range(2):  # the first walks and remembers, the second skips the walk
        pack, messages = _pack(repo, request)
        total = struct.unpack(">I", pack[8:12])[0]
        assert messages[-1].endswith(f"pack-reused {total}\n"), messages
        client = tmp_path / f"client{attempt}.git"
        run_git("init", "-q", "--bare", client)
        got = index_pack(client, pack, strict=False)
        assert {o.hex() for o in got} == set(work.objects("--all"))
        run_git("update-ref", "refs/heads/main", work.rev("main"), cwd=client)
        run_git("fsck", "--strict", "--no-dangling", cwd=client)


def test_unreachable_objects_are_never_sent(two_pushes: tuple[WorkRepo, Repository], tmp_path: Path) -> None:
    work, repo = two_pushes
    old = work.rev("main")
    moved = push(
        repo.store, None, (old, work.rev("main~3"), "refs/heads/main"), (work.rev("v1"), None, "refs/tags/v1")
    )
    assert moved.unpack_error is None and all(r.error is None for r in moved.refs)
    pack, messages = _pack(repo, _clone_request(repo))
    assert messages[-1].endswith("pack-reused 0\n")
    client = tmp_path / "client.git"
    run_git("init", "-q", "--bare", client)
    got = index_pack(client, pack, strict=False)
    assert {o.hex() for o in got} == set(work.objects("main~3"))


def test_requests_that_are_not_plain_take_the_walk(two_pushes: tuple[WorkRepo, Repository]) -> None:
    _, repo = two_pushes
    for extra in ({"filter": FilterSpec("blob:limit", 100)}, {"depth": 1}, {"ofs_delta": False}):
        request = _clone_request(repo)
        for key, value in extra.items():
            setattr(request, key, value)
        assert not fullclone.is_plain(request)
        _, messages = _pack(repo, request)
        assert messages[-1].endswith("pack-reused 0\n")


def test_dead_entries_refuse_the_verbatim_path(two_pushes: tuple[WorkRepo, Repository]) -> None:
    work, repo = two_pushes
    # a new commit sent with objects already stored: the new pack has dead entries
    old = work.rev("main")
    work.write("new.txt", "new\n")
    tip = work.commit("new")
    pack = work.pack([tip, "^" + work.rev("main~2")])
    result = push(repo.store, pack, (old, tip, "refs/heads/main"))
    assert result.unpack_error is None
    assert packgen.write_whole_store(repo.store.connection, lambda b: None) is None


def test_blob_none_clone_of_a_whole_store_lists_every_commit_tree_and_tag(
    two_pushes: tuple[WorkRepo, Repository], tmp_path: Path
) -> None:
    work, repo = two_pushes
    expected = set(work.objects("--all", "--filter=blob:none", "--filter-print-omitted"))
    expected = {o for o in expected if not o.startswith("~")}
    for attempt in range(2):  # the verdict is computed, then remembered
        pack, messages = _pack(repo, _clone_request(repo, filter=FilterSpec("blob:none")))
        client = tmp_path / f"client{attempt}.git"
        run_git("init", "-q", "--bare", client)
        got = index_pack(client, pack, strict=False)
        assert {o.hex() for o in got} == expected
        assert messages[-1].startswith(f"Total {len(expected)} ")


def test_blob_none_clone_with_unreachable_objects_takes_the_walk(
    two_pushes: tuple[WorkRepo, Repository], tmp_path: Path
) -> None:
    work, repo = two_pushes
    moved = push(
        repo.store,
        None,
        (work.rev("v1"), None, "refs/tags/v1"),
        (work.rev("main"), work.rev("main~2"), "refs/heads/main"),
    )
    assert moved.unpack_error is None
    pack, _ = _pack(repo, _clone_request(repo, filter=FilterSpec("blob:none")))
    client = tmp_path / "client.git"
    run_git("init", "-q", "--bare", client)
    got = index_pack(client, pack, strict=False)
    expected = {o for o in work.objects("main~2", "--filter=blob:none") if not o.startswith("~")}
    assert {o.hex() for o in got} == expected
