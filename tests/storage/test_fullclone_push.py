"""The full-clone verdict decided at push time (meta ``whole_reachable``, storage.fullclone):
a push that provably keeps every stored object reachable lets the next full clone stream
the stored packs with no walk; anything it cannot prove (a force-push, a delete, an
unreachable object, another kind of write) leaves the walk to decide, as before. Packs
and checks come from the real git CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import fullclone
from storage.model import ObjType, PackRequest, PushContext, RefCommand
from storage.repo_store import RepoStore
from storage.repository import Repository
from tests.storage.gitpacks import WorkRepo, push
from tests.storage.gitrepos import index_pack, run_git


class Walks:
    """Counts ``Repository.plan`` calls (the object walk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = Repository.plan

        def counting(repo: Repository, *args: object, **kw: object) -> object:
            self.count += 1
            return real(repo, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(Repository, "plan", counting)


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    with fullclone._lock:
        fullclone._verdicts.clear()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> Walks:
    return Walks(monkeypatch)


def _clone(repo: Repository, tmp_path: Path, name: str) -> tuple[set[str], list[str]]:
    """A plain full clone of every ref: (object ids received, progress messages); the
    client repository passes ``git fsck`` with its refs set."""
    refs = repo.store.refs()
    request = PackRequest(
        wants=list(dict.fromkeys(refs.values())), ofs_delta=True, thin_pack=True, include_tag=True
    )
    out = bytearray()
    messages: list[str] = []
    repo.write_pack(request, None, out.extend, messages.append)
    client = tmp_path / name
    run_git("init", "-q", "--bare", client)
    got = index_pack(client, bytes(out), strict=False)
    for ref, oid in refs.items():
        run_git("update-ref", ref, oid.hex(), cwd=client)
    run_git("fsck", "--strict", "--no-dangling", cwd=client)
    return {o.hex() for o in got}, messages


def _recorded(store: RepoStore) -> bool:
    return fullclone.recorded_whole(store.connection, store.refs(), store.object_count())


def _history(path: Path) -> WorkRepo:
    work = WorkRepo(path)
    for i in range(12):
        work.write(f"f{i % 3}.txt", "".join(f"line {n} {i}\n" for n in range(100)))
        work.commit(f"c{i}")
    work.git("branch", "side", "HEAD~4")
    work.git("tag", "-a", "-m", "release", "v1", "HEAD~2")
    work.git("tag", "light", "HEAD~6")
    return work


def _mirror(work: WorkRepo, store: RepoStore) -> None:
    refs = {
        name: work.rev(name)
        for name in ("refs/heads/main", "refs/heads/side", "refs/tags/v1", "refs/tags/light")
    }
    result = push(store, work.pack(["--all"]), *((None, oid, name) for name, oid in refs.items()))
    assert result.unpack_error is None and all(r.error is None for r in result.refs)


@pytest.fixture
def mirrored(tmp_path: Path) -> tuple[WorkRepo, Repository]:
    work = _history(tmp_path / "work")
    store = RepoStore.create(tmp_path / "s.sqlite")
    _mirror(work, store)
    return work, Repository(store)


def test_mirror_push_into_an_empty_store_is_cloned_without_a_walk(
    mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path
) -> None:
    work, repo = mirrored
    assert _recorded(repo.store)
    got, messages = _clone(repo, tmp_path, "c.git")
    assert walks.count == 0
    assert messages[-1].endswith(f"pack-reused {len(got)}\n")
    assert got == set(work.objects("--all"))


def test_fast_forwards_and_new_refs_keep_the_fact(
    mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path
) -> None:
    work, repo = mirrored
    old_main, old_side = work.rev("main"), work.rev("side")
    for i in range(3):
        work.write("new.txt", f"new {i}\n")
        work.commit(f"n{i}")
    work.git("tag", "-a", "-m", "second", "v2")
    # main fast-forwards (its old value is the parent of the oldest new commit), a tag and
    # a branch at main's old value are new
    pack = work.pack([work.rev("v2"), f"^{old_main}"])
    result = push(
        repo.store,
        pack,
        (old_main, work.rev("main"), "refs/heads/main"),
        (None, old_main, "refs/heads/feature"),
        (None, work.rev("v2"), "refs/tags/v2"),
    )
    assert result.unpack_error is None and all(r.error is None for r in result.refs)
    assert _recorded(repo.store)
    got, messages = _clone(repo, tmp_path, "c.git")
    assert walks.count == 0 and "pack-reused" in messages[-1]
    assert got == set(work.objects("main", "v1", "v2", "light"))

    # a push with no pack: side moves anywhere while a new ref keeps its old value; a
    # branch is made at a stored commit
    result = push(
        repo.store,
        None,
        (None, old_side, "refs/heads/copy"),
        (old_side, work.rev("main"), "refs/heads/side"),
        (None, work.rev("main~5"), "refs/heads/old"),
    )
    assert result.unpack_error is None and all(r.error is None for r in result.refs)
    assert _recorded(repo.store)
    got, _ = _clone(repo, tmp_path, "c2.git")
    assert walks.count == 0 and got == set(work.objects("main", "v1", "v2", "light"))


def test_force_push_drops_the_fact_and_sends_no_unreachable_object(
    mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path
) -> None:
    work, repo = mirrored
    old_main = work.rev("main")
    work.git("reset", "-q", "--hard", "HEAD~3")
    work.write("other.txt", "rewritten\n")
    work.commit("rewritten")
    result = push(
        repo.store,
        work.pack([work.rev("main"), "^" + work.rev("main~1")]),
        (old_main, work.rev("main"), "refs/heads/main"),
    )
    assert result.unpack_error is None and result.refs[0].error is None
    assert not _recorded(repo.store)
    got, messages = _clone(repo, tmp_path, "c.git")
    assert walks.count == 1 and messages[-1].endswith("pack-reused 0\n")
    assert got == set(work.objects("main", "side", "v1", "light"))
    assert old_main not in got


def test_ref_delete_drops_the_fact(
    mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path
) -> None:
    work, repo = mirrored
    # side's commits are all reachable from main too: only a walk could tell, so dropped
    result = push(repo.store, None, (work.rev("v1"), None, "refs/tags/v1"))
    assert result.unpack_error is None
    assert not _recorded(repo.store)
    got, _ = _clone(repo, tmp_path, "c.git")
    assert walks.count == 1
    tag = work.rev("v1")
    assert tag not in got and got == set(work.objects("main", "side", "light"))


def test_a_pushed_object_no_ref_reaches_drops_the_fact(
    mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path
) -> None:
    work, repo = mirrored
    old_main = work.rev("main")
    work.write("tip.txt", "tip\n")
    tip = work.commit("tip")
    stray = work.git("hash-object", "-w", "--stdin", input=b"nobody names me\n").decode().strip()
    pack = work.pack([tip, f"^{old_main}", stray])
    result = push(repo.store, pack, (old_main, tip, "refs/heads/main"))
    assert result.unpack_error is None and result.refs[0].error is None
    assert not _recorded(repo.store)
    got, messages = _clone(repo, tmp_path, "c.git")
    assert walks.count == 1 and messages[-1].endswith("pack-reused 0\n")
    assert stray not in got and got == set(work.objects("--all"))


def test_a_failed_ref_command_leaves_its_tip_unreachable(
    mirrored: tuple[WorkRepo, Repository], walks: Walks
) -> None:
    work, repo = mirrored
    old_main = work.rev("main")
    work.write("tip.txt", "tip\n")
    tip = work.commit("tip")
    pack = work.pack([tip, f"^{old_main}"])
    result = push(
        repo.store,
        pack,
        (work.rev("side"), tip, "refs/heads/main"),  # stale old value: refused, the pack is kept
        (None, work.rev("main~1"), "refs/heads/extra"),
    )
    assert result.unpack_error is None and result.refs[0].error and result.refs[1].error is None
    assert not _recorded(repo.store)


def test_other_writes_never_match_the_recorded_state(mirrored: tuple[WorkRepo, Repository]) -> None:
    work, repo = mirrored
    store = repo.store
    # objects written by the server (the commit API's first step) change the count
    store.write_objects([(ObjType.BLOB, b"made by the server\n")])
    assert not _recorded(store)
    # and a ref moved without a push (commit API, restore) changes the refs
    store2 = RepoStore.create(store.path.parent / "t.sqlite")
    _mirror(work, store2)
    main = store2.refs()["refs/heads/main"]
    back = bytes.fromhex(work.rev("main~1"))
    result = store2.update_refs([RefCommand(main, back, "refs/heads/main")], PushContext(via="api"))
    assert result.refs[0].error is None
    assert not _recorded(store2)


def test_forks_keep_the_walk(mirrored: tuple[WorkRepo, Repository], walks: Walks, tmp_path: Path) -> None:
    work, repo = mirrored
    fork = RepoStore.create(tmp_path / "fork.sqlite", alternates=[repo.store.path.name])
    assert push(fork, None, (None, work.rev("main"), "refs/heads/main")).unpack_error is None
    assert (
        fork.connection.execute("SELECT 1 FROM meta WHERE key = ?", (fullclone.META_KEY,)).fetchone() is None
    )
    _, messages = _clone(Repository(fork), tmp_path, "c.git")
    assert walks.count == 1 and messages[-1].endswith("pack-reused 0\n")
