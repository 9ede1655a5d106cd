"""Object enumeration checked against real git's rev-list on git-built histories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage.model import FilterSpec, ObjType, Oid, PackRequest
from storage.objparse import parse_commit, parse_tag, parse_tree, tree_links
from storage.repository import Repository
from tests.storage.gitrepos import build_history, load_store, rev_list_objects, rev_parse, run_git


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_history(tmp_path_factory.mktemp("walk") / "src.git", commits=80)


@pytest.fixture(scope="module")
def repo(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository(load_store(tmp_path_factory.mktemp("walkstore"), src))


CASES = [
    (["main"], []),
    (["main", "feature"], []),
    (["main"], ["main~10"]),
    (["main"], ["main~1"]),
    (["main"], ["main"]),
    (["main", "feature"], ["main~20", "feature~3"]),
    (["v1"], []),
    (["v3", "main"], ["v1"]),
    (["feature"], ["main"]),
    (["main^{tree}"], []),
    (["main:top.txt"], []),
]


def _oids(src: Path, revs: list[str]) -> list[Oid]:
    return [rev_parse(src, r) for r in revs]


@pytest.mark.parametrize(("wants", "haves"), CASES)
def test_objects_match_rev_list(src: Path, repo: Repository, wants: list[str], haves: list[str]) -> None:
    plan = repo.plan(PackRequest(wants=_oids(src, wants), haves=_oids(src, haves)), None)
    got = set(plan.send)
    assert len(got) == len(plan.send), "an object is listed twice"
    git_set = rev_list_objects(src, *wants, "--not", *haves)
    needed = git_set - (rev_list_objects(src, *haves) if haves else set())
    assert needed <= got <= git_set


@pytest.mark.parametrize(
    "spec", ["blob:none", "blob:limit=1k", "blob:limit=100000", "tree:0", "tree:1", "tree:2"]
)
@pytest.mark.parametrize(("wants", "haves"), [(["main", "feature"], []), (["main"], ["main~15"])])
def test_filters_match_rev_list(
    src: Path, repo: Repository, spec: str, wants: list[str], haves: list[str]
) -> None:
    request = PackRequest(wants=_oids(src, wants), haves=_oids(src, haves), filter=FilterSpec.parse(spec))
    got = set(repo.plan(request, None).send)
    git_set = rev_list_objects(src, f"--filter={spec}", *wants, "--not", *haves)
    if haves:
        assert git_set - rev_list_objects(src, *haves) <= got <= git_set
    else:
        assert got == git_set


def test_include_tag_adds_annotated_tags_into_the_sent_set(src: Path, repo: Repository) -> None:
    tip = rev_parse(src, "main")
    plain = set(repo.plan(PackRequest(wants=[tip]), None).send)
    tagged = set(repo.plan(PackRequest(wants=[tip], include_tag=True), None).send)
    annotated = {
        rev_parse(src, name)
        for name in run_git("tag", cwd=src).decode().split()
        if run_git("cat-file", "-t", name, cwd=src).strip() == b"tag"
    }
    reachable = rev_list_objects(src, "main")
    expected = {t for t in annotated if rev_parse(src, f"{t.hex()}^{{}}") in reachable}
    assert tagged - plain == expected and expected


def test_want_allowed_only_for_reachable_objects(src: Path, repo: Repository, tmp_path: Path) -> None:
    assert repo.is_want_allowed(rev_parse(src, "main"))
    assert repo.is_want_allowed(rev_parse(src, "main~7"))
    assert repo.is_want_allowed(rev_parse(src, "main~7^{tree}"))
    assert repo.is_want_allowed(rev_parse(src, "main~7:top.txt"))
    assert not repo.is_want_allowed(b"\x01" * 20)
    # an object that is stored but unreachable from every ref
    store: Any = repo.store
    if hasattr(store, "write_objects"):
        (blob,) = store.write_objects([(ObjType.BLOB, b"dangling\n")])
        assert repo.has_object(blob)
        assert not repo.is_want_allowed(blob)


def test_ready_to_give_up(src: Path, repo: Repository) -> None:
    main, feature = rev_parse(src, "main"), rev_parse(src, "feature")
    assert repo.ready_to_give_up([main], [rev_parse(src, "main~3")])
    base = run_git("merge-base", "main", "feature", cwd=src).decode().strip()
    assert repo.ready_to_give_up([main, feature], [rev_parse(src, base)])
    assert not repo.ready_to_give_up([main, feature], [rev_parse(src, "main~1")])
    assert not repo.ready_to_give_up([main], [])
    assert not repo.ready_to_give_up([rev_parse(src, "main~30")], [main])


def test_parsers_agree_with_git(src: Path, repo: Repository) -> None:
    store: Any = repo.store
    commit = rev_parse(src, "main")
    info = parse_commit(store.get_object(commit)[1])
    assert info.tree == rev_parse(src, "main^{tree}")
    parents = run_git("log", "-1", "--format=%P", "main", cwd=src).decode().split()
    assert [p.hex() for p in info.parents] == parents
    assert info.time == int(run_git("log", "-1", "--format=%ct", "main", cwd=src))
    tree = store.get_object(info.tree)[1]
    entries = parse_tree(tree)
    listing = run_git("ls-tree", "main", cwd=src).decode().splitlines()
    assert [(e.mode.decode().rjust(6, "0"), e.name.decode(), e.oid.hex()) for e in entries] == [
        (line.split()[0], line.split("\t")[1], line.split()[2]) for line in listing
    ]
    subtrees, blobs = tree_links(tree)
    assert set(subtrees) | set(blobs) == {e.oid for e in entries}
    tag = parse_tag(store.get_object(rev_parse(src, "v1"))[1])
    assert tag.target == rev_parse(src, "v1^{}") and tag.target_type == ObjType.COMMIT
