"""SPEC conformance, as an outside tester drives it: a real ``gitserver serve`` process,
the git CLI, httpx and the ``gitserver`` command; each test pins a deviation that was
found and fixed (docs/conformance.md lists them, and what is left)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import VENV_BIN, Server, git, git_env

_names = itertools.count()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    ) as client:
        yield client


def _name() -> str:
    return f"c{next(_names)}"


def _create(api: httpx.Client, ns: str, name: str, **fields: object) -> dict:
    resp = api.post(f"/namespaces/{ns}/repos", json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


def _seed(server: Server, tmp: Path, ns: str, name: str, token: str, branch: str = "main") -> None:
    env = git_env(server.home)
    work = tmp / f"work-{ns}-{name}"
    git("init", "-q", "-b", branch, work, env=env)
    (work / "a.txt").write_text("a\n")
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "one", cwd=work, env=env)
    git("push", "-q", server.git_url(ns, name, token), branch, cwd=work, env=env)


def test_fork_of_a_deleted_parent_shows_no_internal_id(api: httpx.Client) -> None:
    parent, kid = _name(), _name()
    _create(api, "conf", parent)
    assert api.post(f"/namespaces/conf/repos/{parent}/fork", json={"name": kid}).json()["forked_from"] == (
        f"conf/{parent}"
    )
    assert api.delete(f"/namespaces/conf/repos/{parent}").status_code == 204
    # the parent is gone: forked_from is null, never the id of the pool that keeps its objects
    assert api.get(f"/namespaces/conf/repos/{kid}").json()["forked_from"] is None
    listed = api.get("/namespaces/conf/repos", params={"search": kid}).json()["items"]
    assert [(r["name"], r["forked_from"]) for r in listed] == [(kid, None)]


def test_type_errors_read_as_english(api: httpx.Client) -> None:
    resp = api.post("/namespaces/conf/repos", json={"name": _name(), "public": "yes"})
    assert resp.status_code == 400 and _error(resp) == {
        "code": "INVALID_INPUT",
        "message": "public must be a boolean (true or false)",
    }
    repo = _create(api, "conf", _name())
    resp = api.post(
        f"/namespaces/conf/repos/{repo['name']}/tokens", json={"scope": "read", "ttl_seconds": "60"}
    )
    assert resp.status_code == 400 and _error(resp)["message"] == "ttl_seconds must be an integer"


def test_import_of_a_missing_branch_is_an_error(api: httpx.Client, server: Server, tmp_path: Path) -> None:
    src, dst = _name(), _name()
    token = _create(api, "conf", src, public=True)["token"]
    _seed(server, tmp_path, "conf", src, token)
    _create(api, "conf", dst)
    resp = api.post(
        f"/namespaces/conf/repos/{dst}/import",
        json={"url": f"{server.base_url}/git/conf/{src}.git", "branch": "nope"},
    )
    assert resp.status_code == 400 and _error(resp)["code"] == "INVALID_INPUT"
    assert "no branch 'nope'" in _error(resp)["message"]
    assert api.get(f"/namespaces/conf/repos/{dst}/refs").json()["items"] == []
    # the repo is still empty, so a correct import goes through
    ok = api.post(
        f"/namespaces/conf/repos/{dst}/import",
        json={"url": f"{server.base_url}/git/conf/{src}.git", "branch": "main"},
    )
    assert ok.status_code == 200 and list(ok.json()["imported"]) == ["refs/heads/main"]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = VENV_BIN / "gitserver"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gitserver.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=60)


def test_offline_cli_repo_json_and_ttl_bounds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = _cli("repo", "create", "ops/tool", "--data-dir", data, "--description", "d")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    for key in (
        "id",
        "namespace",
        "name",
        "description",
        "default_branch",
        "created_at",
        "updated_at",
        "last_push_at",
        "read_only",
        "public",
        "forked_from",
        "size_bytes",
        "object_count",
    ):
        assert key in info, key
    listed = [
        json.loads(line) for line in _cli("repo", "list", "ops", "--data-dir", data).stdout.splitlines()
    ]
    assert [(r["name"], r["object_count"]) for r in listed] == [("tool", 0)]
    for ttl in ("59", "31536001"):
        bad = _cli(
            "token", "create", "--data-dir", data, "--repo", "ops/tool", "--scope", "read", "--ttl", ttl
        )
        assert bad.returncode == 1 and "--ttl must be 60..31536000" in bad.stderr, bad.stderr
    for ttl in ("60", "31536000"):
        good = _cli(
            "token", "create", "--data-dir", data, "--repo", "ops/tool", "--scope", "read", "--ttl", ttl
        )
        assert good.returncode == 0 and good.stdout.startswith("gs_"), good.stderr


def test_git_shows_why_it_was_refused(api: httpx.Client, server: Server, tmp_path: Path) -> None:
    name = _name()
    token = _create(api, "conf", name, read_only=True)["token"]
    env = git_env(server.home)
    work = tmp_path / "ro"
    git("init", "-q", "-b", "main", work, env=env)
    git("commit", "-q", "--allow-empty", "-m", "x", cwd=work, env=env)
    push = git("push", server.git_url("conf", name, token), "main", cwd=work, env=env, check=False)
    assert push.returncode != 0
    assert f"remote: repository conf/{name} is read-only" in push.stderr.decode(), push.stderr
    bad = git("ls-remote", server.git_url("conf", name, "gs_" + "x" * 40), env=env, check=False)
    assert bad.returncode != 0 and "remote: invalid, expired or revoked token" in bad.stderr.decode()
    # a non-git client still gets the JSON error shape on the remote
    resp = httpx.get(
        f"{server.base_url}/git/conf/{name}.git/info/refs?service=git-receive-pack", auth=("x", token)
    )
    assert resp.status_code == 403 and _error(resp)["code"] == "FORBIDDEN"


def test_openapi_also_at_the_root(server: Server) -> None:
    root = httpx.get(f"{server.base_url}/openapi.json")
    under = httpx.get(f"{server.base_url}/api/v1/openapi.json")
    assert root.status_code == under.status_code == 200
    assert root.json() == under.json() and root.json()["openapi"].startswith("3.1")


def test_refs_type_of_an_annotated_tag_is_tag(api: httpx.Client, server: Server, tmp_path: Path) -> None:
    name = _name()
    token = _create(api, "conf", name)["token"]
    _seed(server, tmp_path, "conf", name, token)
    env = git_env(server.home)
    work = tmp_path / f"work-conf-{name}"
    git("tag", "-a", "v1.0", "-m", "release", cwd=work, env=env)
    git("tag", "light", cwd=work, env=env)
    git("push", "-q", server.git_url("conf", name, token), "v1.0", "light", cwd=work, env=env)
    commit = git("rev-parse", "HEAD", cwd=work, env=env).stdout.decode().strip()
    tag = git("rev-parse", "v1.0", cwd=work, env=env).stdout.decode().strip()
    refs = {r["name"]: r for r in api.get(f"/namespaces/conf/repos/{name}/refs").json()["items"]}
    assert refs["refs/tags/v1.0"] == {
        "name": "refs/tags/v1.0",
        "target": tag,
        "type": "tag",
        "peeled": commit,
        "peeled_type": "commit",
    }
    assert refs["refs/tags/light"] == {"name": "refs/tags/light", "target": commit, "type": "commit"}
    assert refs["refs/heads/main"]["type"] == "commit"


def test_head_requests_answer_like_get(api: httpx.Client, server: Server) -> None:
    name = _name()
    _create(api, "conf", name)
    head = api.head(f"/namespaces/conf/repos/{name}")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(api.get(f"/namespaces/conf/repos/{name}").content)
    assert api.head("/openapi.json").status_code == 200
    wrong = api.put(f"/namespaces/conf/repos/{name}")
    assert wrong.status_code == 405 and set(wrong.headers["allow"].split(", ")) == {"DELETE", "GET", "HEAD"}
