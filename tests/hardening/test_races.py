"""Races (issue #7): concurrent writers of one ref, push during fork, delete during clone,
a token revoked during a long clone. Real `gitserver serve`, real git and HTTP clients.

Rules: each test makes its own repo on one module server; outcomes are what a user sees
(git's exit status and message, refs, clones that pass `git fsck`, API statuses).
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, git, git_env, git_out, run_server, show_refs

REJECTED = ("rejected", "non-fast-forward", "stale", "fetch first", "failed to lock", "failed to update")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("races")) as server:
        yield server


def _env(srv: Server) -> dict[str, str]:
    return git_env(srv.home)


def _seed(srv: Server, tmp: Path, name: str, blob_bytes: int = 0) -> tuple[str, Path]:
    """A repo ``races/NAME`` with one commit on main (plus a random blob of ``blob_bytes``);
    returns its write token and a local clone."""
    _, token = srv.create_repo("races", name)
    work = tmp / f"{name}-seed"
    env = _env(srv)
    git("init", "-q", "-b", "main", work, env=env)
    (work / "README").write_text(f"{name}\n")
    if blob_bytes:
        (work / "big.bin").write_bytes(os.urandom(blob_bytes))
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", "base", cwd=work, env=env)
    git("push", "-q", srv.git_url("races", name, token), "main", cwd=work, env=env)
    return token, work


def _tip(srv: Server, name: str, token: str) -> str:
    status, body = srv.api("GET", f"/namespaces/races/repos/{name}/refs", token=token)
    assert status == 200, body
    return str(next(r["target"] for r in body["items"] if r["name"] == "refs/heads/main"))


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait for a git subprocess; its exit status and stderr."""
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, (err or b"").decode(errors="replace")


def _clone_fsck(srv: Server, url: str, dest: Path) -> dict[str, str]:
    env = _env(srv)
    git("clone", "-q", "--mirror", url, dest, env=env)
    git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)
    return show_refs(dest, env)


def test_concurrent_pushes_to_one_ref_one_wins(srv: Server, tmp_path: Path) -> None:
    token, seed = _seed(srv, tmp_path, "pushrace")
    env = _env(srv)
    url = srv.git_url("races", "pushrace", token)
    base = git_out("rev-parse", "HEAD", cwd=seed, env=env).strip()
    tips: list[str] = []
    clients: list[Path] = []
    for i in range(4):
        work = tmp_path / f"client{i}"
        git("clone", "-q", url, work, env=env)
        (work / f"file{i}.bin").write_bytes(os.urandom(300_000))  # some pack to ingest
        git("add", "-A", cwd=work, env=env)
        git("commit", "-q", "-m", f"client {i}", cwd=work, env=env)
        tips.append(git_out("rev-parse", "HEAD", cwd=work, env=env).strip())
        clients.append(work)
    procs = [
        subprocess.Popen(
            ["git", "push", "origin", "main"], cwd=w, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for w in clients
    ]
    results = [_finish(p) for p in procs]
    winners = [i for i, (rc, _) in enumerate(results) if rc == 0]
    assert len(winners) == 1, results
    for i, (rc, err) in enumerate(results):
        if i != winners[0]:
            assert rc != 0 and any(word in err for word in REJECTED), err
    win_tip = tips[winners[0]]
    assert _tip(srv, "pushrace", token) == win_tip
    # No lost update: the ref's history is exactly base + the winner's commit.
    check = tmp_path / "check.git"
    refs = _clone_fsck(srv, url, check)
    assert refs["refs/heads/main"] == win_tip
    assert git_out("rev-list", "main", cwd=check, env=env).split() == [win_tip, base]
    status, log = srv.api("GET", "/namespaces/races/repos/pushrace/reflog?ref=refs/heads/main", token=token)
    assert status == 200
    assert [e["new"] for e in log["items"]] == [win_tip, base]


def test_concurrent_api_commits_same_parent(srv: Server, tmp_path: Path) -> None:
    token, _ = _seed(srv, tmp_path, "commitrace")
    parent = _tip(srv, "commitrace", token)
    n = 6
    barrier = threading.Barrier(n)
    out: list[tuple[int, dict]] = [(0, {})] * n

    def commit(i: int) -> None:
        body = {
            "branch": "main",
            "parent": parent,
            "message": f"api commit {i}",
            "author": {"name": "Racer", "email": "racer@example.com"},
            "files": [{"path": f"f{i}.txt", "content_base64": base64.b64encode(b"x" * i).decode()}],
        }
        barrier.wait()
        out[i] = srv.api("POST", "/namespaces/races/repos/commitrace/commits", body, token=token)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in out)
    assert statuses == [201] + [409] * (n - 1), out
    assert all(b["error"]["code"] == "CONFLICT" for s, b in out if s == 409)
    winner = next(b for s, b in out if s == 201)
    new = winner["id"]
    assert _tip(srv, "commitrace", token) == new
    refs = _clone_fsck(srv, srv.git_url("races", "commitrace", token), tmp_path / "c.git")
    assert refs["refs/heads/main"] == new


