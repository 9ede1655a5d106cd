"""The real git CLI (protocol v0 and v2) against hypercorn + smart_http.asgi on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tests.smart_http.conftest import GitHttpServer

VERSIONS = [0, 2]


class Git:
    def __init__(self, home: Path, version: int) -> None:
        self.version = version
        self.env = {
            **os.environ,
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "A U Thor",
            "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "C O Mitter",
            "GIT_COMMITTER_EMAIL": "committer@example.com",
        }
        if not os.environ.get("SMART_HTTP_TRACE"):
            self.env.pop("GIT_TRACE_PACKET", None)

    async def __call__(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        cmd = ["git", "-c", f"protocol.version={self.version}", "-c", "init.defaultBranch=main", *args]
        result = await trio.run_process(
            cmd, cwd=cwd, env=self.env, capture_stdout=True, capture_stderr=True, check=False
        )
        out = result.stdout.decode() + result.stderr.decode()
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed ({result.returncode}):\n{out}")
        return result.stdout.decode() if check else out


async def commit(git: Git, work: Path, name: str, content: str) -> str:
    (work / name).write_text(content)
    await git("add", name, cwd=work)
    await git("commit", "-q", "-m", f"add {name}", cwd=work)
    return (await git("rev-parse", "HEAD", cwd=work)).strip()


@pytest.mark.parametrize("version", VERSIONS)
async def test_clone_push_fetch_delete(git_http: GitHttpServer, tmp_path: Path, version: int) -> None:
    git = Git(tmp_path, version)
    git_http.create("demo")
    url = git_http.url("demo")

    out = await git("clone", url, str(tmp_path / "a"), check=False)
    assert "empty repository" in out
    a = tmp_path / "a"
    first = await commit(git, a, "one.txt", "one\n")
    await git("push", "-q", "origin", "main", cwd=a)
    with git_http.open("demo") as repo:
        assert {r.name: r.oid.hex() for r in repo.list_refs()}["refs/heads/main"] == first

    await git("clone", "-q", url, str(tmp_path / "b"))
    b = tmp_path / "b"
    assert (b / "one.txt").read_text() == "one\n"
    assert (await git("symbolic-ref", "HEAD", cwd=b)).strip() == "refs/heads/main"

    second = await commit(git, a, "two.txt", "two\n")
    await git("tag", "-a", "v1", "-m", "version one", cwd=a)
    await git("push", "-q", "origin", "main", "--tags", cwd=a)
    await git("fetch", "-q", "--tags", cwd=b)
    assert (await git("rev-parse", "origin/main", cwd=b)).strip() == second
    assert (await git("rev-parse", "v1^{commit}", cwd=b)).strip() == second

    remote = await git("ls-remote", url, cwd=b)
    assert f"{second}\trefs/tags/v1^{{}}" in remote
    assert f"{second}\tHEAD" in remote

    await git("push", "-q", "origin", "main:refs/heads/feature", cwd=a)
    assert "refs/heads/feature" in await git("ls-remote", url, cwd=b)
    await git("push", "-q", "origin", "--delete", "feature", cwd=a)
    assert "refs/heads/feature" not in await git("ls-remote", url, cwd=b)
    assert git_http.pushes and all(ctx.token_id == "test-token" for ctx in git_http.pushes)


@pytest.mark.parametrize("version", VERSIONS)
async def test_incremental_fetch_negotiates(git_http: GitHttpServer, tmp_path: Path, version: int) -> None:
    git = Git(tmp_path, version)
    git_http.create("neg")
    url = git_http.url("neg")
    a = tmp_path / "a"
    await git("init", "-q", str(a))
    for i in range(5):
        await commit(git, a, f"f{i}.txt", f"{i}\n")
    await git("push", "-q", url, "main", cwd=a)
    await git("clone", "-q", url, str(tmp_path / "b"))
    b = tmp_path / "b"
    # the clone gets a local-only branch too, so negotiation sees haves the server lacks
    await commit(git, b, "local.txt", "mine\n")
    await git("checkout", "-q", "-b", "side", "HEAD~1", cwd=b)
    for i in range(5, 8):
        await commit(git, a, f"f{i}.txt", f"{i}\n")
    tip = (await git("rev-parse", "HEAD", cwd=a)).strip()
    await git("push", "-q", url, "main", cwd=a)
    await git("fetch", "-q", "origin", cwd=b)
    assert (await git("rev-parse", "origin/main", cwd=b)).strip() == tip
    await git("fsck", "--no-progress", cwd=b)


@pytest.mark.parametrize("version", VERSIONS)
async def test_shallow_clone_and_deepen(git_http: GitHttpServer, tmp_path: Path, version: int) -> None:
    git = Git(tmp_path, version)
    git_http.create("shallow")
    url = git_http.url("shallow")
    a = tmp_path / "a"
    await git("init", "-q", str(a))
    for i in range(4):
        await commit(git, a, f"f{i}.txt", f"{i}\n")
    await git("push", "-q", url, "main", cwd=a)
    await git("clone", "-q", "--depth", "1", f"{url}", str(tmp_path / "s"))
    s = tmp_path / "s"
    assert (await git("rev-list", "--count", "HEAD", cwd=s)).strip() == "1"
    await git("fetch", "-q", "--deepen", "1", cwd=s)
    assert (await git("rev-list", "--count", "HEAD", cwd=s)).strip() == "2"
    await git("fetch", "-q", "--unshallow", cwd=s)
    assert (await git("rev-list", "--count", "HEAD", cwd=s)).strip() == "4"


@pytest.mark.parametrize("version", VERSIONS)
async def test_partial_clone_blob_none(git_http: GitHttpServer, tmp_path: Path, version: int) -> None:
    git = Git(tmp_path, version)
    git_http.create("partial")
    url = git_http.url("partial")
    a = tmp_path / "a"
    await git("init", "-q", str(a))
    await commit(git, a, "big.txt", "x" * 5000)
    await commit(git, a, "small.txt", "small\n")
    await git("push", "-q", url, "main", cwd=a)
    await git("clone", "-q", "--filter=blob:none", "--no-checkout", url, str(tmp_path / "p"))
    p = tmp_path / "p"
    missing = await git("rev-list", "--objects", "--missing=print", "HEAD", cwd=p)
    assert any(line.startswith("?") for line in missing.splitlines())
    # checkout fetches the missing blobs on demand (wants of non-tip objects)
    await git("checkout", "-q", "main", cwd=p)
    assert (p / "big.txt").read_text() == "x" * 5000


@pytest.mark.parametrize("atomic", [False, True])
async def test_rejected_ref_is_reported(git_http: GitHttpServer, tmp_path: Path, atomic: bool) -> None:
    git = Git(tmp_path, 0)
    git_http.create("rej")
    url = git_http.url("rej")
    a = tmp_path / "a"
    await git("init", "-q", str(a))
    await commit(git, a, "f.txt", "1\n")
    flags = ["--atomic"] if atomic else []
    out = await git("push", *flags, url, "main", "main:refs/heads/protected/x", cwd=a, check=False)
    assert "[remote rejected] main -> protected/x (protected branch)" in out
    remote = await git("ls-remote", url, cwd=a)
    assert "protected" not in remote
    assert ("refs/heads/main" in remote) is not atomic


async def test_not_our_ref_is_shown(git_http: GitHttpServer, tmp_path: Path) -> None:
    git = Git(tmp_path, 2)
    git_http.create("nor")
    url = git_http.url("nor")
    a = tmp_path / "a"
    await git("init", "-q", str(a))
    await commit(git, a, "f.txt", "1\n")
    await git("push", "-q", url, "main", cwd=a)
    out = await git("fetch", url, "1" * 40, cwd=a, check=False)
    assert "not our ref" in out
