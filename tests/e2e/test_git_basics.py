"""End to end with the real git CLI: push, clone, fetch, delete over smart HTTP.

Each test creates its own repo through the REST API on the module's server and checks
what a git user would see: refs, objects and `git fsck`, not exit codes alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import Server, all_objects, git, git_env, git_out, show_refs


def _remote_refs(server: Server, url: str) -> dict[str, str]:
    out = git_out("ls-remote", url, env=git_env(server.home))
    refs = {}
    for line in out.splitlines():
        oid, name = line.split("\t", 1)
        if name != "HEAD" and not name.endswith("^{}"):
            refs[name] = oid
    return refs


def _work_clone(server: Server, url: str, dest: Path, *extra: str) -> Path:
    git("clone", *extra, url, dest, env=git_env(server.home))
    return dest


def _commit_file(repo: Path, env: dict[str, str], name: str, content: bytes, message: str) -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_bytes(content)
    git("add", name, cwd=repo, env=env)
    git("commit", "-q", "-m", message, cwd=repo, env=env)
    return git_out("rev-parse", "HEAD", cwd=repo, env=env).strip()


@pytest.mark.parametrize("version", ["0", "2"])
def test_mirror_push_then_clone_gives_identical_history(
    server: Server, history_repo: Path, tmp_path: Path, version: str
) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", f"mirror-v{version}")
    url = server.git_url("e2e", f"mirror-v{version}", token)
    git("-c", f"protocol.version={version}", "push", "--mirror", url, cwd=history_repo, env=env)

    dest = tmp_path / "mirror"
    git("-c", f"protocol.version={version}", "clone", "--mirror", url, dest, env=env)
    assert show_refs(dest) == show_refs(history_repo)
    assert all_objects(dest) == all_objects(history_repo)
    git("fsck", "--full", "--strict", cwd=dest, env=env)

    # A normal clone checks out the default branch through HEAD's symref.
    work = tmp_path / "work"
    git("-c", f"protocol.version={version}", "clone", url, work, env=env)
    head = git_out("symbolic-ref", "HEAD", cwd=history_repo, env=env).strip()
    assert git_out("rev-parse", "HEAD", cwd=work, env=env).strip() == show_refs(history_repo)[head]
    git("fsck", "--full", "--strict", cwd=work, env=env)


def test_incremental_noop_and_force_fetch(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", "incremental")
    url = server.git_url("e2e", "incremental", token)
    a = tmp_path / "a"
    git("init", "-q", "-b", "main", a, env=env)
    _commit_file(a, env, "README", b"hello\n", "first")
    git("push", "-q", url, "main", cwd=a, env=env)

    b = _work_clone(server, url, tmp_path / "b")
    for i in range(3):
        _commit_file(a, env, f"src/file{i}.txt", f"content {i}\n".encode() * 100, f"change {i}")
    git("push", "-q", url, "main", cwd=a, env=env)

    for version in ("0", "2"):
        git("-c", f"protocol.version={version}", "fetch", "origin", cwd=b, env=env)
        assert git_out("rev-parse", "origin/main", cwd=b, env=env) == git_out(
            "rev-parse", "main", cwd=a, env=env
        )
        # A second fetch has nothing to do and changes nothing.
        before = show_refs(b)
        noop = git("-c", f"protocol.version={version}", "fetch", "origin", cwd=b, env=env)
        assert noop.stdout == b"" and b"->" not in noop.stderr
        assert show_refs(b) == before
    git("fsck", "--full", "--strict", cwd=b, env=env)

    # Force push rewinds the branch on the server; a fetch follows it.
    git("reset", "-q", "--hard", "HEAD~2", cwd=a, env=env)
    _commit_file(a, env, "other.txt", b"rewritten\n", "rewrite")
    rejected = git("push", url, "main", cwd=a, env=env, check=False)
    assert rejected.returncode != 0
    git("push", "-q", "--force", url, "main", cwd=a, env=env)
    new_tip = git_out("rev-parse", "main", cwd=a, env=env).strip()
    assert _remote_refs(server, url)["refs/heads/main"] == new_tip
    git("fetch", "origin", cwd=b, env=env)
    assert git_out("rev-parse", "origin/main", cwd=b, env=env).strip() == new_tip


def test_branch_and_tag_delete(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", "deletes")
    url = server.git_url("e2e", "deletes", token)
    a = tmp_path / "a"
    git("init", "-q", "-b", "main", a, env=env)
    _commit_file(a, env, "f", b"1\n", "one")
    git("branch", "topic", cwd=a, env=env)
    git("tag", "-a", "-m", "release", "v1", cwd=a, env=env)
    git("tag", "light", cwd=a, env=env)
    git("push", "-q", url, "main", "topic", "v1", "light", cwd=a, env=env)
    assert set(_remote_refs(server, url)) == {
        "refs/heads/main",
        "refs/heads/topic",
        "refs/tags/v1",
        "refs/tags/light",
    }

    git("push", "-q", url, ":topic", ":refs/tags/v1", cwd=a, env=env)
    assert set(_remote_refs(server, url)) == {"refs/heads/main", "refs/tags/light"}
    missing = git("push", url, ":refs/heads/never-existed", cwd=a, env=env, check=False)
    assert missing.returncode != 0


def test_thin_pack_push_is_completed_server_side(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", "thin")
    url = server.git_url("e2e", "thin", token)
    a = tmp_path / "a"
    git("init", "-q", "-b", "main", a, env=env)
    big = b"".join(b"line %d of a file that deltas well\n" % i for i in range(20000))
    _commit_file(a, env, "big.txt", big, "base")
    git("push", "-q", url, "main", cwd=a, env=env)
    _commit_file(a, env, "big.txt", big + b"one more line\n", "small change")
    # The pack git sends is thin: the new blob is a delta against the blob the server has.
    trace = tmp_path / "trace"
    push = git("push", "--thin", url, "main", cwd=a, env=git_env(server.home, GIT_TRACE_PACKFILE=str(trace)))
    assert push.returncode == 0
    assert trace.stat().st_size < len(big) // 10  # a thin delta, not the whole file

    c = _work_clone(server, url, tmp_path / "c")
    assert (c / "big.txt").read_bytes() == big + b"one more line\n"
    git("fsck", "--full", "--strict", cwd=c, env=env)


def test_atomic_push_with_one_rejected_ref_changes_nothing(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", "atomic")
    url = server.git_url("e2e", "atomic", token)
    a = tmp_path / "a"
    git("init", "-q", "-b", "main", a, env=env)
    _commit_file(a, env, "f", b"1\n", "one")
    git("push", "-q", url, "main", cwd=a, env=env)
    before = _remote_refs(server, url)

    _commit_file(a, env, "f", b"2\n", "two")
    blob = git_out("rev-parse", "HEAD:f", cwd=a, env=env).strip()
    # A branch may only point at a commit: the server rejects the second ref.
    push = git(
        "push", "--atomic", url, "main", f"{blob}:refs/heads/not-a-commit", cwd=a, env=env, check=False
    )
    assert push.returncode != 0
    assert _remote_refs(server, url) == before

    # Without --atomic the good ref moves and the bad one is refused.
    push = git("push", url, "main", f"{blob}:refs/heads/not-a-commit", cwd=a, env=env, check=False)
    assert push.returncode != 0
    after = _remote_refs(server, url)
    assert after["refs/heads/main"] == git_out("rev-parse", "main", cwd=a, env=env).strip()
    assert "refs/heads/not-a-commit" not in after


def test_clone_of_empty_repo_then_first_push(server: Server, tmp_path: Path) -> None:
    env = git_env(server.home)
    _, token = server.create_repo("e2e", "empty")
    url = server.git_url("e2e", "empty", token)
    for version in ("0", "2"):
        dest = tmp_path / f"empty-v{version}"
        cloned = git("-c", f"protocol.version={version}", "clone", url, dest, env=env)
        assert b"empty repository" in cloned.stderr
    dest = tmp_path / "empty-v2"
    _commit_file(dest, env, "a", b"a\n", "first")
    git("push", "-q", "origin", "HEAD:main", cwd=dest, env=env)
    again = _work_clone(server, url, tmp_path / "again")
    assert (again / "a").read_bytes() == b"a\n"
    shutil.rmtree(again)
