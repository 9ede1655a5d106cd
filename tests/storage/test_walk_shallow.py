"""Shallow boundaries and shallow packs checked against real git clones and fetches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.model import Oid, PackRequest, ShallowUpdate, oid_raw
from storage.repository import Repository
from tests.storage.gitrepos import BASE_TIME, build_history, index_pack, load_store, rev_parse, run_git


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_history(tmp_path_factory.mktemp("shallow") / "src.git", commits=70)


@pytest.fixture(scope="module")
def repo(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository(load_store(tmp_path_factory.mktemp("shallowstore"), src))


def shallow_file(repo: Path) -> set[Oid]:
    path = repo / "shallow"
    return {oid_raw(x) for x in path.read_text().split()} if path.exists() else set()


def objects_of(repo: Path) -> set[Oid]:
    out = run_git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=repo).decode()
    return {oid_raw(x) for x in out.split()}


def git_clone(src: Path, dst: Path, *opts: str, branch: str = "main") -> Path:
    run_git(
        "clone", "-q", "--bare", "--no-tags", "--single-branch", "-b", branch, *opts, f"file://{src}", dst
    )
    return dst


def apply_pack(repo_obj: Repository, client: Path, request: PackRequest) -> ShallowUpdate:
    """Do what a client does with our answer: index the pack and rewrite its shallow file."""
    update = repo_obj.shallow_update(request) if request.is_shallow_request else None
    pack = bytearray()
    repo_obj.write_pack(request, update, pack.extend, None)
    if update is not None:
        current = (shallow_file(client) | set(update.shallow)) - set(update.unshallow)
        (client / "shallow").write_text("".join(f"{o.hex()}\n" for o in sorted(current)))
        if not current:
            (client / "shallow").unlink()
    index_pack(client, bytes(pack), fix_thin=True)
    return update or ShallowUpdate([], [])


def check_client(client: Path, tip: Oid) -> None:
    run_git("update-ref", "refs/heads/main", tip.hex(), cwd=client)
    run_git("fsck", "--strict", "--no-dangling", cwd=client)
    run_git("rev-list", "--objects", "--all", cwd=client)


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 9, 30, 1000])
def test_depth_matches_git_clone(src: Path, repo: Repository, tmp_path: Path, depth: int) -> None:
    ref = git_clone(src, tmp_path / "ref.git", f"--depth={depth}")
    tip = rev_parse(src, "main")
    request = PackRequest(wants=[tip], depth=depth, ofs_delta=True, include_tag=True)
    update = repo.shallow_update(request)
    assert set(update.shallow) == shallow_file(ref)
    assert update.unshallow == []
    assert set(repo.plan(request, update).send) == objects_of(ref)
    client = tmp_path / "ours.git"
    run_git("init", "-q", "--bare", client)
    apply_pack(repo, client, request)
    assert shallow_file(client) == shallow_file(ref)
    check_client(client, tip)


@pytest.mark.parametrize(
    ("first", "then", "relative"), [(2, 5, False), (5, 3, False), (3, 4, True), (1, 1, True)]
)
def test_deepen_matches_git_fetch(
    src: Path, repo: Repository, tmp_path: Path, first: int, then: int, relative: bool
) -> None:
    ref = git_clone(src, tmp_path / "ref.git", f"--depth={first}")
    ours = tmp_path / "ours.git"
    shutil.copytree(ref, ours)
    old_shallow = shallow_file(ref)
    run_git("fetch", "-q", f"--deepen={then}" if relative else f"--depth={then}", "origin", cwd=ref)
    tip = rev_parse(src, "main")
    request = PackRequest(
        wants=[tip],
        haves=[tip],
        client_shallows=sorted(old_shallow),
        depth=then,
        deepen_relative=relative,
        ofs_delta=True,
        thin_pack=True,
    )
    update = apply_pack(repo, ours, request)
    assert shallow_file(ours) == shallow_file(ref)
    assert set(update.unshallow) <= old_shallow
    assert objects_of(ours) == objects_of(ref)
    check_client(ours, tip)


def test_unshallow_sends_the_rest(src: Path, repo: Repository, tmp_path: Path) -> None:
    ref = git_clone(src, tmp_path / "ref.git", "--depth=3")
    ours = tmp_path / "ours.git"
    shutil.copytree(ref, ours)
    old = shallow_file(ref)
    tip = rev_parse(src, "main")
    request = PackRequest(
        wants=[tip], haves=[tip], client_shallows=sorted(old), depth=0x7FFFFFFF, thin_pack=True
    )
    update = apply_pack(repo, ours, request)
    assert set(update.unshallow) == old and update.shallow == []
    assert not (ours / "shallow").exists()
    run_git("fetch", "-q", "--unshallow", "origin", cwd=ref)
    assert objects_of(ours) >= objects_of(ref) - {rev_parse(src, "feature")}
    check_client(ours, tip)


@pytest.mark.parametrize("hours", [3, 10, 25, 50])
def test_deepen_since_matches_git(src: Path, repo: Repository, tmp_path: Path, hours: int) -> None:
    since = BASE_TIME + (70 - hours) * 3600
    ref = git_clone(src, tmp_path / "ref.git", f"--shallow-since={since}")
    tip = rev_parse(src, "main")
    request = PackRequest(wants=[tip], deepen_since=since, include_tag=True)
    update = repo.shallow_update(request)
    assert set(update.shallow) == shallow_file(ref)
    assert set(repo.plan(request, update).send) == objects_of(ref)


@pytest.mark.parametrize("exclude", ["v1", "v3", "feature"])
def test_deepen_not_matches_git(src: Path, repo: Repository, tmp_path: Path, exclude: str) -> None:
    ref = git_clone(src, tmp_path / "ref.git", f"--shallow-exclude={exclude}")
    tip = rev_parse(src, "main")
    request = PackRequest(wants=[tip], deepen_not=[rev_parse(src, exclude)], include_tag=True)
    update = repo.shallow_update(request)
    assert set(update.shallow) == shallow_file(ref)
    assert set(repo.plan(request, update).send) == objects_of(ref)
    client = tmp_path / "ours.git"
    run_git("init", "-q", "--bare", client)
    apply_pack(repo, client, request)
    check_client(client, tip)


def test_plain_fetch_into_shallow_clone_matches_git(src: Path, repo: Repository, tmp_path: Path) -> None:
    older = tmp_path / "older.git"
    run_git("clone", "-q", "--bare", "--no-tags", f"file://{src}", older)
    run_git("update-ref", "refs/heads/main", rev_parse(src, "main~4").hex(), cwd=older)
    ref = git_clone(older, tmp_path / "ref.git", "--depth=2")
    ours = tmp_path / "ours.git"
    shutil.copytree(ref, ours)
    boundary = shallow_file(ref)
    run_git("remote", "set-url", "origin", f"file://{src}", cwd=ref)
    run_git("fetch", "-q", "origin", "main", cwd=ref)
    tip = rev_parse(src, "main")
    request = PackRequest(
        wants=[tip], haves=[rev_parse(src, "main~4")], client_shallows=sorted(boundary), thin_pack=True
    )  # no include-tag: the clone has tagOpt --no-tags
    assert apply_pack(repo, ours, request) == ShallowUpdate([], [])
    assert shallow_file(ours) == shallow_file(ref) == boundary
    assert objects_of(ours) == objects_of(ref)
    check_client(ours, tip)
