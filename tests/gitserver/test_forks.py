"""Forks through the REST API and the real git CLI: no object copies, isolation, parents
deleted under live forks, storage reclaimed, and the 1,000-fork budget."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gitserver.conftest import create, error_code
from tests.helpers import Server, git, git_env, run_server, show_refs


def _disk_bytes(root: Path) -> int:
    """Bytes the files under ``root`` occupy on disk (allocated blocks)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def _repo_files(server: Server) -> list[Path]:
    """Every repo database file (not the -wal/-shm companions, which come and go)."""
    return sorted((server.data_dir / "repos").rglob("*.sqlite"))


def _clone_and_fsck(server: Server, ns: str, name: str, dest: Path) -> dict[str, str]:
    env = git_env(server.home)
    git("clone", "--mirror", "-q", server.git_url(ns, name, server.admin_token), dest, env=env)
    git("fsck", "--strict", "--no-dangling", cwd=dest, env=env)
    return show_refs(dest, env)


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("forks"), "--idle-timeout", "2") as srv:
        yield srv


@pytest.fixture
def fapi(fork_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fork_server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {fork_server.admin_token}"},
        timeout=60,
    ) as client:
        yield client


def _seed(server: Server, api: httpx.Client, ns: str, name: str, source: Path) -> dict[str, str]:
    info = create(api, ns, name)
    env = git_env(server.home)
    git("push", "-q", "--mirror", server.git_url(ns, name, info["token"]), cwd=source, env=env)
    return show_refs(source, env)


