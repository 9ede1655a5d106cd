"""Forks survive the loss of the data dir (real server, real git, weed mini S3, Redis).

- Under ``--durability remote``: a repo with history, an unused fork, a fork pushed to,
  a fork of a fork, a fork of the unused fork; the original parent is deleted (it becomes
  a nameless pool). The server stops, its data dir is DELETED, and a new one on the same
  blob store and KV serves every fork with its refs (clone + ``git fsck --strict``),
  pushes to forks still work, and the deleted parent stays deleted.
- A fenced repo (another node rehydrated it and owns its manifest) answers REST writes
  (commit API, import, fork, snapshot) with ``409 CONFLICT`` in the SPEC error shape, not 500.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

from tests.helpers import Server, git, git_env, git_out, run_server, show_refs


def _commit(work: Path, env: dict[str, str], name: str) -> str:
    (work / name).write_text(f"{name}\n{secrets.token_hex(16)}\n")
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", f"add {name}", cwd=work, env=env)
    return git_out("rev-parse", "HEAD", cwd=work, env=env).strip()


def _fork(srv: Server, ns: str, name: str, new: str, **extra: object) -> dict:
    status, info = srv.api("POST", f"/namespaces/{ns}/repos/{name}/fork", {"name": new, **extra})
    assert status == 201, (status, info)
    return info


def _clone_fsck(srv: Server, ns: str, name: str, dest: Path) -> dict[str, str]:
    env = git_env(srv.home)
    git("clone", "-q", "--mirror", srv.git_url(ns, name, srv.admin_token), dest, env=env)
    git("fsck", "--full", "--strict", cwd=dest, env=env)
    return show_refs(dest, env)


def _error(status: int, body: dict, code: str) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], (status, body)
    return str(body["error"]["message"])


def test_forks_and_pools_survive_an_empty_data_dir(
    tmp_path: Path, s3_service: object, redis_url: str
) -> None:
    blob_url = s3_service.url(f"forks-{secrets.token_hex(4)}")  # type: ignore[attr-defined]
    args = ("--blob-store", blob_url, "--kv", redis_url, "--durability", "remote")
    work = tmp_path / "work"
    with run_server(tmp_path / "one", *args) as srv:
        env = git_env(srv.home)
        _, token = srv.create_repo("up", "base")
        git("init", "-q", "-b", "main", work, env=env)
        for i in range(3):
            _commit(work, env, f"f{i}")
        git("branch", "side", "HEAD~1", cwd=work, env=env)
        git("tag", "-a", "-m", "v1", "v1", "HEAD~2", cwd=work, env=env)
        git("push", "-q", srv.git_url("up", "base", token), "--all", "--follow-tags", cwd=work, env=env)
        base_refs = show_refs(work, env)
        base_refs = {k: v for k, v in base_refs.items() if not k.startswith("refs/remotes/")}
        assert {"refs/heads/main", "refs/heads/side", "refs/tags/v1"} <= set(base_refs)

        _fork(srv, "up", "base", "idle", namespace="forks")  # never used before the loss
        _fork(srv, "up", "base", "busy", namespace="forks")
        _fork(srv, "forks", "idle", "idle-of-idle")  # a lazy fork of a lazy fork
        _fork(srv, "up", "base", "trunk-only", namespace="forks", default_branch_only=True)
        # push to busy (its file is made and shipped), then fork it
        git("checkout", "-q", "-b", "busy-work", cwd=work, env=env)
        busy_tip = _commit(work, env, "busy-only")
        git(
            "push",
            "-q",
            srv.git_url("forks", "busy", srv.admin_token),
            "HEAD:refs/heads/main",
            cwd=work,
            env=env,
        )
        busy_refs = dict(base_refs, **{"refs/heads/main": busy_tip})
        _fork(srv, "forks", "busy", "grand")  # fork of a fork, unused
        # the original parent goes: a nameless pool now, its forks keep working
        status, _ = srv.api("DELETE", "/namespaces/up/repos/base")
        assert status == 204
        assert srv.api("GET", "/namespaces/up/repos/base")[0] == 404
        status, listing = srv.api("GET", "/namespaces/forks/repos?sort=name")
        lineage = {r["name"]: r["forked_from"] for r in listing["items"]}
    shutil.rmtree(srv.data_dir)

    expected = {
        "idle": base_refs,
        "idle-of-idle": base_refs,
        "trunk-only": {"refs/heads/main": base_refs["refs/heads/main"]},
        "busy": busy_refs,
        "grand": busy_refs,
    }
    with run_server(tmp_path / "two", *args) as srv2:
        assert not any((srv2.data_dir / "repos").rglob("*.sqlite"))
        env = git_env(srv2.home)
        status, listing = srv2.api("GET", "/namespaces/forks/repos?sort=name")
        assert status == 200 and [r["name"] for r in listing["items"]] == sorted(expected)
        assert {r["name"]: r["forked_from"] for r in listing["items"]} == lineage
        assert lineage["grand"] == "forks/busy" and lineage["idle-of-idle"] == "forks/idle"
        assert srv2.api("GET", "/namespaces/up/repos/base")[0] == 404
        # grand first: its chain (busy, then the pool) is rebuilt parent-first
        for name in ("grand", "idle-of-idle", "idle", "busy", "trunk-only"):
            got = _clone_fsck(srv2, "forks", name, tmp_path / f"clone-{name}")
            assert got == expected[name], name
        # the forks take pushes on the new node, and stay apart
        for name in ("idle", "grand"):
            git("checkout", "-q", "-B", f"w-{name}", expected[name]["refs/heads/main"], cwd=work, env=env)
            tip = _commit(work, env, f"after-{name}")
            git(
                "push",
                "-q",
                srv2.git_url("forks", name, srv2.admin_token),
                "HEAD:refs/heads/main",
                cwd=work,
                env=env,
            )
            again = _clone_fsck(srv2, "forks", name, tmp_path / f"again-{name}")
            assert again == dict(expected[name], **{"refs/heads/main": tip}), name
        assert _clone_fsck(srv2, "forks", "idle-of-idle", tmp_path / "ioi2") == base_refs
        assert _clone_fsck(srv2, "forks", "busy", tmp_path / "busy2") == busy_refs


def test_fenced_repo_rest_writes_are_409(tmp_path: Path, s3_service: object, redis_url: str) -> None:
    blob_url = s3_service.url(f"fence-{secrets.token_hex(4)}")  # type: ignore[attr-defined]
    args = ("--blob-store", blob_url, "--kv", redis_url, "--durability", "remote")
    with run_server(tmp_path / "a", *args) as a:
        env = git_env(a.home)
        _, token = a.create_repo("fn", "repo")
        work = tmp_path / "work"
        git("init", "-q", "-b", "main", work, env=env)
        tip = _commit(work, env, "one")
        git("push", "-q", a.git_url("fn", "repo", token), "main", cwd=work, env=env)
        # a second node, empty data dir, same blob store: it rehydrates the repo and owns it
        with run_server(tmp_path / "b", *args) as b:
            _clone_fsck(b, "fn", "repo", tmp_path / "b-clone")
        content = base64.b64encode(b"late\n").decode()
        commit = {
            "branch": "main",
            "parent": tip,
            "message": "late write",
            "author": {"name": "A", "email": "a@example.com"},
            "files": [{"path": "late.txt", "content_base64": content}],
        }
        status, body = a.api("POST", "/namespaces/fn/repos/repo/commits", commit)
        assert status == 409 and "fenced" in _error(status, body, "CONFLICT")
        status, body = a.api("POST", "/namespaces/fn/repos/repo/commits", commit)
        assert status == 409, body  # stays fenced, refused before anything is written
        status, body = a.api(
            "POST", "/namespaces/fn/repos/repo/import", {"url": a.git_url("fn", "repo", token)}
        )
        assert status == 409 and "fenced" in _error(status, body, "CONFLICT")
        status, body = a.api("POST", "/namespaces/fn/repos/repo/fork", {"name": "late-fork"})
        assert status == 409 and "fenced" in _error(status, body, "CONFLICT")
        assert a.api("GET", "/namespaces/fn/repos/late-fork")[0] == 404
        status, body = a.api("POST", "/namespaces/fn/repos/repo/snapshots")
        assert status == 409 and "fenced" in _error(status, body, "CONFLICT")
