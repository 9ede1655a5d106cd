"""Incremental fetches planned by the path-by-path ("sparse") walk never leave out an object.

Each case builds a small history with ``git fast-import`` (every commit states its whole
tree), loads it into a store, and plans ``want --not haves``. The plan must hold every
object reachable from the want and not from the haves (what the client lacks) and nothing
outside the want's closure. For the named cases, the thin pack is also written, fed to
``git index-pack --fix-thin --strict`` in a client repository holding exactly the have
commits, and the client is checked with ``git fsck`` and against the source. A
randomised history (moves, copies, reverts, deletions and re-adds, merges) covers the
combinations; a counting reader checks that the walk reads only the changed paths.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storage.model import ObjType, Oid, PackRequest
from storage.repository import Repository
from storage.walk import CommitCache, enumerate_objects, mark_changed_paths
from tests.storage.gitrepos import BASE_TIME, index_pack, load_store, rev_list_objects, rev_parse, run_git

Files = dict[str, bytes]  # path -> content ("link:" prefix: a symlink, "exec:": mode 755)


@dataclass
class History:
    """A fast-import stream of full-tree commits on named branches."""

    path: Path
    buf: io.BytesIO = field(default_factory=io.BytesIO)
    mark: int = 0
    heads: dict[str, int] = field(default_factory=dict)

    def commit(self, branch: str, files: Files, merge: str | None = None, base: str | None = None) -> int:
        self.mark += 1
        out = self.buf
        out.write(f"commit refs/heads/{branch}\nmark :{self.mark}\n".encode())
        out.write(f"committer C <c@example.com> {BASE_TIME + self.mark * 60} +0000\n".encode())
        message = f"commit {self.mark} on {branch}\n".encode()
        out.write(b"data %d\n%s\n" % (len(message), message))
        parent = self.heads.get(base or branch)
        if parent is not None:
            out.write(f"from :{parent}\n".encode())
        if merge is not None:
            out.write(f"merge :{self.heads[merge]}\n".encode())
        out.write(b"deleteall\n")
        for name, content in sorted(files.items()):
            mode = "100644"
            if content.startswith(b"link:"):
                mode, content = "120000", content[5:]
            elif content.startswith(b"exec:"):
                mode, content = "100755", content[5:]
            out.write(f"M {mode} inline {name}\n".encode())
            out.write(b"data %d\n%s\n" % (len(content), content))
        self.heads[branch] = self.mark
        return self.mark

    def tag(self, name: str, mark: int) -> None:
        self.buf.write(f"reset refs/tags/{name}\nfrom :{mark}\n\n".encode())

    def finish(self) -> Path:
        run_git("init", "-q", "--bare", "-b", "main", self.path)
        run_git("fast-import", "--quiet", cwd=self.path, input=self.buf.getvalue())
        run_git("repack", "-adf", "-q", cwd=self.path)  # real deltas, some against have objects
        return self.path


def _text(tag: str, lines: int = 30) -> bytes:
    return b"".join(b"%s line %d\n" % (tag.encode(), n) for n in range(lines))


BASE: Files = {
    "README": _text("readme"),
    "pkg/a/one.py": _text("one"),
    "pkg/a/two.py": _text("two"),
    "pkg/b/three.py": _text("three"),
    "pkg/b/deep/four.py": _text("four"),
    "tools/run.sh": b"exec:" + _text("run"),
    "tools/link": b"link:../README",
    "docs/guide.txt": _text("guide"),
}


def _case_revert_file(h: History) -> tuple[str, list[str]]:
    """A file goes back to an earlier content: the client has only the newer one."""
    h.commit("main", BASE)
    h.commit("main", {**BASE, "pkg/a/one.py": _text("one v2")})
    h.commit("main", {**BASE, "docs/guide.txt": _text("guide v2")})  # one.py back to v1
    return "main", ["main~1"]


def _case_subtree_elsewhere(h: History) -> tuple[str, list[str]]:
    """A directory copied and moved: equal to a have subtree at another path."""
    h.commit("main", BASE)
    moved = {k.replace("pkg/b/", "lib/b2/"): v for k, v in BASE.items()}
    moved["pkg/copy/deep/four.py"] = BASE["pkg/b/deep/four.py"]
    h.commit("main", moved)
    return "main", ["main~1"]


def _case_merge(h: History) -> tuple[str, list[str]]:
    """A merge of a branch the client lacks into one it has, and the other way round."""
    h.commit("main", BASE)
    h.commit("topic", {**BASE, "pkg/b/deep/five.py": _text("five")}, base="main")
    h.commit("main", {**BASE, "pkg/a/one.py": _text("one main")})
    h.commit("topic", {**BASE, "pkg/b/deep/five.py": _text("five v2"), "new/x": _text("x")})
    h.commit(
        "main",
        {
            **BASE,
            "pkg/a/one.py": _text("one main"),
            "pkg/b/deep/five.py": _text("five v2"),
            "new/x": _text("x"),
        },
        merge="topic",
    )
    return "main", ["main~1"]


def _case_tree_of_older_commit(h: History) -> tuple[str, list[str]]:
    """A commit whose whole tree equals an older commit's tree (a revert of everything)."""
    h.commit("main", BASE)
    h.commit("main", {**BASE, "pkg/a/two.py": _text("two v2"), "extra/e": _text("e")})
    h.commit("main", {"only": _text("only")})
    h.commit("main", BASE)
    return "main", ["main~1"]