def test_fork_shares_objects_and_pushes_stay_apart(
    fork_server: Server, fapi: httpx.Client, history_repo: Path, tmp_path: Path
) -> None:
    refs = _seed(fork_server, fapi, "fk", "parent", history_repo)
    resp = fapi.post("/namespaces/fk/repos/parent/fork", json={"name": "child", "namespace": "fk2"})
    assert resp.status_code == 201, resp.text
    info = resp.json()
    assert info["forked_from"] == "fk/parent" and info["namespace"] == "fk2"
    assert info["object_count"] == 0 and info["size_bytes"] == 0  # nothing copied
    assert fapi.get("/namespaces/fk2/repos/child").json()["forked_from"] == "fk/parent"

    assert _clone_and_fsck(fork_server, "fk2", "child", tmp_path / "child") == refs
    # a fork of the fork, default branch only
    resp = fapi.post(
        "/namespaces/fk2/repos/child/fork", json={"name": "grandchild", "default_branch_only": True}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["forked_from"] == "fk2/child"
    assert _clone_and_fsck(fork_server, "fk2", "grandchild", tmp_path / "gc") == {
        "refs/heads/main": refs["refs/heads/main"]
    }

    # a push to the fork lands in the fork only
    env = git_env(fork_server.home)
    work = tmp_path / "work"
    git("clone", "-q", fork_server.git_url("fk2", "child", fork_server.admin_token), work, env=env)
    (work / "fork-only.txt").write_text("mine\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "fork commit", cwd=work, env=env)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work, env=env)
    new_tip = git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()
    child = fapi.get("/namespaces/fk2/repos/child").json()
    assert 0 < child["object_count"] <= 3  # commit, tree, blob: its own objects only
    assert _clone_and_fsck(fork_server, "fk2", "child", tmp_path / "child2")["refs/heads/main"] == new_tip
    assert _clone_and_fsck(fork_server, "fk", "parent", tmp_path / "p2") == refs
    assert (
        _clone_and_fsck(fork_server, "fk2", "grandchild", tmp_path / "gc2")["refs/heads/main"]
        == refs["refs/heads/main"]
    )


def test_deleting_parents_keeps_forks_and_reclaims_storage(
    fork_server: Server, fapi: httpx.Client, history_repo: Path, tmp_path: Path
) -> None:
    before = set(_repo_files(fork_server))
    refs = _seed(fork_server, fapi, "rc", "base", history_repo)
    assert fapi.post("/namespaces/rc/repos/base/fork", json={"name": "a"}).status_code == 201
    assert fapi.post("/namespaces/rc/repos/a/fork", json={"name": "b"}).status_code == 201
    _clone_and_fsck(fork_server, "rc", "b", tmp_path / "b0")  # makes the files of a and b

    assert fapi.delete("/namespaces/rc/repos/base").status_code == 204
    assert fapi.delete("/namespaces/rc/repos/a").status_code == 204
    assert error_code(fapi.get("/namespaces/rc/repos/base")) == "NOT_FOUND"
    # the name is free again, and the new repo shares nothing with the old one
    assert create(fapi, "rc", "base")["object_count"] == 0
    assert fapi.delete("/namespaces/rc/repos/base").status_code == 204
    assert len(set(_repo_files(fork_server)) - before) >= 1  # pools kept for b
    assert _clone_and_fsck(fork_server, "rc", "b", tmp_path / "b1") == refs

    assert fapi.delete("/namespaces/rc/repos/b").status_code == 204
    # b was the last user of the pools: every file of base, a and b is gone
    leftover = set(_repo_files(fork_server)) - before
    assert leftover == set(), leftover
    assert not [p for p in before if not p.exists()]  # ... and nobody else's


def test_fork_errors(fork_server: Server, fapi: httpx.Client) -> None:
    create(fapi, "fe", "src")
    create(fapi, "fe", "taken")
    cases = [
        ({"name": "taken"}, 409, "ALREADY_EXISTS"),
        ({"name": "TAKEN"}, 409, "ALREADY_EXISTS"),
        ({}, 400, "INVALID_INPUT"),
        ({"name": "bad name"}, 400, "INVALID_REPO_NAME"),
        ({"name": "ok", "namespace": "-bad"}, 400, "INVALID_REPO_NAME"),
        ({"name": "ok", "default_branch_only": "yes"}, 400, "INVALID_INPUT"),
    ]
    for body, status, code in cases:
        resp = fapi.post("/namespaces/fe/repos/src/fork", json=body)
        assert (resp.status_code, error_code(resp)) == (status, code), body
    resp = fapi.post("/namespaces/fe/repos/nope/fork", json={"name": "x"})
    assert (resp.status_code, error_code(resp)) == (404, "NOT_FOUND")
    token = fapi.post("/namespaces/fe/repos/src/tokens", json={"scope": "write"}).json()["token"]
    resp = httpx.post(
        f"{fork_server.base_url}/api/v1/namespaces/fe/repos/src/fork",
        json={"name": "y"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (resp.status_code, error_code(resp)) == (403, "FORBIDDEN")
    resp = httpx.post(f"{fork_server.base_url}/api/v1/namespaces/fe/repos/src/fork", json={"name": "y"})
    assert (resp.status_code, error_code(resp)) == (401, "UNAUTHORIZED")
    # chains are limited to 8 ancestors
    parent = "src"
    for i in range(8):
        assert fapi.post(f"/namespaces/fe/repos/{parent}/fork", json={"name": f"d{i}"}).status_code == 201
        parent = f"d{i}"
    resp = fapi.post(f"/namespaces/fe/repos/{parent}/fork", json={"name": "too-deep"})
    assert (resp.status_code, error_code(resp)) == (409, "CONFLICT")


def test_thousand_forks_budget(tmp_path: Path) -> None:
    """1,000 forks of a >= 15,000-object repo: < 30 s, < 10 MB of disk together; forks
    clonable and independent; the parent deleted under them."""
    from benchmarks.history import generate

    source = generate("default")
    with run_server(tmp_path / "srv", "--idle-timeout", "5") as server:
        env = git_env(server.home)
        with httpx.Client(
            base_url=server.base_url + "/api/v1",
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=60,
        ) as api:
            refs = _seed(server, api, "big", "parent", source)
            parent = api.get("/namespaces/big/repos/parent").json()
            assert parent["object_count"] >= 15_000
            disk_before = _disk_bytes(server.data_dir)
            started = time.monotonic()
            for i in range(1000):
                resp = api.post(
                    "/namespaces/big/repos/parent/fork", json={"name": f"f{i}", "namespace": "forks"}
                )
                assert resp.status_code == 201, resp.text
            elapsed = time.monotonic() - started
            added = _disk_bytes(server.data_dir) - disk_before
            print(
                f"\n1000 forks of {parent['object_count']} objects: {elapsed:.1f} s, {added / 1e6:.2f} MB added"
            )
            assert elapsed < 30
            assert added < 10_000_000
            page = api.get("/namespaces/forks/repos", params={"limit": 200}).json()
            assert len(page["items"]) == 200 and page["next_cursor"]

            # pushing to one fork changes no other
            work = tmp_path / "work"
            git("clone", "-q", server.git_url("forks", "f7", server.admin_token), work, env=env)
            git("commit", "-q", "--allow-empty", "-m", "only f7", cwd=work, env=env)
            git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work, env=env)
            f7_tip = git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()

            assert api.delete("/namespaces/big/repos/parent").status_code == 204
            sample = ["f0", "f7", "f500", "f999"]
            for name in sample:
                got = _clone_and_fsck(server, "forks", name, tmp_path / name)
                expected = dict(refs, **({"refs/heads/main": f7_tip} if name == "f7" else {}))
                assert got == expected, name
            # every fork still answers with the parent's refs (ls-remote over HTTP, cheap)
            for i in range(0, 1000, 37):
                out = git("ls-remote", server.git_url("forks", f"f{i}", server.admin_token), env=env).stdout
                assert f"{refs['refs/heads/main']}\trefs/heads/main\n" in out.decode()


def test_offline_cli_fork_and_tokens(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.helpers import VENV_BIN

    data = str(tmp_path / "data")

    def cli(*args: str, ok: bool = True) -> str:
        proc = subprocess.run([str(VENV_BIN / "gitserver"), *args, "--data-dir", data], capture_output=True)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc.stdout.decode()

    cli("repo", "create", "c/src")
    fork = json.loads(
        cli("repo", "fork", "c/src", "--name", "f", "--namespace", "d", "--default-branch-only")
    )
    assert fork["forked_from"] == "c/src" and fork["namespace"] == "d"
    cli("repo", "fork", "c/src", "--name", "F", "--namespace", "d", ok=False)  # taken, case-insensitively
    listed = [json.loads(line) for line in cli("repo", "list", "d").splitlines()]
    assert [(r["name"], r["forked_from"]) for r in listed] == [("f", "c/src")]
    secret = cli("token", "create", "--repo", "d/f", "--scope", "read").strip()
    assert secret.startswith("gs_")
    tokens = [json.loads(line) for line in cli("token", "list", "--repo", "d/f").splitlines()]
    assert len(tokens) == 1 and secret not in json.dumps(tokens) and not tokens[0]["revoked"]
    cli("token", "revoke", tokens[0]["id"])
    assert json.loads(cli("token", "list", "--repo", "d/f"))["revoked"] is True
    cli("token", "revoke", "nope", ok=False)
    cli("repo", "delete", "c/src")
    cli("repo", "delete", "d/f")
    assert not list((tmp_path / "data" / "repos").rglob("*.sqlite"))  # pool reclaimed with its last fork
