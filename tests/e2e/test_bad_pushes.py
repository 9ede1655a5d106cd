"""Hostile or broken pushes, sent as raw receive-pack requests over HTTP.

For each: the client gets a readable error line (the one `git push` prints), no ref moves,
no row is added to the repo's SQLite file, and the server keeps serving.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, git, git_env, git_out, show_refs

ZERO = "0" * 40


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


def _repo_file(server: Server, repo_id: str) -> Path:
    matches = [p for p in server.data_dir.rglob("*.sqlite") if repo_id in p.name]
    assert len(matches) == 1, matches
    return matches[0]


def _row_counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def _receive_pack(server: Server, ns: str, name: str, token: str, commands: list[str], pack: bytes) -> str:
    body = b""
    for i, cmd in enumerate(commands):
        line = cmd.encode()
        if i == 0:
            line += b"\0report-status agent=test"
        body += pkt(line + b"\n")
    body += b"0000" + pack
    resp = httpx.post(
        f"{server.base_url}/git/{ns}/{name}.git/git-receive-pack",
        content=body,
        headers={"Content-Type": "application/x-git-receive-pack-request"},
        auth=("x", token),
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return resp.content.decode(errors="replace")


@pytest.fixture
def pushed_repo(server: Server, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    """A server repo with one commit on main, and a local repo holding a second commit."""
    env = git_env(server.home)
    name = "bad-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    info, token = server.create_repo("e2e", name)
    url = server.git_url("e2e", name, token)
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work, env=env)
    (work / "a.txt").write_text("first\n" * 1000)
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "first", cwd=work, env=env)
    git("push", "-q", url, "main", cwd=work, env=env)
    old = git_out("rev-parse", "HEAD", cwd=work, env=env).strip()
    (work / "b.txt").write_text("".join(f"second {i}\n" for i in range(5000)))
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "second", cwd=work, env=env)
    new = git_out("rev-parse", "HEAD", cwd=work, env=env).strip()
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs"],
        input=f"{new}\n^{old}\n".encode(),
        cwd=work,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    return {
        "info": info,
        "token": token,
        "url": url,
        "name": name,
        "old": old,
        "new": new,
        "pack": pack,
        "env": env,
    }


def _fix_trailer(pack: bytes) -> bytes:
    body = pack[:-20]
    return body + hashlib.sha1(body).digest()


CASES = {
    "truncated": lambda p: p[: len(p) // 2],
    "corrupted-object": lambda p: _fix_trailer(p[:40] + bytes([p[40] ^ 0xFF]) + p[41:]),
    "wrong-trailer": lambda p: p[:-1] + bytes([p[-1] ^ 0x01]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_pack_is_rejected_and_leaves_no_trace(server: Server, pushed_repo: dict, case: str) -> None:
    path = _repo_file(server, pushed_repo["info"]["id"])
    rows_before = _row_counts(path)
    pack = CASES[case](pushed_repo["pack"])
    report = _receive_pack(
        server,
        "e2e",
        pushed_repo["name"],
        pushed_repo["token"],
        [f"{pushed_repo['old']} {pushed_repo['new']} refs/heads/main"],
        pack,
    )
    assert "unpack ok" not in report
    assert "unpack " in report and "ng refs/heads/main" in report
    assert _remote_main(server, pushed_repo) == pushed_repo["old"]
    assert _row_counts(path) == rows_before
    _still_serves(server, pushed_repo)


def test_tip_pointing_at_missing_object_is_rejected(server: Server, pushed_repo: dict) -> None:
    path = _repo_file(server, pushed_repo["info"]["id"])
    rows_before = _row_counts(path)
    missing = "1234567890" * 4
    report = _receive_pack(
        server,
        "e2e",
        pushed_repo["name"],
        pushed_repo["token"],
        [
            f"{pushed_repo['old']} {pushed_repo['new']} refs/heads/main",
            f"{ZERO} {missing} refs/heads/dangling",
        ],
        pushed_repo["pack"],
    )
    assert "ng refs/heads/dangling" in report
    refs = show_refs_remote(server, pushed_repo)
    assert "refs/heads/dangling" not in refs
    # The good ref in the same (non-atomic) push may land; the dangling one never does.
    assert refs["refs/heads/main"] in (pushed_repo["old"], pushed_repo["new"])
    if refs["refs/heads/main"] == pushed_repo["old"]:
        assert _row_counts(path) == rows_before
    _still_serves(server, pushed_repo)


def show_refs_remote(server: Server, repo: dict) -> dict[str, str]:
    out = git_out("ls-remote", repo["url"], env=repo["env"])
    return {name: oid for oid, name in (line.split("\t", 1) for line in out.splitlines())}


def _remote_main(server: Server, repo: dict) -> str:
    return show_refs_remote(server, repo)["refs/heads/main"]


def _still_serves(server: Server, repo: dict) -> None:
    dest = server.home / f"clone-{repo['name']}"
    git("clone", "-q", "--mirror", repo["url"], dest, env=repo["env"])
    assert show_refs(dest)["refs/heads/main"] == _remote_main(server, repo)
    git("fsck", "--full", "--strict", cwd=dest, env=repo["env"])