def test_push_during_fork(srv: Server, tmp_path: Path) -> None:
    token, seed = _seed(srv, tmp_path, "forkrace")
    env = _env(srv)
    old = git_out("rev-parse", "HEAD", cwd=seed, env=env).strip()
    (seed / "more.bin").write_bytes(os.urandom(3_000_000))
    git("add", "-A", cwd=seed, env=env)
    git("commit", "-q", "-m", "more", cwd=seed, env=env)
    new = git_out("rev-parse", "HEAD", cwd=seed, env=env).strip()
    push = subprocess.Popen(
        ["git", "push", "-q", srv.git_url("races", "forkrace", token), "main"],
        cwd=seed,
        env=env,
        stderr=subprocess.PIPE,
    )
    forks: list[str] = []
    for i in range(6):  # forks spread over the push, before, during and after its ref move
        status, body = srv.api("POST", "/namespaces/races/repos/forkrace/fork", {"name": f"forkrace-f{i}"})
        assert status == 201, body
        forks.append(f"forkrace-f{i}")
        time.sleep(0.05 * i)
    rc, err = _finish(push)
    assert rc == 0, err
    seen = set()
    for name in forks:
        refs = _clone_fsck(srv, srv.git_url("races", name, srv.admin_token), tmp_path / f"{name}.git")
        assert refs["refs/heads/main"] in (old, new), (name, refs)
        seen.add("new" if refs["refs/heads/main"] == new else "old")
    print("forks during push saw:", sorted(seen))
    assert _clone_fsck(srv, srv.git_url("races", "forkrace", token), tmp_path / "parent.git") == {
        "refs/heads/main": new
    }
    # The forks stay writable and independent of the parent.
    work = tmp_path / "fork-work"
    git("clone", "-q", srv.git_url("races", forks[0], srv.admin_token), work, env=env)
    (work / "fork.txt").write_text("fork\n")
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", "in fork", cwd=work, env=env)
    git("push", "-q", "origin", "main", cwd=work, env=env)
    assert _tip(srv, "forkrace", token) == new


def test_delete_during_clone(srv: Server, tmp_path: Path) -> None:
    token, _ = _seed(srv, tmp_path, "delrace", blob_bytes=6_000_000)
    other_token, _ = _seed(srv, tmp_path, "delrace-other")
    env = _env(srv)
    outcomes = []
    for i, delay in enumerate((0.0, 0.15)):
        name = "delrace" if i == 0 else "delrace2"
        if i:
            token, _ = _seed(srv, tmp_path, name, blob_bytes=6_000_000)
        status, info = srv.api("GET", f"/namespaces/races/repos/{name}")
        assert status == 200
        files = sorted(p.name for p in (srv.data_dir / "repos").rglob("*"))
        dest = tmp_path / f"clone-{name}"
        clone = subprocess.Popen(
            ["git", "clone", "-q", srv.git_url("races", name, token), dest], env=env, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        status, _ = srv.api("DELETE", f"/namespaces/races/repos/{name}")
        assert status == 204
        rc, _ = _finish(clone)
        outcomes.append(rc)
        if rc == 0:  # completed: a consistent repo
            git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)
        else:  # failed cleanly: git removed its half-made directory
            assert not dest.exists()
        # The server keeps serving, and the deleted repo left no file behind.
        assert httpx.get(srv.base_url + "/healthz").status_code == 200
        _clone_fsck(srv, srv.git_url("races", "delrace-other", other_token), tmp_path / f"other{i}.git")
        time.sleep(0.2)
        now = sorted(p.name for p in (srv.data_dir / "repos").rglob("*"))
        assert set(now) <= set(files), f"new files after delete: {set(now) - set(files)}"
        assert [n for n in now if info["id"] in n] == []
        status, _ = srv.api("GET", f"/namespaces/races/repos/{name}")
        assert status == 404
    assert len(outcomes) == 2
    print("delete during clone, git exit codes:", outcomes)


def test_token_revoked_during_long_clone(srv: Server, tmp_path: Path) -> None:
    """Defined behaviour: a request authorized before the revocation runs to the end (the
    pack keeps streaming); every later request with that token is 401."""
    _, seed = _seed(srv, tmp_path, "revrace", blob_bytes=16_000_000)
    status, minted = srv.api("POST", "/namespaces/races/repos/revrace/tokens", {"scope": "read"})
    assert status == 201
    secret = minted["token"]
    env = _env(srv)
    tip = git_out("rev-parse", "HEAD", cwd=seed, env=env).strip()
    url = srv.base_url + "/git/races/revrace.git/git-upload-pack"
    headers = {
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/x-git-upload-pack-request",
        "Git-Protocol": "version=2",
    }

    def pkt(line: str) -> bytes:
        return f"{len(line) + 5:04x}{line}\n".encode()

    body = pkt("command=fetch") + b"0001" + pkt("ofs-delta") + pkt(f"want {tip}") + pkt("done") + b"0000"
    received = 0
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", url, content=body, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        chunks = resp.iter_raw(65536)
        received += len(next(chunks))
        status, _ = srv.api("DELETE", f"/tokens/{minted['id']}")
        assert status == 204
        # A new request with the revoked token is refused while the old one streams on.
        refused = httpx.get(
            srv.base_url + "/git/races/revrace.git/info/refs?service=git-upload-pack",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert refused.status_code == 401
        for chunk in chunks:
            received += len(chunk)
    assert received > 16_000_000  # the whole pack came through
    denied = git(
        "clone", "-q", srv.git_url("races", "revrace", secret), tmp_path / "late", env=env, check=False
    )
    assert denied.returncode != 0
    assert b"Authentication failed" in denied.stderr or b"401" in denied.stderr, denied.stderr