def _case_delete_readd(h: History) -> tuple[str, list[str]]:
    """A directory deleted and re-added with its old content, a file turned into a
    directory and back, a symlink turned into a file."""
    h.commit("main", BASE)
    gone = {k: v for k, v in BASE.items() if not k.startswith("pkg/b/")}
    gone["docs/guide.txt/inner"] = _text("inner")  # guide.txt becomes a directory
    del gone["docs/guide.txt"]
    h.commit("main", gone)
    h.commit("main", {**BASE, "tools/link": _text("no longer a link")})
    return "main", ["main~1"]


def _case_several_haves(h: History) -> tuple[str, list[str]]:
    """Haves on two lines of history, one of them not a parent of anything sent; the
    want's tree equals that tip's tree."""
    h.commit("main", BASE)
    side = {**BASE, "pkg/side.py": _text("side")}
    h.commit("side", side, base="main")
    h.commit("main", {**BASE, "pkg/a/two.py": _text("two main")})
    h.commit("main", side)
    h.tag("old", 1)
    return "main", ["main~1", "side", "old"]


CASES = {
    "revert-file": _case_revert_file,
    "subtree-elsewhere": _case_subtree_elsewhere,
    "merge": _case_merge,
    "tree-of-older-commit": _case_tree_of_older_commit,
    "delete-readd": _case_delete_readd,
    "several-haves": _case_several_haves,
}


def _check_plan(src: Path, repo: Repository, want: Oid, haves: list[Oid]) -> set[Oid]:
    plan = repo.plan(PackRequest(wants=[want], haves=haves, ofs_delta=True, thin_pack=True), None)
    sent = set(plan.send)
    assert len(sent) == len(plan.send), "an object is listed twice"
    wanted = rev_list_objects(src, want.hex())
    has = rev_list_objects(src, *(h.hex() for h in haves)) if haves else set()
    missing = (wanted - has) - sent
    assert not missing, f"{len(missing)} objects the client lacks are not sent"
    assert sent <= wanted, "an object outside the want's closure is sent"
    assert plan.client_has <= has, "a thin base the client does not have"
    return sent


@pytest.mark.parametrize("case", sorted(CASES))
def test_thin_pack_completes_the_client(case: str, tmp_path: Path) -> None:
    h = History(tmp_path / "src.git")
    want_rev, have_revs = CASES[case](h)
    src = h.finish()
    want = rev_parse(src, want_rev)
    haves = [rev_parse(src, f"{rev}^{{commit}}") for rev in have_revs]
    for i, have in enumerate(haves):
        run_git("update-ref", f"refs/haves/h{i}", have.hex(), cwd=src)
    repo = Repository(load_store(tmp_path / "store", src))
    _check_plan(src, repo, want, haves)

    client = tmp_path / "client.git"
    run_git("init", "-q", "--bare", client)
    run_git(
        "fetch", "-q", str(src), *(f"refs/haves/h{i}:refs/heads/h{i}" for i in range(len(haves))), cwd=client
    )
    chunks: list[bytes] = []
    request = PackRequest(wants=[want], haves=haves, ofs_delta=True, thin_pack=True)
    repo.write_pack(request, None, chunks.append, None)
    index_pack(client, b"".join(chunks), fix_thin=True, strict=True)
    run_git("update-ref", "refs/heads/fetched", want.hex(), cwd=client)
    run_git("fsck", "--full", "--strict", "--no-dangling", cwd=client)
    assert rev_list_objects(client, want.hex()) == rev_list_objects(src, want.hex())


