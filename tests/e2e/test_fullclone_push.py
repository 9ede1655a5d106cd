"""End to end with the real git CLI: the full-clone verdict recorded at push time (meta
``whole_reachable``, storage.fullclone) is set by a mirror push, kept by a fast-forward,
and never matches after a force-push or a commit-API write; every clone is complete and
holds no unreachable object."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx

from storage import fullclone
from tests.helpers import Server, all_objects, git, git_env, git_out, show_refs


def _recorded(server: Server, repo_id: str) -> bool:
    """Whether the repo file's meta fact matches its current refs and object count."""
    matches = [p for p in server.data_dir.rglob("*.sqlite") if repo_id in p.name]
    assert len(matches) == 1, matches
    con = sqlite3.connect(f"file:{matches[0]}?mode=ro", uri=True)
    try:
        refs = {name: bytes(oid) for name, oid in con.execute("SELECT name, oid FROM refs")}
        count = con.execute("SELECT COUNT(*) FROM objects").fetchone()[0]
        return fullclone.recorded_whole(con, refs, count)
    finally:
        con.close()


def _clone_and_check(server: Server, url: str, dest: Path, expected: list[str]) -> None:
    env = git_env(server.home)
    for version in ("0", "2"):
        target = dest.with_name(f"{dest.name}-v{version}")
        git("-c", f"protocol.version={version}", "clone", "-q", "--mirror", url, target, env=env)
        git("fsck", "--full", "--strict", cwd=target, env=env)
        # --unreachable lists nothing: every received object is reachable from the refs
        assert git_out("fsck", "--unreachable", "--no-reflogs", cwd=target, env=env).strip() == ""
        assert all_objects(target, env) == expected


def test_mirror_push_records_the_fact_and_other_writes_do_not_match(
    server: Server, history_repo: Path, tmp_path: Path
) -> None:
    env = git_env(server.home)
    info, token = server.create_repo("e2e", "fullclone-fact")
    url = server.git_url("e2e", "fullclone-fact", token)
    git("push", "-q", "--mirror", url, cwd=history_repo, env=env)
    assert _recorded(server, info["id"])
    _clone_and_check(server, url, tmp_path / "first", all_objects(history_repo, env))

    # a fast-forward push keeps it
    work = tmp_path / "work"
    git("clone", "-q", url, work, env=env)
    (work / "ff.txt").write_text("fast-forward\n")
    git("add", "ff.txt", cwd=work, env=env)
    git("commit", "-q", "-m", "ff", cwd=work, env=env)
    git("push", "-q", "origin", "HEAD", cwd=work, env=env)
    assert _recorded(server, info["id"])

    # a force-push (non-fast-forward) drops it; the clone holds only what the refs reach
    git("reset", "-q", "--hard", "HEAD~2", cwd=work, env=env)
    (work / "forced.txt").write_text("rewritten\n")
    git("add", "forced.txt", cwd=work, env=env)
    git("commit", "-q", "-m", "forced", cwd=work, env=env)
    git("push", "-q", "--force", "origin", "HEAD", cwd=work, env=env)
    assert not _recorded(server, info["id"])
    mirror = tmp_path / "after-force-v2"
    _clone_and_check(server, url, tmp_path / "after-force", _expected(server, url, tmp_path / "probe"))
    assert git_out("rev-parse", "HEAD", cwd=work, env=env).strip() in show_refs(mirror).values()

    # a commit-API write after a fresh mirror push: the recorded state no longer matches
    info2, token2 = server.create_repo("e2e", "fullclone-api")
    url2 = server.git_url("e2e", "fullclone-api", token2)
    git("push", "-q", "--mirror", url2, cwd=history_repo, env=env)
    assert _recorded(server, info2["id"])
    branch = git_out("symbolic-ref", "--short", "HEAD", cwd=history_repo, env=env).strip()
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token2}"}, timeout=60
    ) as c:
        resp = c.post(
            "/api/v1/namespaces/e2e/repos/fullclone-api/commits",
            json={
                "branch": branch,
                "parent": show_refs(history_repo)[f"refs/heads/{branch}"],
                "message": "via the API",
                "author": {"name": "Agent", "email": "agent@example.com"},
                "files": [{"path": "api.txt", "content_base64": base64.b64encode(b"api\n").decode()}],
            },
        )
        assert resp.status_code == 201, resp.text
    assert not _recorded(server, info2["id"])
    _clone_and_check(server, url2, tmp_path / "after-api", _expected(server, url2, tmp_path / "probe2"))


def _expected(server: Server, url: str, dest: Path) -> list[str]:
    """Objects reachable from the server's refs, computed by git from a fetch of each ref
    into a fresh repository with the object walk of git itself (rev-list)."""
    env = git_env(server.home)
    git("init", "-q", "--bare", dest, env=env)
    git("-C", str(dest), "fetch", "-q", url, "+refs/*:refs/*", env=env)
    return all_objects(dest, env)
