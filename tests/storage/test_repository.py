"""Repository (the GitRepository contract) on a real RepoStore: refs, pushes, speed."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from storage.model import ZERO_OID, PackRequest, PushContext, RefCommand
from storage.repository import Repository
from tests.storage.gitrepos import build_history, load_store, refs_of, rev_parse, run_git


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_history(tmp_path_factory.mktemp("repo") / "src.git", commits=40)


def test_list_refs_matches_git(src: Path, tmp_path: Path) -> None:
    repo = Repository(load_store(tmp_path / "store", src))
    refs = repo.list_refs()
    assert refs[0].name == "HEAD" and refs[0].symref_target == "refs/heads/main"
    assert refs[0].oid == rev_parse(src, "main")
    names = [r.name for r in refs[1:]]
    assert names == sorted(names) and {r.name: r.oid for r in refs[1:]} == refs_of(src)
    peeled = {}
    for line in run_git("show-ref", "-d", cwd=src).decode().splitlines():
        oid, name = line.split()
        if name.endswith("^{}"):
            peeled[name[:-3]] = oid
    assert {r.name: r.peeled.hex() for r in refs if r.peeled} == peeled


def test_push_through_repository_updates_refs_and_wants(src: Path, tmp_path: Path) -> None:
    repo = Repository(load_store(tmp_path / "store", src))
    work = tmp_path / "work"
    run_git("clone", "-q", f"file://{src}", work)
    (work / "new.txt").write_text("new\n")
    run_git("add", "new.txt", cwd=work)
    run_git("commit", "-q", "-m", "new", cwd=work)
    new = rev_parse(work, "HEAD")
    old = rev_parse(src, "main")
    assert not repo.is_want_allowed(new)
    pack = run_git(
        "pack-objects", "--stdout", "-q", "--revs", cwd=work, input=f"{new.hex()}\n^{old.hex()}\n".encode()
    )
    result = repo.receive_pack(
        [RefCommand(old, new, "refs/heads/main"), RefCommand(ZERO_OID, new, "refs/heads/topic")],
        io.BytesIO(pack).read,
        PushContext(),
        None,
    )
    assert result.unpack_error is None and all(r.error is None for r in result.refs)
    assert repo.has_object(new) and repo.is_want_allowed(new)
    assert repo.list_refs()[0].oid == new
    assert new in repo.plan(PackRequest(wants=[new], haves=[old]), None).send


def test_empty_repository_lists_no_refs(tmp_path: Path) -> None:
    src = tmp_path / "empty.git"
    run_git("init", "-q", "--bare", "-b", "main", src)
    repo = Repository(load_store(tmp_path / "store", src))
    assert repo.list_refs() == []


def test_full_clone_walk_of_15k_objects_is_fast(tmp_path: Path) -> None:
    src = build_history(tmp_path / "big.git", commits=1700, files=60, seed=7)
    count = int(run_git("rev-list", "--all", "--objects", "--count", cwd=src))
    assert count >= 14000
    repo = Repository(load_store(tmp_path / "store", src))
    wants = list(set(refs_of(src).values()))
    start = time.perf_counter()
    plan = repo.plan(PackRequest(wants=wants), None)
    walk = time.perf_counter() - start
    assert len(plan.send) == count
    start = time.perf_counter()
    repo.plan(PackRequest(wants=wants), None)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    size = 0

    def write(data: bytes) -> None:
        nonlocal size
        size += len(data)

    repo.write_pack(PackRequest(wants=wants, ofs_delta=True), None, write, None)
    total = time.perf_counter() - start
    print(f"\n{count} objects: walk {walk:.3f}s cold, {warm:.3f}s warm; walk+pack {total:.3f}s, {size} bytes")
    # Cold, the walk is dominated by RepoStore.get_object of ~11k commits and trees
    # (two queries and an inflate each); the bound leaves room for slow CI machines.
    assert walk < 3.0 and warm < 1.5
