"""Tiered storage seen from outside: real server, real git, real S3 (weed mini), real Redis.

- A stopped server's data dir is deleted; restarted on the same blob store and KV, it
  serves every repo (catalog included) with identical refs, and old tokens still work.
- Remote durability: kill -9 at random moments during sequential pushes, restart with an
  empty data dir each time: every push git reported as successful is there.
  ``make test`` runs 12 pushes; the full 50 are ``-m slow``:
  ``.venv/bin/python -m pytest -m slow tests/e2e/test_tiered_storage.py``.
- A cold repo's file is dropped after its snapshot and rebuilt by the next clone.
- ``gitserver fsck`` passes on a good repo and fails (exit 1) on a damaged one.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import VENV_BIN, Server, git, git_env, git_out, run_server, show_refs


def _remote_refs(url: str, env: dict[str, str]) -> dict[str, str]:
    out = git_out("ls-remote", url, env=env)
    return {name: oid for oid, name in (line.split("\t") for line in out.splitlines())}


def _clone_and_check(srv: Server, ns: str, name: str, token: str, dest: Path) -> dict[str, str]:
    env = git_env(srv.home)
    git("clone", "-q", "--mirror", srv.git_url(ns, name, token), dest, env=env)
    git("fsck", "--full", "--strict", cwd=dest, env=env)
    return show_refs(dest, env)


def _commit(work: Path, env: dict[str, str], name: str, size: int = 2000) -> str:
    (work / name).write_bytes(os.urandom(size))
    git("add", "-A", cwd=work, env=env)
    git("commit", "-q", "-m", f"add {name}", cwd=work, env=env)
    return git_out("rev-parse", "HEAD", cwd=work, env=env).strip()


def test_empty_data_dir_restart_serves_every_repo(
    tmp_path: Path, s3_service: object, redis_url: str, history_repo: Path
) -> None:
    blob_url = s3_service.url(f"recover-{secrets.token_hex(4)}")  # type: ignore[attr-defined]
    args = ("--blob-store", blob_url, "--kv", redis_url, "--durability", "remote")
    with run_server(tmp_path / "one", *args) as srv:
        env = git_env(srv.home)
        _, tok_hist = srv.create_repo("team", "history")
        git("push", "-q", "--mirror", srv.git_url("team", "history", tok_hist), cwd=history_repo, env=env)
        _, tok_small = srv.create_repo("team", "small", default_branch="trunk")
        work = tmp_path / "work"
        git("init", "-q", "-b", "trunk", work, env=env)
        for i in range(3):
            _commit(work, env, f"f{i}")
        git("branch", "side", "HEAD~1", cwd=work, env=env)
        git("branch", "gone", "HEAD~2", cwd=work, env=env)
        git("tag", "-a", "-m", "v1", "v1", "HEAD~1", cwd=work, env=env)
        small_url = srv.git_url("team", "small", tok_small)
        git("push", "-q", small_url, "--all", cwd=work, env=env)
        git("push", "-q", small_url, "--tags", cwd=work, env=env)
        git("push", "-q", small_url, ":gone", cwd=work, env=env)
        srv.create_repo("team", "empty")
        status, minted = srv.api("POST", "/namespaces/team/repos/small/tokens", {"scope": "read"})
        assert status == 201, minted
        before = {
            "history": _remote_refs(srv.git_url("team", "history", tok_hist), env),
            "small": _remote_refs(small_url, env),
        }
        assert "refs/heads/gone" not in before["small"] and "refs/tags/v1" in before["small"]
    shutil.rmtree(srv.data_dir)

    with run_server(tmp_path / "two", *args) as srv2:
        assert not (srv2.data_dir / "repos").exists() or not any((srv2.data_dir / "repos").rglob("*.sqlite"))
        env = git_env(srv2.home)
        # the catalog came back from the blob store, tokens from Redis
        status, listing = srv2.api("GET", "/namespaces/team/repos?sort=name")
        assert status == 200 and [r["name"] for r in listing["items"]] == ["empty", "history", "small"]
        assert _remote_refs(srv2.git_url("team", "history", tok_hist), env) == before["history"]
        assert _remote_refs(srv2.git_url("team", "small", minted["token"]), env) == before["small"]
        hist = _clone_and_check(srv2, "team", "history", tok_hist, tmp_path / "c-hist")
        assert hist == show_refs(history_repo, env)
        small = _clone_and_check(srv2, "team", "small", tok_small, tmp_path / "c-small")
        assert small == {k: v for k, v in before["small"].items() if k != "HEAD" and not k.endswith("^{}")}
        assert (
            git_out("symbolic-ref", "HEAD", cwd=tmp_path / "c-small", env=env).strip() == "refs/heads/trunk"
        )
        status, info = srv2.api("GET", "/namespaces/team/repos/empty")
        assert status == 200 and info["object_count"] == 0
        # the new node owns the repo now: pushes keep working
        new_tip = _commit(work, env, "after-restart")
        git("push", "-q", srv2.git_url("team", "small", tok_small), "trunk", cwd=work, env=env)
        assert _remote_refs(srv2.git_url("team", "small", tok_small), env)["refs/heads/trunk"] == new_tip


@pytest.mark.parametrize(
    "pushes", [pytest.param(12, id="12-pushes"), pytest.param(50, id="50-pushes", marks=pytest.mark.slow)]
)
def test_kill9_during_pushes_loses_no_acknowledged_push(
    tmp_path: Path, s3_service: object, redis_url: str, pushes: int
) -> None:
    blob_url = s3_service.url(f"kill-{secrets.token_hex(4)}")  # type: ignore[attr-defined]
    args = ("--blob-store", blob_url, "--kv", redis_url, "--durability", "remote")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    work = tmp_path / "work"
    acked: list[str] = []
    token = ""
    done = 0
    rounds = 0
    kills = 0
    while done < pushes:
        with run_server(tmp_path / f"round{rounds}", *args) as srv:  # always an empty data dir
            env = git_env(srv.home)
            if rounds == 0:
                _, token = srv.create_repo("dur", "repo")
                git("init", "-q", "-b", "main", work, env=env)
            url = srv.git_url("dur", "repo", token)
            kill_at = rng.randint(done, min(done + 5, pushes - 1))
            while done < pushes:
                tip = _commit(work, env, f"file{done}", size=rng.choice((500, 20_000, 300_000)))
                timer = None
                if done == kill_at:
                    timer = threading.Timer(rng.uniform(0.0, 0.25), srv.process.kill)
                    timer.start()
                push = git("push", "-q", url, "main", cwd=work, env=env, check=False)
                if push.returncode == 0:
                    acked.append(tip)
                done += 1
                if timer is not None:
                    timer.join()
                    srv.process.wait()
                    kills += 1
                    break
        rounds += 1
    assert kills >= 1 and acked, (kills, acked)
    with run_server(tmp_path / "final", *args) as srv:
        env = git_env(srv.home)
        clone = tmp_path / "final-clone"
        git("clone", "-q", "--mirror", srv.git_url("dur", "repo", token), clone, env=env)
        git("fsck", "--full", cwd=clone, env=env)
        present = set(git_out("rev-list", "refs/heads/main", cwd=clone, env=env).split())
        lost = [c for c in acked if c not in present]
        assert not lost, f"{len(lost)} acknowledged pushes lost of {len(acked)} ({kills} kills)"


def _repo_file(srv: Server, repo_id: str) -> Path:
    return srv.data_dir / "repos" / repo_id[:2] / f"{repo_id}.sqlite"


def _fsck(data_dir: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "gitserver"), "fsck", target, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cold_repo_is_dropped_and_rehydrated_by_the_next_clone(tmp_path: Path) -> None:
    with run_server(tmp_path, "--cold-after", "1.5", "--idle-timeout", "0.3") as srv:
        env = git_env(srv.home)
        info, token = srv.create_repo("cold", "repo")
        work = tmp_path / "work"
        git("init", "-q", "-b", "main", work, env=env)
        for i in range(3):
            _commit(work, env, f"f{i}", size=5000)
        git("tag", "v1", cwd=work, env=env)
        url = srv.git_url("cold", "repo", token)
        git("push", "-q", url, "main", "v1", cwd=work, env=env)
        before = _remote_refs(url, env)
        path = _repo_file(srv, info["id"])
        deadline = time.monotonic() + 30
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not path.exists(), "the cold repo's file was not dropped"
        status, snaps = srv.api("GET", "/namespaces/cold/repos/repo/snapshots")
        assert status == 200 and len(snaps["items"]) >= 1
        # the next clone rebuilds it transparently
        refs = _clone_and_check(srv, "cold", "repo", token, tmp_path / "clone")
        assert refs == {k: v for k, v in before.items() if k != "HEAD"}
        assert "rehydrated" in srv.log()
        # on-demand snapshots: admin only, listed newest first
        status, denied = srv.api("POST", "/namespaces/cold/repos/repo/snapshots", token=token)
        assert status == 403, denied
        status, snap = srv.api("POST", "/namespaces/cold/repos/repo/snapshots")
        assert status == 201 and set(snap) == {"id", "at", "size", "key"} and snap["size"] > 0
        status, snaps = srv.api("GET", "/namespaces/cold/repos/repo/snapshots")
        assert snaps["items"][0] == snap and len(snaps["items"]) >= 2
        ok = _fsck(srv.data_dir, "cold/repo")
        assert ok.returncode == 0, ok.stdout + ok.stderr
    # damage the latest snapshot's pack in the blob store: fsck must notice, exit 1
    (stored,) = (srv.data_dir / "blobs").rglob(f"{snap['id']}.pack*")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    broken = _fsck(srv.data_dir, "cold/repo")
    assert broken.returncode == 1 and "snapshot" in broken.stdout, broken.stdout
    if path.exists():  # and a damaged local chunk as well
        with sqlite3.connect(path) as db:
            rid, chunk = db.execute("SELECT id, data FROM chunks ORDER BY id LIMIT 1").fetchone()
            bad = bytearray(chunk)
            bad[len(bad) // 2] ^= 0xFF
            db.execute("UPDATE chunks SET data = ? WHERE id = ?", (bytes(bad), rid))
        broken = _fsck(srv.data_dir, "cold/repo")
        assert broken.returncode == 1 and "pack 1" in broken.stdout, broken.stdout