def _random_history(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    dirs = ["a", "a/b", "a/b/c", "d", "d/e", "f"]
    pool = [_text(f"content {i}", 5 + i) for i in range(6)]
    h = History(path)
    states: list[Files] = []
    files: Files = {f"{rng.choice(dirs)}/file{i}": rng.choice(pool) for i in range(8)}
    branches = ["main"]
    for i in range(28):
        branch = rng.choice(branches)
        files = dict(states[-1]) if states and rng.random() < 0.7 else dict(rng.choice(states or [files]))
        op = rng.randrange(7)
        names = sorted(files)
        if op == 0 and names:  # change a file to some (maybe earlier) content
            files[rng.choice(names)] = rng.choice(pool)
        elif op == 1 and len(names) > 1:  # delete a file
            del files[rng.choice(names)]
        elif op == 2:  # add or re-add a file
            files[f"{rng.choice(dirs)}/file{rng.randrange(12)}"] = rng.choice(pool)
        elif op == 3:  # copy a directory elsewhere
            src_dir, dst_dir = rng.choice(dirs), rng.choice(dirs)
            for name in names:
                if name.startswith(src_dir + "/"):
                    files[dst_dir + "/copy/" + name[len(src_dir) + 1 :]] = files[name]
        elif op == 4:  # move a directory
            src_dir, dst_dir = rng.choice(dirs), rng.choice(["g", "a/h", "d/e/i"])
            for name in names:
                if name.startswith(src_dir + "/"):
                    files[dst_dir + name[len(src_dir) :]] = files.pop(name)
        elif op == 5 and states:  # the whole tree of an older commit
            files = dict(rng.choice(states))
        if not files:
            files = {"keep": pool[0]}
        merge = None
        if len(branches) > 1 and rng.random() < 0.2:
            merge = rng.choice([b for b in branches if b != branch])
        elif rng.random() < 0.15:
            new = f"b{i}"
            branches.append(new)
            h.commit(new, files, base=branch)
            states.append(files)
            continue
        h.commit(branch, files, merge=merge)
        states.append(files)
    return h.finish()


@pytest.mark.parametrize("seed", range(6))
def test_random_histories_send_everything_the_client_lacks(seed: int, tmp_path: Path) -> None:
    src = _random_history(tmp_path / "src.git", seed)
    repo = Repository(load_store(tmp_path / "store", src))
    commits = [bytes.fromhex(x) for x in run_git("rev-list", "--all", cwd=src).decode().split()]
    rng = random.Random(seed)
    for _ in range(12):
        want = rng.choice(commits)
        haves = rng.sample(commits, rng.randrange(1, 4))
        _check_plan(src, repo, want, haves)


class CountingReader:
    """An ObjectReader that counts the trees read."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner.store
        self.trees = 0

    def get_object(self, oid: Oid) -> tuple[ObjType, bytes]:
        obj_type, data = self.inner.get_object(oid)
        self.trees += obj_type == ObjType.TREE
        return obj_type, data

    def object_header(self, oid: Oid) -> tuple[ObjType, int] | None:
        return self.inner.object_header(oid)


def test_work_scales_with_the_change_not_the_tree(tmp_path: Path) -> None:
    h = History(tmp_path / "src.git")
    big: Files = {
        f"pkg{p}/mod{m}/file{f}.py": _text(f"{p}-{m}-{f}", 3)
        for p in range(8)
        for m in range(8)
        for f in range(6)
    }
    h.commit("main", big)
    h.commit("main", {**big, "pkg3/mod5/file2.py": _text("changed", 3)})
    src = h.finish()
    repo = Repository(load_store(tmp_path / "store", src))
    reader = CountingReader(repo)
    want, have = rev_parse(src, "main"), rev_parse(src, "main~1")
    plan = enumerate_objects(CommitCache(reader), [want], [have])
    # commit, root tree, pkg3, pkg3/mod5, the blob; 73 trees exist in all
    assert len(plan.send) == 5
    # the walk: three have trees and three new trees; the collector: the three new ones
    assert reader.trees <= 9, reader.trees
    has: set[Oid] = set()
    reader.trees = 0
    cache = CommitCache(reader)
    mark_changed_paths(reader, [cache.commit(want).tree], [cache.commit(have).tree], has)
    assert reader.trees == 6
