"""Shallow server repositories: ``import`` with ``depth`` from a ``git http-backend``
remote, then served like git serves a shallow repository.

What a user sees is checked with real git: the imported refs are the remote's; a plain
``git clone`` from us is shallow at exactly the commits ``git clone --depth N`` from the
original gives (``.git/shallow`` equal, protocol v2 and v0) and passes ``git fsck``; a
push on top works and the next clone sees it; ``gitserver fsck`` (with a snapshot taken)
is clean; an import without depth stays complete.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gitserver.conftest import create
from tests.gitserver.test_import import _http_backend
from tests.helpers import VENV_BIN, Server, git, git_env, show_refs


def _commit(work: Path, env: dict[str, str], name: str) -> None:
    (work / f"{name}.txt").write_text(f"{name}\n")
    git("add", f"{name}.txt", cwd=work, env=env)
    git("commit", "-q", "-m", name, cwd=work, env=env)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, server: Server) -> Iterator[tuple[str, Path]]:
    """A bare repo whose history has a merge one commit below the tip, so depth 3 cuts two
    parents: c0-c1-c2-c3 and c1-s1-s2, merged, then c4. Yields (remote URL, bare path)."""
    root = tmp_path_factory.mktemp("shallow-src")
    env = git_env(server.home)
    work = root / "work"
    git("init", "-q", "-b", "main", work, env=env)
    for name in ("c0", "c1"):
        _commit(work, env, name)
    git("checkout", "-q", "-b", "side", cwd=work, env=env)
    for name in ("s1", "s2"):
        _commit(work, env, name)
    git("checkout", "-q", "main", cwd=work, env=env)
    for name in ("c2", "c3"):
        _commit(work, env, name)
    git("merge", "-q", "--no-ff", "-m", "merge side", "side", cwd=work, env=env)
    _commit(work, env, "c4")
    bare = root / "src.git"
    git("clone", "-q", "--bare", "--single-branch", "--branch", "main", work, bare, env=env)
    with _http_backend(root) as url:
        yield f"{url}/src.git", bare


def _shallow_file(clone: Path) -> set[str]:
    path = clone / ".git" / "shallow"
    return set(path.read_text().split()) if path.exists() else set()


def _clone(url: str, dest: Path, env: dict[str, str], *args: str) -> set[str]:
    git(*args, "clone", "-q", url, dest, env=env)
    git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)
    return _shallow_file(dest)


@pytest.mark.parametrize("depth", [1, 3])
def test_import_with_depth_serves_a_shallow_repo(
    api: httpx.Client, server: Server, source: tuple[str, Path], tmp_path: Path, unique: str, depth: int
) -> None:
    url, bare = source
    env = git_env(server.home)
    want = _clone(url, tmp_path / "reference", env, "-c", "protocol.version=2")  # no depth: complete
    assert want == set()
    git("clone", "-q", "--depth", str(depth), url, tmp_path / "ref", env=env)
    expected_shallow = _shallow_file(tmp_path / "ref")
    assert len(expected_shallow) == (1 if depth == 1 else 2)

    info = create(api, "shal", unique)
    resp = api.post(f"/namespaces/shal/repos/{unique}/import", json={"url": url, "depth": depth})
    assert resp.status_code == 200, resp.text
    assert resp.json()["imported"] == show_refs(bare)
    assert set(resp.json()["shallow"]) == expected_shallow

    ours = server.git_url("shal", unique, info["token"])
    for version in ("2", "0"):
        got = _clone(ours, tmp_path / f"v{version}", env, "-c", f"protocol.version={version}")
        assert got == expected_shallow, version
        assert show_refs(tmp_path / f"v{version}")["refs/heads/main"] == show_refs(bare)["refs/heads/main"]

    # a push on top of the shallow history, then a fresh clone sees it, still shallow
    work = tmp_path / "v2"
    _commit(work, env, "pushed")
    git("push", "-q", "origin", "main", cwd=work, env=env)
    tip = git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()
    assert _clone(ours, tmp_path / "again", env) == expected_shallow
    assert show_refs(tmp_path / "again")["refs/heads/main"] == tip
    # the history API stops at the boundary, as git log in the shallow clone does
    log = api.get(f"/namespaces/shal/repos/{unique}/commits", params={"rev": "main", "limit": 100})
    assert log.status_code == 200, log.text
    listed = git("rev-list", "HEAD", cwd=tmp_path / "again", env=env).stdout.decode().split()
    assert sorted(c["id"] for c in log.json()["items"]) == sorted(listed)
    assert {c["id"] for c in log.json()["items"] if not c["parents"]} == expected_shallow
    # a shallow client of ours fetching the push gets it too
    git("pull", "-q", "--ff-only", cwd=tmp_path / "v0", env=env)
    assert git("rev-parse", "HEAD", cwd=tmp_path / "v0", env=env).stdout.decode().strip() == tip

    if depth == 3:
        # deepen requests against a shallow repo: --depth 1 (v0) cuts at the tip, then
        # --unshallow (v2) deepens down to our boundary, never past it
        git("-c", "protocol.version=0", "clone", "-q", "--depth", "1", ours, tmp_path / "d1", env=env)
        assert _shallow_file(tmp_path / "d1") == {tip}
        git("fetch", "-q", "--unshallow", cwd=tmp_path / "d1", env=env)
        assert _shallow_file(tmp_path / "d1") == expected_shallow
        git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "d1", env=env)

    # the server's own check: the local file and a snapshot of it are clean
    assert api.post(f"/namespaces/shal/repos/{unique}/snapshots").status_code == 201
    fsck = subprocess.run(
        [str(VENV_BIN / "gitserver"), "fsck", f"shal/{unique}", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_import_without_depth_stays_complete(
    api: httpx.Client, server: Server, source: tuple[str, Path], tmp_path: Path, unique: str
) -> None:
    url, bare = source
    info = create(api, "shal", unique)
    resp = api.post(f"/namespaces/shal/repos/{unique}/import", json={"url": url})
    assert resp.status_code == 200, resp.text
    assert resp.json()["shallow"] == []
    env = git_env(server.home)
    ours = server.git_url("shal", unique, info["token"])
    assert _clone(ours, tmp_path / "full", env) == set()
    count = git("rev-list", "--count", "HEAD", cwd=tmp_path / "full", env=env).stdout.decode().strip()
    assert count == git("rev-list", "--count", "main", cwd=bare, env=env).stdout.decode().strip()
    # and a --depth clone of it is shallow the usual way
    git("clone", "-q", "--depth", "1", ours, tmp_path / "d1", env=env)
    assert _shallow_file(tmp_path / "d1") == {show_refs(bare)["refs/heads/main"]}
